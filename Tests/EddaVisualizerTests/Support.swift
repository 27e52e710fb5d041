import EddaDiagram
import EddaVisualizer
import Foundation
import Testing

/// The repository root, from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A path under the repository root.
func repositoryPath(_ relative: String) -> String {
    repositoryRoot.appendingPathComponent(relative).path
}

/// Declarations shared by the inline sources: activities, a compensatable activity, a
/// compensation, and closure activities.
let prelude = """
    import Edda

    struct StepA: Activity {
        static let name = "step_a"
        func run(_ input: Int, context: ActivityContext) async throws -> Int { input }
    }
    struct StepB: Activity {
        static let name = "step_b"
        func run(_ input: Int, context: ActivityContext) async throws -> Int { input }
    }
    struct StepC: Activity {
        static let name = "step_c"
        func run(_ input: Int, context: ActivityContext) async throws -> Int { input }
    }
    struct Reserve: CompensatableActivity {
        static let name = "reserve"
        static let compensationName = "release"
        func run(_ input: Int, context: ActivityContext) async throws -> Int { input }
        func compensate(_ input: Int, output: Int, context: CompensationContext) async throws {}
    }
    struct Refund: Compensation {
        static let name = "refund_payment"
        func run(_ input: Int, context: CompensationContext) async throws {}
    }
    """

/// A source with the prelude and one workflow type `W` (name `w`) whose `run` has `body`.
func workflowSource(_ body: String, context: String = "context") -> String {
    """
    \(prelude)

    struct W: Workflow {
        static let name = "w"
        func run(_ input: Int, context \(context): WorkflowContext) async throws -> Int {
    \(body)
        }
    }
    """
}

/// The single workflow of `source`; records an issue when there is not exactly one.
func onlyFlow(_ source: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> WorkflowFlow {
    let flows = WorkflowAnalyzer().analyze(source: source)
    try #require(flows.count == 1, "expected one workflow, found \(flows.map(\.workflowName))", sourceLocation: sourceLocation)
    return flows[0]
}

/// The steps of the workflow `W` whose body is `body`.
func stepsOf(_ body: String, context: String = "context", sourceLocation: SourceLocation = #_sourceLocation) throws
    -> [FlowStep]
{
    try onlyFlow(workflowSource(body, context: context), sourceLocation: sourceLocation).steps
}

// MARK: - Expected values

func activity(_ name: String, compensates: Bool = false) -> FlowStep {
    .node(FlowNode(kind: .activity, label: name, stepName: name, registersCompensation: compensates))
}

func node(_ kind: FlowNode.Kind, _ label: String, _ stepName: String?) -> FlowStep {
    .node(FlowNode(kind: kind, label: label, stepName: stepName))
}

func branch(_ kind: FlowBranch.Kind, _ label: String, _ arms: FlowArm...) -> FlowStep {
    .branch(FlowBranch(kind: kind, label: label, arms: arms))
}

func arm(_ label: String, _ steps: FlowStep..., error: Bool = false) -> FlowArm {
    FlowArm(label: label, steps: steps, isErrorPath: error)
}

func loop(_ label: String, _ body: FlowStep...) -> FlowStep {
    .loop(FlowLoop(label: label, body: body))
}
