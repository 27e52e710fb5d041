import Edda
import Foundation
import GRDB

/// The embedded SQLite store: the shared schema in one WAL-mode database file, through GRDB.
///
/// Writes go through one writer connection with group commit (concurrent workflows share a
/// commit); reads use a pool of reader connections. Several processes may open the same file;
/// each write transaction takes SQLite's write lock with `BEGIN IMMEDIATE`.
///
/// Most users never create one directly: ``EddaApp/Configuration/database`` with
/// ``DatabaseLocation/sqlite(path:durability:)`` does it.
public final class SQLiteStore: WorkflowStore, ChannelStore, OutboxStore, SystemLockStore {
    /// How hard each commit works to survive power loss.
    public struct Durability: Sendable, Hashable {
        let pragma: String
        /// `synchronous = FULL`: every commit is on disk before it returns. Survives process
        /// crashes and power loss. The default.
        public static let full = Durability(pragma: "FULL")
        /// `synchronous = NORMAL`: commits survive a process crash (kill -9) but the last ones
        /// may be lost on power loss or an OS crash. Several times faster.
        public static let normal = Durability(pragma: "NORMAL")
    }

    /// How long a write waits for another process's write lock before it fails.
    static let busyTimeout = Duration.seconds(30)

    let pool: DatabasePool
    let writer: WriteBatcher
    /// The file's path.
    public let path: String

    /// Opens (creating if needed) the database at `path`.
    ///
    /// - Parameters:
    ///   - durability: How hard each commit works to survive power loss.
    ///   - readOnly: Opens an existing file for reading only: nothing is created or changed,
    ///     not even the journal mode, and every write fails. For tools that inspect a database.
    /// - Throws: GRDB's `DatabaseError` if the file cannot be opened.
    public init(path: String, durability: Durability = .full, readOnly: Bool = false) throws {
        var configuration = Configuration()
        configuration.readonly = readOnly
        configuration.busyMode = .timeout(Self.busyTimeout.seconds)
        configuration.foreignKeysEnabled = true
        configuration.maximumReaderCount = 4
        configuration.label = "Edda"
        pool = try DatabasePool(path: path, configuration: configuration)
        // DatabasePool switches the writer to synchronous=NORMAL when it enables WAL, after
        // `prepareDatabase` has run, so the durability level is set here, on the writer.
        if !readOnly {
            try pool.writeWithoutTransaction { database in
                try database.execute(sql: "PRAGMA synchronous = \(durability.pragma)")
            }
        }
        writer = WriteBatcher(pool: pool, busyTimeout: Self.busyTimeout)
        self.path = path
    }

    /// Counts of the store's writes since it was opened: store operations (`transactions`,
    /// each one atomic unit) and SQLite commits (`commits`, fewer when concurrent operations
    /// share a group commit).
    public var writeStatistics: (transactions: Int, commits: Int) {
        (writer.transactions.load(ordering: .relaxed), writer.commits.load(ordering: .relaxed))
    }

    // MARK: - Migrations

    public func hasCurrentSchema() async throws -> Bool {
        try await pool.read { database in
            guard try database.tableExists("schema_migrations"), try database.tableExists("workflow_instances") else {
                return false
            }
            return SchemaMigrator.isCurrent(applied: Set(try String.fetchAll(database, sql: "SELECT version FROM schema_migrations")))
        }
    }

    public func migrate() async throws {
        try await SchemaMigrator.migrate(SharedSchema.migrations(in: .sqlite), on: SQLiteMigrationSession(pool: pool))
    }

    /// Each step in its own transaction; SQLite's write lock serialises processes migrating at
    /// once, and ``apply(_:)`` re-checks under it.
    private struct SQLiteMigrationSession: MigrationSession {
        let pool: DatabasePool

        func appliedVersions() async throws -> Set<String> {
            try await pool.write { database in
                try database.execute(sql: SchemaMigrator.migrationsTable)
                return Set(try String.fetchAll(database, sql: "SELECT version FROM schema_migrations"))
            }
        }

        func apply(_ migration: SchemaMigration) async throws {
            try await pool.writeWithoutTransaction { database in
                try database.inTransaction(.immediate) {
                    let done = try Bool.fetchOne(
                        database, sql: "SELECT 1 FROM schema_migrations WHERE version = ?", arguments: [migration.version]) ?? false
                    if !done {
                        for statement in migration.statements { try database.execute(sql: statement) }
                        try database.execute(sql: "INSERT INTO schema_migrations (version) VALUES (?)", arguments: [migration.version])
                    }
                    return .commit
                }
            }
        }

        func seedSchemaVersion(_ version: Int, description: String, appliedAt: Date) async throws {
            try await pool.write { database in
                try database.execute(
                    sql: """
                        INSERT INTO schema_version (version, applied_at, description)
                        SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM schema_version)
                        """,
                    arguments: [version, Timestamp.database(appliedAt), description])
            }
        }
    }

    // MARK: - Instances

    public func createInstance(_ instance: NewInstance, now: Date) async throws -> CreateInstanceOutcome {
        try await writer.write { database in
            if try Self.insertInstance(instance, in: database, now: now) { return .created }
            guard let existing = try Self.fetchInstance(database, id: instance.instanceID) else {
                throw DatabaseError(message: "instance \(instance.instanceID) neither inserted nor found")
            }
            return .existing(existing)
        }
    }

    /// Inserts the definition (if new) and the instance; `false` if the instance ID exists.
    static func insertInstance(_ instance: NewInstance, in database: Database, now: Date) throws -> Bool {
        let timestamp = Timestamp.database(now)
        try database.cachedStatement(sql: Statements.insertDefinition).execute(arguments: [
            instance.workflowName, instance.sourceHash, instance.sourceCode, Timestamp.database(NewInstance.definitionCreatedAt),
        ])
        try database.cachedStatement(sql: Statements.insertInstance).execute(arguments: [
            instance.instanceID, instance.workflowName, instance.sourceHash, instance.ownerService,
            StoredFramework.name, instance.continuedFrom, timestamp, timestamp, instance.inputJSON,
            instance.lockedBy, instance.lockedBy == nil ? nil : timestamp,
            instance.lockExpiresAt.map(Timestamp.database), instance.lockTimeoutSeconds,
        ])
        return database.changesCount == 1
    }

    public func claim(instanceID: String, workerID: String, leaseUntil: Date, now: Date) async throws -> ClaimedInstance? {
        try await writer.write { database in
            let timestamp = Timestamp.database(now)
            try database.cachedStatement(sql: Statements.claim).execute(arguments: [
                workerID, timestamp, Timestamp.database(leaseUntil), timestamp, instanceID, StoredFramework.name, timestamp,
            ])
            guard database.changesCount == 1, let instance = try Self.fetchInstance(database, id: instanceID) else {
                return nil
            }
            return ClaimedInstance(
                instance: instance,
                history: try Self.fetchHistory(database, instanceID: instanceID),
                compensations: try Self.fetchCompensations(database, instanceID: instanceID),
                subscriptions: try Self.fetchSubscriptions(database, instanceID: instanceID))
        }
    }

    public func apply(_ transition: InstanceTransition, now: Date) async throws -> TransitionOutcome {
        try await writer.write { database in
            try Self.apply(transition, now: now, in: database)
        }
    }

    static func apply(_ transition: InstanceTransition, now: Date, in database: Database) throws -> TransitionOutcome {
        let timestamp = Timestamp.database(now)
        var arguments: StatementArguments = [timestamp]
        if let newStatus = transition.newStatus { arguments += [newStatus.rawValue] }
        arguments += [transition.outputJSON, transition.currentActivityID]
        if case .renew(let until) = transition.lock { arguments += [Timestamp.database(until)] }
        arguments += [transition.instanceID, transition.workerID]
        // One compare-and-set per expected status, the likeliest first (a step: `running`, then
        // `compensating`), so that the status it leaves is known without reading it back. No
        // `RETURNING`: SQLite runs a `RETURNING` statement as a trigger, which makes it keep a
        // statement journal of every page it touches (a dozen here, the row and its indexes),
        // allocated and freed on each step.
        let update = try database.cachedStatement(sql: Statements.transition(transition.lock, settingStatus: transition.newStatus != nil))
        var matched: WorkflowStatus?
        for expected in transition.expectedStatuses {
            try update.execute(arguments: arguments + [expected.rawValue])
            if database.changesCount == 1 {
                matched = expected
                break
            }
        }
        guard let matched else {
            let (status, lockedBy) = try statusAndLock(database, instanceID: transition.instanceID)
            return .rejected(status: status, lockedBy: lockedBy)
        }
        let newStatus = transition.newStatus ?? matched
        for event in transition.history {
            try insertHistory(database, instanceID: transition.instanceID, event: event, timestamp: timestamp)
        }
        for compensation in transition.compensations {
            try database.cachedStatement(sql: Statements.insertCompensation).execute(arguments: [
                transition.instanceID, compensation.activityID, compensation.name, compensation.argsJSON, timestamp,
            ])
        }
        for event in transition.outboxEvents {
            try insertOutboxEvent(event, in: database, timestamp: timestamp)
        }
        for work in transition.work {
            let work = try SQLiteTransactionalWork.required(work)
            do {
                try work.body(database)
            } catch {
                throw TransactionalWorkError(underlying: error)
            }
        }
        if transition.removeSubscriptions {
            try database.cachedStatement(sql: "DELETE FROM channel_subscriptions WHERE instance_id = ?")
                .execute(arguments: [transition.instanceID])
            try database.cachedStatement(sql: "DELETE FROM workflow_timer_subscriptions WHERE instance_id = ?")
                .execute(arguments: [transition.instanceID])
        }
        let deliveries = try applyMessaging(transition, in: database, now: now)
        return .applied(status: newStatus, deliveries: deliveries)
    }

    /// An instance's status and lock holder (`nil`s if there is no such instance).
    static func statusAndLock(_ database: Database, instanceID: String) throws -> (WorkflowStatus?, String?) {
        guard let row = try Row.fetchOne(database.cachedStatement(sql: Statements.selectStatusAndLock), arguments: [instanceID])
        else { return (nil, nil) }
        let stored = SQLiteRow(row)
        return (try stored.text("status").map(WorkflowStatus.init(rawValue:)), try stored.text("locked_by"))
    }

    /// Inserts one history row; with `ifAbsent`, nothing happens if the instance already has a
    /// row with that activity ID (`database.changesCount` then says 0).
    static func insertHistory(
        _ database: Database, instanceID: String, event: NewHistoryEvent, timestamp: String, ifAbsent: Bool = false
    ) throws {
        let statement = try database.cachedStatement(sql: ifAbsent ? Statements.insertHistoryIfAbsent : Statements.insertHistory)
        switch event.payload {
        case .json(let text):
            try statement.execute(arguments: [instanceID, event.activityID, event.eventType, "json", text, nil, timestamp])
        case .binary(let bytes):
            try statement.execute(arguments: [instanceID, event.activityID, event.eventType, "binary", nil, Data(bytes), timestamp])
        }
    }

    public func releaseLock(instanceID: String, workerID: String, now: Date) async throws {
        try await writer.write { database in
            try database.cachedStatement(sql: Statements.releaseLock).execute(arguments: [
                Timestamp.database(now), instanceID, workerID,
            ])
        }
    }

    public func renewLocks(instanceIDs: [String], workerID: String, leaseUntil: Date, now: Date) async throws -> [String: WorkflowStatus] {
        guard !instanceIDs.isEmpty else { return [:] }
        return try await writer.write { database in
            var held: [String: WorkflowStatus] = [:]
            let renew = try database.cachedStatement(sql: Statements.renewLock)
            let expiry = Timestamp.database(leaseUntil)
            for id in instanceIDs {
                try renew.execute(arguments: [expiry, id, workerID])
                if database.changesCount == 1, let status = try Self.statusAndLock(database, instanceID: id).0 {
                    held[id] = status
                }
            }
            return held
        }
    }

    public func requestCancellation(instanceID: String, cancelledBy: String, now: Date) async throws -> CancellationOutcome {
        try await writer.write { database in
            let candidate = try Row.fetchOne(
                database,
                sql: "SELECT status, framework, locked_by, lock_expires_at FROM workflow_instances WHERE instance_id = ?",
                arguments: [instanceID]
            ).map {
                let stored = SQLiteRow($0)
                return CancellationCandidate(
                    status: WorkflowStatus(rawValue: try stored.required("status")), framework: try stored.required("framework"),
                    lockedBy: try stored.text("locked_by"), lockExpiresAt: try stored.timestamp("lock_expires_at"))
            }
            let plan: CancellationPlan
            switch CancellationPlan.decide(candidate, framework: StoredFramework.name, cancelledBy: cancelledBy, now: now) {
            case .refuse(let outcome): return outcome
            case .proceed(let proceeding): plan = proceeding
            }
            let timestamp = Timestamp.database(now)
            try Self.insertHistory(database, instanceID: instanceID, event: plan.historyEvent, timestamp: timestamp, ifAbsent: true)
            guard database.changesCount == 1 else { return plan.alreadyRequested }

            let pending = try Int.fetchOne(database, sql: Statements.countPendingCompensations, arguments: [instanceID]) ?? 0
            let ending = plan.ending(pendingCompensations: pending)
            switch ending {
            case .cancelNow(let output):
                try database.cachedStatement(sql: Statements.finishCancelled).execute(arguments: [output, timestamp, instanceID])
                try database.execute(sql: "DELETE FROM channel_subscriptions WHERE instance_id = ?", arguments: [instanceID])
                try database.execute(sql: "DELETE FROM workflow_timer_subscriptions WHERE instance_id = ?", arguments: [instanceID])
            case .compensate(let output, _):
                try database.cachedStatement(sql: Statements.markCompensating).execute(arguments: [output, timestamp, instanceID])
                try database.execute(sql: "DELETE FROM workflow_timer_subscriptions WHERE instance_id = ?", arguments: [instanceID])
                try database.execute(
                    sql: "UPDATE channel_subscriptions SET activity_id = NULL, timeout_at = NULL WHERE instance_id = ?",
                    arguments: [instanceID])
            }
            return ending.outcome
        }
    }

    public func resumableInstances(workflowNames: [String], limit: Int, now: Date) async throws -> [ResumableInstance] {
        guard !workflowNames.isEmpty else { return [] }
        return try await pool.read { database in
            let names = Array(repeating: "?", count: workflowNames.count).joined(separator: ", ")
            let sql = """
                SELECT instance_id, workflow_name, lock_timeout_seconds FROM workflow_instances
                WHERE framework = ? AND status IN ('running', 'compensating')
                  AND (locked_by IS NULL OR lock_expires_at < ?)
                  AND workflow_name IN (\(names))
                ORDER BY updated_at LIMIT ?
                """
            var arguments: StatementArguments = [StoredFramework.name, Timestamp.database(now)]
            arguments += StatementArguments(workflowNames)
            arguments += [limit]
            // A lock timeout that is not an integer (written outside Edda) is left to the claim,
            // which fails for that instance alone, instead of failing the recovery of them all.
            return try Row.fetchAll(database, sql: sql, arguments: arguments).map {
                ResumableInstance(
                    instanceID: try $0.decode(forColumn: "instance_id"), workflowName: try $0.decode(forColumn: "workflow_name"),
                    lockTimeoutSeconds: (try? $0.decode(Int?.self, forColumn: "lock_timeout_seconds")) ?? nil)
            }
        }
    }

    // MARK: - Reads

    public func instance(id: String) async throws -> WorkflowInstance? {
        try await pool.read { database in try Self.fetchInstance(database, id: id, withSource: true) }
    }

    public func history(instanceID: String) async throws -> [HistoryEvent] {
        try await pool.read { database in try Self.fetchHistory(database, instanceID: instanceID) }
    }

    public func compensations(instanceID: String) async throws -> [CompensationRecord] {
        try await pool.read { database in try Self.fetchCompensations(database, instanceID: instanceID) }
    }

    public func findInstances(_ query: InstanceQuery) async throws -> InstancePage {
        let validated = try query.validated()
        return try await pool.read { database in
            let (sql, arguments) = SQLiteInstanceQuery.build(validated)
            let instances = try Row.fetchAll(database, sql: sql, arguments: arguments).map {
                try WorkflowInstance(row: SQLiteRow($0), withSource: true)
            }
            return InstancePage(fetched: instances, limit: query.limit)
        }
    }

    public func close() async throws {
        try pool.close()
    }

    // MARK: - Row decoding

    static func fetchInstance(_ database: Database, id: String, withSource: Bool = false) throws -> WorkflowInstance? {
        let sql = withSource ? Statements.selectInstanceWithSource : Statements.selectInstance
        return try Row.fetchOne(database.cachedStatement(sql: sql), arguments: [id]).map {
            try WorkflowInstance(row: SQLiteRow($0), withSource: withSource)
        }
    }

    static func fetchHistory(_ database: Database, instanceID: String) throws -> [HistoryEvent] {
        try Row.fetchAll(database.cachedStatement(sql: Statements.selectHistory), arguments: [instanceID]).map {
            try HistoryEvent(row: SQLiteRow($0), instanceID: instanceID)
        }
    }

    static func fetchCompensations(_ database: Database, instanceID: String) throws -> [CompensationRecord] {
        try Row.fetchAll(database.cachedStatement(sql: Statements.selectCompensations), arguments: [instanceID]).map {
            try CompensationRecord(row: SQLiteRow($0))
        }
    }
}

/// A GRDB row, read as the core reads stored rows (times in the shared schema's text formats).
///
/// SQLite keeps whatever type it is given in an `INTEGER` or `BLOB` column (and a blob in a
/// `TEXT` one): a value of another type, written outside Edda, throws GRDB's decoding error
/// naming the column, where GRDB's subscripts would stop the process.
struct SQLiteRow: StoredRow {
    let row: Row
    init(_ row: Row) { self.row = row }

    func text(_ column: String) throws -> String? { try row.decode(String?.self, forColumn: column) }
    func integer(_ column: String) throws -> Int? { try row.decode(Int?.self, forColumn: column) }
    func timestamp(_ column: String) throws -> Date? { try text(column).flatMap(Timestamp.parse) }
    func bytes(_ column: String) throws -> [UInt8]? { try row.decode(Data?.self, forColumn: column).map { Array($0) } }
}

/// Work on the user's own tables in an activity's commit transaction (SQLite).
struct SQLiteTransactionalWork: TransactionalWork {
    static var storeType: any WorkflowStore.Type { SQLiteStore.self }
    let body: @Sendable (Database) throws -> Void
}
