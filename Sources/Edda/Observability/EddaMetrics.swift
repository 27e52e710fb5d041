import CoreMetrics
import Foundation
import Synchronization

/// The names and dimensions of the metrics an ``EddaApp`` reports through swift-metrics.
///
/// Names follow the OpenTelemetry semantic-convention style (dotted, `edda.` first; a
/// Prometheus backend turns the dots into underscores). Every dimension value is bounded: a
/// workflow or activity name, a status, an outcome, never an instance ID. See the Observability
/// article for what each measures.
public enum EddaMetricName {
    /// Counter: instances started. Dimension ``workflow``.
    public static let workflowStarts = "edda.workflow.starts"
    /// Counter: instances that ended on this worker. Dimensions ``workflow`` and ``status``
    /// (`completed`, `failed`, `cancelled`, `recurred`).
    public static let workflowEnds = "edda.workflow.ends"
    /// Counter: activity attempts that ran. Dimensions ``activity`` and ``outcome`` (`success`;
    /// `retry`, a failed attempt that will be retried; `failure`, a failed attempt that ends the
    /// step: a terminal error or the last retry).
    public static let activityAttempts = "edda.activity.attempts"
    /// Timer: how long each activity attempt's code ran. Dimensions ``activity`` and ``outcome``.
    public static let activityDuration = "edda.activity.duration"
    /// Counter: steps read from history on replay instead of run (activities, receives, timers).
    /// Dimension ``workflow``.
    public static let replayedSteps = "edda.replay.steps"
    /// Counter: compensations run. Dimensions ``activity`` (the compensation's name) and
    /// ``outcome`` (`success`, `failure`).
    public static let compensations = "edda.compensation.runs"
    /// Counter: claims of free instances (recovery, resumption after a wait elsewhere).
    /// Dimension ``outcome`` (`won`; `lost`, another worker had it first).
    public static let claims = "edda.instance.claims"
    /// Counter: lease renewals of running instances. Dimension ``outcome`` (`renewed`; `lost`,
    /// the lock was gone and the execution stops).
    public static let leaseRenewals = "edda.lease.renewals"
    /// Timer: how long a step's commit took in the store (the transition, with the user's
    /// transactional work, outbox rows and deliveries). Dimension ``transition``: `step` (an
    /// activity's result or failure), `receive` (a message consumed, or the wait registered),
    /// `suspend` (a timer), `compensate` (compensation begins), `compensation` (one recorded),
    /// `finish`, `recur`.
    public static let commitDuration = "edda.store.commit.duration"
    /// Counter: finished instances deleted by retention or ``EddaApp/purgeInstances(_:dryRun:)``.
    public static let purgedInstances = "edda.retention.purged"
    /// Counter: failures of the app's background loops (each retries on its own; see
    /// ``EddaApp/backgroundStatus``). Dimension ``loop``.
    public static let backgroundFailures = "edda.background.failures"
    /// Counter: outbox events the relayer handled. Dimension ``outcome`` (`published`, `retry`,
    /// `failed`, `invalid`, `expired`).
    public static let outboxEvents = "edda.outbox.events"
    /// Histogram: how many store operations one database commit carried, with group commit
    /// (SQLite: concurrent steps share a commit, and its fsync).
    public static let commitBatchSize = "edda.store.commit.batch"
    /// Timer: how long a woken instance waited for the execution that resumes it, from the
    /// moment its wait ended (a timer's expiry, a receive's timeout, a message's delivery).
    public static let resumeLag = "edda.resume.lag"
    /// Gauge: instances waiting now, by ``waitKind`` (`timer`, `message`, `event`), all workflows
    /// of the database; measured by the leader at each heartbeat.
    public static let waitingInstances = "edda.instances.waiting"
    /// Gauge: outbox events not yet sent (`pending`, or `processing` by a relayer); measured by
    /// the leader at each heartbeat.
    public static let outboxBacklog = "edda.outbox.backlog"

    /// Dimension: the workflow's durable name.
    public static let workflow = "edda.workflow.name"
    /// Dimension: the activity's (or compensation's) durable name.
    public static let activity = "edda.activity.name"
    /// Dimension: how an instance ended.
    public static let status = "edda.workflow.status"
    /// Dimension: what an attempt, claim or renewal came to.
    public static let outcome = "edda.outcome"
    /// Dimension: the kind of a store transition.
    public static let transition = "edda.transition"
    /// Dimension: what a wait is for: `timer`, `message` (a channel receive, or its timeout),
    /// `event` (the status other Edda implementations use for events).
    public static let waitKind = "edda.wait"
    /// Dimension: a background loop (``BackgroundLoop``'s raw values: `recovery`,
    /// `wait-scheduler`, `outbox-relayer`, `wake-ups`, `leader`, `lease-renewal`).
    public static let loop = "edda.loop"
}

/// The app's metric handles, made once per label and dimensions with the configured factory.
final class EddaMetrics: Sendable {
    private struct Key: Hashable {
        let label: String
        let dimensions: [String]

        init(_ label: String, _ dimensions: [(String, String)]) {
            self.label = label
            self.dimensions = dimensions.flatMap { [$0.0, $0.1] }
        }
    }

    let factory: any MetricsFactory
    private let counters = Mutex<[Key: Counter]>([:])
    private let timers = Mutex<[Key: CoreMetrics.Timer]>([:])
    private let gauges = Mutex<[Key: Gauge]>([:])

    /// Reports to `factory`, or to the process's `MetricsSystem` (a no-op until bootstrapped).
    init(factory: (any MetricsFactory)?) {
        self.factory = factory ?? MetricsSystem.factory
    }

    func increment(_ label: String, _ dimensions: [(String, String)], by amount: Int = 1) {
        guard amount > 0 else { return }
        let counter = counters.withLock { counters in
            let key = Key(label, dimensions)
            if let counter = counters[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions, factory: factory)
            counters[key] = counter
            return counter
        }
        counter.increment(by: amount)
    }

    func gauge(_ label: String, _ dimensions: [(String, String)]) -> Gauge {
        gauges.withLock { gauges in
            let key = Key(label, dimensions)
            if let gauge = gauges[key] { return gauge }
            let gauge = Gauge(label: label, dimensions: dimensions, factory: factory)
            gauges[key] = gauge
            return gauge
        }
    }

    func record(_ label: String, _ dimensions: [(String, String)], _ duration: Duration) {
        let timer = timers.withLock { timers in
            let key = Key(label, dimensions)
            if let timer = timers[key] { return timer }
            let timer = CoreMetrics.Timer(label: label, dimensions: dimensions, factory: factory)
            timers[key] = timer
            return timer
        }
        let (seconds, attoseconds) = duration.components
        timer.recordNanoseconds(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
    }

    // MARK: - What the engine reports

    func workflowStarted(_ workflow: String) {
        increment(EddaMetricName.workflowStarts, [(EddaMetricName.workflow, workflow)])
    }

    func workflowEnded(_ workflow: String, status: WorkflowStatus) {
        increment(EddaMetricName.workflowEnds, [(EddaMetricName.workflow, workflow), (EddaMetricName.status, status.rawValue)])
    }

    enum AttemptOutcome: String {
        case success, retry, failure
    }

    func activityAttempt(_ activity: String, outcome: AttemptOutcome, duration: Duration) {
        let dimensions = [(EddaMetricName.activity, activity), (EddaMetricName.outcome, outcome.rawValue)]
        increment(EddaMetricName.activityAttempts, dimensions)
        record(EddaMetricName.activityDuration, dimensions, duration)
    }

    func stepReplayed(_ workflow: String) {
        increment(EddaMetricName.replayedSteps, [(EddaMetricName.workflow, workflow)])
    }

    func compensationRan(_ name: String, succeeded: Bool) {
        increment(EddaMetricName.compensations, [(EddaMetricName.activity, name), (EddaMetricName.outcome, succeeded ? "success" : "failure")])
    }

    func claimed(won: Bool) {
        increment(EddaMetricName.claims, [(EddaMetricName.outcome, won ? "won" : "lost")])
    }

    func leasesRenewed(_ renewed: Int, lost: Int) {
        increment(EddaMetricName.leaseRenewals, [(EddaMetricName.outcome, "renewed")], by: renewed)
        increment(EddaMetricName.leaseRenewals, [(EddaMetricName.outcome, "lost")], by: lost)
    }

    func committed(_ transition: String, duration: Duration) {
        record(EddaMetricName.commitDuration, [(EddaMetricName.transition, transition)], duration)
    }

    func purged(_ count: Int) {
        increment(EddaMetricName.purgedInstances, [], by: count)
    }

    func resumed(after kind: String, lag: Duration) {
        record(EddaMetricName.resumeLag, [(EddaMetricName.waitKind, kind)], lag)
    }

    func waiting(_ count: Int, kind: String) {
        gauge(EddaMetricName.waitingInstances, [(EddaMetricName.waitKind, kind)]).record(count)
    }

    func outboxBacklog(_ count: Int) {
        gauge(EddaMetricName.outboxBacklog, []).record(count)
    }

    func outboxEvent(_ outcome: String) {
        increment(EddaMetricName.outboxEvents, [(EddaMetricName.outcome, outcome)])
    }

    func backgroundFailure(_ loop: String) {
        increment(EddaMetricName.backgroundFailures, [(EddaMetricName.loop, loop)])
    }
}
