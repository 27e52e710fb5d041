import Edda
import Foundation
import Logging
import Synchronization

/// Finds work that other processes made claimable, for a database without `LISTEN`/`NOTIFY`.
///
/// One statement per poll reads a small signature of the tables (unlocked resumable instances,
/// the newest timer, receive timeouts, the newest channel message, pending outbox rows) and
/// announces what changed since the last poll. The poll runs every `interval.lowerBound` while
/// things change and doubles its pause up to `interval.upperBound` while nothing does; any
/// change seen or made by this store brings it back to the short pause. Work of this process
/// does not wait for it: the engine hands that on directly.
final class MySQLWakeUpPoller: Sendable {
    private struct State {
        var task: Task<Void, Never>?
        var busy = true
    }

    private let state = Mutex(State())
    let interval: ClosedRange<Duration>
    let logger: Logger

    init(interval: ClosedRange<Duration>, logger: Logger) {
        self.interval = interval
        self.logger = logger
    }

    /// A change was made here: poll at the short interval for a while (others may react).
    func changed() {
        state.withLock { $0.busy = true }
    }

    /// The table signature one poll reads.
    struct Signature: Equatable {
        var resumable: [Int]
        var waits: [Int]
        var outbox: Int
    }

    static let signatureQuery: MySQLQuery = """
        SELECT
          (SELECT COUNT(*) FROM workflow_instances
           WHERE framework = \(StoredFramework.name) AND status IN ('running', 'compensating') AND locked_by IS NULL) AS resumable_count,
          (SELECT COALESCE(SUM(CRC32(instance_id)), 0) FROM workflow_instances
           WHERE framework = \(StoredFramework.name) AND status IN ('running', 'compensating') AND locked_by IS NULL) AS resumable_sum,
          (SELECT COALESCE(MAX(id), 0) FROM workflow_timer_subscriptions) AS newest_timer,
          (SELECT COUNT(*) FROM channel_subscriptions WHERE activity_id IS NOT NULL) AS waiting_receives,
          (SELECT COALESCE(MAX(id), 0) FROM channel_messages) AS newest_message,
          (SELECT COUNT(*) FROM outbox_events WHERE status = 'pending') AS pending_outbox
        """

    func start(store: MySQLStore) -> AsyncStream<StoreWakeUp> {
        let (stream, continuation) = AsyncStream<StoreWakeUp>.makeStream(bufferingPolicy: .bufferingNewest(16))
        let (interval, logger) = (self.interval, self.logger)
        let pool = store.pool
        let polling = Task { [weak self] in
            var last: Signature?
            var pause = interval.lowerBound
            var failing = false
            while !Task.isCancelled {
                do {
                    let signature = try await pool.withConnection { connection in
                        let row = try connection.query(Self.signatureQuery).first
                        func number(_ column: String) throws -> Int { try row?.int(column) ?? 0 }
                        return Signature(
                            resumable: [try number("resumable_count"), try number("resumable_sum")],
                            waits: [try number("newest_timer"), try number("waiting_receives"), try number("newest_message")],
                            outbox: try number("pending_outbox"))
                    }
                    if failing {
                        failing = false
                        continuation.yield(.all)
                    } else if let last {
                        if signature.resumable != last.resumable, signature.resumable[0] > 0 { continuation.yield(.resumable) }
                        if signature.waits != last.waits { continuation.yield(.waitRegistered) }
                        if signature.outbox != last.outbox, signature.outbox > 0 { continuation.yield(.outbox) }
                    }
                    let changed = last != nil && signature != last
                    last = signature
                    let busy = self?.state.withLock { state in
                        defer { state.busy = false }
                        return state.busy
                    } ?? false
                    pause = changed || busy ? interval.lowerBound : min(pause * 2, interval.upperBound)
                } catch {
                    if Task.isCancelled { break }
                    if !failing { logger.debug("Polling MySQL for other processes' work failed; retrying: \(error)") }
                    failing = true
                    pause = interval.upperBound
                }
                try? await Task.sleep(for: pause)
            }
            continuation.finish()
        }
        state.withLock { $0.task = polling }
        continuation.onTermination = { _ in polling.cancel() }
        return stream
    }

    func stop() async {
        let polling = state.withLock { state -> Task<Void, Never>? in
            defer { state.task = nil }
            return state.task
        }
        polling?.cancel()
        await polling?.value
    }
}
