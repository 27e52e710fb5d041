import Foundation
import Synchronization

/// Signals shared between one execution of an instance and the rest of the app: a requested
/// cancellation, a lost lock. Checked at every durable operation; wakes retry back-off sleeps.
final class ExecutionControl: Sendable {
    enum Signal: Sendable, Equatable {
        case none
        case cancelRequested
        case lockLost
        /// The app is shutting down: stop before the next step and release the instance.
        case shuttingDown
    }

    private struct State {
        var signal = Signal.none
        var claimed = false
        var lastRenewal = ContinuousClock.now
        var sleepers: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Sleepers woken before they had registered.
        var wokenEarly: Set<UInt64> = []
        var nextSleeper: UInt64 = 0
    }

    let instanceID: String
    /// The lease each renewal extends the lock by.
    let lease: Duration
    private let state = Mutex(State())

    init(instanceID: String, lease: Duration) {
        self.instanceID = instanceID
        self.lease = lease
    }

    var signal: Signal { state.withLock { $0.signal } }

    /// Whether this execution's lock is held in the database (created or claimed). Until then
    /// the lease renewer leaves it alone.
    var isClaimed: Bool { state.withLock { $0.claimed } }

    /// Marks the lock as held in the database, expiring at `lockExpiresAt` as written there.
    ///
    /// The next renewal is planned from that expiry, not from the moment this is called: a
    /// write that was slow to commit (a busy database, a starved process) has already used up
    /// part of the lease, and renewing a full third of a lease after it could come too late.
    func markClaimed(lockExpiresAt: Date?) {
        let now = ContinuousClock.now
        let leaseStart = lockExpiresAt.map { now + .seconds($0.timeIntervalSinceNow) - lease } ?? now
        state.withLock {
            $0.claimed = true
            $0.lastRenewal = min(leaseStart, now)
        }
    }

    /// When the lease must next be renewed: a third of the lease after the last renewal.
    var renewalDue: ContinuousClock.Instant { state.withLock { $0.lastRenewal } + lease / 3 }

    func markRenewed(at instant: ContinuousClock.Instant) {
        state.withLock { $0.lastRenewal = instant }
    }

    /// Marks the execution; wakes any back-off sleep so it notices at once.
    func raise(_ signal: Signal) {
        let sleepers = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            // A lost lock overrides everything; a cancellation overrides a shutdown.
            if state.signal == .none || signal == .lockLost || (signal == .cancelRequested && state.signal == .shuttingDown) {
                state.signal = signal
            }
            let sleepers = Array(state.sleepers.values)
            state.sleepers.removeAll()
            return sleepers
        }
        for sleeper in sleepers { sleeper.resume() }
    }

    /// Throws the control error for a raised signal.
    func check() throws {
        switch signal {
        case .none: return
        case .cancelRequested: throw WorkflowCancelledError(instanceID: instanceID)
        case .lockLost: throw LockLostError(instanceID: instanceID)
        case .shuttingDown: throw ShuttingDownError(instanceID: instanceID)
        }
    }

    /// Sleeps for `duration`, or until a signal is raised or the task is cancelled.
    func sleep(for duration: Duration) async {
        let id = state.withLock { state -> UInt64? in
            guard state.signal == .none else { return nil }
            state.nextSleeper += 1
            return state.nextSleeper
        }
        guard let id else { return }
        let timer = Task {
            try? await Task.sleep(for: duration)
            self.wake(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let registered = state.withLock { state -> Bool in
                    guard state.signal == .none, !Task.isCancelled,
                          state.wokenEarly.remove(id) == nil
                    else { return false }
                    state.sleepers[id] = continuation
                    return true
                }
                if !registered { continuation.resume() }
            }
        } onCancel: {
            self.wake(id)
        }
        timer.cancel()
        _ = state.withLock { $0.wokenEarly.remove(id) }
    }

    private func wake(_ id: UInt64) {
        let sleeper = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let sleeper = state.sleepers.removeValue(forKey: id) else {
                state.wokenEarly.insert(id)
                return nil
            }
            return sleeper
        }
        sleeper?.resume()
    }
}

/// This worker no longer holds the instance's lock (it expired and another worker took it, or
/// it was released). The execution stops without writing anything; the holder carries on.
struct LockLostError: Error, Sendable, CustomStringConvertible {
    let instanceID: String
    var description: String { "Lost the lock on workflow instance \(instanceID); another worker continues it" }
}

/// The app is shutting down: the execution stops before its next step and releases the
/// instance, so that another worker resumes it at once.
struct ShuttingDownError: Error, Sendable, CustomStringConvertible {
    let instanceID: String
    var description: String { "The app is shutting down; workflow instance \(instanceID) is released for another worker" }
}

/// The stored input could not be decoded to the workflow's input type on resume.
struct StoredInputError: Error, Sendable, CustomStringConvertible {
    let instanceID: String
    let underlying: any Error
    var description: String {
        "The stored input of \(instanceID) does not decode to the workflow's input type (\(underlying)). "
            + "The instance is left running; deploy code whose input type matches, then resume it."
    }
}
