import Edda
import Foundation
import Synchronization

/// The readiness check behind `GET <path>/health/ready`: whether the app's store can commit a
/// write now, not merely answer a read.
///
/// A database can answer reads while every write fails: a read-only file or mount, a full
/// disk, a PostgreSQL standby, or another process holding SQLite's write lock. The probe
/// therefore commits one small write — it takes and at once lets expire the `system_locks` row
/// ``lockName`` for this worker (on a driver without named locks, a lock release that matches no
/// row) — and reports ready only if that commits within the timeout.
/// Concurrent checks share one probe write, so a burst of readiness requests costs one commit.
final class ReadinessProbe: Sendable {
    /// The `system_locks` row the probe writes. Its lease ends the moment it is taken, so it
    /// never keeps anything from anyone.
    static let lockName = "edda_readiness_probe"

    enum Outcome: Sendable, Equatable {
        case ready
        /// Not ready; the reason is a short phrase for the response.
        case unavailable(String)
    }

    /// The probe write in flight, shared by the checks that arrive meanwhile.
    private let inFlight = Mutex<Task<Result<Void, any Error>, Never>?>(nil)

    /// Checks `app`: not shut down, and a probe write commits within `timeout`.
    func check(app: EddaApp, timeout: Duration) async -> Outcome {
        guard await app.isReady() else { return .unavailable("the app is shut down or its database cannot be read") }
        let probe = inFlight.withLock { current -> Task<Result<Void, any Error>, Never> in
            if let current { return current }
            let task = Task { [weak self] () -> Result<Void, any Error> in
                let result: Result<Void, any Error>
                do {
                    let now = Date()
                    if let locks = app.store as? any SystemLockStore {
                        // Whether the lock is taken does not matter: the transaction committed.
                        _ = try await locks.acquireSystemLock(name: Self.lockName, workerID: app.workerID, until: now, now: now)
                    } else {
                        // A driver without named locks: a write transaction that matches no row.
                        try await app.store.releaseLock(instanceID: "", workerID: app.workerID, now: now)
                    }
                    result = .success(())
                } catch {
                    result = .failure(error)
                }
                self?.inFlight.withLock { $0 = nil }
                return result
            }
            current = task
            return task
        }
        switch await Self.value(of: probe, timeout: timeout) {
        case .success?:
            return .ready
        case .failure(let error)?:
            app.configuration.logger.error("Readiness: a write to the database failed: \(error)")
            return .unavailable("a write to the database failed")
        case nil:
            app.configuration.logger.warning(
                "Readiness: a write to the database did not commit within \(timeout) (is the database locked or stalled?)")
            return .unavailable("a write to the database did not commit within \(timeout)")
        }
    }

    /// The probe's result, or `nil` if it takes longer than `timeout`. The probe goes on (it
    /// cannot be interrupted inside the database); later checks wait for the same one.
    private static func value(
        of probe: Task<Result<Void, any Error>, Never>, timeout: Duration
    ) async -> Result<Void, any Error>? {
        let resumed = Mutex(false)
        return await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, any Error>?, Never>) in
            let resume = { @Sendable (value: Result<Void, any Error>?) in
                let first = resumed.withLock { done -> Bool in
                    defer { done = true }
                    return !done
                }
                if first { continuation.resume(returning: value) }
            }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                resume(nil)
            }
            Task {
                let value = await probe.value
                timer.cancel()
                resume(value)
            }
        }
    }
}
