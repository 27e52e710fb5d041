import EddaDiagram
import SwiftParser
import SwiftSyntax

/// The second pass: finds the workflows of one source file, in source order, and builds their
/// flows.
enum WorkflowFinder {
    static func flows(in file: SourceFileSyntax, index: DeclarationIndex) -> [WorkflowFlow] {
        let finder = Finder(index: index)
        finder.walk(file)
        return finder.flows
    }

    private final class Finder: SyntaxVisitor {
        let index: DeclarationIndex
        var flows: [WorkflowFlow] = []
        /// Workflow types whose `run` has been analyzed, so that an overload is not taken twice.
        var analyzedTypes: Set<String> = []

        init(index: DeclarationIndex) {
            self.index = index
            super.init(viewMode: .sourceAccurate)
        }

        override func visit(_ node: FunctionDeclSyntax) -> SyntaxVisitorContinueKind {
            guard node.name.text == "run", let body = node.body, let type = Self.enclosingTypeName(of: node),
                index.isWorkflow(type), !analyzedTypes.contains(type),
                let contextParameter = node.signature.parameterClause.parameters.first(where: {
                    SyntaxText.simpleTypeName($0.type) == "WorkflowContext"
                })
            else { return .visitChildren }
            analyzedTypes.insert(type)
            let contextName = (contextParameter.secondName ?? contextParameter.firstName).text
            let builder = FlowBuilder(
                index: index, contextName: contextName == "_" ? nil : contextName,
                scope: BindingScope(around: Syntax(node), body: Syntax(body), index: index))
            flows.append(WorkflowFlow(
                workflowName: index.staticString("name", of: type) ?? type, steps: builder.steps(body.statements)))
            return .visitChildren
        }

        override func visit(_ node: FunctionCallExprSyntax) -> SyntaxVisitorContinueKind {
            guard Self.isRegister(node.calledExpression),
                let nameArgument = node.arguments.first(where: { $0.label?.text == "workflow" }),
                let closure = node.trailingClosure ?? node.arguments.last?.expression.as(ClosureExprSyntax.self)
            else { return .visitChildren }
            let contextName = Self.secondParameterName(of: closure)
            let builder = FlowBuilder(
                index: index, contextName: contextName == "_" ? nil : contextName,
                scope: BindingScope(around: Syntax(node), body: Syntax(closure), index: index))
            flows.append(WorkflowFlow(
                workflowName: SyntaxText.literalOrText(nameArgument.expression),
                steps: builder.steps(closure.statements)))
            return .visitChildren
        }

        /// `app.register` or a plain `register` (inside the app type or an extension of it).
        private static func isRegister(_ callee: ExprSyntax) -> Bool {
            if let member = callee.as(MemberAccessExprSyntax.self) { return member.declName.baseName.text == "register" }
            if let reference = callee.as(DeclReferenceExprSyntax.self) { return reference.baseName.text == "register" }
            return false
        }

        /// The name of a closure's second parameter: `context` in `{ (name: String, context) in }`
        /// or `{ name, context in }`; `$1` when the closure declares no parameters.
        private static func secondParameterName(of closure: ClosureExprSyntax) -> String? {
            guard let clause = closure.signature?.parameterClause else { return "$1" }
            switch clause {
            case .simpleInput(let parameters):
                let names = parameters.map(\.name.text)
                return names.count > 1 ? names[1] : nil
            case .parameterClause(let parameters):
                let names = parameters.parameters.map { ($0.secondName ?? $0.firstName).text }
                return names.count > 1 ? names[1] : nil
            }
        }

        /// The simple name of the type (or extended type) a function is a member of.
        private static func enclosingTypeName(of function: FunctionDeclSyntax) -> String? {
            guard let declaration = function.parent?.as(MemberBlockItemSyntax.self)?.parent?.parent?.parent else {
                return nil
            }
            if let type = declaration.as(StructDeclSyntax.self) { return type.name.text }
            if let type = declaration.as(ClassDeclSyntax.self) { return type.name.text }
            if let type = declaration.as(EnumDeclSyntax.self) { return type.name.text }
            if let type = declaration.as(ActorDeclSyntax.self) { return type.name.text }
            if let type = declaration.as(ExtensionDeclSyntax.self) { return SyntaxText.simpleTypeName(type.extendedType) }
            return nil
        }
    }
}

/// The bindings visible from a workflow body, innermost first: those declared in the body, those
/// of the enclosing blocks and types, then the file- and type-scope bindings of all sources.
struct BindingScope {
    private var levels: [[String: PatternBindingSyntax]] = []
    private let global: [String: [PatternBindingSyntax]]

    init(around workflow: Syntax, body: Syntax, index: DeclarationIndex) {
        global = index.bindings
        let collector = LocalBindings(viewMode: .sourceAccurate)
        collector.walk(body)
        levels.append(collector.bindings)
        var ancestor = workflow.parent
        while let node = ancestor {
            if let items = node.as(CodeBlockItemListSyntax.self) {
                levels.append(Self.bindings(items.compactMap { $0.item.as(VariableDeclSyntax.self) }))
            } else if let members = node.as(MemberBlockItemListSyntax.self) {
                levels.append(Self.bindings(members.compactMap { $0.decl.as(VariableDeclSyntax.self) }))
            }
            ancestor = node.parent
        }
    }

    /// The binding `name` refers to, if one is declared.
    func lookup(_ name: String) -> PatternBindingSyntax? {
        for level in levels {
            if let binding = level[name] { return binding }
        }
        return global[name]?.first
    }

    private static func bindings(_ declarations: [VariableDeclSyntax]) -> [String: PatternBindingSyntax] {
        var result: [String: PatternBindingSyntax] = [:]
        for declaration in declarations {
            for binding in declaration.bindings {
                guard let name = binding.pattern.as(IdentifierPatternSyntax.self)?.identifier.text else { continue }
                if result[name] == nil { result[name] = binding }
            }
        }
        return result
    }

    private final class LocalBindings: SyntaxVisitor {
        var bindings: [String: PatternBindingSyntax] = [:]

        override func visit(_ node: PatternBindingSyntax) -> SyntaxVisitorContinueKind {
            if let name = node.pattern.as(IdentifierPatternSyntax.self)?.identifier.text, bindings[name] == nil {
                bindings[name] = node
            }
            return .visitChildren
        }
    }
}
