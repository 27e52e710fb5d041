#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A throwaway MariaDB server for the tests of the MySQL store, started once per test process on a
/// free loopback port and stopped when the process exits.
///
/// The server is Debian's `mariadbd` (10.11), with a folder of its own under the temporary directory
/// (`edda-my-<pid>-<random>`: the data directory `data`, initialised by `mariadb-install-db`, the
/// unix socket, the pid file and the server's log `server.log`). If MariaDB is not installed,
/// `scripts/install-mariadb.sh` installs it first. As root the server runs as the unprivileged user
/// `edda_my` (created if missing). The tests connect over TCP as `edda`, password `edda`, who may do
/// anything. Set `EDDA_TEST_MYSQL_URL` (`mysql://user:password@host:port/`) to use a server of your
/// own instead. If no server can be started, the MySQL tests fail with the reason; they never skip.
public enum MariaDBTestServer {
    /// The server's URL, `mysql://edda:edda@127.0.0.1:<port>/` (no database). The first call starts
    /// the server, on a thread of its own: starting it blocks for seconds, and blocking the
    /// concurrency pool's few threads would stall every other test meanwhile.
    public static func url() async throws -> String {
        try await onOwnThread { try started.get() }
    }

    /// A new, empty database (`edda_test_<16 hex digits>`, `utf8mb4` with the binary collation
    /// `utf8mb4_bin`) on the server; returns its URL.
    public static func makeDatabase() async throws -> String {
        let base = try await url()
        let name = "edda_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        _ = try await execute(base, "CREATE DATABASE \(name) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        guard var components = URLComponents(string: base) else { throw MariaDBTestServerError("bad test server URL \(base)") }
        components.path = "/" + name
        guard let url = components.string else { throw MariaDBTestServerError("bad test server URL \(base)") }
        return url
    }

    /// Runs SQL (one or more statements) on the database a URL names, with the `mariadb` command-line
    /// client over TCP, and returns what it prints (for tests that look at rows directly).
    ///
    /// The output is the client's `--batch --skip-column-names` format: a line per row, columns
    /// separated by tabs, `NULL` for null, and tabs, newlines and backslashes within values written
    /// as `\t`, `\n` and `\\`. An SQL error throws, with the client's message.
    public static func execute(_ url: String, _ sql: String) async throws -> String {
        try await onOwnThread {
            try capture(clientArguments(url) + ["-e", sql])
        }
    }

    static let serverUser = "edda_my"
    /// How long the server may take to answer after it was started.
    static let startupTimeout: TimeInterval = 120

    private static let started: Result<String, MariaDBTestServerError> = {
        if let url = ProcessInfo.processInfo.environment["EDDA_TEST_MYSQL_URL"], !url.isEmpty { return .success(url) }
        do {
            return .success(try startServer())
        } catch let error as MariaDBTestServerError {
            return .failure(error)
        } catch {
            return .failure(MariaDBTestServerError("\(error)"))
        }
    }()

    /// The MariaDB programs the tests run.
    private struct Programs: Sendable {
        let server: String
        let installDB: String
        let client: String
        let admin: String
    }

    /// Where the MariaDB programs are, installing Debian's package with the project's script if one
    /// is missing.
    private static let programs: Result<Programs, MariaDBTestServerError> = {
        func lookUp() -> Programs? {
            let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
            let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
            func find(_ name: String) -> String? {
                directories.lazy.map { $0 + "/" + name }.first(where: FileManager.default.isExecutableFile(atPath:))
            }
            guard let server = find("mariadbd"), let installDB = find("mariadb-install-db"), let client = find("mariadb"),
                  let admin = find("mariadb-admin") else { return nil }
            return Programs(server: server, installDB: installDB, client: client, admin: admin)
        }
        if let found = lookUp() { return .success(found) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/install-mariadb.sh").path
        do {
            try runCommand(["/bin/bash", script])
        } catch {
            return .failure(MariaDBTestServerError(
                "MariaDB is not installed (mariadbd, mariadb-install-db, mariadb or mariadb-admin is missing) and "
                    + "scripts/install-mariadb.sh could not install it: \(error)"))
        }
        guard let found = lookUp() else {
            return .failure(MariaDBTestServerError(
                "scripts/install-mariadb.sh ran, but mariadbd, mariadb-install-db, mariadb or mariadb-admin is still missing"))
        }
        return .success(found)
    }()

    private static func startServer() throws -> String {
        let programs = try Self.programs.get()
        stopServersOfDeadRuns()
        var owner: (uid: uid_t, gid: gid_t)?
        if getuid() == 0 { owner = try serverUserIDs() }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("edda-my-\(getpid())-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            return try startServer(in: directory, programs: programs, owner: owner)
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Initialises a data directory in `directory` and starts a server on it; returns its URL once the
    /// user `edda` exists. Stops the server again if that fails.
    private static func startServer(in directory: String, programs: Programs, owner: (uid: uid_t, gid: gid_t)?) throws -> String {
        var asServerUser: [String] = []
        if let owner {
            // mariadbd refuses to run as root; `--user` makes it (and mariadb-install-db's bootstrap
            // server) switch to the unprivileged user, who must be able to write the socket and pid file.
            guard chown(directory, owner.uid, owner.gid) == 0 else {
                throw MariaDBTestServerError("could not give \(directory) to \(serverUser): errno \(errno)")
            }
            asServerUser = ["--user=\(serverUser)"]
        }
        let dataDirectory = directory + "/data", socket = directory + "/mariadbd.sock", log = directory + "/server.log"
        do {
            try capture([
                programs.installDB, "--no-defaults", "--datadir=\(dataDirectory)", "--auth-root-authentication-method=normal",
                "--skip-test-db", "--skip-name-resolve",
            ] + asServerUser)
        } catch {
            throw MariaDBTestServerError("mariadb-install-db could not initialise \(dataDirectory): \(error)")
        }
        var attempt = 0
        while true {
            attempt += 1
            let port = try PostgresTestServer.freePort()
            let pid = try spawn([programs.server, "--no-defaults"] + asServerUser + [
                "--datadir=\(dataDirectory)", "--socket=\(socket)", "--pid-file=\(directory)/mariadbd.pid",
                "--port=\(port)", "--bind-address=127.0.0.1", "--skip-name-resolve", "--skip-log-bin",
                "--innodb-flush-log-at-trx-commit=1", "--innodb-buffer-pool-size=128M", "--max-connections=400",
                "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
            ], output: log, ownProcessGroup: true)
            let server = RunningServer(pid: pid, directory: directory)
            runningServers.withLock { $0.append(server) }
            _ = registerExitHandler
            switch waitUntilReady(pid: pid, socket: socket, admin: programs.admin) {
            case .ready:
                do {
                    try capture([
                        programs.client, "--no-defaults", "--protocol=SOCKET", "--socket=\(socket)", "--user=root", "--batch",
                        "-e", createUserSQL,
                    ])
                } catch {
                    stop(server)
                    throw MariaDBTestServerError("could not create the user edda on the test server: \(error)")
                }
                return "mysql://edda:edda@127.0.0.1:\(port)/"
            case .exited(let status):
                runningServers.withLock { $0.removeAll { $0.pid == pid } }
                let text = contents(of: log)
                // Another process took the free port between `freePort()` and the server's bind: try another.
                if text.contains("Bind on TCP/IP port"), attempt < 5 { continue }
                throw MariaDBTestServerError("mariadbd exited while starting (\(status)); its log:\n\(text)")
            case .timedOut:
                let text = contents(of: log)
                stop(server)
                throw MariaDBTestServerError("mariadbd did not answer within \(Int(startupTimeout)) s; its log:\n\(text)")
            }
        }
    }

    /// The test user: `edda`, password `edda`, with every privilege, from anywhere (`127.0.0.1`
    /// spelled out, and `localhost` for the socket).
    private static let createUserSQL = ["%", "127.0.0.1", "localhost"].map { host in
        "CREATE USER 'edda'@'\(host)' IDENTIFIED BY 'edda'; GRANT ALL PRIVILEGES ON *.* TO 'edda'@'\(host)' WITH GRANT OPTION;"
    }.joined(separator: " ")

    private enum Startup { case ready, exited(String), timedOut }

    /// Waits until the server answers a ping on its socket, it exits, or ``startupTimeout`` passes.
    private static func waitUntilReady(pid: pid_t, socket: String, admin: String) -> Startup {
        let deadline = Date().addingTimeInterval(startupTimeout)
        while Date() < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { return .exited(describe(status)) }
            if FileManager.default.fileExists(atPath: socket),
               (try? capture([admin, "--no-defaults", "--protocol=SOCKET", "--socket=\(socket)", "--user=root",
                              "--connect-timeout=10", "ping"])) != nil {
                return .ready
            }
            usleep(100_000)
        }
        return .timedOut
    }

    /// The user and group ids of ``serverUser``, creating the user if missing.
    private static func serverUserIDs() throws -> (uid: uid_t, gid: gid_t) {
        if getpwnam(serverUser) == nil {
            do {
                try runCommand(["/usr/sbin/useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", serverUser])
            } catch {
                // Another test process may have created it meanwhile.
                guard getpwnam(serverUser) != nil else {
                    throw MariaDBTestServerError("could not create the user \(serverUser) to run mariadbd as: \(error)")
                }
            }
        }
        guard let entry = getpwnam(serverUser) else { throw MariaDBTestServerError("the user \(serverUser) is missing") }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    /// The `mariadb` client's arguments to connect to the database a URL names.
    private static func clientArguments(_ url: String) throws -> [String] {
        guard let components = URLComponents(string: url), let host = components.host else {
            throw MariaDBTestServerError("bad test server URL \(url)")
        }
        var arguments = [
            try programs.get().client, "--no-defaults", "--protocol=TCP", "--host=\(host)", "--port=\(components.port ?? 3306)",
            "--user=\(components.user ?? "root")", "--default-character-set=utf8mb4", "--connect-timeout=60",
            "--batch", "--skip-column-names",
        ]
        if let password = components.password, !password.isEmpty { arguments.append("--password=\(password)") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        if !database.isEmpty { arguments.append("--database=\(database)") }
        return arguments
    }

    /// Stops a server this process started and removes its folder.
    private static func stop(_ server: RunningServer) {
        runningServers.withLock { $0.removeAll { $0.pid == server.pid } }
        kill(server.pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(server.pid, &status, 0) == -1, errno == EINTR {}
        try? FileManager.default.removeItem(atPath: server.directory)
    }

    /// Stops every server this process started when it exits. (Killed outright: their data is thrown
    /// away, so a clean shutdown would only make the tests slower to finish.)
    private static let registerExitHandler: Void = {
        atexit {
            for server in runningServers.withLock({ $0 }) {
                kill(server.pid, SIGKILL)
                var status: Int32 = 0
                while waitpid(server.pid, &status, 0) == -1, errno == EINTR {}
                try? FileManager.default.removeItem(atPath: server.directory)
            }
        }
    }()

    /// Stops the servers of test processes that were killed before they could, and removes their folders.
    static func stopServersOfDeadRuns() {
        let temporary = FileManager.default.temporaryDirectory
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? [] where name.hasPrefix("edda-my-") {
            let parts = name.split(separator: "-")
            guard parts.count >= 3, let pid = Int32(parts[2]), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let directory = temporary.appendingPathComponent(name).path
            // The pid in the pid file is that folder's server only if its command line names the folder
            // (pids are reused).
            if let serverPID = Int32(contents(of: directory + "/mariadbd.pid").trimmingCharacters(in: .whitespacesAndNewlines)),
               serverPID > 0, contents(of: "/proc/\(serverPID)/cmdline").contains(directory) {
                kill(serverPID, SIGKILL)
            }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Runs a command to completion; returns its standard output, or throws with its standard error
    /// and output when it fails.
    @discardableResult
    private static func capture(_ argv: [String]) throws -> String {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("edda-cmd-\(UUID().uuidString)").path
        let outputPath = base + ".out", errorPath = base + ".err"
        defer {
            try? FileManager.default.removeItem(atPath: outputPath)
            try? FileManager.default.removeItem(atPath: errorPath)
        }
        let pid = try spawn(argv, output: outputPath, errors: errorPath)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1, errno == EINTR {}
        let output = contents(of: outputPath)
        guard status == 0 else {
            let command = argv.map { $0.hasPrefix("--password=") ? "--password=…" : $0 }.joined(separator: " ")
            throw MariaDBTestServerError("\(command) failed (\(describe(status))): \(contents(of: errorPath))\(output)")
        }
        return output
    }

    /// Starts a command with standard input from `/dev/null` and its output going to files (standard
    /// error to `output` too unless `errors` is given); returns its pid. The child keeps none of this
    /// process's other file descriptors: a server living as long as the tests must not hold a pipe
    /// or socket of theirs open. With `ownProcessGroup` it does not get the terminal's Control-C.
    private static func spawn(_ argv: [String], output: String, errors: String? = nil, ownProcessGroup: Bool = false) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if let errors {
            posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        closeInheritedDescriptors(from: 3, in: &actions)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        if ownProcessGroup {
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, argv[0], &actions, &attributes, &cArguments, environ)
        guard spawned == 0 else { throw MariaDBTestServerError("could not start \(argv[0]): error \(spawned)") }
        return pid
    }

    /// A `waitpid` status in words.
    private static func describe(_ status: Int32) -> String {
        (status & 0x7f) == 0 ? "exit status \((status >> 8) & 0xff)" : "signal \(status & 0x7f)"
    }

    /// A file's text; empty if it cannot be read.
    private static func contents(of path: String) -> String {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}

/// A server this process started, to stop at exit.
private struct RunningServer: Sendable {
    let pid: pid_t
    let directory: String
}

private let runningServers = NSLockedValue<[RunningServer]>([])

/// The MariaDB test server could not be started or used.
public struct MariaDBTestServerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
