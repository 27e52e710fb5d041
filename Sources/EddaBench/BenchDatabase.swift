import Edda
import EddaSQLite
import EddaMySQL
import EddaPostgres
import Foundation
import PostgresNIO

/// The benchmark's database: an SQLite file recreated first, or a PostgreSQL or MySQL database
/// dropped and recreated first (only if its name starts with `edda_bench`, so nothing else can be
/// dropped).
struct BenchDatabase {
    let store: any WorkflowStore
    let sqlitePath: String?
    /// The server database's URL (PostgreSQL or MySQL).
    let serverURL: String?
    /// `sqlite`, `postgresql` or `mysql`.
    let kind: String
    var isServer: Bool { serverURL != nil }

    static func open(_ url: String, durability: String) async throws -> BenchDatabase {
        if DatabaseURL.isSQLite(url) {
            let path = try DatabaseURL.sqlitePath(of: url)
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            let store = try SQLiteStore(path: path, durability: durability == "normal" ? .normal : .full)
            return BenchDatabase(store: store, sqlitePath: path, serverURL: nil, kind: "sqlite")
        }
        let scheme = DatabaseURL.scheme(of: url) ?? ""
        guard PostgresStore.urlSchemes.contains(scheme) || MySQLStore.urlSchemes.contains(scheme),
              let components = URLComponents(string: url), components.host != nil
        else {
            throw BenchError(
                "--db must be sqlite:////absolute/path.db, sqlite:///relative.db, postgresql://user@host:port/edda_bench… "
                    + "or mysql://user:password@host:port/edda_bench…")
        }
        _ = try benchDatabaseName(components)
        if MySQLStore.urlSchemes.contains(scheme) {
            try await MySQLAdministration.recreateDatabase(url: url)
            return BenchDatabase(store: try MySQLStore(url: url), sqlitePath: nil, serverURL: url, kind: "mysql")
        }
        try await PostgresAdministration.recreate(url: url)
        return BenchDatabase(store: try PostgresStore(url: url), sqlitePath: nil, serverURL: url, kind: "postgresql")
    }

    /// The database name of a server URL, which must start with `edda_bench` (the benchmark drops
    /// and recreates it) and be a plain name.
    static func benchDatabaseName(_ url: URLComponents) throws -> String {
        let name = String(url.path.dropFirst())
        guard name.hasPrefix("edda_bench"), name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw BenchError("The database name must start with edda_bench (it is dropped and recreated); got '\(name)'.")
        }
        return name
    }

    /// The raw commit floor of this database, in commits per second (see ``CommitFloor``).
    func commitFloor(count: Int, durability: String, spacing: Duration) async throws -> Double {
        if let sqlitePath { return try CommitFloor.sqlite(beside: sqlitePath, durability: durability, count: count, spacing: spacing) }
        if kind == "mysql" {
            guard spacing == .zero else { throw BenchError("--floor-spacing-us is not supported on MySQL") }
            return try await MySQLAdministration.commitFloor(url: serverURL ?? "", count: count)
        }
        return try await CommitFloor.postgres(try PostgresURL.configuration(from: serverURL ?? ""), count: count, spacing: spacing)
    }

    /// The raw step-commit floor (see ``CommitFloor/sqliteStep(beside:durability:count:spacing:)``), in
    /// commits per second; `nil` on a server database.
    func stepCommitFloor(count: Int, durability: String, spacing: Duration) throws -> Double? {
        try sqlitePath.map { try CommitFloor.sqliteStep(beside: $0, durability: durability, count: count, spacing: spacing) }
    }

    /// The raw commits of a three-activity workflow (see
    /// ``CommitFloor/sqliteWorkflow(beside:durability:count:spacing:)`` and
    /// ``CommitFloor/postgresWorkflow(url:count:spacing:)``), in commits per second; `nil` on MySQL.
    func workflowCommitFloor(count: Int, durability: String, spacing: Duration) async throws -> Double? {
        if let sqlitePath {
            return try CommitFloor.sqliteWorkflow(beside: sqlitePath, durability: durability, count: count, spacing: spacing)
        }
        if kind == "postgresql", let serverURL {
            return try await CommitFloor.postgresWorkflow(url: serverURL, count: count, spacing: spacing)
        }
        return nil
    }

    /// `(store operations, commits)` so far, from the SQLite store's counters; `nil` on
    /// PostgreSQL, whose statistics views are updated too lazily to count per workflow.
    func statistics() async -> (transactions: Int, commits: Int)? {
        (store as? SQLiteStore)?.writeStatistics
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A second `edda-bench` process that delivers events: one instance ID per line on its standard
/// input, one `sent` line back on its standard output.
final class SenderProcess {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()

    init(db: String) throws {
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["sender", "--db", db]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        try readLine()  // "ready"
    }

    func send(to instanceID: String) throws {
        input.fileHandleForWriting.write(Data((instanceID + "\n").utf8))
        try readLine()
    }

    private func readLine() throws {
        var line = Data()
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            guard !byte.isEmpty else { throw BenchError("the sender process ended") }
            if byte == Data("\n".utf8) { return }
            line.append(byte)
        }
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

extension EddaBench {
    /// The sender side of `event_latency` from another process.
    func runSender() async throws {
        var configuration = EddaApp.Configuration(
            serviceName: "bench-sender", database: try .url(db, drivers: [PostgresStore.self, MySQLStore.self]))
        configuration.runsBackgroundRecovery = false
        let app = try await EddaApp(configuration: configuration)
        FileHandle.standardOutput.write(Data("ready\n".utf8))
        while let id = Swift.readLine() {
            try await app.sendEvent(CloudEventAttributes(type: "latency.go", source: "/bench"), data: ["n": 1], to: id)
            FileHandle.standardOutput.write(Data("sent\n".utf8))
        }
        await app.shutdown()
    }
}

/// Creates and drops the benchmark's PostgreSQL databases, through the server's `postgres`
/// database. Only names that start with `edda_bench` are ever dropped
/// (``BenchDatabase/benchDatabaseName(_:)``).
enum PostgresAdministration {
    /// Drops (if it exists) and creates the database of `url`.
    static func recreate(url: String) async throws {
        try await administer(url) { connection, name, logger in
            try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: logger)
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
    }

    /// Drops the database of `url`, if it exists.
    static func drop(url: String) async throws {
        try await administer(url) { connection, name, logger in
            try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: logger)
        }
    }

    /// Runs `body` on a connection to the `postgres` database of `url`'s server, with the name
    /// of `url`'s database.
    private static func administer(
        _ url: String, _ body: (PostgresConnection, String, Logger) async throws -> Void
    ) async throws {
        guard let components = URLComponents(string: url), let host = components.host else {
            throw BenchError("not a PostgreSQL URL: \(url)")
        }
        let name = try BenchDatabase.benchDatabaseName(components)
        let logger = Logger(label: "edda-bench")
        let admin = PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: components.user ?? "postgres",
            password: components.password, database: "postgres", tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: admin, id: 1, logger: logger)
        do {
            try await body(connection, name, logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}
