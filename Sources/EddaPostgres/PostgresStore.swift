import Edda
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The PostgreSQL store: the shared schema in a PostgreSQL database, for several processes or
/// hosts sharing the work.
///
/// Every store operation is one transaction on a pooled connection. Claims are compare-and-set
/// updates (and `FOR UPDATE SKIP LOCKED` where workers compete for rows), so each instance runs
/// on one worker at a time. Work that becomes claimable is announced with `NOTIFY` inside the
/// transaction that makes it so (PostgreSQL delivers it at commit): a dedicated listening
/// connection wakes the other workers within milliseconds; polling is only the fallback.
///
/// ```swift
/// let app = try await EddaApp(configuration: .init(
///     serviceName: "orders", database: try .postgres(url: "postgresql://edda@db.local:5432/edda")))
/// ```
public final class PostgresStore: WorkflowStore, ChannelStore, OutboxStore, SystemLockStore, WakeUpSource {
    /// The connection pool and the task running it; replaced when the pool stops answering.
    private struct Pool: Sendable {
        let client: PostgresClient
        let running: Task<Void, Never>
    }

    private let pool: Mutex<Pool>
    let configuration: PostgresClient.Configuration
    let logger: Logger
    let listener: PostgresListener
    /// How long one store operation may take, connecting included, before the pool is replaced
    /// and the operation fails (to be retried by the engine). Default 20 s.
    public let operationTimeout: Duration

    /// The server setting that ends a session left idle inside a transaction.
    static let abandonedTransactionSetting = "idle_in_transaction_session_timeout"
    /// How much longer than ``operationTimeout`` a transaction may sit idle before the server
    /// ends its session.
    static let abandonedTransactionMargin = Duration.seconds(10)

    /// How long a migration may take, waiting for other workers' migrations included.
    static let migrationTimeout = Duration.seconds(180)

    /// The current pool's client.
    var client: PostgresClient { pool.withLock { $0.client } }

    /// Connects with `configuration` (the session time zone is set to UTC, as the shared
    /// schema's timestamps are UTC).
    public init(
        configuration: PostgresClient.Configuration, operationTimeout: Duration = .seconds(20),
        logger: Logger = Logger(label: "edda.postgres")
    ) {
        var configuration = configuration
        configuration.options.additionalStartupParameters.removeAll { $0.0.lowercased() == "timezone" }
        configuration.options.additionalStartupParameters.append(("TimeZone", "UTC"))
        // A transaction whose client went quiet for longer than an operation may take has been
        // given up by this store (the operation failed with a timeout): the server ends that
        // session, so the row locks it holds cannot block every other worker. (A pool replaced
        // after a server restart can leave such a session behind.) A value the caller set wins.
        if !configuration.options.additionalStartupParameters.contains(where: { $0.0.lowercased() == Self.abandonedTransactionSetting }) {
            let milliseconds = Int((operationTimeout + Self.abandonedTransactionMargin).seconds * 1000)
            configuration.options.additionalStartupParameters.append((Self.abandonedTransactionSetting, "\(milliseconds)"))
        }
        self.configuration = configuration
        self.logger = logger
        self.operationTimeout = operationTimeout
        let pool = Self.makePool(configuration, logger: logger)
        self.pool = Mutex(pool)
        listener = PostgresListener(logger: logger)
        listener.store = WeakStore(self)
    }

    private static func makePool(_ configuration: PostgresClient.Configuration, logger: Logger) -> Pool {
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return Pool(client: client, running: Task { await client.run() })
    }

    /// Replaces a pool that stopped answering (after a server restart, connections half-opened
    /// to the stopping server can hang the old one).
    private func replacePool(_ stuck: PostgresClient) {
        let old = pool.withLock { pool -> Pool? in
            guard pool.client === stuck else { return nil }
            let old = pool
            pool = Self.makePool(configuration, logger: logger)
            return old
        }
        if let old {
            logger.warning("PostgreSQL did not answer within \(operationTimeout); replacing the connection pool")
            // Stopped once every operation begun on it has finished or timed out: stopping a pool
            // strands the queries in flight on its connections, and a transaction stranded that
            // way would keep its row locks until the server ends the session.
            let grace = operationTimeout
            Task {
                try? await Task.sleep(for: grace)
                old.running.cancel()
            }
        }
    }

    /// Runs `body` with the current client, bounded by `timeout` (default ``operationTimeout``).
    func withClient<T: Sendable>(
        timeout: Duration? = nil, _ body: @escaping @Sendable (PostgresClient) async throws -> T
    ) async throws -> T {
        let client = self.client
        let timeout = timeout ?? operationTimeout
        // An unstructured race: a task group would wait for an operation stuck in the pool even
        // after cancelling it, which is the case this guards against.
        let finished = Once()
        var timer: Task<Void, Never>?
        let outcome: Result<T, any Error> = await withCheckedContinuation { continuation in
            // On the caller's preferred executor (the lease renewer's own thread), if it has one.
            let operation = Task(executorPreference: PreferredTaskExecutor.current) {
                let result: Result<T, any Error>
                do {
                    result = .success(try await body(client))
                } catch {
                    result = .failure(error)
                }
                if finished.claim() { continuation.resume(returning: result) }
            }
            timer = Task {
                do { try await Task.sleep(for: timeout) } catch { return }
                if finished.claim() {
                    operation.cancel()
                    continuation.resume(returning: .failure(PostgresOperationTimeout()))
                }
            }
        }
        // No sleeping timer outlives its operation.
        timer?.cancel()
        do {
            return try outcome.get()
        } catch is PostgresOperationTimeout {
            replacePool(client)
            throw PostgresStoreError("PostgreSQL did not answer within \(timeout)")
        }
    }

    /// Connects to `postgresql://user[:password]@host[:port]/database[?sslmode=disable|prefer|require]`.
    ///
    /// - Throws: ``Edda/EddaUsageError`` (`.invalidConfiguration`) for a URL that is not one.
    public convenience init(url: String, logger: Logger = Logger(label: "edda.postgres")) throws {
        self.init(configuration: try PostgresURL.configuration(from: url), logger: logger)
    }

    /// Runs `body` in one transaction. An error thrown by `body` is rethrown as is, after the
    /// rollback.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let logger = self.logger
        return try await withClient { client in
            do {
                return try await client.withTransaction(logger: logger) { connection in
                    try await body(connection)
                }
            } catch let error as PostgresTransactionError {
                if let closureError = error.closureError { throw closureError }
                throw error
            }
        }
    }

    /// Runs `body` on a pooled connection, outside a transaction (reads).
    func read<T: Sendable>(
        timeout: Duration? = nil, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withClient(timeout: timeout) { client in
            try await client.withConnection { connection in try await body(connection) }
        }
    }

    public func close() async throws {
        await listener.stop()
        let running = pool.withLock { $0.running }
        running.cancel()
        await running.value
    }

    public func wakeUps() -> AsyncStream<StoreWakeUp> {
        listener.start()
    }

    // MARK: - Migrations

    public func hasCurrentSchema() async throws -> Bool {
        try await read { connection in
            let tables = try await connection.query(
                "SELECT to_regclass('schema_migrations') IS NOT NULL AND to_regclass('workflow_instances') IS NOT NULL",
                logger: self.logger
            ).collect()
            guard let row = tables.first, try row.decode(Bool.self) else { return false }
            let applied = try await connection.rows("SELECT version FROM schema_migrations", logger: self.logger)
            return SchemaMigrator.isCurrent(applied: Set(try applied.map { try $0.value("version", as: String.self) }))
        }
    }

    /// The key of the advisory lock that serialises migrations across workers (the reference's).
    static let migrationLockKey: Int64 = 20_251_217_000_000

    public func migrate() async throws {
        // Waiting for another worker's migration is not a stuck pool: a longer bound than one
        // operation's, so that workers starting together on a busy machine do not give up.
        try await read(timeout: max(operationTimeout, Self.migrationTimeout)) { connection in
            // One worker migrates at a time; the others wait for it and then find nothing to do.
            try await connection.query("SELECT pg_advisory_lock(\(Self.migrationLockKey))", logger: self.logger)
            do {
                try await SchemaMigrator.migrate(SharedSchema.migrations(in: .postgresql), on: MigrationSession(connection: connection, logger: self.logger))
                try await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLockKey))", logger: self.logger)
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLockKey))", logger: self.logger)
                throw error
            }
        }
    }

    /// On one connection that holds the migration advisory lock.
    private struct MigrationSession: Edda.MigrationSession {
        let connection: PostgresConnection
        let logger: Logger

        func appliedVersions() async throws -> Set<String> {
            try await connection.query(PostgresQuery(unsafeSQL: SchemaMigrator.migrationsTable), logger: logger)
            return Set(try await connection.rows("SELECT version FROM schema_migrations", logger: logger).map { try $0.value("version") })
        }

        func apply(_ migration: SchemaMigration) async throws {
            try await connection.query("BEGIN", logger: logger)
            do {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (version) VALUES (\(migration.version)) ON CONFLICT DO NOTHING", logger: logger)
                try await connection.query("COMMIT", logger: logger)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }

        func seedSchemaVersion(_ version: Int, description: String, appliedAt: Date) async throws {
            try await connection.query(
                """
                INSERT INTO schema_version (version, applied_at, description)
                SELECT \(version), \(appliedAt), \(description) WHERE NOT EXISTS (SELECT 1 FROM schema_version)
                """, logger: logger)
        }
    }
}

extension DatabaseLocation {
    /// A PostgreSQL database.
    public static func postgres(configuration: PostgresClient.Configuration) -> DatabaseLocation {
        let description = "postgresql://\(configuration.username)@\(configuration.host ?? "socket"):\(configuration.port ?? 5432)/\(configuration.database ?? "")"
        return DatabaseLocation(description: description) { PostgresStore(configuration: configuration) }
    }

    /// A PostgreSQL database given by URL: `postgresql://user[:password]@host[:port]/database`
    /// (`postgres://` and a driver suffix such as `postgresql+asyncpg://` are accepted too).
    public static func postgres(url: String) throws -> DatabaseLocation {
        .postgres(configuration: try PostgresURL.configuration(from: url))
    }
}

extension PostgresStore: DatabaseURLDriver {
    /// `postgresql` and `postgres` (with or without a driver suffix such as `+asyncpg`).
    public static let urlSchemes = ["postgresql", "postgres"]

    /// The database a `postgresql://` URL names: pass `PostgresStore.self` to
    /// ``Edda/DatabaseLocation/url(_:drivers:)``.
    public static func location(url: String) throws -> DatabaseLocation {
        try .postgres(url: url)
    }
}

struct PostgresOperationTimeout: Error {}

/// True for the first caller of ``claim()`` only.
final class Once: Sendable {
    private let done = Mutex(false)
    func claim() -> Bool {
        done.withLock { done in
            defer { done = true }
            return !done
        }
    }
}

/// A reference to the store that does not keep it alive.
final class WeakStore: Sendable {
    private let reference: Mutex<WeakBox>
    private struct WeakBox: @unchecked Sendable {
        // Safe: only read and written under the mutex.
        weak var store: PostgresStore?
    }
    init(_ store: PostgresStore) { reference = Mutex(WeakBox(store: store)) }
    var store: PostgresStore? { reference.withLock { $0.store } }
}

/// Parses PostgreSQL URLs.
package enum PostgresURL {
    package static func configuration(from url: String) throws -> PostgresClient.Configuration {
        // A driver suffix (postgresql+asyncpg://, as Python Edda's URLs have) is accepted.
        guard let components = URLComponents(string: url), let scheme = DatabaseURL.scheme(of: url),
              scheme == "postgresql" || scheme == "postgres", let host = components.host, !host.isEmpty
        else {
            throw EddaUsageError(
                .invalidConfiguration,
                "'\(url)' is not a PostgreSQL URL; use postgresql://user[:password]@host[:port]/database.")
        }
        let database = String(components.path.drop { $0 == "/" })
        let sslMode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        default:
            throw EddaUsageError(.invalidConfiguration, "Unsupported sslmode '\(sslMode)' in '\(url)'; use disable, prefer or require.")
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432,
            username: components.user?.removingPercentEncoding ?? "postgres",
            password: components.password?.removingPercentEncoding,
            database: database.isEmpty ? nil : database.removingPercentEncoding, tls: tls)
        if let timeout = components.queryItems?.first(where: { $0.name == "connect_timeout" })?.value.flatMap(Int.init), timeout > 0 {
            configuration.options.connectTimeout = .seconds(timeout)
        }
        if let size = components.queryItems?.first(where: { $0.name == "pool_size" })?.value.flatMap(Int.init), size > 1 {
            configuration.options.maximumConnections = size
        }
        return configuration
    }
}
