import Foundation

/// One migration of the shared schema in a database's dialect: its dbmate version
/// (`schema_migrations.version`, the same in every member of the Edda family) and its DDL.
public struct SchemaMigration: Sendable {
    /// The version recorded in `schema_migrations`, e.g. `20251217000000`.
    public let version: String
    /// The statements, applied in order inside one transaction.
    public let statements: [String]

    /// Creates a value with every field given.
    public init(version: String, statements: [String]) {
        self.version = version
        self.statements = statements
    }
}

/// What a driver does to one database while migrating it: read what is applied, apply one
/// migration, seed the reference's `schema_version` row. ``SchemaMigrator`` decides the rest.
public protocol MigrationSession {
    /// The versions in `schema_migrations` (creating the table first if it is missing).
    func appliedVersions() async throws -> Set<String>
    /// In one transaction: applies `migration` and records its version, unless another process
    /// recorded it meanwhile (then changes nothing).
    func apply(_ migration: SchemaMigration) async throws
    /// Inserts the `schema_version` row unless the table has one.
    func seedSchemaVersion(_ version: Int, description: String, appliedAt: Date) async throws
}

/// The migration bookkeeping of the shared schema, once for every driver: which migrations are
/// due, in which order, and how the database is marked current, as the reference records them
/// (dbmate's `schema_migrations`, plus the `schema_version` row Python Edda seeds).
public enum SchemaMigrator {
    /// The versions of the shared schema this library writes, oldest first. A driver provides
    /// one ``SchemaMigration`` for each.
    public static let versions = ["20251217000000"]
    /// The `schema_version` row the reference seeds on a fresh database.
    public static let schemaVersion = 1
    /// Its description.
    public static let schemaVersionDescription = "Initial schema with workflow_definitions"
    /// `schema_migrations` as dbmate creates it (the same DDL in every dialect here).
    public static let migrationsTable = "CREATE TABLE IF NOT EXISTS schema_migrations (version VARCHAR(255) PRIMARY KEY)"

    /// Applies the migrations not yet recorded, oldest first, and seeds `schema_version`.
    /// Idempotent; safe against other processes migrating at the same time as long as the
    /// session's ``MigrationSession/apply(_:)`` re-checks inside its transaction.
    ///
    /// - Throws: ``EddaUsageError`` (`.invalidConfiguration`) if `migrations` does not match
    ///   ``versions`` (a driver bug), or the session's error.
    public static func migrate(_ migrations: [SchemaMigration], on session: some MigrationSession, now: Date = Date()) async throws {
        guard migrations.map(\.version) == versions else {
            throw EddaUsageError(
                .invalidConfiguration,
                "The driver's migrations \(migrations.map(\.version)) do not match the shared schema's versions \(versions).")
        }
        let applied = try await session.appliedVersions()
        for migration in migrations where !applied.contains(migration.version) {
            try await session.apply(migration)
        }
        try await session.seedSchemaVersion(schemaVersion, description: schemaVersionDescription, appliedAt: now)
    }

    /// Whether a database whose `schema_migrations` holds `applied` has the schema this library
    /// writes.
    public static func isCurrent(applied: Set<String>) -> Bool {
        versions.allSatisfy(applied.contains)
    }
}
