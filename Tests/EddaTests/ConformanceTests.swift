@testable import Edda
@testable import EddaSQLite
@testable import EddaPostgres
@testable import EddaMySQL
import EddaConformance
import EddaTesting
import Foundation
import GRDB
import PostgresNIO
import Synchronization
import Testing

/// The backends every store behaviour is checked against.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres
    case mysql
    var testDescription: String { rawValue }
}

/// A fresh database on a backend, with the test settings of ``TemporaryDatabase``.
struct BackendDatabase: Sendable {
    let backend: Backend
    let sqlite: TemporaryDatabase?
    /// The server database's URL (PostgreSQL or MySQL).
    let url: String?

    var postgresURL: String? { backend == .postgres ? url : nil }
    var mysqlURL: String? { backend == .mysql ? url : nil }

    static func make(_ backend: Backend) async throws -> BackendDatabase {
        switch backend {
        case .sqlite: return BackendDatabase(backend: backend, sqlite: try TemporaryDatabase(), url: nil)
        case .postgres: return BackendDatabase(backend: backend, sqlite: nil, url: try await PostgresTestServer.makeDatabase())
        case .mysql: return BackendDatabase(backend: backend, sqlite: nil, url: try await MariaDBTestServer.makeDatabase())
        }
    }

    var location: DatabaseLocation {
        get throws {
            if let sqlite { return sqlite.location }
            return try .url(url ?? "", drivers: [PostgresStore.self, MySQLStore.self])
        }
    }

    func configuration(serviceName: String = "test") throws -> EddaApp.Configuration {
        .testing(serviceName: serviceName, database: try location)
    }

    func withApp<T>(
        serviceName: String = "test", configure: (inout EddaApp.Configuration) -> Void = { _ in },
        _ body: (EddaApp) async throws -> T
    ) async throws -> T {
        var configuration = try configuration(serviceName: serviceName)
        configure(&configuration)
        return try await EddaApp.running(configuration, body)
    }

    func remove() {
        sqlite?.remove()
    }
}

func withBackend(_ backend: Backend, _ body: (BackendDatabase) async throws -> Void) async throws {
    let database = try await BackendDatabase.make(backend)
    defer { database.remove() }
    try await body(database)
}

/// The public conformance kit (`EddaConformance`), run on both stores of this package as a
/// third-party driver runs it: one test case per backend and check, each on a fresh database.
@Suite("Store conformance", .timeLimit(.minutes(3)))
struct ConformanceTests {
    @Test("every check of the conformance kit", arguments: Backend.allCases, StoreConformance.checks)
    func conformance(_ backend: Backend, _ check: StoreConformance.Check) async throws {
        try await check.run {
            let database = try await BackendDatabase.make(backend)
            return ConformanceDatabase(location: try database.location, remove: database.remove)
        }
    }

    @Test("A driver with only the core protocol passes the kit: each capability's check verifies its refusal instead")
    func coreOnlyDriver() async throws {
        try await StoreConformance.verify {
            let database = try TemporaryDatabase()
            let path = database.path
            let location = DatabaseLocation(description: "core-only") { CoreOnlyStore(try SQLiteStore(path: path)) }
            return ConformanceDatabase(location: location, remove: database.remove)
        }
    }

    @Test("verify runs every check and names each one that failed")
    func verifyReportsEveryFailure() async throws {
        let broken = DatabaseLocation(description: "broken") { throw ConformanceFailure("this database cannot open") }
        let error = await #expect(throws: ConformanceFailure.self) {
            try await StoreConformance.verify { ConformanceDatabase(location: broken) }
        }
        let message = error?.message ?? ""
        #expect(message.hasPrefix("\(StoreConformance.checks.count) of \(StoreConformance.checks.count) checks failed"), "\(message)")
        for check in StoreConformance.checks { #expect(message.contains(check.name)) }
    }
}

@Suite("PostgreSQL specifics", .timeLimit(.minutes(3)))
struct PostgresSpecificTests {
    @Test("The frequent statements (a one-row step, a plain finish, a new instance) run prepared; any other shape unnamed")
    func preparedFrequentStatements() {
        func prepared(_ transition: InstanceTransition) -> String? {
            let statement = TransitionStatement(transition, now: Date())
            return statement.needsTransaction ? nil : PostgresConnection.preparedName(of: statement.sql)
        }
        func step(_ payloads: [HistoryPayload], compensate: Bool = false) -> InstanceTransition {
            var transition = InstanceTransition.step(instanceID: "i-1", workerID: "w", currentActivityID: "a:1")
            transition.history = payloads.map { NewHistoryEvent(activityID: "a:1", eventType: "ActivityCompleted", payload: $0) }
            if compensate { transition.compensations = [CompensationRecord(activityID: "a:1", name: "undo", argsJSON: "{}")] }
            return transition
        }
        #expect(prepared(step([.json(#"{"result": 1}"#)])) == "edda_step_commit_v1")
        #expect(prepared(step([.binary([1, 2])])) == "edda_step_commit_v1")
        #expect(prepared(step([.json("1"), .json("2")])) == nil)
        #expect(prepared(step([.json("1")], compensate: true)) == nil)
        #expect(prepared(step([])) == nil)
        let suspend = InstanceTransition.suspend(
            instanceID: "i-1", workerID: "w", onTimer: TimerRegistration(timerID: "sleep:1", activityID: "sleep:1", expiresAt: Date()))
        #expect(prepared(suspend) == nil)
        var withWork = step([.json("1")])
        withWork.messages = [OutgoingMessage(messageID: "m", channel: "c", payload: .json("1"), metadataJSON: "{}", targetInstanceID: nil)]
        #expect(prepared(withWork) == nil, "a transition that needs a transaction")
        for status in [WorkflowStatus.completed, .failed, .cancelled] {
            #expect(prepared(.finish(instanceID: "i-1", workerID: "w", as: status, outputJSON: #"{"result": 1}"#)) == "edda_finish_v1")
        }
        var finishWithCompensation = InstanceTransition.finish(instanceID: "i-1", workerID: "w", as: .completed, outputJSON: "{}")
        finishWithCompensation.compensations = [CompensationRecord(activityID: "a:1", name: "undo", argsJSON: "{}")]
        #expect(prepared(finishWithCompensation) == nil)
        let locked = NewInstance(
            instanceID: "i-2", workflowName: "w", sourceHash: "h", sourceCode: "", ownerService: "s", inputJSON: "{}",
            continuedFrom: "i-1", lockTimeoutSeconds: 30, lockedBy: "w", lockExpiresAt: Date())
        let plain = NewInstance(instanceID: "i-3", workflowName: "w", sourceHash: "h", sourceCode: "", ownerService: "s", inputJSON: "{}")
        for instance in [locked, plain] {
            #expect(PostgresConnection.preparedName(of: PostgresStore.insertInstance(instance, now: Date()).sql) == "edda_create_instance_v1")
        }
        // A stale plan, a lost statement or a broken text close the connection; a conflict, a
        // deadlock or a timeout do not.
        for state in ["0A000", "26000", "42P01", "42703"] { #expect(PostgresConnection.breaksPreparedStatement(state), "\(state)") }
        for state in ["23505", "40P01", "57014", "55P03", nil] { #expect(!PostgresConnection.breaksPreparedStatement(state), "\(state ?? "nil")") }
    }

    @Test("A frequent statement first prepared with NULLs and JSON runs later with values and bytes on the same connection")
    func preparedParameterTypes() async throws {
        try await withBackend(.postgres) { database in
            _ = try await database.withApp { _ in }  // the schema
            let url = try #require(database.postgresURL)
            let rows = try await PostgresTestServer.withConnection(url) { connection in
                let logger = PostgresTestServer.logger
                let later = Date().addingTimeInterval(60)
                let plain = NewInstance(instanceID: "p-1", workflowName: "w", sourceHash: "h", sourceCode: "", ownerService: "s", inputJSON: "{}")
                let locked = NewInstance(
                    instanceID: "p-2", workflowName: "w", sourceHash: "h", sourceCode: "", ownerService: "s", inputJSON: "{}",
                    continuedFrom: "p-1", lockTimeoutSeconds: 30, lockedBy: "w-1", lockExpiresAt: later)
                for instance in [plain, locked] {
                    let created = try await connection.rows(preparingFrequent: PostgresStore.insertInstance(instance, now: Date()), logger: logger)
                    #expect(created.count == 1)
                }
                for (index, payload) in [HistoryPayload.json(#"{"a": 1}"#), .binary([0, 1, 255])].enumerated() {
                    var step = InstanceTransition.step(instanceID: "p-2", workerID: "w-1", currentActivityID: "a:\(index)")
                    step.history = [NewHistoryEvent(activityID: "a:\(index)", eventType: "ActivityCompleted", payload: payload)]
                    let committed = try await connection.rows(preparingFrequent: TransitionStatement(step, now: Date()).query, logger: logger)
                    #expect(committed.count == 1)
                }
                let finish = InstanceTransition.finish(instanceID: "p-2", workerID: "w-1", as: .completed, outputJSON: #"{"result": 2}"#)
                #expect(try await connection.rows(preparingFrequent: TransitionStatement(finish, now: Date()).query, logger: logger).count == 1)
                return try await connection.query(
                    """
                    SELECT i.lock_timeout_seconds, i.status, i.continued_from, h.data_type, h.event_data, h.event_data_binary
                    FROM workflow_instances i JOIN workflow_history h ON h.instance_id = i.instance_id
                    WHERE i.instance_id = 'p-2' ORDER BY h.activity_id
                    """, logger: logger
                ).collect().map { try $0.decode((Int?, String, String?, String, String?, ByteBuffer?).self) }
            }
            #expect(rows.count == 2)
            #expect(rows.allSatisfy { $0.0 == 30 && $0.1 == "completed" && $0.2 == "p-1" })
            #expect(rows.first?.3 == "json" && rows.first?.4 == #"{"a": 1}"#)
            #expect(rows.last?.3 == "binary" && rows.last?.5.map { Array($0.readableBytesView) } == [0, 1, 255])
        }
    }

    @Test("The user's SQL commits with the step and rolls back with a failed attempt")
    func userTransactionalWork() async throws {
        try await withBackend(.postgres) { database in
            let url = try #require(database.postgresURL)
            _ = try await PostgresTestServer.withConnection(url) { connection in
                try await connection.query("CREATE TABLE shipments (order_id TEXT PRIMARY KEY, attempt INT)", logger: PostgresTestServer.logger)
            }
            try await database.withApp { app in
                struct Rollback: Error {}
                let ship = ActivityDefinition<String, String>(
                    name: "ship", retryPolicy: RetryPolicy(initialInterval: .milliseconds(10), maxAttempts: 3)
                ) { orderID, context in
                    let attempt = context.attempt
                    context.postgresTransaction { connection in
                        try await connection.query(
                            "INSERT INTO shipments (order_id, attempt) VALUES (\(orderID), \(attempt))", logger: PostgresTestServer.logger)
                        if attempt == 1 { throw Rollback() }
                    }
                    return orderID
                }
                let flow = app.register(workflow: "shipper") { (orderID: String, context) -> String in
                    try await context.run(ship, input: orderID)
                }
                let result = try await app.run(flow, input: "A")
                #expect(result == "A")
            }
            let attempts = try await PostgresTestServer.withConnection(url) { connection in
                try await connection.query("SELECT attempt FROM shipments", logger: PostgresTestServer.logger)
                    .collect().map { try $0.decode(Int.self) }
            }
            #expect(attempts == [2])
        }
    }

    @Test("Transactional work for another database than the app's fails the step at once with a clear error, never retried or committed")
    func foreignTransactionalWork() async throws {
        try await withBackend(.sqlite) { database in
            try await database.withApp { app in
                let attempts = Recorder()
                let ship = ActivityDefinition<String, String>(name: "ship") { orderID, context in
                    attempts.record("attempt")
                    context.postgresTransaction { _ in }
                    return orderID
                }
                let flow = app.register(workflow: "wrong_database") { (orderID: String, context) -> String in
                    try await context.run(ship, input: orderID)
                }
                let error = await #expect(throws: WorkflowFailedError.self) { try await app.run(flow, input: "A") }
                #expect(error?.errorType == "EddaUsageError")
                let message = error?.message ?? ""
                #expect(message.contains("PostgresStore") && message.contains("SQLiteStore"), "\(message)")
                #expect(attempts.count("attempt") == 1)
                let history = try await app.history(of: try #require(try await app.findInstances(InstanceQuery()).instances.first?.instanceID))
                #expect(!history.contains { $0.eventType == "ActivityCompleted" })
            }
        }
    }

    @Test(
        "A delivery sweep never consumes a message for an instance whose lock another framework takes meanwhile (Python's deliver takes the lock, then writes)")
    func sweepRacesAForeignLockTaker() async throws {
        try await withBackend(.postgres) { database in
            let url = try #require(database.postgresURL)
            try await database.withApp(configure: { $0.runsBackgroundRecovery = false }) { app in
                let waiter = app.register(workflow: "pg_waiter") { (_: NoValue, context) -> Int in
                    try await context.subscribe("raced")
                    return try await context.receive("raced", as: Job.self).data.number
                }
                let id = try await app.start(waiter, input: NoValue())
                #expect(try await app.instance(id)?.status == .waitingForMessage)
                let claim = ClaimPolicy(workerID: "sweeper", leases: ["pg_waiter": .seconds(30)])
                // A message stored without delivery, as Python's publish_to_channel leaves it.
                let messageID = UUID().uuidString.lowercased()
                _ = try await PostgresTestServer.withConnection(url) { connection in
                    try await connection.query(
                        """
                        INSERT INTO channel_messages (channel, message_id, data_type, data, metadata, published_at)
                        VALUES ('raced', \(messageID), 'json', '{"number": 4}', '{}', NOW())
                        """, logger: PostgresTestServer.logger)
                }
                // Another framework takes the instance's lock in a transaction that is still open
                // while the sweep runs: the sweep must leave the instance alone.
                try await PostgresTestServer.withConnection(url) { locker in
                    try await locker.query("BEGIN", logger: PostgresTestServer.logger)
                    try await locker.query("SELECT 1 FROM workflow_instances WHERE instance_id = \(id) FOR UPDATE", logger: PostgresTestServer.logger)
                    try await locker.query(
                        """
                        UPDATE workflow_instances SET locked_by = 'publisher-python', locked_at = NOW(),
                            lock_expires_at = NOW() + INTERVAL '300 seconds'
                        WHERE instance_id = \(id)
                        """, logger: PostgresTestServer.logger)
                    let progress = Recorder()
                    let sweep = Task {
                        defer { progress.record("swept") }
                        return try await app.store.fireDueWaits(claim: claim, deadline: Date(), now: Date(), limit: 10)
                    }
                    // Commit once the sweep has finished, or waits for this transaction's row lock
                    // (the interleaving that used to consume the message).
                    while progress.count("swept") == 0 {
                        let blocked = try await locker.query(
                            """
                            SELECT count(*) FROM pg_stat_activity
                            WHERE wait_event_type = 'Lock' AND datname = current_database() AND pid <> pg_backend_pid()
                            """,
                            logger: PostgresTestServer.logger
                        ).collect().first?.decode(Int.self) ?? 0
                        if blocked > 0 { break }
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    try await locker.query("COMMIT", logger: PostgresTestServer.logger)
                    let claimedBySweep = try await sweep.value
                    #expect(claimedBySweep.isEmpty)
                }
                // Nothing was consumed: the instance still waits with its wait registered.
                #expect(try await app.instance(id)?.status == .waitingForMessage)
                #expect(try await app.history(of: id).filter { $0.eventType == "ChannelMessageReceived" }.isEmpty)
                // The other framework lets go without delivering; the next sweep delivers.
                _ = try await PostgresTestServer.withConnection(url) { connection in
                    try await connection.query(
                        "UPDATE workflow_instances SET locked_by = NULL, locked_at = NULL, lock_expires_at = NULL WHERE instance_id = \(id)",
                        logger: PostgresTestServer.logger)
                }
                let resumed = try await app.store.fireDueWaits(claim: claim, deadline: Date(), now: Date(), limit: 10)
                #expect(resumed.map(\.instance.instanceID) == [id])
                #expect(try await app.history(of: id).filter { $0.eventType == "ChannelMessageReceived" }.count == 1)
            }
        }
    }

    @Test("The server ends a session left idle in a transaction soon after the store gave up on it; a value the user set wins")
    func abandonedTransactionsEnd() async throws {
        let url = try await PostgresTestServer.makeDatabase()
        func setting(_ store: PostgresStore) async throws -> String {
            try await store.read { connection in
                try await connection.query("SHOW idle_in_transaction_session_timeout", logger: PostgresTestServer.logger)
                    .collect().first?.decode(String.self) ?? ""
            }
        }
        // Operations time out after 45 s: a transaction idle for 55 s has been given up.
        let store = PostgresStore(configuration: try PostgresURL.configuration(from: url), operationTimeout: .seconds(45))
        #expect(try await setting(store) == "55s")
        try await store.close()

        var configuration = try PostgresURL.configuration(from: url)
        configuration.options.additionalStartupParameters.append(("idle_in_transaction_session_timeout", "5000"))
        let own = PostgresStore(configuration: configuration)
        #expect(try await setting(own) == "5s")
        try await own.close()
    }

    @Test("Many workers migrating one database at once apply the schema once")
    func concurrentMigrations() async throws {
        let url = try await PostgresTestServer.makeDatabase()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let store = try PostgresStore(url: url)
                    try await store.migrate()
                    try await store.close()
                }
            }
            try await group.waitForAll()
        }
        let versions = try await PostgresTestServer.withConnection(url) { connection in
            try await connection.query("SELECT version FROM schema_migrations", logger: PostgresTestServer.logger)
                .collect().map { try $0.decode(String.self) }
        }
        #expect(versions == ["20251217000000"])
    }
}

/// A driver that adopts only ``WorkflowStore``: no channels, outbox, system locks or wake-ups.
/// (It hides `SQLiteStore`'s capabilities, so the engine and the kit see the core alone.)
struct CoreOnlyStore: WorkflowStore {
    let base: SQLiteStore
    /// While on, the reads of the background loops (recovery, due waits) fail.
    let outage: StoreOutage?
    init(_ base: SQLiteStore, outage: StoreOutage? = nil) {
        self.base = base
        self.outage = outage
    }

    func migrate() async throws { try await base.migrate() }
    func hasCurrentSchema() async throws -> Bool { try await base.hasCurrentSchema() }
    func createInstance(_ instance: NewInstance, now: Date) async throws -> CreateInstanceOutcome {
        try await base.createInstance(instance, now: now)
    }
    func claim(instanceID: String, workerID: String, leaseUntil: Date, now: Date) async throws -> ClaimedInstance? {
        try await base.claim(instanceID: instanceID, workerID: workerID, leaseUntil: leaseUntil, now: now)
    }
    func apply(_ transition: InstanceTransition, now: Date) async throws -> TransitionOutcome { try await base.apply(transition, now: now) }
    func releaseLock(instanceID: String, workerID: String, now: Date) async throws {
        try await base.releaseLock(instanceID: instanceID, workerID: workerID, now: now)
    }
    func renewLocks(instanceIDs: [String], workerID: String, leaseUntil: Date, now: Date) async throws -> [String: WorkflowStatus] {
        try await base.renewLocks(instanceIDs: instanceIDs, workerID: workerID, leaseUntil: leaseUntil, now: now)
    }
    func requestCancellation(instanceID: String, cancelledBy: String, now: Date) async throws -> CancellationOutcome {
        try await base.requestCancellation(instanceID: instanceID, cancelledBy: cancelledBy, now: now)
    }
    func resumableInstances(workflowNames: [String], limit: Int, now: Date) async throws -> [ResumableInstance] {
        try outage?.check()
        return try await base.resumableInstances(workflowNames: workflowNames, limit: limit, now: now)
    }
    func instance(id: String) async throws -> WorkflowInstance? { try await base.instance(id: id) }
    func history(instanceID: String) async throws -> [HistoryEvent] { try await base.history(instanceID: instanceID) }
    func compensations(instanceID: String) async throws -> [CompensationRecord] { try await base.compensations(instanceID: instanceID) }
    func findInstances(_ query: InstanceQuery) async throws -> InstancePage { try await base.findInstances(query) }
    func successor(of instanceID: String) async throws -> String? { try await base.successor(of: instanceID) }
    func fireDueWaits(claim: ClaimPolicy, deadline: Date, now: Date, limit: Int) async throws -> [ClaimedInstance] {
        try outage?.check()
        return try await base.fireDueWaits(claim: claim, deadline: deadline, now: now, limit: limit)
    }
    func nextWaitDeadline(workflowNames: [String]) async throws -> Date? {
        try outage?.check()
        return try await base.nextWaitDeadline(workflowNames: workflowNames)
    }
    func close() async throws { try await base.close() }
}

/// A switch that makes ``CoreOnlyStore``'s background reads fail, as a database that stopped
/// answering would.
final class StoreOutage: Sendable {
    struct Down: Error, CustomStringConvertible {
        var description: String { "the test's store outage" }
    }
    private let down = Mutex(false)
    var isOn: Bool {
        get { down.withLock { $0 } }
        set { down.withLock { $0 = newValue } }
    }
    func check() throws { if isOn { throw Down() } }
}
