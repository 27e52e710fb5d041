import Synchronization

/// Counts and orders events across tasks.
public final class Recorder: Sendable {
    private let events = Mutex<[String]>([])

    /// Creates an empty recorder.
    public init() {}

    /// Appends `event`.
    public func record(_ event: String) {
        events.withLock { $0.append(event) }
    }

    /// Every event, in the order recorded.
    public var all: [String] { events.withLock { $0 } }

    /// How many times `event` was recorded.
    public func count(_ event: String) -> Int { all.filter { $0 == event }.count }
}

/// A gate an activity can wait on until the test opens it; lets tests hold a workflow
/// mid-step to simulate a crash there.
public final class Gate: Sendable {
    private struct State {
        var open = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var next: UInt64 = 0
    }
    private let state = Mutex(State())

    /// Creates a closed gate.
    public init() {}

    /// Returns when the gate opens or the calling task is cancelled.
    public func wait() async {
        let id = state.withLock { state -> UInt64 in
            state.next += 1
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.open || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }

    /// Opens the gate: every waiter goes on, and later waits return at once.
    public func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Polls until `condition` holds, or fails after `timeout`.
///
/// The test waits for the condition, not for a time: the bound only turns a hang into a clear
/// failure before the suite's time limit. It is generous because the first seconds of a full run
/// on a loaded 2-core machine are a storm (every suite starting at once, PostgreSQL and Chromium
/// starting, Python Edda installing): a step that takes milliseconds alone took over 20 s there.
public func eventually(
    _ what: String, timeout: Duration = .seconds(75), _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            throw WaitTimeoutError(message: "timed out waiting for \(what)")
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}
