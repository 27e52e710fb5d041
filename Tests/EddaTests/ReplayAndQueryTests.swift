import Edda
import EddaSQLite
import EddaTesting
import Foundation
import GRDB
import Testing

@Suite("Replay", .timeLimit(.minutes(2)))
struct ReplayTests {
    @Test("a changed step is detected as divergence; the instance stays resumable until the code matches")
    func divergence() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let gate = Gate()
            let stepA = ActivityDefinition<String, String>(name: "step_a") { input, _ in
                recorder.record("a")
                return input + "a"
            }
            let stepB = ActivityDefinition<String, String>(name: "step_b") { input, _ in
                recorder.record("b")
                return input + "b"
            }
            let original: (EddaApp) -> WorkflowReference<String, String> = { app in
                app.register(workflow: "evolving") { (input: String, context) -> String in
                    let a = try await context.run(stepA, input: input)
                    return try await context.run(Hold(gate: gate, recorder: recorder), input: a)
                }
            }
            let id = try await startAndStop(database, register: original, input: "x", heldBy: recorder)

            // New code runs a different activity first: step_a:1 is recorded but step_b:1 is asked for.
            try await withApp(database, configure: { $0.runsBackgroundRecovery = false }) { changed in
            changed.register(workflow: "evolving") { (input: String, context) -> String in
                try await context.run(stepB, input: input)
            }
            #expect(try await changed.resume(instanceID: id))
            let stuck = try #require(try await changed.instance(id))
            #expect(stuck.status == .running)
            #expect(stuck.lockedBy == nil)
            #expect(recorder.count("b") == 0)
            // A step renamed behind an explicit ID is caught by its recorded name too.
            changed.register(workflow: "evolving") { (input: String, context) -> String in
                try await context.run(stepB, input: input, id: "step_a:1")
            }
            #expect(try await changed.resume(instanceID: id))
            #expect(recorder.count("b") == 0)
            }

            gate.open()
            try await withApp(database) { fixed in
                _ = original(fixed)
                let result = try await fixed.result(of: id, as: String.self)
                #expect(result == "released xa")
                #expect(recorder.count("a") == 1)
            }
        }
    }

    @Test("concurrent handles get deterministic IDs and replay after a crash")
    func handles() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let gate = Gate()
            let slow = ActivityDefinition<Int, Int>(name: "square") { value, _ in
                recorder.record("square \(value)")
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...20)))
                return value * value
            }
            let register: (EddaApp) -> WorkflowReference<Int, Int> = { app in
                app.register(workflow: "fan_out") { (count: Int, context) -> Int in
                    let handles = (1...count).map { context.start(slow, input: $0) }
                    var total = 0
                    for handle in handles { total += try await handle.value }
                    _ = try await context.run(Hold(gate: gate, recorder: recorder), input: "\(total)")
                    return total
                }
            }
            let id = try await startAndStop(database, register: register, input: 5, heldBy: recorder)
            let ids = try rows(database, "SELECT activity_id FROM workflow_history").map { $0["activity_id"] as String }
            #expect(Set(ids) == Set((1...5).map { "square:\($0)" }))

            gate.open()
            try await withApp(database) { second in
                _ = register(second)
                let total = try await second.result(of: id, as: Int.self)
                #expect(total == 55)
                #expect(recorder.all.filter { $0.hasPrefix("square") }.count == 5)
            }
        }
    }

    @Test("now, uuid and random are recorded once and replayed")
    func deterministicValues() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let gate = Gate()
            let register: (EddaApp) -> WorkflowReference<String, String> = { app in
                app.register(workflow: "values") { (input: String, context) -> String in
                    let now = try await context.now()
                    let uuid = try await context.uuid()
                    let dice = try await context.random(in: 1...1_000_000)
                    _ = try await context.run(Hold(gate: gate, recorder: recorder), input: input)
                    return "\(now.timeIntervalSince1970) \(uuid) \(dice)"
                }
            }
            let id = try await startAndStop(database, register: register, input: "x", heldBy: recorder)
            let recorded = try rows(database, "SELECT activity_id FROM workflow_history ORDER BY id").map { $0["activity_id"] as String }
            #expect(recorded == ["now:1", "uuid:1", "random:1"])
            let values = try rows(database, "SELECT event_data FROM workflow_history ORDER BY id").compactMap {
                JSONValue(jsonText: $0["event_data"])?["result"]
            }

            gate.open()
            let result = try await withApp(database) { second in
                _ = register(second)
                return try await second.result(of: id, as: String.self)
            }
            let parts = result.split(separator: " ")
            #expect(parts[1].lowercased() == values[1].stringValue)
            #expect(values[2] == .number(Double(parts[2]) ?? -1))
        }
    }

    @Test("hooks fire for start, live and cached activities, and completion")
    func hooks() async throws {
        try await withDatabase { database in
            let hooks = RecordingHooks()
            let app = try await database.makeApp { $0.hooks = hooks }
            let echo = ActivityDefinition<String, String>(name: "echo") { input, _ in input }
            let flow = app.register(workflow: "hooked") { (input: String, context) in
                try await context.run(echo, input: input)
            }
            _ = try await app.run(flow, input: "hi", instanceID: "hooked-1")
            #expect(hooks.events == [
                "started hooked-1", "activity echo:1 replay=false", "done echo:1 cache=false", "completed hooked-1 \"hi\"",
            ])
            await app.shutdown()
        }
    }

    @Test("the user's own SQL commits with the step, and a failing statement fails the attempt")
    func transactionalWork() async throws {
        try await withDatabase { database in
            let app = try await database.makeApp()
            let queue = try openDatabase(database.path)
            try await queue.write { try $0.execute(sql: "CREATE TABLE ledger (entry TEXT UNIQUE NOT NULL)") }
            try queue.close()
            let write = ActivityDefinition<String, String>(name: "write") { entry, context in
                let attempt = context.attempt
                context.transaction { db in
                    try db.execute(sql: "INSERT INTO ledger (entry) VALUES (?)", arguments: ["\(entry)-\(attempt)"])
                    // The first attempt's statement violates the constraint: the whole attempt rolls back.
                    if attempt == 1 {
                        try db.execute(sql: "INSERT INTO ledger (entry) VALUES (?)", arguments: ["\(entry)-\(attempt)"])
                    }
                }
                return entry
            }
            let flow = app.register(workflow: "ledger") { (entry: String, context) in
                try await context.run(write, input: entry)
            }
            #expect(try await app.run(flow, input: "e") == "e")
            #expect(try rows(database, "SELECT entry FROM ledger").map { $0["entry"] as String } == ["e-2"])
            await app.shutdown()
        }
    }
}

@Suite("Queries", .timeLimit(.minutes(2)))
struct QueryTests {
    @Test("findInstances filters by status, names, IDs, dates and input, and pages without gaps")
    func filtersAndPagination() async throws {
        try await withDatabase { database in
            struct Customer: Codable, Sendable { var id: String; var vip: Bool; var tier: Int? }
            struct Input: Codable, Sendable { var customer: Customer; var amount: Double; var note: String? }
            let app = try await database.makeApp()
            let billing = app.register(workflow: "billing") { (input: Input, _) in input.amount }
            let shipping = app.register(workflow: "shipping") { (input: Input, _) -> Double in
                throw TerminalError("no courier")
            }
            let before = Date()
            for index in 0..<25 {
                let input = Input(
                    customer: Customer(id: "c\(index % 5)", vip: index % 2 == 0, tier: index % 3 == 0 ? nil : index % 3),
                    amount: Double(index), note: index == 7 ? "it's \"quoted\" 100%_" : nil)
                if index % 4 == 0 {
                    _ = try? await app.start(shipping, input: input, instanceID: "ship-\(index)")
                } else {
                    _ = try await app.start(billing, input: input, instanceID: "bill-\(index)")
                }
            }
            func ids(_ configure: (inout InstanceQuery) -> Void) async throws -> Set<String> {
                var query = InstanceQuery()
                query.limit = 100
                configure(&query)
                return Set(try await app.findInstances(query).instances.map(\.instanceID))
            }
            #expect(try await ids { $0.status = .failed }.count == 7)
            #expect(try await ids { $0.workflowName = "SHIP" }.count == 7)
            #expect(try await ids { $0.instanceID = "bill-1" } == ["bill-1", "bill-10", "bill-11", "bill-13", "bill-14", "bill-15", "bill-17", "bill-18", "bill-19"])
            #expect(try await ids { $0.search = "ship" }.count == 7)
            #expect(try await ids { $0.inputFilters = ["customer.id": .string("c2")] } == ["bill-2", "bill-7", "ship-12", "bill-17", "bill-22"])
            #expect(try await ids { $0.inputFilters = ["customer.vip": .bool(true), "amount": .number(4)] } == ["ship-4"])
            #expect(try await ids { $0.inputFilters = ["customer.tier": .null] }.count == 9)
            #expect(try await ids { $0.inputFilters = ["note": .string("it's \"quoted\" 100%_")] } == ["bill-7"])
            #expect(try await ids { $0.search = "100%" }.isEmpty)
            #expect(try await ids { $0.startedAfter = before; $0.startedBefore = Date() }.count == 25)
            #expect(try await ids { $0.startedAfter = Date().addingTimeInterval(60) }.isEmpty)

            var query = InstanceQuery()
            query.limit = 10
            var seen: [String] = []
            var pages = 0
            while true {
                let page = try await app.findInstances(query)
                pages += 1
                seen += page.instances.map(\.instanceID)
                guard page.hasMore, let token = page.nextPageToken else { break }
                query.pageToken = token
            }
            #expect(pages == 3)
            #expect(seen.count == 25 && Set(seen).count == 25)
            let all = try await app.findInstances({ var q = InstanceQuery(); q.limit = 100; return q }()).instances
            #expect(seen == all.map(\.instanceID))

            for bad in ["a..b; DROP TABLE x", "1abc", "a-b", "$.a", ""] {
                await #expect(throws: EddaUsageError.self) {
                    var query = InstanceQuery()
                    query.inputFilters = [bad: .string("x")]
                    _ = try await app.findInstances(query)
                }
            }
            await #expect(throws: EddaUsageError.self) {
                var query = InstanceQuery()
                query.pageToken = "garbage"
                _ = try await app.findInstances(query)
            }
            await #expect(throws: EddaUsageError.self) {
                var query = InstanceQuery()
                query.limit = 0
                _ = try await app.findInstances(query)
            }
            #expect(try rows(database, "SELECT COUNT(*) AS n FROM workflow_instances").first?["n"] as Int? == 25)
            await app.shutdown()
        }
    }
}
