/// The shape of a workflow: its durable steps and the control flow between them.
///
/// A flow is a tree of ``FlowStep``s: steps in sequence, branches (`if`, `switch`,
/// `do`/`catch`) whose arms are sequences, and loops whose bodies are sequences. It comes from
/// the workflow's source (`EddaVisualizer`) or from an instance's history
/// (``FlowExecution/historyFlow(workflowName:)``), and renders as Mermaid text
/// (``MermaidRenderer``) or inline SVG (``SVGRenderer``), optionally coloured by an
/// instance's execution (``FlowExecution``).
public struct WorkflowFlow: Sendable, Hashable, Codable {
    /// The workflow's durable name, or its type name when the source does not declare one.
    public var workflowName: String
    /// The body, in program order.
    public var steps: [FlowStep]

    /// Creates a flow.
    public init(workflowName: String, steps: [FlowStep]) {
        self.workflowName = workflowName
        self.steps = steps
    }

    /// Every node of the flow, depth first in program order.
    public var nodes: [FlowNode] {
        var result: [FlowNode] = []
        func visit(_ steps: [FlowStep]) {
            for step in steps {
                switch step {
                case .node(let node): result.append(node)
                case .branch(let branch): branch.arms.forEach { visit($0.steps) }
                case .loop(let loop): visit(loop.body)
                }
            }
        }
        visit(steps)
        return result
    }
}

/// One element of a flow.
public indirect enum FlowStep: Sendable, Hashable, Codable {
    /// A durable operation.
    case node(FlowNode)
    /// A choice between arms: `if`/`else`, `guard`, `switch`, or `do`/`catch`.
    case branch(FlowBranch)
    /// A `for`, `while` or `repeat` loop.
    case loop(FlowLoop)
}

/// A durable operation of a workflow: an activity, a timer, a wait, a message.
public struct FlowNode: Sendable, Hashable, Codable {
    /// What kind of operation the node is.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// `context.run(…)` or `context.start(…)`.
        case activity
        /// `context.registerCompensation(…)`.
        case compensation
        /// `context.sleep(for:)` or `context.sleep(until:)`.
        case timer
        /// `context.waitEvent(…)`.
        case waitEvent
        /// `context.receive(…)`.
        case receive
        /// `context.publish(…)` or `context.sendTo(…)`.
        case publish
        /// `context.subscribe(…)` or `context.unsubscribe(…)`.
        case subscription
        /// `context.recur(with:)`.
        case recur
        /// Any other recorded operation, such as a history row of another implementation.
        case other
    }

    /// What kind of operation the node is.
    public var kind: Kind
    /// The text shown in the node.
    public var label: String
    /// The durable step name the node records history under: the part of its step IDs before
    /// the last `:` (`"reserve_inventory"` for `reserve_inventory:1`, `"sleep"`,
    /// `"receive_payment.received"`). `nil` when the name is not known statically.
    public var stepName: String?
    /// Whether running the step registers a compensation (a compensatable activity).
    public var registersCompensation: Bool

    /// Creates a node.
    public init(kind: Kind, label: String, stepName: String?, registersCompensation: Bool = false) {
        self.kind = kind
        self.label = label
        self.stepName = stepName
        self.registersCompensation = registersCompensation
    }
}

/// A choice between arms.
public struct FlowBranch: Sendable, Hashable, Codable {
    /// The construct the branch comes from.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// `if`/`else if`/`else`, or `guard … else`.
        case condition
        /// `switch` with its cases.
        case `switch`
        /// `do` with its `catch` clauses.
        case tryCatch
    }

    /// The construct the branch comes from.
    public var kind: Kind
    /// The decision's text: the condition, the switch subject, or `do`.
    public var label: String
    /// The arms, in source order. An `if` without `else` has an empty "No" arm.
    public var arms: [FlowArm]

    /// Creates a branch.
    public init(kind: Kind, label: String, arms: [FlowArm]) {
        self.kind = kind
        self.label = label
        self.arms = arms
    }
}

/// One arm of a branch.
public struct FlowArm: Sendable, Hashable, Codable {
    /// The edge label: `Yes`, `No`, `case .paid`, `catch PaymentError`, …
    public var label: String
    /// The arm's steps.
    public var steps: [FlowStep]
    /// Whether the arm is taken on an error (a `catch` clause); drawn dashed.
    public var isErrorPath: Bool

    /// Creates an arm.
    public init(label: String, steps: [FlowStep], isErrorPath: Bool = false) {
        self.label = label
        self.steps = steps
        self.isErrorPath = isErrorPath
    }
}

/// A loop and its body.
public struct FlowLoop: Sendable, Hashable, Codable {
    /// The loop's header text, e.g. `for item in order.items`.
    public var label: String
    /// The loop's body.
    public var body: [FlowStep]

    /// Creates a loop.
    public init(label: String, body: [FlowStep]) {
        self.label = label
        self.body = body
    }
}
