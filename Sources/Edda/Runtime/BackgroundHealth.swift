import Foundation
import Logging
import Synchronization

/// One of the app's background loops, and how it is doing.
///
/// Read them with ``EddaApp/backgroundStatus``. A loop that fails retries on its own (each at
/// its own pace: the next pass, heartbeat or poll) and is healthy again once a whole pass
/// succeeds; a loop with failures since its last success is where to look when instances stop
/// resuming, timers stop firing or the outbox stops draining. Every failure is also logged (a
/// warning, an error from the tenth in a row, with `edda.loop` and `edda.error`) and counted
/// (``EddaMetricName/backgroundFailures``).
///
/// One failure does not heal by itself: a store whose push notifications ended for good leaves
/// ``BackgroundLoop/wakeUps`` unhealthy, while the other loops' polls still find every due wait
/// and resumable instance — the app works, later. Treat it as degraded, not down.
public struct BackgroundLoopStatus: Sendable, Equatable {
    /// The loop: one of ``BackgroundLoop``'s names.
    public let loop: BackgroundLoop
    /// Failures since the loop's last success; zero while it is healthy.
    public let consecutiveFailures: Int
    /// Failures since the app started.
    public let totalFailures: Int
    /// The newest failure, if any.
    public let lastFailure: Failure?
    /// When the loop last completed its work without a failure, if ever.
    public let lastSuccess: Date?

    /// What failed, and when.
    public struct Failure: Sendable, Equatable {
        /// What the loop was doing and the error, as logged.
        public let message: String
        /// When it failed.
        public let at: Date
    }

    /// Whether the loop's newest pass succeeded (or it has never failed).
    public var isHealthy: Bool { consecutiveFailures == 0 }
}

/// The app's background loops.
public enum BackgroundLoop: String, Sendable, CaseIterable, Comparable {
    /// Resumes instances left by crashed workers, unlocked after a wait, or cancelling.
    case recovery
    /// Fires timers, times out receives, delivers messages that waiting instances missed.
    case waitScheduler = "wait-scheduler"
    /// Sends outbox events (only with an outbox publisher).
    case outboxRelayer = "outbox-relayer"
    /// Turns the store's push notifications into immediate wake-ups (stores that push).
    case wakeUps = "wake-ups"
    /// Holds the leader lease and does the cluster's housekeeping (retention, gauges).
    case leader
    /// Renews the leases of the instances this worker runs.
    case leaseRenewal = "lease-renewal"

    /// The loops in the order they are listed here (``EddaApp/backgroundStatus``'s order).
    public static func < (lhs: Self, rhs: Self) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// Records the background loops' failures and successes: logs each failure with its loop,
/// counts it, and keeps the state ``EddaApp/backgroundStatus`` reports.
final class BackgroundHealth: Sendable {
    private struct Entry {
        var consecutive = 0
        var total = 0
        var lastFailure: BackgroundLoopStatus.Failure?
        var lastSuccess: Date?
    }

    private let entries = Mutex<[BackgroundLoop: Entry]>([:])
    private let logger: Logger
    private let metrics: EddaMetrics

    init(logger: Logger, metrics: EddaMetrics) {
        self.logger = logger
        self.metrics = metrics
    }

    /// Records that `loop` failed while `doing` something (`"Recovery pass failed"`); it retries
    /// on its own. Logged as a warning, or as an error once it has failed 10 times in a row.
    func failed(_ loop: BackgroundLoop, _ doing: String, _ error: any Error, retrying: String = "retrying") {
        let message = "\(doing); \(retrying): \(error)"
        let consecutive = entries.withLock { entries -> Int in
            var entry = entries[loop] ?? Entry()
            entry.consecutive += 1
            entry.total += 1
            entry.lastFailure = .init(message: message, at: Date())
            entries[loop] = entry
            return entry.consecutive
        }
        metrics.backgroundFailure(loop.rawValue)
        let metadata: Logger.Metadata = [
            "edda.loop": .string(loop.rawValue), "edda.error": .string("\(error)"),
            "edda.consecutive_failures": .stringConvertible(consecutive),
        ]
        logger.log(level: consecutive >= 10 ? .error : .warning, "\(doing); \(retrying)", metadata: metadata)
    }

    /// Records that `loop` completed its work.
    func succeeded(_ loop: BackgroundLoop) {
        let recovered = entries.withLock { entries -> Int in
            let failures = entries[loop]?.consecutive ?? 0
            entries[loop, default: Entry()].consecutive = 0
            entries[loop, default: Entry()].lastSuccess = Date()
            return failures
        }
        if recovered > 0 {
            logger.info("Background work recovered", metadata: ["edda.loop": .string(loop.rawValue), "edda.failures": .stringConvertible(recovered)])
        }
    }

    /// The loops in `running`, in ``BackgroundLoop`` order.
    func status(of running: [BackgroundLoop]) -> [BackgroundLoopStatus] {
        let entries = self.entries.withLock { $0 }
        return running.sorted().map { loop in
            let entry = entries[loop] ?? Entry()
            return BackgroundLoopStatus(
                loop: loop, consecutiveFailures: entry.consecutive, totalFailures: entry.total, lastFailure: entry.lastFailure,
                lastSuccess: entry.lastSuccess)
        }
    }
}

/// A store's wake-up notifications ended while the app was running.
struct StoreNotificationsEnded: Error, CustomStringConvertible {
    var description: String { "the store's wake-up stream finished" }
}
