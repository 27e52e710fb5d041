import Edda
import EddaTesting
import Foundation
import GRDB
import Synchronization
import Testing

/// Counts and orders events across tasks.
final class Recorder: Sendable {
    private let events = Mutex<[String]>([])

    func record(_ event: String) {
        events.withLock { $0.append(event) }
    }

    var all: [String] { events.withLock { $0 } }

    func count(_ event: String) -> Int { all.filter { $0 == event }.count }
}

/// A gate an activity can wait on until the test opens it; lets tests hold a workflow
/// mid-step to simulate a crash there.
final class Gate: Sendable {
    private struct State {
        var open = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var next: UInt64 = 0
    }
    private let state = Mutex(State())

    /// Returns when the gate opens or the calling task is cancelled.
    func wait() async {
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

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Reads rows straight from the database file, as another tool would.
func rows(_ database: TemporaryDatabase, _ sql: String, _ arguments: StatementArguments = []) throws -> [Row] {
    var configuration = Configuration()
    configuration.busyMode = .timeout(10)
    let queue = try DatabaseQueue(path: database.path, configuration: configuration)
    defer { try? queue.close() }
    return try queue.read { try Row.fetchAll($0, sql: sql, arguments: arguments) }
}

/// Polls until `condition` holds, or fails after `timeout`.
func eventually(
    _ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            throw WaitTimeoutError(message: "timed out waiting for \(what)")
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// Runs `body` with a fresh database, removing it afterwards.
func withDatabase(_ body: (TemporaryDatabase) async throws -> Void) async throws {
    let database = try TemporaryDatabase()
    defer { database.remove() }
    try await body(database)
}

/// Runs `body` with an app on `database` and shuts the app down afterwards, also when `body`
/// throws.
func withApp<T>(
    _ database: TemporaryDatabase, serviceName: String = "test",
    configure: (inout EddaApp.Configuration) -> Void = { _ in },
    _ body: (EddaApp) async throws -> T
) async throws -> T {
    try await database.withApp(serviceName: serviceName, configure: configure, body)
}

/// Starts a workflow on an app of its own, waits until it is inside its held step (`hold`
/// recorded `holds` times), and stops that app there, as a crash at that point would. The
/// instance is left `running` for another app to resume. Returns its ID.
func startAndStop<Input: Codable & Sendable, Output: Codable & Sendable>(
    _ database: TemporaryDatabase, register: (EddaApp) -> WorkflowReference<Input, Output>, input: Input,
    instanceID: String? = nil, heldBy recorder: Recorder, holds: Int = 1
) async throws -> String {
    try await withApp(database) { first in
        let id = try await first.startDetached(register(first), input: input, instanceID: instanceID)
        try await eventually("the held step") { recorder.count("hold") == holds }
        return id
    }
}
