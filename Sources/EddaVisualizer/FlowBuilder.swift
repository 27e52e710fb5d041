import EddaDiagram
import SwiftParser
import SwiftSyntax

/// Builds the steps of one workflow body: the durable calls on the context variable, in
/// evaluation order, inside the branches and loops that contain them.
struct FlowBuilder {
    let index: DeclarationIndex
    /// The context variable's name, or `nil` when the body cannot refer to it.
    let contextName: String?
    let scope: BindingScope

    // MARK: - Blocks and expressions

    /// The steps of a block; `defer` bodies come last, the last declared first.
    func steps(_ items: CodeBlockItemListSyntax) -> [FlowStep] {
        var result: [FlowStep] = []
        var deferred: [[FlowStep]] = []
        for item in items {
            if let deferStatement = item.item.as(DeferStmtSyntax.self) {
                deferred.append(steps(deferStatement.body.statements))
            } else {
                collect(Syntax(item.item), into: &result)
            }
        }
        for block in deferred.reversed() { result += block }
        return result
    }

    /// The steps of any node.
    private func steps(of node: some SyntaxProtocol) -> [FlowStep] {
        var result: [FlowStep] = []
        collect(Syntax(node), into: &result)
        return result
    }

    private func collect(_ node: Syntax, into result: inout [FlowStep]) {
        switch node.as(SyntaxEnum.self) {
        case .functionCallExpr(let call):
            collectCall(call, into: &result)
        case .closureExpr(let closure):
            if !shadowsContext(closure) { result += steps(closure.statements) }
        case .ifExpr(let statement):
            result += ifSteps(statement)
        case .guardStmt(let statement):
            result += guardSteps(statement)
        case .switchExpr(let statement):
            result += switchSteps(statement)
        case .forStmt(let statement):
            result += forSteps(statement)
        case .whileStmt(let statement):
            result += whileSteps(statement)
        case .repeatStmt(let statement):
            result += repeatSteps(statement)
        case .doStmt(let statement):
            result += doSteps(statement)
        case .ifConfigDecl(let declaration):
            result += ifConfigSteps(declaration)
        case .codeBlockItemList(let items):
            result += steps(items)
        case .variableDecl(let declaration):
            // Initialisers run here; accessors (computed locals) are not followed.
            for binding in declaration.bindings {
                if let value = binding.initializer?.value { collect(Syntax(value), into: &result) }
            }
        default:
            // Other declarations (nested functions, types) are not part of the body's flow.
            if node.is(DeclSyntax.self) { return }
            for child in node.children(viewMode: .sourceAccurate) {
                collect(child, into: &result)
            }
        }
    }

    private func collectCall(_ call: FunctionCallExprSyntax, into result: inout [FlowStep]) {
        // An activity's body is not workflow code (and its context is an ActivityContext).
        if SyntaxText.calleeTypeName(call.calledExpression) == "ActivityDefinition" { return }
        guard let method = contextMethod(call) else {
            for child in call.children(viewMode: .sourceAccurate) {
                collect(child, into: &result)
            }
            return
        }
        // Arguments are evaluated before the call.
        for argument in call.arguments {
            collect(Syntax(argument.expression), into: &result)
        }
        if let node = node(for: method, call) {
            result.append(.node(node))
        }
    }

    /// The method name when `call` is a method call on the context variable.
    private func contextMethod(_ call: FunctionCallExprSyntax) -> String? {
        guard let contextName, let member = call.calledExpression.as(MemberAccessExprSyntax.self),
            let base = member.base?.as(DeclReferenceExprSyntax.self), base.baseName.text == contextName
        else { return nil }
        return member.declName.baseName.text
    }

    /// Whether a closure declares a parameter that hides the context variable.
    private func shadowsContext(_ closure: ClosureExprSyntax) -> Bool {
        guard let contextName else { return false }
        guard let clause = closure.signature?.parameterClause else {
            // `$1` of a nested closure is that closure's own parameter.
            return contextName.hasPrefix("$")
        }
        switch clause {
        case .simpleInput(let parameters):
            return parameters.contains { $0.name.text == contextName }
        case .parameterClause(let parameters):
            return parameters.parameters.contains { ($0.secondName ?? $0.firstName).text == contextName }
        }
    }

    // MARK: - Durable calls

    private func node(for method: String, _ call: FunctionCallExprSyntax) -> FlowNode? {
        let first = call.arguments.first?.expression
        switch method {
        case "run", "start":
            guard let first else { return nil }
            if let resolved = resolve(first), let name = resolved.name {
                return FlowNode(
                    kind: .activity, label: SyntaxText.label(name), stepName: stepName(name, call),
                    registersCompensation: resolved.typeName.map(index.isCompensatable) ?? false)
            }
            return FlowNode(kind: .activity, label: SyntaxText.label(SyntaxText.flat(first)), stepName: stepName(nil, call))
        case "sleep":
            if let date = argument("until", of: call) {
                return FlowNode(
                    kind: .timer, label: SyntaxText.label("sleep(until: \(SyntaxText.flat(date)))"),
                    stepName: stepName("sleep_until", call))
            }
            let duration = argument("for", of: call) ?? first
            return FlowNode(
                kind: .timer, label: SyntaxText.label("sleep(for: \(duration.map { SyntaxText.flat($0) } ?? ""))"),
                stepName: stepName("sleep", call))
        case "waitEvent":
            return receiveNode(kind: .waitEvent, prefix: "wait event", call)
        case "receive":
            return receiveNode(kind: .receive, prefix: "receive", call)
        case "publish":
            return FlowNode(
                kind: .publish, label: SyntaxText.label("publish: \(first.map(SyntaxText.literalOrText) ?? "")"),
                stepName: stepName("publish", call))
        case "sendTo":
            return FlowNode(
                kind: .publish, label: SyntaxText.label("send to: \(first.map(SyntaxText.literalOrText) ?? "")"),
                stepName: stepName("send_to", call))
        case "subscribe", "unsubscribe":
            return FlowNode(
                kind: .subscription, label: SyntaxText.label("\(method): \(first.map(SyntaxText.literalOrText) ?? "")"),
                stepName: nil)
        case "registerCompensation":
            guard let first else { return nil }
            if let name = resolve(first)?.name {
                return FlowNode(
                    kind: .compensation, label: SyntaxText.label("register compensation: \(name)"),
                    stepName: stepName(name, call))
            }
            return FlowNode(
                kind: .compensation, label: SyntaxText.label("register compensation: \(SyntaxText.flat(first))"),
                stepName: stepName(nil, call))
        case "recur":
            return FlowNode(kind: .recur, label: "recur", stepName: nil)
        default:
            // now(), uuid(), random(…) and non-durable members: not shown.
            return nil
        }
    }

    /// A `waitEvent` or `receive` node: step `receive_<name>` when the name is a literal.
    private func receiveNode(kind: FlowNode.Kind, prefix: String, _ call: FunctionCallExprSyntax) -> FlowNode {
        let first = call.arguments.first?.expression
        let literal = first.flatMap(SyntaxText.literal)
        var label = "\(prefix): \(literal ?? first.map { SyntaxText.flat($0) } ?? "")"
        if let timeout = argument("timeout", of: call) {
            label += " (timeout: \(SyntaxText.flat(timeout)))"
        }
        return FlowNode(kind: kind, label: SyntaxText.label(label), stepName: stepName(literal.map { "receive_\($0)" }, call))
    }

    /// The step name: the prefix of an explicit `id:` literal when it has one, else `name`.
    private func stepName(_ name: String?, _ call: FunctionCallExprSyntax) -> String? {
        guard let id = argument("id", of: call) else { return name }
        return SyntaxText.stepNamePrefix(ofID: id) ?? name
    }

    private func argument(_ label: String, of call: FunctionCallExprSyntax) -> ExprSyntax? {
        call.arguments.first(where: { $0.label?.text == label })?.expression
    }

    // MARK: - Activity and compensation references

    /// What an activity or compensation expression refers to.
    private struct Resolved {
        /// The durable name, when known.
        var name: String?
        /// The type, when the expression is an instance of a named type.
        var typeName: String?
    }

    /// Resolves `X(…)`, `ActivityDefinition(name: "x") {…}`, or a name (`greet`, `self.greet`,
    /// `Self.greet`, `Namespace.greet`) bound to one of those or annotated with an activity type.
    private func resolve(_ expression: ExprSyntax, depth: Int = 0) -> Resolved? {
        guard depth < 8 else { return nil }
        if let call = expression.as(FunctionCallExprSyntax.self) {
            guard let type = SyntaxText.calleeTypeName(call.calledExpression) else { return nil }
            if type == "ActivityDefinition" {
                let name = call.arguments.first(where: { $0.label?.text == "name" }).flatMap {
                    SyntaxText.literal($0.expression)
                }
                return name.map { Resolved(name: $0, typeName: nil) }
            }
            return resolve(type: type)
        }
        if let reference = expression.as(DeclReferenceExprSyntax.self) {
            return resolve(binding: reference.baseName.text, depth: depth)
        }
        if let member = expression.as(MemberAccessExprSyntax.self) {
            return resolve(binding: member.declName.baseName.text, depth: depth)
        }
        if let tuple = expression.as(TupleExprSyntax.self), tuple.elements.count == 1, let only = tuple.elements.first {
            return resolve(only.expression, depth: depth + 1)
        }
        return nil
    }

    /// A type: its declared name when the sources declare it, else its name when it looks
    /// like a type (so `Foo()` of a type declared elsewhere still gets a step name).
    private func resolve(type: String) -> Resolved? {
        if type == "ActivityDefinition" { return nil }
        if index.isActivity(type) || index.isCompensation(type) || index.staticString("name", of: type) != nil {
            return Resolved(name: index.durableName(of: type), typeName: type)
        }
        return SyntaxText.looksLikeType(type) ? Resolved(name: type, typeName: type) : nil
    }

    private func resolve(binding name: String, depth: Int) -> Resolved? {
        guard let binding = scope.lookup(name) else { return nil }
        if let value = binding.initializer?.value {
            return resolve(value, depth: depth + 1)
        }
        if let type = binding.typeAnnotation?.type {
            return resolve(type: SyntaxText.simpleTypeName(type))
        }
        return nil
    }

    // MARK: - Control flow

    /// Steps in `arms`, as a branch, unless no arm holds a step.
    private func branch(_ kind: FlowBranch.Kind, _ label: String, _ arms: [FlowArm]) -> [FlowStep] {
        guard arms.contains(where: { !$0.steps.isEmpty }) else { return [] }
        return [.branch(FlowBranch(kind: kind, label: SyntaxText.label(label), arms: arms))]
    }

    /// A loop, unless its body is empty.
    private func loop(_ label: String, _ body: [FlowStep]) -> [FlowStep] {
        body.isEmpty ? [] : [.loop(FlowLoop(label: SyntaxText.label(label), body: body))]
    }

    private func ifSteps(_ statement: IfExprSyntax) -> [FlowStep] {
        let conditionSteps = steps(of: statement.conditions)
        let condition = SyntaxText.flat(statement.conditions)
        var arms = [FlowArm(label: SyntaxText.label(condition), steps: steps(statement.body.statements))]
        var isChain = false
        var hasElse = false
        var current = statement
        chain: while let elseBody = current.elseBody {
            switch elseBody {
            case .codeBlock(let block):
                arms.append(FlowArm(label: "else", steps: steps(block.statements)))
                hasElse = true
                break chain
            case .ifExpr(let next):
                guard steps(of: next.conditions).isEmpty else {
                    // A durable call in the condition runs only on this path: keep it nested.
                    arms.append(FlowArm(label: "else", steps: ifSteps(next)))
                    hasElse = true
                    break chain
                }
                arms.append(FlowArm(
                    label: SyntaxText.label(SyntaxText.flat(next.conditions)), steps: steps(next.body.statements)))
                isChain = true
                current = next
            }
        }
        if !hasElse { arms.append(FlowArm(label: "else", steps: [])) }
        guard isChain else {
            arms[0].label = "Yes"
            arms[1].label = "No"
            return conditionSteps + branch(.condition, condition, arms)
        }
        return conditionSteps + branch(.condition, "if", arms)
    }

    private func guardSteps(_ statement: GuardStmtSyntax) -> [FlowStep] {
        steps(of: statement.conditions)
            + branch(
                .condition, SyntaxText.flat(statement.conditions),
                [FlowArm(label: "Yes", steps: []), FlowArm(label: "No", steps: steps(statement.body.statements))])
    }

    private func switchSteps(_ statement: SwitchExprSyntax) -> [FlowStep] {
        var arms: [FlowArm] = []
        appendCases(statement.cases, to: &arms)
        return steps(of: statement.subject) + branch(.switch, SyntaxText.flat(statement.subject), arms)
    }

    private func appendCases(_ cases: SwitchCaseListSyntax, to arms: inout [FlowArm]) {
        for element in cases {
            switch element {
            case .switchCase(let switchCase):
                var label: String
                switch switchCase.label {
                case .default:
                    label = "default"
                case .case(let caseLabel):
                    label = "case " + SyntaxText.flat(caseLabel.caseItems)
                }
                if let attribute = switchCase.attribute {
                    label = SyntaxText.flat(attribute) + " " + label
                }
                arms.append(FlowArm(label: SyntaxText.label(label), steps: steps(switchCase.statements)))
            case .ifConfigDecl(let declaration):
                for clause in declaration.clauses {
                    if case .switchCases(let inner) = clause.elements { appendCases(inner, to: &arms) }
                }
            }
        }
    }

    private func forSteps(_ statement: ForStmtSyntax) -> [FlowStep] {
        let header = SyntaxText.flat(statement, stoppingAt: statement.body.leftBrace)
        let body = (statement.whereClause.map { steps(of: $0) } ?? []) + steps(statement.body.statements)
        return steps(of: statement.sequence) + loop(header, body)
    }

    private func whileSteps(_ statement: WhileStmtSyntax) -> [FlowStep] {
        let header = SyntaxText.flat(statement, stoppingAt: statement.body.leftBrace)
        return loop(header, steps(of: statement.conditions) + steps(statement.body.statements))
    }

    private func repeatSteps(_ statement: RepeatStmtSyntax) -> [FlowStep] {
        loop(
            "repeat … while \(SyntaxText.flat(statement.condition))",
            steps(statement.body.statements) + steps(of: statement.condition))
    }

    private func doSteps(_ statement: DoStmtSyntax) -> [FlowStep] {
        let body = steps(statement.body.statements)
        guard !statement.catchClauses.isEmpty else { return body }
        var arms = [FlowArm(label: "do", steps: body)]
        for clause in statement.catchClauses {
            let label = clause.catchItems.isEmpty ? "catch" : "catch " + SyntaxText.flat(clause.catchItems)
            arms.append(FlowArm(label: SyntaxText.label(label), steps: steps(clause.body.statements), isErrorPath: true))
        }
        return branch(.tryCatch, "do", arms)
    }

    /// `#if` blocks in a body: a condition branch with one arm per clause.
    private func ifConfigSteps(_ declaration: IfConfigDeclSyntax) -> [FlowStep] {
        var arms: [FlowArm] = []
        for clause in declaration.clauses {
            let label = [clause.poundKeyword.text, clause.condition.map { SyntaxText.flat($0) }]
                .compactMap { $0 }.joined(separator: " ")
            var armSteps: [FlowStep] = []
            if case .statements(let items) = clause.elements { armSteps = steps(items) }
            arms.append(FlowArm(label: SyntaxText.label(label), steps: armSteps))
        }
        if !declaration.clauses.contains(where: { $0.poundKeyword.tokenKind == .poundElse }) {
            arms.append(FlowArm(label: "#else", steps: []))
        }
        return branch(.condition, "#if", arms)
    }
}
