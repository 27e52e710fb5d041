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
@discardableResult
public func runCommand(_ argv: [String]) throws -> String {
    let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("edda-cmd-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: outputPath) }
    let exit = try spawnAndWait(argv, standardOutput: outputPath, standardError: nil)
    let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    guard exit.code == 0 else {
        throw TestFailure("\(argv.joined(separator: " ")) failed (\(exit.code)): \(text)")
    }
    return text
}

/// How a child process ended: its exit code (128 + the signal for a killed one), and whether it
/// ran past its timeout and was killed.
public struct ChildExit: Sendable {
    public var code: Int32
    public var timedOut: Bool
}

/// Runs `argv` (an absolute path first) to its end with `posix_spawn` and `waitpid`, its
/// standard input from `/dev/null`, its output into the files at `standardOutput` and
/// `standardError` (`nil`: with the standard output). Killed with SIGKILL after `timeout`.
///
/// Not Foundation's `Process`: on a loaded Linux machine it can miss the exit of a child that
/// ends at once (the child stays a zombie and `waitUntilExit` never returns, seen with a
/// `python3 -c` check), and a daemon that a command leaves behind (`pg_ctl start`) must not
/// hold a pipe or socket of ours (see ``closeInheritedDescriptors(from:in:)``).
public func spawnAndWait(
    _ argv: [String], environment: [String: String]? = nil, directory: String? = nil,
    standardOutput: String, standardError: String?, timeout: Duration? = nil
) throws -> ChildExit {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, standardOutput, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if let standardError {
        posix_spawn_file_actions_addopen(&actions, 2, standardError, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    } else {
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
    }
    closeInheritedDescriptors(from: 3, in: &actions)
    // In `directory` by way of the shell (glibc's chdir file action is not visible to Swift).
    let argv = directory.map { ["/bin/sh", "-c", #"cd -- "$0" && exec "$@""#, $0] + argv } ?? argv
    var cArguments = argv.map { strdup($0) } + [nil]
    defer { for pointer in cArguments { free(pointer) } }
    let variables = environment.map { ProcessInfo.processInfo.environment.merging($0) { _, new in new } }
    var cEnvironment = variables.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
    defer { for pointer in cEnvironment ?? [] { free(pointer) } }
    var pid = pid_t()
    let spawned: Int32
    if cEnvironment != nil {
        spawned = posix_spawn(&pid, argv[0], &actions, nil, &cArguments, &cEnvironment!)
    } else {
        spawned = posix_spawn(&pid, argv[0], &actions, nil, &cArguments, environ)
    }
    guard spawned == 0 else { throw TestFailure("could not start \(argv[0]): error \(spawned)") }
    var status: Int32 = 0
    var timedOut = false
    if let timeout {
        let deadline = ContinuousClock.now + timeout
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped == -1, errno != EINTR { break }
            if ContinuousClock.now >= deadline {
                timedOut = true
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) == -1, errno == EINTR {}
                break
            }
            usleep(20_000)
        }
    } else {
        while waitpid(pid, &status, 0) == -1, errno == EINTR {}
    }
    let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return ChildExit(code: code, timedOut: timedOut)
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
