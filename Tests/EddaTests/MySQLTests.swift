@testable import Edda
@testable import EddaMySQL
import EddaPostgres
import EddaSQLite
import EddaTesting
import Foundation
import Synchronization
import Testing

/// What only the MySQL driver has: URLs, its connection form for the user's SQL, escaping,
/// whole-second timestamps, concurrent migrations. Everything else it shares with the other
/// backends runs in the conformance kit, the chaos test and the interop tests.
@Suite("MySQL specifics", .timeLimit(.minutes(3)))
struct MySQLSpecificTests {
    @Test("URLs: mysql://, mariadb:// and Python's mysql+aiomysql:// name the same database; options are read; bad ones are refused")
    func urls() throws {
        for url in ["mysql://edda:s%40cret@db.local:3307/orders", "mariadb://edda:s%40cret@db.local:3307/orders",
                    "mysql+aiomysql://edda:s%40cret@db.local:3307/orders"] {
            let configuration = try MySQLConfiguration(url: url)
            #expect(configuration.host == "db.local")
            #expect(configuration.port == 3307)
            #expect(configuration.username == "edda")
            #expect(configuration.password == "s@cret")
            #expect(configuration.database == "orders")
            #expect(configuration.maximumConnections == 10)
        }
        let tuned = try MySQLConfiguration(url: "mysql://root@localhost/orders?pool_size=3&connect_timeout=4&ssl=true")
        #expect(tuned.port == 3306)
        #expect(tuned.maximumConnections == 3)
        #expect(tuned.connectTimeout == .seconds(4))
        #expect(tuned.requiresTLS)
        let socket = try MySQLConfiguration(url: "mysql://root@localhost/orders?unix_socket=/run/mysqld/mysqld.sock")
        #expect(socket.unixSocket == "/run/mysqld/mysqld.sock")
        for bad in ["mysql://db.local:3306/", "postgresql://db.local/orders", "mysql:///orders"] {
            #expect(throws: EddaUsageError.self, "\(bad)") { _ = try MySQLConfiguration(url: bad) }
        }
        let location = try DatabaseLocation.url("mysql+aiomysql://edda@db.local/orders", drivers: [SQLiteStore.self, MySQLStore.self])
        #expect(location.description == "mysql://edda@db.local:3306/orders")
    }

    @Test("Values are sent escaped: quotes, backslashes, NUL, control characters and any Unicode come back byte for byte")
    func escaping() async throws {
        try await withBackend(.mysql) { database in
            let store = try MySQLStore(url: try #require(database.mysqlURL))
            defer { Task { try? await store.close() } }
            let nasty = "it's \\\"quoted\\\" \\\\ \u{0}NUL\n\r\t\u{1A}\u{7F} ünïcødé 🦆 '); DROP TABLE t; --"
            let bytes: [UInt8] = Array(0...255)
            let (text, blob, stamp) = try await store.read { connection in
                try connection.execute("CREATE TABLE t (s LONGTEXT, b LONGBLOB, d TIMESTAMP NULL)")
                try connection.execute(
                    "INSERT INTO t (s, b, d) VALUES (\(nasty), \(bytes), \(Date(timeIntervalSince1970: 1_800_000_000.25)))")
                let row = try #require(try connection.query("SELECT s, b, d FROM t").first)
                return (try row.string("s"), try row.bytes("b"), try row.date("d"))
            }
            #expect(text == nasty)
            #expect(blob == bytes)
            // A `TIMESTAMP` column keeps whole seconds.
            #expect(stamp == Date(timeIntervalSince1970: 1_800_000_000))
        }
    }

    @Test("The user's SQL commits with the step and rolls back with a failed attempt; another database's form is refused")
    func userTransactionalWork() async throws {
        try await withBackend(.mysql) { database in
            let url = try #require(database.mysqlURL)
            _ = try await MariaDBTestServer.execute(url, "CREATE TABLE shipments (order_id VARCHAR(64) PRIMARY KEY, attempt INT)")
            try await database.withApp { app in
                struct Rollback: Error {}
                let ship = ActivityDefinition<String, String>(
                    name: "ship", retryPolicy: RetryPolicy(initialInterval: .milliseconds(10), maxAttempts: 3)
                ) { orderID, context in
                    let attempt = context.attempt
                    context.mysqlTransaction { connection in
                        try connection.execute("INSERT INTO shipments (order_id, attempt) VALUES (\(orderID), \(attempt))")
                        if attempt == 1 { throw Rollback() }
                    }
                    return orderID
                }
                let flow = app.register(workflow: "shipper") { (orderID: String, context) -> String in
                    try await context.run(ship, input: orderID)
                }
                let result = try await app.run(flow, input: "A")
                #expect(result == "A")

                let wrong = ActivityDefinition<String, String>(
                    name: "wrong_form", retryPolicy: RetryPolicy(initialInterval: .milliseconds(10), maxAttempts: 1)
                ) { orderID, context in
                    context.postgresTransaction { _ in }
                    return orderID
                }
                let misfit = app.register(workflow: "misfit") { (orderID: String, context) -> String in
                    try await context.run(wrong, input: orderID)
                }
                let error = await #expect(throws: WorkflowFailedError.self) { _ = try await app.run(misfit, input: "C") }
                let message = error.map { "\($0)" } ?? ""
                #expect(message.contains("mysqlTransaction"), "\(message)")
            }
            let rows = try await MariaDBTestServer.execute(url, "SELECT order_id, attempt FROM shipments ORDER BY order_id")
            // The first attempt's row rolled back with its step; the second's committed with it.
            #expect(rows.split(separator: "\n").map(String.init) == ["A\t2"])
        }
    }

    @Test("A timer on the real clock never fires before its instant, although the column holds whole seconds")
    func timerNeverEarly() async throws {
        try await withBackend(.mysql) { database in
            try await database.withApp { app in
                let stamp = ActivityDefinition<String, Double>(name: "stamp") { _, _ in Date().timeIntervalSince1970 }
                let flow = app.register(workflow: "napper") { (_: String, context) -> [Double] in
                    let before = try await context.run(stamp, input: "before")
                    try await context.sleep(for: .milliseconds(1_300))
                    let after = try await context.run(stamp, input: "after")
                    return [before, after]
                }
                let times = try await app.run(flow, input: "x")
                let slept = times[1] - times[0]
                #expect(slept >= 1.3, "woke after \(slept) s")
                #expect(slept < 30, "woke after \(slept) s")
            }
        }
    }

    @Test("Eight stores migrating one new database at once apply the schema once, and all find it current")
    func concurrentMigrations() async throws {
        try await withBackend(.mysql) { database in
            let url = try #require(database.mysqlURL)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let store = try MySQLStore(url: url)
                        do {
                            try await store.migrate()
                            #expect(try await store.hasCurrentSchema())
                        } catch {
                            try? await store.close()
                            throw error
                        }
                        try await store.close()
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await MariaDBTestServer.execute(url, "SELECT version FROM schema_migrations") == "20251217000000\n")
            #expect(try await MariaDBTestServer.execute(url, "SELECT COUNT(*) FROM schema_version") == "1\n")
        }
    }

    @Test("After the server drops every connection of the store (as a restart does), the app's next operations work")
    func connectionsDroppedByTheServer() async throws {
        try await withBackend(.mysql) { database in
            let url = try #require(database.mysqlURL)
            let name = try #require(URLComponents(string: url)?.path.dropFirst()).description
            // No background work: only these calls use the pool, so none of them meets a dead
            // connection by chance first.
            try await database.withApp(configure: { $0.runsBackgroundRecovery = false }) { app in
                let step = ActivityDefinition<String, String>(name: "echo") { input, _ in input }
                let flow = app.register(workflow: "echoes") { (input: String, context) -> String in
                    try await context.run(step, input: input)
                }
                let first = try await app.run(flow, input: "before")
                #expect(first == "before")
                let ids = try await MariaDBTestServer.execute(
                    url, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '\(name)' AND ID <> CONNECTION_ID()")
                    .split(separator: "\n").map(String.init)
                #expect(!ids.isEmpty, "the app holds connections")
                for id in ids { _ = try? await MariaDBTestServer.execute(url, "KILL CONNECTION \(id)") }
                try await Task.sleep(for: .milliseconds(2_500))
                let second = try await app.run(flow, input: "after")
                #expect(second == "after")
                #expect(try await app.history(of: try await app.start(flow, input: "again")).count == 1)
            }
        }
    }

    @Test("A transaction inside the step's transaction is a savepoint: rolled back alone, and committed only with the step")
    func nestedTransaction() async throws {
        try await withBackend(.mysql) { database in
            let url = try #require(database.mysqlURL)
            _ = try await MariaDBTestServer.execute(url, "CREATE TABLE notes (text VARCHAR(64) PRIMARY KEY)")
            try await database.withApp { app in
                struct Undo: Error {}
                let write = ActivityDefinition<String, String>(
                    name: "write", retryPolicy: RetryPolicy(initialInterval: .milliseconds(10), maxAttempts: 2)
                ) { input, context in
                    let attempt = context.attempt
                    context.mysqlTransaction { connection in
                        try connection.execute("INSERT INTO notes (text) VALUES (\("\(attempt)-kept"))")
                        _ = try? connection.transaction {
                            try connection.execute("INSERT INTO notes (text) VALUES (\("\(attempt)-undone"))")
                            throw Undo()
                        }
                        _ = try connection.transaction {
                            try connection.execute("INSERT INTO notes (text) VALUES (\("\(attempt)-inner"))")
                        }
                        // The first attempt fails after its inner transactions ended: none of
                        // its rows may stay (a real inner transaction would have committed them).
                        if attempt == 1 { throw Undo() }
                    }
                    return input
                }
                let flow = app.register(workflow: "writer") { (input: String, context) -> String in
                    try await context.run(write, input: input)
                }
                let result = try await app.run(flow, input: "a")
                #expect(result == "a")
            }
            let rows = try await MariaDBTestServer.execute(url, "SELECT text FROM notes ORDER BY text")
            #expect(rows.split(separator: "\n").map(String.init) == ["2-inner", "2-kept"])
        }
    }

    /// The chaos test found a suspension committed without its timer row after its worker was
    /// killed during the batch, when `COMMIT` was the batch's last statement: the server went on
    /// to the batch's end without the client. The commit is now the client's, once it has read
    /// every result.
    @Test("A batch commits only when its client has read every result and accepted them; a client gone first commits nothing")
    func batchCommitsAfterItsResults() async throws {
        try await withBackend(.mysql) { database in
            let url = try #require(database.mysqlURL)
            let store = try MySQLStore(url: url)
            let observer = try MySQLStore(url: url)
            try await store.read { connection in try connection.execute("CREATE TABLE marks (n INT PRIMARY KEY)") }
            @Sendable func committed() async throws -> [Int] {
                try await observer.read { connection in try connection.query("SELECT n FROM marks ORDER BY n").compactMap { try $0.int("n") } }
            }
            // What another connection sees while the batch's client decides: nothing yet.
            let seenBeforeCommit = Mutex<[Int]?>(nil)
            _ = try await store.read { connection in
                try connection.transactionBatch(["INSERT INTO marks VALUES (1)"]) { _ in
                    seenBeforeCommit.withLock { $0 = waitFor(committed) }
                    return true
                }
            }
            #expect(seenBeforeCommit.withLock { $0 } == [])
            #expect(try await committed() == [1])
            // Refused (a compare-and-set that did not match): rolled back.
            _ = try await store.read { connection in try connection.transactionBatch(["INSERT INTO marks VALUES (2)"]) { _ in false } }
            #expect(try await committed() == [1])
            // The client's connection gone after the batch ran and before it committed.
            do {
                _ = try await store.read { connection in
                    try connection.transactionBatch(["INSERT INTO marks VALUES (3)", "SELECT CONNECTION_ID() AS id"]) { outcomes in
                        let id = try #require(try outcomes.last?.rows.first?.int("id"))
                        _ = waitFor { try await MariaDBTestServer.execute(url, "KILL CONNECTION \(id)") }
                        return true
                    }
                }
                Issue.record("a batch committed on a connection the server had closed")
            } catch let error as MySQLError {
                #expect(error.breaksConnection, "\(error)")
            }
            #expect(try await committed() == [1])
            try await store.close()
            try await observer.close()
        }
    }
}

/// Runs `work` to its end from a thread outside Swift's concurrency pool (a connection's own
/// thread, here): the thread waits; the pool does the work. `nil` if it threw.
private func waitFor<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) -> T? {
    let result = Mutex<T?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let value = try? await work()
        result.withLock { $0 = value }
        done.signal()
    }
    done.wait()
    return result.withLock { $0 }
}
