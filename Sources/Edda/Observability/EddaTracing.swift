import Tracing

/// The span names and attributes an ``EddaApp`` records through swift-distributed-tracing.
///
/// - `workflow <name>`: one span per **execution** of an instance — its start, and each
///   resumption after a wait, a crash or a restart — never one span for the instance's whole
///   life, so a workflow that waits for a week holds no span open. Its parent is the context
///   current where the execution runs: the caller's at `start`/`run` (a request's span), none
///   for a resumption by a background worker.
/// - `activity <name>`: one span per **attempt** that runs, child of the execution's span; a
///   retried attempt ends with its error recorded. Steps replayed from history record no span.
///   Your activity code runs with the attempt's span as the current context, so the spans of
///   the clients it calls nest under it.
/// - `compensation <name>`: one span per compensation run.
public enum EddaSpanAttribute {
    /// The workflow's durable name.
    public static let workflow = "edda.workflow.name"
    /// The instance ID.
    public static let instance = "edda.instance.id"
    /// `start` (a new instance) or `resume`.
    public static let execution = "edda.execution"
    /// How the execution ended: `completed`, `failed`, `cancelled`, `suspended` (it waits),
    /// `recurred`, or `stopped` (lock lost, shutdown, …; the instance resumes elsewhere).
    public static let outcome = "edda.outcome"
    /// The activity's (or compensation's) durable name.
    public static let activity = "edda.activity.name"
    /// The step ID.
    public static let activityID = "edda.activity.id"
    /// The attempt number, from 1.
    public static let attempt = "edda.activity.attempt"
}

extension ExecutionResult {
    /// The span outcome of an execution that ended so.
    var spanOutcome: String {
        switch self {
        case .completed: "completed"
        case .failed: "failed"
        case .cancelled: "cancelled"
        case .suspended: "suspended"
        case .abandoned: "stopped"
        }
    }
}
