import Edda
import Foundation
import Synchronization

/// A workflow clock that moves only when the test says so.
///
/// Give it to an app's ``Edda/EddaApp/Configuration/clock`` and durable timers and receive
/// timeouts follow it: advancing it past a deadline fires the timer at once, so a workflow that
/// sleeps for a month completes in milliseconds.
///
/// ```swift
/// let clock = ManualClock()
/// let app = try await database.makeApp { $0.clock = clock }
/// let id = try await app.startDetached(Reminder.self, input: .init(after: .seconds(30 * 86_400)))
/// _ = try await app.waitForStatus(id, in: [.waitingForTimer])
/// clock.advance(by: .seconds(30 * 86_400))
/// _ = try await app.waitForStatus(id, in: [.completed])
/// ```
public final class ManualClock: WorkflowClock, Sendable {
    private struct Sleeper {
        let deadline: Date
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Date
        var sleepers: [UInt64: Sleeper] = [:]
        var nextID: UInt64 = 0
        /// Sleepers cancelled before they registered.
        var cancelledEarly: Set<UInt64> = []
    }

    private let state: Mutex<State>

    /// A clock that reads `start` until advanced. The default is the current real time rounded
    /// down to a whole second, so that instants a test reaches by whole-second steps are the
    /// same on every store, including those whose timestamps hold whole seconds (MySQL).
    public init(start: Date = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))) {
        state = Mutex(State(now: start))
    }

    public func now() -> Date {
        state.withLock { $0.now }
    }

    /// Moves the clock forward by `duration`, waking every sleeper whose deadline has come.
    public func advance(by duration: Duration) {
        advance(to: now().addingTimeInterval(duration.seconds))
    }

    /// Moves the clock to `date` (never backwards), waking every sleeper whose deadline has come.
    public func advance(to date: Date) {
        let due = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            if date > state.now { state.now = date }
            let now = state.now
            let ids = state.sleepers.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { state.sleepers.removeValue(forKey: $0)?.continuation }
        }
        for continuation in due { continuation.resume() }
    }

    public func sleep(until deadline: Date) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = state.withLock { state -> Result<Void, any Error>? in
                    if state.cancelledEarly.remove(id) != nil { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let sleeper = state.sleepers.removeValue(forKey: id) else {
                    state.cancelledEarly.insert(id)
                    return nil
                }
                return sleeper
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
        _ = state.withLock { $0.cancelledEarly.remove(id) }
    }
}
