import Synchronization
import Tracing

/// The span names and attributes an ``EddaApp`` records through swift-distributed-tracing.
///
/// - `workflow <name>`: one span per **execution** of an instance — its start, and each
///   resumption after a wait, a crash or a restart — never one span for the instance's whole
///   life, so a workflow that waits for a week holds no span open. Its parent is the context
///   current where the instance was started (the caller's at `start`/`run`, a request's span;
///   a CloudEvent's `traceparent`), kept with the instance's input, so that every execution,
///   on any worker, joins that trace. A message or event that resumes it (carrying the trace
///   context of its sender) is a link of the execution it resumes.
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

extension WorkflowEngine {
    /// The current trace context, to store with what this worker writes for later work.
    func currentTraceCarrier() -> TraceCarrier? {
        guard propagatesTraces, let context = ServiceContext.current else { return nil }
        return TraceCarrier(injecting: context, with: tracer)
    }

    /// Links `span` to the trace of the message received, if it carries one.
    func link(_ span: any Span, toMessageWith metadata: [String: JSONValue]) {
        guard propagatesTraces, let context = TraceCarrier(metadata: metadata)?.context(with: tracer) else { return }
        span.addLink(SpanLink(context: context, attributes: [:]))
    }
}

/// The trace contexts of outbox events this process wrote, by event ID, until its relayer
/// sends them (as the events' `traceparent`/`tracestate` extension attributes).
///
/// The shared schema's `outbox_events` has no column for them, so they live in memory: an
/// event sent by another process, or after a restart, goes without. At most ``capacity`` are
/// kept (the oldest dropped first).
final class OutboxTraceContexts: Sendable {
    static let capacity = 10_000

    private struct State {
        var fields: [String: TraceCarrier] = [:]
        /// Event IDs in the order recorded, from `head` on (some may have been removed since).
        var order: [String] = []
        var head = 0
    }

    private let state = Mutex(State())

    func record(_ carrier: TraceCarrier, for eventIDs: [String]) {
        guard !eventIDs.isEmpty else { return }
        state.withLock { state in
            for id in eventIDs {
                state.fields[id] = carrier
                state.order.append(id)
            }
            // The oldest go first when too many are unsent here (another process relays them).
            while state.fields.count > Self.capacity, state.head < state.order.count {
                state.fields[state.order[state.head]] = nil
                state.head += 1
            }
            // Keep the order list near the table's size: most events are removed once sent.
            if state.order.count - state.head > 2 * Self.capacity || state.head > Self.capacity {
                state.order = state.order[state.head...].filter { state.fields[$0] != nil }
                state.head = 0
            }
        }
    }

    /// The propagation fields of an event's trace (empty if unknown here).
    func fields(for eventID: String) -> [String: String] {
        state.withLock { $0.fields[eventID]?.fields ?? [:] }
    }

    /// How many events it keeps, and how long its order list is (for tests of its bounds).
    var sizes: (events: Int, order: Int) {
        state.withLock { ($0.fields.count, $0.order.count - $0.head) }
    }

    /// Forgets an event that will not be sent again.
    func remove(_ eventID: String) {
        state.withLock { _ = $0.fields.removeValue(forKey: eventID) }
    }
}
