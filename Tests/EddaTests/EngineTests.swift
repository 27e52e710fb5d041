import Edda
import EddaSQLite
import EddaTesting
import Foundation
import GRDB
import Testing

struct Order: Codable, Sendable, Equatable {
    var id: String
    var amount: Int
}

struct Receipt: Codable, Sendable, Equatable {
    var orderID: String
    var charged: Int
    var reservation: String
}

struct Reserve: Activity {
    static let name = "reserve"
    let recorder: Recorder
    func run(_ order: Order, context: ActivityContext) async throws -> String {
        recorder.record("reserve")
        return "R-\(order.id)"
    }
}

struct Charge: Activity {
    static let name = "charge"
    let recorder: Recorder
    func run(_ order: Order, context: ActivityContext) async throws -> Int {
        recorder.record("charge")
        return order.amount * 100
    }
}

struct Checkout: Workflow {
    static let name = "checkout"
    let recorder: Recorder
    func run(_ order: Order, context: WorkflowContext) async throws -> Receipt {
        let reservation = try await context.run(Reserve(recorder: recorder), input: order)
        let charged = try await context.run(Charge(recorder: recorder), input: order)
        return Receipt(orderID: order.id, charged: charged, reservation: reservation)
    }
}

/// Waits on a gate: holds a workflow mid-step so a test can stop the app there.
struct Hold: Activity {
    static let name = "hold"
    let gate: Gate
    let recorder: Recorder
    func run(_ input: String, context: ActivityContext) async throws -> String {
        recorder.record("hold")
        await gate.wait()
        try Task.checkCancellation()
        return "released \(input)"
    }
}

@Suite("Core engine", .timeLimit(.minutes(2)))
struct EngineTests {
    @Test("run returns the result and stores the reference's shapes")
    func runStoresResult() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let app = try await database.makeApp()
            app.register(Checkout(recorder: recorder))
            let receipt = try await app.run(Checkout.self, input: Order(id: "o1", amount: 3), instanceID: "order-1")
            #expect(receipt == Receipt(orderID: "o1", charged: 300, reservation: "R-o1"))
            await app.shutdown()

            let instance = try #require(try rows(database, "SELECT * FROM workflow_instances").first)
            #expect(instance["status"] as String == "completed")
            #expect(instance["framework"] as String == "swift")
            #expect(instance["owner_service"] as String == "test")
            #expect(instance["locked_by"] as String? == nil)
            let input = try #require(JSONValue(jsonText: instance["input_data"]))
            #expect(input == .object(["id": .string("o1"), "amount": .number(3)]))
            let output = try #require(JSONValue(jsonText: instance["output_data"]))
            #expect(output["result"]?["charged"] == .number(300))
            // Sub-second UTC timestamps.
            #expect((instance["started_at"] as String).contains("."))

            let history = try rows(database, "SELECT activity_id, event_type, event_data FROM workflow_history ORDER BY id")
            #expect(history.map { $0["activity_id"] as String } == ["reserve:1", "charge:1"])
            #expect(history.allSatisfy { $0["event_type"] as String == "ActivityCompleted" })
            let first = try #require(JSONValue(jsonText: history[0]["event_data"]))
            #expect(first["activity_name"] == .string("reserve"))
            #expect(first["result"] == .string("R-o1"))
            #expect(first["input"]?["kwargs"]?["id"] == .string("o1"))

            let migrations = try rows(database, "SELECT version FROM schema_migrations").map { $0["version"] as String }
            #expect(migrations == ["20251217000000"])
        }
    }

    @Test("generated instance IDs are <workflow>-<32 hex>")
    func generatedIDs() async throws {
        try await withDatabase { database in
            let app = try await database.makeApp()
            app.register(Checkout(recorder: Recorder()))
            let id = try await app.start(Checkout.self, input: Order(id: "o", amount: 1))
            let suffix = id.dropFirst("checkout-".count)
            #expect(id.hasPrefix("checkout-"))
            #expect(suffix.count == 32 && suffix.allSatisfy { $0.isHexDigit && !$0.isUppercase })
            await app.shutdown()
        }
    }

    @Test("starting an existing instance ID is idempotent; another workflow's ID is refused")
    func idempotentStart() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let app = try await database.makeApp()
            app.register(Checkout(recorder: recorder))
            let greet = app.register(workflow: "greet") { (name: String, _) in "hi \(name)" }
            let first = try await app.start(Checkout.self, input: Order(id: "a", amount: 1), instanceID: "same")
            let second = try await app.start(Checkout.self, input: Order(id: "b", amount: 9), instanceID: "same")
            #expect(first == "same" && second == "same")
            #expect(recorder.count("reserve") == 1)
            let again = try await app.run(Checkout.self, input: Order(id: "b", amount: 9), instanceID: "same")
            #expect(again.orderID == "a")
            await #expect(throws: EddaUsageError.self) {
                try await app.start(greet, input: "x", instanceID: "same")
            }
            #expect(try rows(database, "SELECT * FROM workflow_instances").count == 1)
            await app.shutdown()
        }
    }

    @Test("unknown workflows and undecodable input are refused and store nothing")
    func badStarts() async throws {
        try await withDatabase { database in
            let app = try await database.makeApp()
            app.register(Checkout(recorder: Recorder()))
            do {
                _ = try await app.start(workflowNamed: "nope", inputJSON: "{}")
                Issue.record("expected an error")
            } catch let error as EddaUsageError {
                #expect(error.kind == .unknownWorkflow)
                #expect(error.message.contains("nope"))
            }
            do {
                _ = try await app.start(workflowNamed: "checkout", inputJSON: #"{"id": 5}"#)
                Issue.record("expected an error")
            } catch let error as EddaUsageError {
                #expect(error.kind == .undecodableInput)
                // Where and what, without the decoder's internals.
                #expect(error.message.contains("'id' must be a string"), "\(error.message)")
                #expect(!error.message.contains("CodingKeys") && !error.message.contains("DecodingError"), "\(error.message)")
            }
            do {
                _ = try await app.start(workflowNamed: "checkout", inputJSON: #"{"id": "n"}"#)
                Issue.record("expected an error")
            } catch let error as EddaUsageError {
                #expect(error.message.contains("'amount' is missing"), "\(error.message)")
            }
            do {
                _ = try await app.start(workflowNamed: "checkout", inputJSON: "{not json")
                Issue.record("expected an error")
            } catch let error as EddaUsageError {
                #expect(error.kind == .undecodableInput)
            }
            #expect(try rows(database, "SELECT * FROM workflow_instances").isEmpty)
            #expect(try rows(database, "SELECT * FROM workflow_definitions").isEmpty)
            // Starting by name with good JSON works.
            let id = try await app.start(workflowNamed: "checkout", inputJSON: #"{"id": "n", "amount": 2}"#)
            #expect(try await app.result(of: id, as: Receipt.self).charged == 200)
            await app.shutdown()
        }
    }

    @Test("replay returns recorded results without re-running completed activities")
    func replaySkipsCompletedActivities() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let gate = Gate()
            let flow = ActivityDefinition<Int, Int>(name: "count") { value, _ in
                recorder.record("count")
                return value + 1
            }
            let register: (EddaApp) -> WorkflowReference<Int, String> = { app in
                app.register(workflow: "replayed") { (start: Int, context) in
                    let a = try await context.run(flow, input: start)
                    let b = try await context.run(flow, input: a)
                    let held = try await context.run(Hold(gate: gate, recorder: recorder), input: "\(b)")
                    return held
                }
            }
            // Stop the first app mid-step: its execution is abandoned, the lock released.
            let id = try await startAndStop(database, register: register, input: 1, instanceID: "replay-1", heldBy: recorder)
            #expect(try rows(database, "SELECT status, locked_by FROM workflow_instances").first?["status"] as String? == "running")

            gate.open()
            try await withApp(database) { second in
                _ = register(second)
                let result = try await second.result(of: id, as: String.self)
                #expect(result == "released 3")
                #expect(recorder.count("count") == 2)
                #expect(recorder.count("hold") == 2)
            }
        }
    }
}
