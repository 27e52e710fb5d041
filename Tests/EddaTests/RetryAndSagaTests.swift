import Edda
import EddaSQLite
import EddaTesting
import Foundation
import GRDB
import Testing

struct Flaky: Activity {
    static let name = "flaky"
    let failures: Int
    let recorder: Recorder
    var retryPolicy: RetryPolicy? {
        RetryPolicy(initialInterval: .milliseconds(20), backoffCoefficient: 2, maxInterval: .seconds(1), maxAttempts: 5, maxDuration: .seconds(30))
    }
    func run(_ input: String, context: ActivityContext) async throws -> String {
        recorder.record("attempt \(context.attempt)")
        if context.attempt <= failures { throw TestFailure(message: "boom \(context.attempt)") }
        return "ok after \(context.attempt)"
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

struct Book: CompensatableActivity {
    static let name = "book"
    let recorder: Recorder
    func run(_ item: String, context: ActivityContext) async throws -> String {
        recorder.record("book \(item)")
        return "booking-\(item)"
    }
    func compensate(_ item: String, output: String, context: CompensationContext) async throws {
        recorder.record("undo \(output)")
    }
}

struct Explode: Activity {
    static let name = "explode"
    func run(_ input: String, context: ActivityContext) async throws -> String {
        throw TerminalError("cannot \(input)")
    }
}

/// The observability tests' saga: a booking (compensated), an activity that fails once and is
/// retried, and one that fails for good.
func registerTrip(_ app: EddaApp, recorder: Recorder) -> WorkflowReference<NoValue, String> {
    app.register(workflow: "trip") { (_: NoValue, context) -> String in
        _ = try await context.run(Book(recorder: recorder), input: "hotel")
        _ = try await context.run(Flaky(failures: 1, recorder: recorder), input: "x")
        return try await context.run(Explode(), input: "fly")
    }
}

/// The observability tests' waiting workflow: a booking, then a wait for the `go` event.
func registerWaiting(_ app: EddaApp, recorder: Recorder) -> WorkflowReference<NoValue, String> {
    app.register(workflow: "waiting") { (_: NoValue, context) -> String in
        _ = try await context.run(Book(recorder: recorder), input: "car")
        return try await context.waitEvent("go", as: String.self).data
    }
}

struct Refund: Compensation {
    static let name = "refund"
    let recorder: Recorder
    func run(_ amount: Int, context: CompensationContext) async throws {
        recorder.record("refund \(amount)")
    }
}

@Suite("Retries", .timeLimit(.minutes(2)))
struct RetryTests {
    @Test("a flaky activity is retried with back-off and its retry metadata recorded")
    func retriesWithMetadata() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let hooks = RecordingHooks()
            let app = try await database.makeApp { $0.hooks = hooks }
            let flow = app.register(workflow: "retrying") { (input: String, context) in
                try await context.run(Flaky(failures: 2, recorder: recorder), input: input)
            }
            let clock = ContinuousClock()
            let started = clock.now
            let result = try await app.run(flow, input: "x")
            let elapsed = clock.now - started
            #expect(result == "ok after 3")
            #expect(recorder.all == ["attempt 1", "attempt 2", "attempt 3"])
            // 20 ms then 40 ms of back-off at least.
            #expect(elapsed >= .milliseconds(60))
            #expect(hooks.events.filter { $0.hasPrefix("retry") } == ["retry flaky:1 attempt 1 delay 0.02", "retry flaky:1 attempt 2 delay 0.04"])
            let event = try #require(try rows(database, "SELECT event_data FROM workflow_history").first)
            let data = try #require(JSONValue(jsonText: event["event_data"]))
            let metadata = try #require(data["retry_metadata"])
            #expect(metadata["total_attempts"] == .number(3))
            #expect(metadata["exhausted"] == .bool(false))
            #expect(metadata["last_error"]?["message"] == .string("boom 2"))
            guard case .array(let errors)? = metadata["errors"] else { Issue.record("no errors array"); return }
            #expect(errors.count == 2)
            await app.shutdown()
        }
    }

    @Test("retries stop at maxAttempts with RetryExhaustedError carrying the cause")
    func exhaustion() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let app = try await database.makeApp()
            let flow = app.register(workflow: "exhausting") { (input: String, context) -> String in
                do {
                    return try await context.run(Flaky(failures: 99, recorder: recorder), input: input)
                } catch let error as RetryExhaustedError {
                    return "\(error.attempts) \(error.reason) cause=\(error.cause)"
                }
            }
            let result = try await app.run(flow, input: "x")
            #expect(result == "5 Max attempts (5) reached cause=boom 5")
            let event = try #require(try rows(database, "SELECT event_type, event_data FROM workflow_history").first)
            #expect(event["event_type"] as String == "ActivityFailed")
            let data = try #require(JSONValue(jsonText: event["event_data"]))
            #expect(data["error_type"] == .string("TestFailure"))
            #expect(data["retry_metadata"]?["exhausted"] == .bool(true))
            await app.shutdown()
        }
    }

    @Test("policy presets and delays match the reference")
    func presets() {
        #expect(RetryPolicy.default.maxAttempts == 5 && RetryPolicy.default.maxDuration == .seconds(300))
        #expect(RetryPolicy.aggressive.initialInterval == .milliseconds(100) && RetryPolicy.aggressive.maxAttempts == 10)
        #expect(RetryPolicy.conservative.initialInterval == .seconds(5) && RetryPolicy.conservative.maxAttempts == 3)
        #expect(RetryPolicy.infinite.maxAttempts == nil && RetryPolicy.infinite.maxDuration == nil)
        let delays = (1...8).map { RetryPolicy.default.delay(afterAttempt: $0) }
        #expect(delays == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(32), .seconds(60), .seconds(60)])
        var policy = RetryPolicy.default
        policy.nonRetryableErrors = .types(TestFailure.self)
        #expect(!policy.isRetryable(TestFailure(message: "x")))
        #expect(policy.isRetryable(CancellationError()))
        #expect(!RetryPolicy.default.isRetryable(TerminalError("no")))
    }

    @Test("a TerminalError is not retried, and replay rethrows failures as the same types")
    func typedReplay() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let gate = Gate()
            let register: (EddaApp) -> WorkflowReference<String, String> = { app in
                app.register(workflow: "typed") { (input: String, context) -> String in
                    var seen: [String] = []
                    do {
                        _ = try await context.run(Explode(), input: input)
                    } catch let error as TerminalError {
                        seen.append("terminal:\(error.message)")
                    }
                    do {
                        _ = try await context.run(Flaky(failures: 99, recorder: recorder), input: input)
                    } catch let error as RetryExhaustedError {
                        seen.append("exhausted:\(error.attempts)")
                    }
                    _ = try await context.run(Hold(gate: gate, recorder: recorder), input: input)
                    return seen.joined(separator: ",")
                }
            }
            let id = try await startAndStop(database, register: register, input: "x", heldBy: recorder)
            #expect(recorder.all.filter { $0.hasPrefix("attempt") }.count == 5)

            gate.open()
            try await withApp(database) { second in
                _ = register(second)
                let seen = try await second.result(of: id, as: String.self)
                #expect(seen == "terminal:cannot x,exhausted:5")
            }
            // Neither failing activity ran again on replay.
            #expect(recorder.all.filter { $0.hasPrefix("attempt") }.count == 5)
        }
    }
}

@Suite("Sagas", .timeLimit(.minutes(2)))
struct SagaTests {
    @Test("compensations run newest first on failure and are recorded")
    func compensationOrder() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let hooks = RecordingHooks()
            let app = try await database.makeApp { $0.hooks = hooks }
            let flow = app.register(workflow: "trip") { (input: String, context) -> String in
                _ = try await context.run(Book(recorder: recorder), input: "flight")
                try context.registerCompensation(Refund(recorder: recorder), input: 42)
                _ = try await context.run(Book(recorder: recorder), input: "hotel")
                return try await context.run(Explode(), input: "car")
            }
            do {
                _ = try await app.run(flow, input: "go", instanceID: "trip-1")
                Issue.record("expected a failure")
            } catch let error as WorkflowFailedError {
                #expect(error.errorType == "TerminalError")
                #expect(error.message == "cannot car")
            }
            #expect(recorder.all == ["book flight", "book hotel", "undo booking-hotel", "refund 42", "undo booking-flight"])
            let instance = try #require(try await app.instance("trip-1"))
            #expect(instance.status == .failed)
            #expect(instance.outputData?["error_type"] == .string("TerminalError"))
            #expect(instance.outputData?["stack_trace"] != nil)
            let events = try await app.history(of: "trip-1").map(\.eventType)
            #expect(events.filter { $0 == "CompensationExecuted" }.count == 3)
            #expect(events.last == "WorkflowFailed")
            #expect(hooks.events.contains("failed trip-1"))
            await app.shutdown()
        }
    }

    @Test("explicit registration is replay-safe and a crash during compensation recovers to failed")
    func replaySafeRegistrationAndCrashRecovery() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let holdWorkflow = Gate()
            let holdCompensation = Gate()
            struct SlowUndo: Compensation {
                static let name = "slow_undo"
                let gate: Gate
                let recorder: Recorder
                func run(_ input: String, context: CompensationContext) async throws {
                    recorder.record("slow_undo start")
                    await gate.wait()
                    try Task.checkCancellation()
                    recorder.record("slow_undo done")
                }
            }
            let register: (EddaApp) -> WorkflowReference<String, String> = { app in
                app.register(workflow: "crashy") { (input: String, context) -> String in
                    try context.registerCompensation(Refund(recorder: recorder), input: 7)
                    _ = try await context.run(Hold(gate: holdWorkflow, recorder: recorder), input: input)
                    try context.registerCompensation(SlowUndo(gate: holdCompensation, recorder: recorder), input: "x")
                    return try await context.run(Explode(), input: "now")
                }
            }
            // First process: stopped mid-step (registration of refund committed with nothing yet).
            let id = try await startAndStop(database, register: register, input: "a", instanceID: "crashy-1", heldBy: recorder)

            // Second process: the step completes, the workflow fails, compensation starts and is
            // stopped in the middle of slow_undo.
            holdWorkflow.open()
            try await withApp(database) { second in
                _ = register(second)
                try await eventually("the compensation to start") { recorder.count("slow_undo start") == 1 }
                let status = try await second.instance(id)?.status
                #expect(status == .compensating)
            }

            // Third process: recovery finishes the compensations and the failure.
            holdCompensation.open()
            let final = try await withApp(database) { third in
                _ = register(third)
                return try await third.waitForStatus(id, in: [.failed])
            }
            #expect(final.outputData?["error_type"] == .string("TerminalError"))
            #expect(recorder.count("refund 7") == 1)
            #expect(recorder.count("slow_undo done") == 1)
            let registrations = try rows(database, "SELECT activity_name FROM workflow_compensations WHERE instance_id = ?", [id])
            #expect(registrations.map { $0["activity_name"] as String }.sorted() == ["refund", "slow_undo"])
        }
    }
}

@Suite("Cancellation", .timeLimit(.minutes(2)))
struct CancellationTests {
    @Test("cancelling a running instance runs its compensations and records the details")
    func cancelRunning() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let gate = Gate()
            let hooks = RecordingHooks()
            let app = try await database.makeApp { $0.hooks = hooks }
            let flow = app.register(workflow: "cancellable") { (input: String, context) -> String in
                _ = try await context.run(Book(recorder: recorder), input: "seat")
                _ = try await context.run(Hold(gate: gate, recorder: recorder), input: input)
                recorder.record("after hold")
                return try await context.run(Book(recorder: recorder), input: "never")
            }
            let id = try await app.startDetached(flow, input: "x", instanceID: "cancel-1")
            try await eventually("the held step") { recorder.count("hold") == 1 }
            #expect(try await app.cancel(instanceID: id, cancelledBy: "tester"))
            gate.open()
            let final = try await app.waitForStatus(id, in: [.cancelled])
            #expect(final.outputData?["cancelled_by"] == .string("tester"))
            #expect(final.outputData?["previous_status"] == .string("running"))
            #expect(final.outputData?["cancelled_at"] != nil)
            #expect(final.lockedBy == nil)
            #expect(recorder.all == ["book seat", "hold", "undo booking-seat"])
            #expect(hooks.events.contains("cancelled cancel-1"))
            // Idempotent: a second cancel changes nothing.
            #expect(try await app.cancel(instanceID: id) == false)
            #expect(try await app.cancel(instanceID: "missing") == false)
            await #expect(throws: WorkflowNotCompletedError.self) { try await app.result(of: id, as: String.self) }
            let events = try await app.history(of: id).map(\.eventType)
            #expect(events.contains("WorkflowCancelled") && events.contains("CompensationExecuted"))
            await app.shutdown()
        }
    }

    @Test("cancelling an instance no worker holds finishes at once; completed instances are not cancellable")
    func cancelUnheld() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let gate = Gate()
            let register: (EddaApp) -> WorkflowReference<String, String> = { app in
                app.register(workflow: "parked") { (input: String, context) -> String in
                    try await context.run(Hold(gate: gate, recorder: recorder), input: input)
                }
            }
            let id = try await startAndStop(database, register: register, input: "x", heldBy: recorder)

            let tool = try await database.makeApp(serviceName: "tool") { $0.runsBackgroundRecovery = false }
            #expect(try await tool.cancel(instanceID: id, cancelledBy: "cli"))
            let cancelled = try #require(try await tool.instance(id))
            #expect(cancelled.status == .cancelled)
            #expect(cancelled.outputData?["previous_status"] == .string("running"))

            let done = tool.register(workflow: "done") { (input: String, _) in input }
            let doneID = try await tool.start(done, input: "y")
            #expect(try await tool.cancel(instanceID: doneID) == false)
            #expect(try await tool.instance(doneID)?.status == .completed)
            await tool.shutdown()
        }
    }
}
