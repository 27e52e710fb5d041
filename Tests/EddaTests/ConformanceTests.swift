@testable import Edda
@testable import EddaPostgres
import EddaTesting
import Foundation
import GRDB
import PostgresNIO
import Testing

/// The backends every store behaviour is checked against.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres
    var testDescription: String { rawValue }
}

/// A fresh database on a backend, with the test settings of ``TemporaryDatabase``.
struct BackendDatabase: Sendable {
    let backend: Backend
    let sqlite: TemporaryDatabase?
    let postgresURL: String?

    static func make(_ backend: Backend) async throws -> BackendDatabase {
        switch backend {
        case .sqlite: return BackendDatabase(backend: backend, sqlite: try TemporaryDatabase(), postgresURL: nil)
        case .postgres: return BackendDatabase(backend: backend, sqlite: nil, postgresURL: try await PostgresTestServer.makeDatabase())
        }
    }

    var location: DatabaseLocation {
        get throws {
            if let sqlite { return sqlite.location }
            return try .postgres(url: postgresURL ?? "")
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

/// The shared conformance suite: the same behaviour on every backend, through the public API.
@Suite("Store conformance", .timeLimit(.minutes(3)))
struct ConformanceTests {
    @Test("Activities run once and replay; a failure compensates newest first", arguments: Backend.allCases)
    func runAndCompensate(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            let recorder = Recorder()
            try await database.withApp { app in
                app.register(Checkout(recorder: recorder))
                let receipt = try await app.run(Checkout.self, input: Order(id: "o1", amount: 4))
                #expect(receipt == Receipt(orderID: "o1", charged: 400, reservation: "R-o1"))
                let history = try await app.history(of: "checkout-missing").count
                #expect(history == 0)
                let saga = app.register(workflow: "saga") { (_: NoValue, context) -> String in
                    _ = try await context.run(Book(recorder: recorder), input: "hotel")
                    try context.registerCompensation(Refund(recorder: recorder), input: 9)
                    _ = try await context.run(Book(recorder: recorder), input: "flight")
                    throw TerminalError("no seats")
                }
                let failure = await #expect(throws: WorkflowFailedError.self) { try await app.run(saga, input: NoValue()) }
                #expect(failure?.message == "no seats")
                #expect(recorder.all.suffix(3) == ["undo booking-flight", "refund 9", "undo booking-hotel"])
            }
        }
    }

    @Test("An app stopped mid-step is resumed by another; no completed step runs twice", arguments: Backend.allCases)
    func resumeAfterStop(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            let recorder = Recorder()
            let gate = Gate()
            let register: (EddaApp) -> WorkflowReference<String, String> = { app in
                app.register(workflow: "held") { (input: String, context) -> String in
                    _ = try await context.run(Note(recorder: recorder), input: "first")
                    return try await context.run(Hold(gate: gate, recorder: recorder), input: input)
                }
            }
            let id = try await database.withApp { app in
                let id = try await app.startDetached(register(app), input: "x")
                try await eventually("the held step") { recorder.count("hold") == 1 }
                return id
            }
            gate.open()
            let result = try await database.withApp(serviceName: "second") { app in
                _ = register(app)
                return try await app.result(of: id, as: String.self)
            }
            #expect(result == "released x")
            #expect(recorder.count("first") == 1)
        }
    }

    @Test("Timers and receive timeouts follow the workflow clock", arguments: Backend.allCases)
    func timersAndTimeouts(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            let clock = ManualClock()
            let recorder = Recorder()
            try await database.withApp(configure: { $0.clock = clock }) { app in
                app.register(Napper(recorder: recorder))
                let napper = try await app.start(Napper.self, input: Nap(seconds: 3_600))
                let waiter = app.register(workflow: "waiter") { (_: NoValue, context) -> String in
                    do {
                        _ = try await context.waitEvent("never", as: Job.self, timeout: .seconds(60))
                        return "event"
                    } catch is EventTimeoutError {
                        return "timed out"
                    }
                }
                let waiting = try await app.start(waiter, input: NoValue())
                let sleeping = try #require(try await app.instance(napper))
                #expect(sleeping.status == .waitingForTimer)
                #expect(sleeping.lockedBy == nil)
                clock.advance(by: .seconds(3_600))
                #expect(try await app.result(of: napper, as: String.self) == "after")
                #expect(try await app.result(of: waiting, as: String.self) == "timed out")
                let events = try await app.history(of: napper).map(\.eventType)
                #expect(events == ["ActivityCompleted", "TimerExpired", "ActivityCompleted"])
            }
        }
    }

    @Test("Channels: broadcast, competing, direct, point-to-point events, kept messages", arguments: Backend.allCases)
    func channels(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            try await database.withApp { app in
                let listener = app.register(workflow: "listener") { (_: NoValue, context) -> Int in
                    try await context.subscribe("news")
                    return try await context.receive("news", as: Job.self).data.number
                }
                let worker = app.register(workflow: "worker") { (_: NoValue, context) -> Int in
                    try await context.subscribe("jobs", mode: .competing)
                    return try await context.receive("jobs", as: Job.self).data.number
                }
                let receiver = app.register(workflow: "receiver") { (_: NoValue, context) -> String in
                    try await context.subscribe("inbox", mode: .direct)
                    return try await context.receive("inbox", as: [String: String].self).data["text"] ?? ""
                }
                let sender = app.register(workflow: "sender") { (target: String, context) -> Bool in
                    try await context.sendTo(target, data: ["text": "hi"], channel: "inbox")
                }
                let order = app.register(workflow: "order") { (_: NoValue, context) -> Int in
                    try await context.waitEvent("paid", as: Job.self).data.number
                }
                let listeners = [try await app.start(listener, input: NoValue()), try await app.start(listener, input: NoValue())]
                #expect(Set(try await app.publish(to: "news", data: Job(number: 5)).deliveredTo) == Set(listeners))
                for id in listeners { #expect(try await app.result(of: id, as: Int.self) == 5) }

                try await app.publish(to: "jobs", data: Job(number: 1))  // kept until a worker receives it
                let workers = [try await app.start(worker, input: NoValue()), try await app.start(worker, input: NoValue())]
                #expect(try await app.publish(to: "jobs", data: Job(number: 2)).deliveredTo.count == 1)
                let numbers = [try await app.result(of: workers[0], as: Int.self), try await app.result(of: workers[1], as: Int.self)]
                #expect(numbers.sorted() == [1, 2])

                let target = try await app.start(receiver, input: NoValue())
                #expect(try await app.run(sender, input: target) == true)
                #expect(try await app.result(of: target, as: String.self) == "hi")

                let a = try await app.start(order, input: NoValue())
                let b = try await app.start(order, input: NoValue())
                #expect(try await app.sendEvent(CloudEventAttributes(type: "paid", source: "/"), data: Job(number: 7), to: a).deliveredTo == [a])
                #expect(try await app.result(of: a, as: Int.self) == 7)
                #expect(try await app.instance(b)?.status == .waitingForMessage)
                #expect(try await app.cancel(instanceID: b))
                #expect(try await app.instance(b)?.status == .cancelled)
            }
        }
    }

    @Test("Recur chains archive history and result follows the chain", arguments: Backend.allCases)
    func recur(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            try await database.withApp { app in
                let loop = app.register(workflow: "doubling") { (value: Int, context) -> Int in
                    _ = try await context.run(Note(recorder: Recorder()), input: "\(value)")
                    if value >= 8 { return value }
                    try await context.recur(with: value * 2)
                }
                let first = try await app.start(loop, input: 1)
                #expect(try await app.result(of: first, as: Int.self) == 8)
                #expect(try await app.instance(first)?.status == .recurred)
                #expect(try await app.history(of: first).isEmpty)
                var query = InstanceQuery()
                query.workflowName = "doubling"
                #expect(try await app.findInstances(query).instances.count == 4)
            }
        }
    }

    @Test("Queries filter by status, name, input and page through results", arguments: Backend.allCases)
    func queries(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            try await database.withApp { app in
                let flow = app.register(workflow: "lookup") { (order: Order, _) -> Int in order.amount }
                for index in 0..<5 { _ = try await app.run(flow, input: Order(id: "id-\(index)", amount: index)) }
                var query = InstanceQuery()
                query.inputFilters = ["amount": 3]
                #expect(try await app.findInstances(query).instances.map { $0.inputData["id"] } == ["id-3"])
                query = InstanceQuery()
                query.inputFilters = ["id": "id-1"]
                query.status = .completed
                #expect(try await app.findInstances(query).instances.count == 1)
                query = InstanceQuery()
                query.search = "LOOK"
                query.limit = 2
                var seen: [String] = []
                while true {
                    let page = try await app.findInstances(query)
                    seen += page.instances.map(\.instanceID)
                    guard let token = page.nextPageToken else { break }
                    query.pageToken = token
                }
                #expect(seen.count == 5)
                #expect(Set(seen).count == 5)
                query = InstanceQuery()
                query.inputFilters = ["bad path": 1]
                await #expect(throws: EddaUsageError.self) { try await app.findInstances(query) }
            }
        }
    }

    @Test("Input filters compare numbers exactly, beyond a Double's precision", arguments: Backend.allCases)
    func exactNumberFilters(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            try await database.withApp { app in
                app.register(workflow: "exact_filter") { (_: JSONValue, _: WorkflowContext) -> Int in 0 }
                for (id, amount) in [("low", "9007199254740992"), ("high", "9007199254740993"), ("sum", "0.30000000000000004")] {
                    _ = try await app.start(workflowNamed: "exact_filter", inputJSON: #"{"amount":\#(amount)}"#, instanceID: id)
                }
                func matching(_ literal: String) async throws -> [String] {
                    var query = InstanceQuery()
                    query.inputFilters = ["amount": try JSONValue(parsing: literal)]
                    return try await app.findInstances(query).instances.map(\.instanceID)
                }
                #expect(try await matching("9007199254740993") == ["high"])
                #expect(try await matching("9007199254740992") == ["low"])
                #expect(try await matching("0.30000000000000004") == ["sum"])
                #expect(try await matching("0.3").isEmpty)
            }
        }
    }

    @Test("Outbox rows are written with the step, taken by one relayer, and finished", arguments: Backend.allCases)
    func outbox(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            try await database.withApp(configure: { $0.runsBackgroundRecovery = false }) { app in
                let emit = ActivityDefinition<String, String>(name: "emit") { id, context in
                    try context.sendEventTransactional(type: "order.shipped", source: "/shop", data: ["id": id])
                    return id
                }
                let flow = app.register(workflow: "emitter") { (id: String, context) -> String in
                    try await context.run(emit, input: id)
                }
                _ = try await app.run(flow, input: "A")
                let claim = OutboxClaim(limit: 10, maxRetries: 3, reclaimProcessingBefore: Date().addingTimeInterval(-60))
                let taken = try await app.store.claimOutboxEvents(claim, now: Date())
                #expect(taken.count == 1)
                #expect(taken.first?.payload == .json(#"{"id":"A"}"#))
                #expect(try await app.store.claimOutboxEvents(claim, now: Date()).isEmpty)
                try await app.store.finishOutboxEvent(eventID: taken[0].eventID, outcome: .failed("HTTP 503"), now: Date())
                let retried = try await app.store.claimOutboxEvents(claim, now: Date())
                #expect(retried.first?.retryCount == 1)
                try await app.store.finishOutboxEvent(eventID: taken[0].eventID, outcome: .published, now: Date())
                #expect(try await app.store.outboxEvent(id: taken[0].eventID)?.status == .published)
            }
        }
    }

    @Test("The leader lease is held by one app and moves on shutdown", arguments: Backend.allCases)
    func leader(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            let configure: (inout EddaApp.Configuration) -> Void = {
                $0.leaderHeartbeatInterval = .milliseconds(100)
                // Failover here comes from the release on shutdown, never from expiry: a lease
                // this long cannot lapse on a live leader however loaded the machine is.
                $0.leaderLeaseDuration = .seconds(60)
            }
            var first = try database.configuration(serviceName: "first")
            configure(&first)
            let leader = try await EddaApp(configuration: first)
            try await eventually("a leader") { leader.isLeader }
            try await database.withApp(serviceName: "second", configure: configure) { second in
                try await Task.sleep(for: .milliseconds(300))
                #expect(!second.isLeader)
                await leader.shutdown()
                try await eventually("failover") { second.isLeader }
            }
        }
    }

    @Test("An event delivered by another app wakes the waiting instance in its own app", arguments: Backend.allCases)
    func crossAppDelivery(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            try await database.withApp(serviceName: "runner") { runner in
                let flow = runner.register(workflow: "awaiting") { (_: NoValue, context) -> Int in
                    try await context.waitEvent("go", as: Job.self).data.number
                }
                let id = try await runner.start(flow, input: NoValue())
                let receipt = try await database.withApp(serviceName: "sender", configure: { $0.runsBackgroundRecovery = false }) { sender in
                    try await sender.sendEvent(CloudEventAttributes(type: "go", source: "/"), data: Job(number: 3))
                }
                #expect(receipt.deliveredTo == [id])
                #expect(try await runner.result(of: id, as: Int.self) == 3)
            }
        }
    }
}

@Suite("PostgreSQL specifics", .timeLimit(.minutes(3)))
struct PostgresSpecificTests {
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
