// Helpers shared by the test targets.
#if canImport(Glibc)
import Glibc
#endif
import Edda
import EddaSQLite
import EddaTesting
import Foundation
import GRDB
import Synchronization

/// Counts and orders events across tasks.
public final class Recorder: Sendable {
    private let events = Mutex<[String]>([])

    public init() {}

    public func record(_ event: String) {
        events.withLock { $0.append(event) }
    }

    public var all: [String] { events.withLock { $0 } }

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

    public func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Reads rows straight from the database file, as another tool would.
public func rows(_ database: TemporaryDatabase, _ sql: String, _ arguments: StatementArguments = []) throws -> [Row] {
    try rows(database.path, sql, arguments)
}

/// A connection of the test's own to the SQLite file at `path`, for reading or writing behind
/// an app's back. It waits up to 10 s for a lock another connection holds (an app's lease
/// renewals, a worker process) instead of failing with `SQLITE_BUSY` at once.
public func openDatabase(_ path: String) throws -> DatabaseQueue {
    var configuration = Configuration()
    configuration.busyMode = .timeout(10)
    return try DatabaseQueue(path: path, configuration: configuration)
}

/// Reads rows straight from the SQLite file at `path`.
public func rows(_ path: String, _ sql: String, _ arguments: StatementArguments = []) throws -> [Row] {
    let queue = try openDatabase(path)
    defer { try? queue.close() }
    return try queue.read { try Row.fetchAll($0, sql: sql, arguments: arguments) }
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


/// Runs a command to completion, its output (standard output and error) going to a temporary
/// file that is returned; throws with that output when the command fails.
/// (`posix_spawn` and `waitpid` directly: a daemon such as `postgres` that `pg_ctl start` leaves
/// behind must not hold a pipe of ours, and Foundation's `Process` can miss the exit of a child
/// whose output it does not read.)
@discardableResult
public func runCommand(_ argv: [String]) throws -> String {
    let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("edda-cmd-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: outputPath) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var cArguments = argv.map { strdup($0) } + [nil]
    defer { for pointer in cArguments { free(pointer) } }
    var pid = pid_t()
    let spawned = posix_spawn(&pid, argv[0], &actions, nil, &cArguments, environ)
    guard spawned == 0 else { throw TestFailure("could not start \(argv[0]): error \(spawned)") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1, errno == EINTR {}
    let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    guard exitCode == 0 else {
        throw TestFailure("\(argv.joined(separator: " ")) failed (\(exitCode)): \(text)")
    }
    return text
}

/// Runs a blocking closure (a child process, a browser session, a synchronous database wait) on
/// a thread of its own and awaits its result, so that it never holds one of the cooperative
/// pool's threads, which every other test running at the same time needs.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.name = "blocking test work"
        thread.start()
    }
}
