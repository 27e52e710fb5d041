@testable import Edda
import Foundation
import Synchronization
import Testing

/// The migration bookkeeping every driver shares, without a database.
@Suite("Schema migrator")
struct SchemaMigratorTests {
    final class Session: MigrationSession, Sendable {
        let applied: Set<String>
        let calls = Mutex<[String]>([])
        init(applied: Set<String>) { self.applied = applied }
        func appliedVersions() async throws -> Set<String> { applied }
        func apply(_ migration: SchemaMigration) async throws { calls.withLock { $0.append("apply \(migration.version)") } }
        func seedSchemaVersion(_ version: Int, description: String, appliedAt: Date) async throws {
            calls.withLock { $0.append("seed \(version) \(description)") }
        }
    }

    static let migrations = SchemaMigrator.versions.map { SchemaMigration(version: $0, statements: ["CREATE TABLE t (x INT)"]) }

    @Test("A fresh database gets every migration, oldest first, then the schema_version row")
    func fresh() async throws {
        let session = Session(applied: [])
        try await SchemaMigrator.migrate(Self.migrations, on: session)
        #expect(session.calls.withLock { $0 } == SchemaMigrator.versions.map { "apply \($0)" }
            + ["seed 1 Initial schema with workflow_definitions"])
    }

    @Test("A current database (Python-written too) gets nothing applied; the seed is idempotent in the driver")
    func current() async throws {
        let session = Session(applied: Set(SchemaMigrator.versions + ["29990101000000"]))
        try await SchemaMigrator.migrate(Self.migrations, on: session)
        #expect(session.calls.withLock { $0 } == ["seed 1 Initial schema with workflow_definitions"])
        #expect(SchemaMigrator.isCurrent(applied: Set(SchemaMigrator.versions)))
        #expect(!SchemaMigrator.isCurrent(applied: []))
    }

    @Test("A driver whose migrations do not match the shared versions is refused before anything runs")
    func mismatch() async throws {
        let session = Session(applied: [])
        let error = await #expect(throws: EddaUsageError.self) {
            try await SchemaMigrator.migrate([SchemaMigration(version: "1", statements: [])], on: session)
        }
        #expect(error?.kind == .invalidConfiguration)
        #expect(session.calls.withLock { $0 }.isEmpty)
    }
}
