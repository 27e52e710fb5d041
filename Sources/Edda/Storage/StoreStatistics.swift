import CoreMetrics

/// A store that counts what waits in it, for the app's gauges (``EddaMetricName/waitingInstances``,
/// ``EddaMetricName/outboxBacklog``), which the leader measures.
public protocol StatisticsStore: WorkflowStore {
    /// The counts now, over the whole database (every framework's rows).
    func statistics() async throws -> StoreStatistics
}

/// What waits in a database at one moment.
public struct StoreStatistics: Sendable, Equatable {
    /// Instances `waiting_for_timer`.
    public var waitingForTimer: Int
    /// Instances `waiting_for_message` (a channel receive).
    public var waitingForMessage: Int
    /// Instances `waiting_for_event`.
    public var waitingForEvent: Int
    /// Outbox events not yet sent: `pending`, or `processing` by a relayer.
    public var outboxBacklog: Int

    /// Creates a value with every field given.
    public init(waitingForTimer: Int, waitingForMessage: Int, waitingForEvent: Int, outboxBacklog: Int) {
        self.waitingForTimer = waitingForTimer
        self.waitingForMessage = waitingForMessage
        self.waitingForEvent = waitingForEvent
        self.outboxBacklog = outboxBacklog
    }

    /// One statement that reads them all, in the SQL that SQLite, PostgreSQL and MySQL share:
    /// one row with the integer columns `timers`, `messages`, `events` and `outbox`.
    public static let query = """
        SELECT
          (SELECT COUNT(*) FROM workflow_instances WHERE status = 'waiting_for_timer') AS timers,
          (SELECT COUNT(*) FROM workflow_instances WHERE status = 'waiting_for_message') AS messages,
          (SELECT COUNT(*) FROM workflow_instances WHERE status = 'waiting_for_event') AS events,
          (SELECT COUNT(*) FROM outbox_events WHERE status IN ('pending', 'processing')) AS outbox
        """
}

/// A store that reports how it works (for the app's metrics): the app hands it its
/// ``StoreInstruments`` once it is open.
public protocol InstrumentedStore: WorkflowStore {
    /// Starts reporting to `instruments` (replacing any given before).
    func report(to instruments: StoreInstruments)
}

/// What a store reports about its own work, recorded in the app's metrics.
public final class StoreInstruments: Sendable {
    private let batchSize: CoreMetrics.Recorder

    init(factory: any MetricsFactory) {
        batchSize = CoreMetrics.Recorder(label: EddaMetricName.commitBatchSize, dimensions: [], aggregate: true, factory: factory)
    }

    /// A commit carried `transactions` store operations together (group commit).
    public func groupCommit(transactions: Int) {
        batchSize.record(transactions)
    }
}
