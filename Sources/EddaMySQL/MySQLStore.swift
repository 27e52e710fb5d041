import Edda
import Foundation
import Logging

/// The MySQL and MariaDB store: the shared schema in a MySQL 8 or MariaDB 10.6+ database, for
/// several processes or hosts sharing the work — and with Python Edda workers on the same
/// database (`mysql+aiomysql://…` there, the same URL here).
///
/// Every store operation is one transaction on a pooled connection (each connection has a
/// thread of its own, since MariaDB Connector/C blocks). Claims are compare-and-set updates, and
/// `FOR UPDATE SKIP LOCKED` where workers compete for rows, so each instance runs on one worker
/// at a time.
///
/// MySQL has no `LISTEN`/`NOTIFY`. Work this process makes claimable reaches its own engine at
/// once, as on every store; work another process makes claimable is found by a light poll
/// (``wakeUpPoll``: every 20 ms while things change, slowing to every 250 ms when nothing does).
///
/// The shared schema's `TIMESTAMP` columns hold whole seconds. Expiries (leases, timers, receive
/// timeouts) are stored rounded up to the next second, so none ends early: a timer fires up to a
/// second after its instant, and a lease lasts up to a second longer than asked. `TIMESTAMP`
/// ends in January 2038: a wait whose end lies beyond fails with the server's error.
///
/// ```swift
/// let app = try await EddaApp(configuration: .init(
///     serviceName: "orders", database: try .mysql(url: "mysql://edda:secret@db.local:3306/orders")))
/// ```
public final class MySQLStore: WorkflowStore, ChannelStore, OutboxStore, SystemLockStore, WakeUpSource {
    let pool: MySQLPool
    let logger: Logger
    /// How often another process's work is looked for: `lowerBound` while things change,
    /// backing off to `upperBound` while nothing does.
    public let wakeUpPoll: ClosedRange<Duration>
    let poller: MySQLWakeUpPoller

    /// How long a migration may wait for another worker's (`GET_LOCK`), in seconds.
    static let migrationLockTimeout = 180

    /// Connects lazily with `configuration` (the first operation opens the first connection).
    ///
    /// - Throws: ``Edda/EddaUsageError`` (`.invalidConfiguration`) if MariaDB Connector/C is not
    ///   installed, with how to install it.
    public init(
        configuration: MySQLConfiguration, wakeUpPoll: ClosedRange<Duration> = .milliseconds(20) ... .milliseconds(250),
        logger: Logger = Logger(label: "edda.mysql")
    ) throws {
        _ = try MariaDBClient.get()
        pool = MySQLPool(configuration: configuration, acquireTimeout: configuration.readTimeout)
        self.logger = logger
        self.wakeUpPoll = wakeUpPoll
        poller = MySQLWakeUpPoller(interval: wakeUpPoll, logger: logger)
    }

    /// Connects to `mysql://user[:password]@host[:port]/database` (see
    /// ``MySQLConfiguration/init(url:)``).
    public convenience init(url: String, logger: Logger = Logger(label: "edda.mysql")) throws {
        try self.init(configuration: try MySQLConfiguration(url: url), logger: logger)
    }

    /// Runs `body` on a pooled connection, outside a transaction (one statement commits by
    /// itself).
    @discardableResult
    func read<T: Sendable>(_ body: @escaping @Sendable (MySQLConnection) throws -> T) async throws -> T {
        try await pool.withConnection(body)
    }

    /// Runs `body` in one transaction.
    @discardableResult
    func transaction<T: Sendable>(_ body: @escaping @Sendable (MySQLConnection) throws -> T) async throws -> T {
        try await pool.withConnection { connection in try connection.transaction { try body(connection) } }
    }

    public func close() async throws {
        await poller.stop()
        await pool.close()
    }

    public func wakeUps() -> AsyncStream<StoreWakeUp> {
        poller.start(store: self)
    }

    // MARK: - Migrations

    public func hasCurrentSchema() async throws -> Bool {
        try await read { connection in
            let tables = try connection.query(
                """
                SELECT COUNT(*) AS n FROM information_schema.tables
                WHERE table_schema = DATABASE() AND table_name IN ('schema_migrations', 'workflow_instances')
                """).first?.int("n") ?? 0
            guard tables == 2 else { return false }
            let applied = try connection.query("SELECT version FROM schema_migrations").compactMap { try $0.string("version") }
            return SchemaMigrator.isCurrent(applied: Set(applied))
        }
    }

    public func migrate() async throws {
        if try await hasCurrentSchema() { return }
        let deadline = ContinuousClock.now + .seconds(Self.migrationLockTimeout)
        try await pool.leasing { connection in
            // One worker migrates a database at a time; the others wait for it and then find
            // nothing to do. Each wait is short (a connection's read timeout bounds one
            // statement), repeated until the deadline.
            let lock = MySQLSchema.migrationLockName(database: self.pool.configuration.database)
            while true {
                let locked = try await connection.thread.run {
                    try connection.query("SELECT GET_LOCK(\(lock), 5) AS locked").first?.int("locked")
                }
                if locked == 1 { break }
                guard ContinuousClock.now < deadline else {
                    throw MySQLStoreError(
                        "another session held the migration lock '\(lock)' for \(Self.migrationLockTimeout) s; "
                            + "find it with SELECT IS_USED_LOCK('\(lock)') and end it if it is stuck")
                }
            }
            do {
                try await SchemaMigrator.migrate(SharedSchema.migrations(in: .mysql), on: MigrationSession(connection: connection))
            } catch {
                _ = try? await connection.thread.run { try connection.query("SELECT RELEASE_LOCK(\(lock))") }
                throw error
            }
            _ = try await connection.thread.run { try connection.query("SELECT RELEASE_LOCK(\(lock))") }
        }
    }

    /// On one connection that holds the migration lock.
    private struct MigrationSession: Edda.MigrationSession {
        let connection: MySQLConnection

        func appliedVersions() async throws -> Set<String> {
            try await connection.thread.run { [connection] in
                try connection.execute(MySQLQuery(unsafeSQL: SchemaMigrator.migrationsTable))
                return Set(try connection.query("SELECT version FROM schema_migrations").compactMap { try $0.string("version") })
            }
        }

        func apply(_ migration: SchemaMigration) async throws {
            try await connection.thread.run { [connection] in
                // MySQL commits each DDL statement by itself: a migration cut short is resumed
                // statement by statement (tables are `IF NOT EXISTS`; an index that exists
                // already is taken as created).
                for statement in migration.statements {
                    do {
                        try connection.execute(MySQLQuery(unsafeSQL: statement))
                    } catch let error as MySQLError where error.code == 1061 {
                        continue
                    }
                }
                try connection.execute("INSERT IGNORE INTO schema_migrations (version) VALUES (\(migration.version))")
            }
        }

        func seedSchemaVersion(_ version: Int, description: String, appliedAt: Date) async throws {
            try await connection.thread.run { [connection] in
                try connection.execute(
                    """
                    INSERT INTO schema_version (version, applied_at, description)
                    SELECT \(version), \(appliedAt), \(description) FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM schema_version)
                    """)
            }
        }
    }
}

extension DatabaseLocation {
    /// A MySQL or MariaDB database.
    public static func mysql(configuration: MySQLConfiguration) -> DatabaseLocation {
        let description = "mysql://\(configuration.username)@\(configuration.host):\(configuration.port)/\(configuration.database)"
        return DatabaseLocation(description: description) { try MySQLStore(configuration: configuration) }
    }

    /// A MySQL or MariaDB database given by URL: `mysql://user[:password]@host[:port]/database`
    /// (`mariadb://` and a driver suffix such as `mysql+aiomysql://` are accepted too).
    public static func mysql(url: String) throws -> DatabaseLocation {
        .mysql(configuration: try MySQLConfiguration(url: url))
    }
}

extension MySQLStore: DatabaseURLDriver {
    /// `mysql` and `mariadb` (with or without a driver suffix such as `+aiomysql`).
    public static let urlSchemes = ["mysql", "mariadb"]

    /// The database a `mysql://` URL names: pass `MySQLStore.self` to
    /// ``Edda/DatabaseLocation/url(_:drivers:)``.
    public static func location(url: String) throws -> DatabaseLocation {
        try .mysql(url: url)
    }
}

/// A store invariant failed.
struct MySQLStoreError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
