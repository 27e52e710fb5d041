import Edda
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The notification channels, named as the reference names them.
enum NotifyChannel {
    /// An instance became resumable: `{"wf_id", "wf_name"}`.
    static let resumable = "workflow_resumable"
    /// Outbox events were written: `{"evt_id", "evt_type"}`.
    static let outbox = "workflow_outbox_pending"
    /// A timer or receive timeout was registered (the reference listens on this name).
    static let waits = "workflow_timer_expired"
    static let all = [resumable, outbox, waits]
}

/// A connection, leased from the pool for as long as the store is open, that `LISTEN`s for the
/// store's notifications and turns them into wake-ups. When the connection drops it leases
/// another (every second until it succeeds) and then asks for a full look, since notifications
/// sent meanwhile are lost.
final class PostgresListener: Sendable {
    private let logger: Logger
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let storeReference = Mutex<WeakStore?>(nil)
    /// The store whose current pool the listener leases from.
    var store: WeakStore? {
        get { storeReference.withLock { $0 } }
        set { storeReference.withLock { $0 = newValue } }
    }

    init(logger: Logger) {
        self.logger = logger
    }

    func start() -> AsyncStream<StoreWakeUp> {
        let (stream, continuation) = AsyncStream<StoreWakeUp>.makeStream(bufferingPolicy: .bufferingNewest(16))
        let logger = self.logger
        let reference = store
        let listening = Task {
            var first = true
            var lost = false
            while !Task.isCancelled {
                do {
                    guard let client = reference?.store?.client else { break }
                    try await client.withConnection { connection in
                        if !first { continuation.yield(.all) }
                        if lost { logger.info("LISTEN connection back; wake-ups are immediate again") }
                        first = false
                        lost = false
                        try await Self.listen(on: connection, continuation: continuation)
                    }
                } catch {
                    if Task.isCancelled { break }
                    // Once per outage: the retries go on every second.
                    if lost {
                        logger.debug("LISTEN connection still lost; reconnecting: \(error)")
                    } else {
                        logger.warning("LISTEN connection lost; reconnecting (waits and resumptions are found by polling meanwhile): \(error)")
                    }
                    lost = true
                }
                try? await Task.sleep(for: .seconds(1))
            }
            continuation.finish()
        }
        task.withLock { $0 = listening }
        continuation.onTermination = { _ in listening.cancel() }
        return stream
    }

    /// Listens on every channel until the connection fails.
    private static func listen(on connection: PostgresConnection, continuation: AsyncStream<StoreWakeUp>.Continuation) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for channel in NotifyChannel.all {
                let wakeUp: StoreWakeUp = switch channel {
                case NotifyChannel.resumable: .resumable
                case NotifyChannel.outbox: .outbox
                default: .waitRegistered
                }
                group.addTask {
                    try await connection.listen(on: channel) { notifications in
                        for try await _ in notifications { continuation.yield(wakeUp) }
                    }
                }
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    func stop() async {
        let listening = task.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        listening?.cancel()
        await listening?.value
    }
}
