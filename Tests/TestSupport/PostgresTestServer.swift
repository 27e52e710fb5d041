import EddaPostgres
import Foundation
import Logging
import PostgresNIO

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL 15 cluster for the tests, started once per test process on a free
/// loopback port and stopped when the process exits.
///
/// The binaries are `/usr/local/bin/initdb` and `pg_ctl`; they refuse to run as root, so as root
/// the cluster runs as the unprivileged user `edda_pg` (created if missing). Set
/// `EDDA_TEST_POSTGRES_URL` to use a server of your own instead. If no server can be started, the
/// PostgreSQL tests fail with the reason; they never skip.
public enum PostgresTestServer {
    /// The server's URL (the `postgres` database). The first call starts the cluster, on a
    /// thread of its own: starting it blocks for seconds, and blocking the concurrency pool's few
    /// threads would stall every other test meanwhile.
    public static func url() async throws -> String {
        try await onOwnThread { try started.get() }
    }

    /// A new, empty database on the server; returns its URL.
    public static func makeDatabase() async throws -> String {
        let base = try await url()
        let name = "edda_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        _ = try await withAdminConnection(base) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        guard base.hasSuffix("/postgres") else { return base }
        return String(base.dropLast("postgres".count)) + name
    }

    /// Runs SQL on a database given by URL (for tests that look at rows directly).
    public static func withConnection<T: Sendable>(
        _ url: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withAdminConnection(url, body)
    }

    /// A cluster of the caller's own (for tests that restart the server), stopped and removed by
    /// ``PrivateCluster/stop()`` or at process exit.
    public static func startPrivateCluster() async throws -> PrivateCluster {
        try await onOwnThread {
            let (url, directory, asServerUser) = try startCluster()
            return PrivateCluster(url: url, directory: directory, asServerUser: asServerUser)
        }
    }

    /// Runs blocking work (process launches) on a thread of its own.
    static func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    /// A cluster started by ``startPrivateCluster()``.
    public struct PrivateCluster: Sendable {
        /// The `postgres` database's URL.
        public let url: String
        let directory: String
        let asServerUser: Bool

        /// Restarts the server; returns once it accepts connections again.
        public func restart() async throws {
            let (directory, asServerUser) = (self.directory, self.asServerUser)
            _ = try await onOwnThread {
                try run(pgCtl, ["-D", directory + "/data", "-m", "fast", "-w", "-t", "60", "restart"], asServerUser: asServerUser)
            }
        }

        /// Stops the server and removes its files.
        public func stop() {
            _ = try? run(pgCtl, ["-D", directory + "/data", "-m", "immediate", "stop"], asServerUser: asServerUser)
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    public static let logger = Logger(label: "edda.test.postgres")
    static let pgCtl = "/usr/local/bin/pg_ctl"
    static let initdb = "/usr/local/bin/initdb"
    static let serverUser = "edda_pg"

    private static let started: Result<String, PostgresTestServerError> = {
        if let url = ProcessInfo.processInfo.environment["EDDA_TEST_POSTGRES_URL"], !url.isEmpty { return .success(url) }
        do {
            return .success(try startCluster().url)
        } catch let error as PostgresTestServerError {
            return .failure(error)
        } catch {
            return .failure(PostgresTestServerError("\(error)"))
        }
    }()

    private static func startCluster() throws -> (url: String, directory: String, asServerUser: Bool) {
        for binary in [initdb, pgCtl] where !FileManager.default.isExecutableFile(atPath: binary) {
            throw PostgresTestServerError("PostgreSQL 15 is not installed: \(binary) is missing")
        }
        let asServerUser = getuid() == 0
        stopClustersOfDeadRuns(asServerUser: asServerUser)
        if asServerUser, (try? run("/usr/bin/id", ["-u", serverUser])) == nil {
            try run("/usr/sbin/useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", serverUser])
        }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("edda-pg-\(getpid())-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if asServerUser { try run("/usr/bin/chown", [serverUser, directory]) }
        try run(initdb, ["-D", directory + "/data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"], asServerUser: asServerUser)
        let port = try freePort()
        let options = "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c max_connections=1000 -c fsync=on"
        do {
            try run(pgCtl, ["-D", directory + "/data", "-l", directory + "/server.log", "-o", options, "-w", "-t", "60", "start"],
                    asServerUser: asServerUser)
        } catch {
            let log = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
            throw PostgresTestServerError("PostgreSQL did not start: \(error)\n\(log)")
        }
        stopAtExit.withLock { $0.append(directory) }
        stopAtExitAsServerUser = asServerUser
        registerExitHandler
        return ("postgresql://postgres@127.0.0.1:\(port)/postgres", directory, asServerUser)
    }

    /// Stops every cluster this process started when it exits.
    private static let registerExitHandler: Void = {
        atexit {
            let prefix = stopAtExitAsServerUser ? "runuser -u \(PostgresTestServer.serverUser) -- " : ""
            for directory in stopAtExit.withLock({ $0 }) where FileManager.default.fileExists(atPath: directory) {
                _ = system("\(prefix)\(PostgresTestServer.pgCtl) -D \(directory)/data -m immediate stop >/dev/null 2>&1; rm -rf \(directory)")
            }
        }
    }()

    /// Stops and removes clusters left by test processes that were killed before they could.
    static func stopClustersOfDeadRuns(asServerUser: Bool) {
        let temporary = FileManager.default.temporaryDirectory
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? [] where name.hasPrefix("edda-pg-") {
            let parts = name.split(separator: "-")
            guard parts.count >= 3, let pid = Int32(parts[2]), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let directory = temporary.appendingPathComponent(name).path
            _ = try? run(pgCtl, ["-D", directory + "/data", "-m", "immediate", "stop"], asServerUser: asServerUser)
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Runs a command (as the server user when asked) to completion; returns its output.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], asServerUser: Bool = false) throws -> String {
        let argv = asServerUser ? ["/usr/sbin/runuser", "-u", serverUser, "--", executable] + arguments : [executable] + arguments
        return try runCommand(argv)
    }

    static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw PostgresTestServerError("no socket for a free port") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) }
        }
        guard bound == 0 else { throw PostgresTestServerError("could not bind a free port") }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func withAdminConnection<T: Sendable>(
        _ url: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        guard let components = URLComponents(string: url), let host = components.host, let port = components.port else {
            throw PostgresTestServerError("bad test server URL \(url)")
        }
        let configuration = PostgresConnection.Configuration(
            host: host, port: port, username: components.user ?? "postgres", password: nil,
            database: String(components.path.dropFirst()), tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }
}

private let stopAtExit = NSLockedValue<[String]>([])
nonisolated(unsafe) private var stopAtExitAsServerUser = false

/// The test server could not be started or used.
public struct PostgresTestServerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// A value behind a lock.
final class NSLockedValue<Value: Sendable>: @unchecked Sendable {
    // Safe: every access goes through `lock`.
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
