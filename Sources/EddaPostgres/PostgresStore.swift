import Edda
import Foundation
import Logging
import PostgresNIO

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
public final class PostgresStore: WorkflowStore {
    let client: PostgresClient
    let configuration: PostgresClient.Configuration
    let logger: Logger
    private let running: Task<Void, Never>
    let listener: PostgresListener

    /// Connects with `configuration` (the session time zone is set to UTC, as the shared
    /// schema's timestamps are UTC).
    public init(configuration: PostgresClient.Configuration, logger: Logger = Logger(label: "edda.postgres")) {
        var configuration = configuration
        configuration.options.additionalStartupParameters.removeAll { $0.0.lowercased() == "timezone" }
        configuration.options.additionalStartupParameters.append(("TimeZone", "UTC"))
        self.configuration = configuration
        self.logger = logger
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        running = Task { await client.run() }
        listener = PostgresListener(client: client, logger: logger)
    }

    /// Connects to `postgresql://user[:password]@host[:port]/database[?sslmode=disable|prefer|require]`.
    ///
    /// - Throws: ``Edda/EddaUsageError`` (`.invalidConfiguration`) for a URL that is not one.
    public convenience init(url: String, logger: Logger = Logger(label: "edda.postgres")) throws {
        self.init(configuration: try PostgresURL.configuration(from: url), logger: logger)
    }

    /// Runs `body` in one transaction. An error thrown by `body` is rethrown as is, after the
    /// rollback.
    func transaction<T: Sendable>(_ body: @escaping (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                try await body(connection)
            }
        } catch let error as PostgresTransactionError {
            if let closureError = error.closureError { throw closureError }
            throw error
        }
    }

    public func close() async throws {
        await listener.stop()
        running.cancel()
        await running.value
    }

    public func wakeUps() -> AsyncStream<StoreWakeUp>? {
        listener.start()
    }

    // MARK: - Migrations

    public func migrate() async throws {
        try await client.withConnection { connection in
            // One worker migrates at a time; the others wait for it and then find nothing to do.
            try await connection.query("SELECT pg_advisory_lock(\(PostgresSchema.advisoryLockKey))", logger: self.logger)
            do {
                try await self.migrateLocked(connection)
                try await connection.query("SELECT pg_advisory_unlock(\(PostgresSchema.advisoryLockKey))", logger: self.logger)
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(PostgresSchema.advisoryLockKey))", logger: self.logger)
                throw error
            }
        }
    }

    private func migrateLocked(_ connection: PostgresConnection) async throws {
        try await connection.query(PostgresQuery(unsafeSQL: PostgresSchema.createMigrationsTable), logger: logger)
        let applied = try await connection.query(
            "SELECT 1 FROM schema_migrations WHERE version = \(PostgresSchema.migrationVersion)", logger: logger
        ).collect()
        if applied.isEmpty {
            try await connection.query("BEGIN", logger: logger)
            do {
                for statement in PostgresSchema.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (version) VALUES (\(PostgresSchema.migrationVersion)) ON CONFLICT DO NOTHING",
                    logger: logger)
                try await connection.query("COMMIT", logger: logger)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
        try await connection.query(
            """
            INSERT INTO schema_version (version, applied_at, description)
            SELECT \(PostgresSchema.currentSchemaVersion), \(Date()), \(PostgresSchema.schemaVersionDescription)
            WHERE NOT EXISTS (SELECT 1 FROM schema_version)
            """, logger: logger)
    }
}

extension DatabaseLocation {
    /// A PostgreSQL database.
    ///
    /// Importing `EddaPostgres` and using this (or ``EddaPostgres/PostgresStore/registerURLScheme()``)
    /// also lets ``Edda/DatabaseLocation/url(_:)`` handle `postgresql://` and `postgres://` URLs.
    public static func postgres(configuration: PostgresClient.Configuration) -> DatabaseLocation {
        PostgresStore.registerURLScheme()
        let description = "postgresql://\(configuration.username)@\(configuration.host ?? "socket"):\(configuration.port ?? 5432)/\(configuration.database ?? "")"
        return DatabaseLocation(description: description) { PostgresStore(configuration: configuration) }
    }

    /// A PostgreSQL database given by URL: `postgresql://user[:password]@host[:port]/database`.
    public static func postgres(url: String) throws -> DatabaseLocation {
        .postgres(configuration: try PostgresURL.configuration(from: url))
    }
}

extension PostgresStore {
    /// Lets ``Edda/DatabaseLocation/url(_:)`` open `postgresql://` and `postgres://` URLs.
    public static func registerURLScheme() {
        for scheme in ["postgresql", "postgres"] {
            DatabaseLocation.registerScheme(scheme) { url in try .postgres(url: url) }
        }
    }
}

/// Parses PostgreSQL URLs.
enum PostgresURL {
    static func configuration(from url: String) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
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
        return PostgresClient.Configuration(
            host: host, port: components.port ?? 5432,
            username: components.user?.removingPercentEncoding ?? "postgres",
            password: components.password?.removingPercentEncoding,
            database: database.isEmpty ? nil : database.removingPercentEncoding, tls: tls)
    }
}
