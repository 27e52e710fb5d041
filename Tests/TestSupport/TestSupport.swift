// Helpers shared by the test targets.
#if canImport(Glibc)
import Glibc
#endif
import Edda
import EddaSQLite
@_exported import EddaTesting
import Foundation
import GRDB
import Synchronization

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
