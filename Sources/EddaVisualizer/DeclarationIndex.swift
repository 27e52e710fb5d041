import SwiftParser
import SwiftSyntax

/// What the analyzed sources declare: types with their conformances and durable names, and the
/// bindings (file- and type-scope `let`/`var`) an activity may be referred to by.
///
/// Types are keyed by their simple name (`Inner` for `Outer.Inner`); the declarations and
/// extensions of one name are merged.
struct DeclarationIndex {
    /// The protocols and superclasses each type or protocol names in its inheritance clauses.
    private(set) var inherited: [String: Set<String>] = [:]
    /// Static string constants of each type: `name`, `compensationName`.
    private(set) var staticStrings: [String: [String: String]] = [:]
    /// File- and type-scope bindings by name, the first declared first.
    private(set) var bindings: [String: [PatternBindingSyntax]] = [:]

    init(files: [SourceFileSyntax]) {
        let collector = Collector(viewMode: .sourceAccurate)
        for file in files { collector.walk(file) }
        inherited = collector.inherited
        staticStrings = collector.staticStrings
        bindings = collector.bindings
    }

    /// Whether `type` conforms to (or inherits from) `protocolName`, directly or through the
    /// protocols and classes declared in the sources.
    func conforms(_ type: String, to protocolName: String) -> Bool {
        var seen: Set<String> = [type]
        var pending = [type]
        while let next = pending.popLast() {
            for parent in inherited[next] ?? [] {
                if parent == protocolName { return true }
                if seen.insert(parent).inserted { pending.append(parent) }
            }
        }
        return false
    }

    /// Whether `type` is a workflow type.
    func isWorkflow(_ type: String) -> Bool { conforms(type, to: "Workflow") }

    /// Whether `type` is an activity type (plain or compensatable).
    func isActivity(_ type: String) -> Bool {
        conforms(type, to: "Activity") || conforms(type, to: "CompensatableActivity")
    }

    /// Whether `type` is a compensatable activity type.
    func isCompensatable(_ type: String) -> Bool { conforms(type, to: "CompensatableActivity") }

    /// Whether `type` is a compensation type.
    func isCompensation(_ type: String) -> Bool { conforms(type, to: "Compensation") }

    /// The string literal of `type`'s static property `property`, if it declares one.
    func staticString(_ property: String, of type: String) -> String? {
        staticStrings[type]?[property]
    }

    /// The durable name of a type: its `static let name`, or the type name.
    func durableName(of type: String) -> String {
        staticString("name", of: type) ?? type
    }

    /// The compensation name of a compensatable activity type: its `static let compensationName`,
    /// or the protocol's default `compensate_<name>`.
    func compensationName(of type: String) -> String {
        staticString("compensationName", of: type) ?? "compensate_" + durableName(of: type)
    }
}

extension DeclarationIndex {
    /// The first pass over the sources.
    private final class Collector: SyntaxVisitor {
        var inherited: [String: Set<String>] = [:]
        var staticStrings: [String: [String: String]] = [:]
        var bindings: [String: [PatternBindingSyntax]] = [:]

        override func visit(_ node: StructDeclSyntax) -> SyntaxVisitorContinueKind {
            record(node.name.text, node.inheritanceClause, node.memberBlock)
            return .visitChildren
        }

        override func visit(_ node: ClassDeclSyntax) -> SyntaxVisitorContinueKind {
            record(node.name.text, node.inheritanceClause, node.memberBlock)
            return .visitChildren
        }

        override func visit(_ node: EnumDeclSyntax) -> SyntaxVisitorContinueKind {
            record(node.name.text, node.inheritanceClause, node.memberBlock)
            return .visitChildren
        }

        override func visit(_ node: ActorDeclSyntax) -> SyntaxVisitorContinueKind {
            record(node.name.text, node.inheritanceClause, node.memberBlock)
            return .visitChildren
        }

        override func visit(_ node: ExtensionDeclSyntax) -> SyntaxVisitorContinueKind {
            record(SyntaxText.simpleTypeName(node.extendedType), node.inheritanceClause, node.memberBlock)
            return .visitChildren
        }

        override func visit(_ node: ProtocolDeclSyntax) -> SyntaxVisitorContinueKind {
            record(node.name.text, node.inheritanceClause, nil)
            return .visitChildren
        }

        override func visit(_ node: VariableDeclSyntax) -> SyntaxVisitorContinueKind {
            if Self.isFileOrTypeScope(node) {
                for binding in node.bindings {
                    guard let name = binding.pattern.as(IdentifierPatternSyntax.self)?.identifier.text else { continue }
                    bindings[name, default: []].append(binding)
                }
            }
            return .visitChildren
        }

        private func record(_ type: String, _ clause: InheritanceClauseSyntax?, _ members: MemberBlockSyntax?) {
            guard !type.isEmpty else { return }
            for inheritedType in clause?.inheritedTypes ?? [] {
                for name in SyntaxText.inheritedNames(inheritedType.type) {
                    inherited[type, default: []].insert(name)
                }
            }
            for member in members?.members ?? [] {
                guard let variable = member.decl.as(VariableDeclSyntax.self),
                    variable.modifiers.contains(where: { ["static", "class"].contains($0.name.text) })
                else { continue }
                for binding in variable.bindings {
                    guard let name = binding.pattern.as(IdentifierPatternSyntax.self)?.identifier.text,
                        let value = Self.constantString(binding)
                    else { continue }
                    if staticStrings[type]?[name] == nil { staticStrings[type, default: [:]][name] = value }
                }
            }
        }

        /// The string a binding is initialised to (`= "x"`) or its getter returns (`{ "x" }`).
        private static func constantString(_ binding: PatternBindingSyntax) -> String? {
            if let value = binding.initializer?.value {
                return SyntaxText.literal(value)
            }
            switch binding.accessorBlock?.accessors {
            case .getter(let items):
                return returnedString(items)
            case .accessors(let accessors):
                guard let getter = accessors.first(where: { $0.accessorSpecifier.tokenKind == .keyword(.get) }),
                    let body = getter.body
                else { return nil }
                return returnedString(body.statements)
            case nil:
                return nil
            }
        }

        private static func returnedString(_ items: CodeBlockItemListSyntax) -> String? {
            guard items.count == 1, let item = items.first else { return nil }
            switch item.item {
            case .expr(let expression):
                return SyntaxText.literal(expression)
            case .stmt(let statement):
                if let returned = statement.as(ReturnStmtSyntax.self)?.expression {
                    return SyntaxText.literal(returned)
                }
                if let expression = statement.as(ExpressionStmtSyntax.self)?.expression {
                    return SyntaxText.literal(expression)
                }
                return nil
            case .decl:
                return nil
            }
        }

        /// Whether a variable is declared at file scope or as a member of a type.
        private static func isFileOrTypeScope(_ node: VariableDeclSyntax) -> Bool {
            guard let parent = node.parent else { return false }
            if parent.is(MemberBlockItemSyntax.self) { return true }
            return parent.is(CodeBlockItemSyntax.self) && parent.parent?.parent?.is(SourceFileSyntax.self) == true
        }
    }
}
