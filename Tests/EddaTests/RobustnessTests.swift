import Edda
import EddaTesting
import Foundation
import GRDB
import Testing

/// Fails every attempt; waits `backoff` between attempts.
struct AlwaysFails: Activity {
    static let name = "always_fails"
    let recorder: Recorder
    let backoff: Duration
    var retryPolicy: RetryPolicy? { RetryPolicy(initialInterval: backoff, maxAttempts: 100, maxDuration: nil) }
    func run(_ input: String, context: ActivityContext) async throws -> String {
        recorder.record("fail attempt \(context.attempt)")
        throw TestFailure(message: "down")
    }
}

@Suite("Robustness", .timeLimit(.minutes(2)))
struct RobustnessTests {
    @Test("a compensation registered just before a cancellation still runs")
    func bufferedRegistrationSurvivesCancellation() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            try await withApp(database) { app in
                let flow = app.register(workflow: "buffered") { (input: String, context) -> String in
                    _ = try await context.run(Book(recorder: recorder), input: "room")
                    try context.registerCompensation(Refund(recorder: recorder), input: 5)
                    return try await context.run(AlwaysFails(recorder: recorder, backoff: .seconds(30)), input: input)
                }
                let id = try await app.startDetached(flow, input: "x")
                try await eventually("the first failed attempt") { recorder.count("fail attempt 1") == 1 }
                let accepted = try await app.cancel(instanceID: id)
                #expect(accepted)
                let final = try await app.waitForStatus(id, in: [.cancelled])
                #expect(final.status == .cancelled)
                #expect(recorder.all.filter { !$0.hasPrefix("fail") } == ["book room", "refund 5", "undo booking-room"])
            }
        }
    }

    @Test("an activity's own CancellationError is an ordinary, retried failure")
    func activityCancellationErrorIsRetried() async throws {
        try await withDatabase { database in
            try await withApp(database) { app in
                let flaky = ActivityDefinition<String, String>(name: "flaky_cancel") { input, context in
                    if context.attempt == 1 { throw CancellationError() }
                    return "\(input) on attempt \(context.attempt)"
                }
                let flow = app.register(workflow: "cancel_error") { (input: String, context) in
                    try await context.run(flaky, input: input)
                }
                let result = try await app.run(flow, input: "ok")
                #expect(result == "ok on attempt 2")
            }
        }
    }

    @Test("run reports a divergence instead of waiting forever")
    func runThrowsOnDivergence() async throws {
        try await withDatabase { database in
            try await withApp(database) { app in
                let echo = ActivityDefinition<String, String>(name: "echo") { input, _ in input }
                let flow = app.register(workflow: "duplicate_ids") { (input: String, context) -> String in
                    _ = try await context.run(echo, input: input, id: "same")
                    return try await context.run(echo, input: input, id: "same")
                }
                await #expect(throws: NondeterminismError.self) {
                    _ = try await app.run(flow, input: "x", instanceID: "dup-1")
                }
                let instance = try await app.instance("dup-1")
                #expect(instance?.status == .running)
                #expect(instance?.lockedBy == nil)
            }
        }
    }

    @Test("an instance ID running here under another workflow is refused")
    func conflictWhileRunningHere() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let gate = Gate()
            try await withApp(database) { app in
                let held = app.register(workflow: "held") { (input: String, context) in
                    try await context.run(Hold(gate: gate, recorder: recorder), input: input)
                }
                let other = app.register(workflow: "other") { (input: String, _) in input }
                _ = try await app.startDetached(held, input: "x", instanceID: "shared-id")
                try await eventually("the held step") { recorder.count("hold") == 1 }
                await #expect(throws: EddaUsageError.self) {
                    _ = try await app.start(other, input: "y", instanceID: "shared-id")
                }
                // The same workflow is idempotent.
                let again = try await app.start(held, input: "x", instanceID: "shared-id")
                #expect(again == "shared-id")
                gate.open()
                let result = try await app.result(of: "shared-id", as: String.self)
                #expect(result == "released x")
            }
        }
    }

    @Test("shutdown does not wait out a retry back-off")
    func shutdownInterruptsBackoff() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let app = try await database.makeApp()
            let flow = app.register(workflow: "backing_off") { (input: String, context) in
                try await context.run(AlwaysFails(recorder: recorder, backoff: .seconds(120)), input: input)
            }
            let id = try await app.startDetached(flow, input: "x")
            try await eventually("the first failed attempt") { recorder.count("fail attempt 1") == 1 }
            let clock = ContinuousClock()
            let started = clock.now
            await app.shutdown()
            // Far below the 120 s back-off: shutdown interrupted it.
            #expect(clock.now - started < .seconds(30))
            #expect(recorder.count("fail attempt 2") == 0)
            try await withApp(database, configure: { $0.runsBackgroundRecovery = false }) { reader in
                let instance = try await reader.instance(id)
                #expect(instance?.status == .running)
                #expect(instance?.lockedBy == nil)
            }
        }
    }

    @Test("a short per-instance lease is renewed even while the renewer sleeps on a long default")
    func shortLeaseIsRenewed() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let register = slowStepWorkflow(named: "short_lease", recorder: recorder)
            try await withApp(database, serviceName: "owner", configure: { $0.lockTimeout = .seconds(30) }) { owner in
                // Let the renewer fall asleep on the 30 s default's 10 s renewal interval first.
                try await Task.sleep(for: .milliseconds(200))
                let sampler = LockSampler(of: "short-1", in: database)
                let result = try await owner.run(
                    register(owner), input: "done", instanceID: "short-1", lockTimeout: LeaseTestTiming.lease)
                let samples = sampler.stop()
                #expect(result == "done")
                expectRenewed(samples.values.first ?? [], by: owner.workerID)
            }
            #expect(recorder.count("slow") == 1)
        }
    }

    @Test("a stored value of the wrong type (written outside Edda) fails that instance's reads, not the process or the others")
    func wrongTypeInStoredRow() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let gate = Gate()
            let register: (EddaApp) -> WorkflowReference<String, String> = { app in
                app.register(workflow: "fragile") { (input: String, context) -> String in
                    try await context.run(Hold(gate: gate, recorder: recorder), input: input)
                }
            }
            // Two instances left running by an app that stopped mid-step.
            try await withApp(database) { first in
                _ = try await first.startDetached(register(first), input: "bad", instanceID: "fragile-bad")
                _ = try await first.startDetached(register(first), input: "good", instanceID: "fragile-good")
                try await eventually("both held steps") { recorder.count("hold") == 2 }
            }
            // SQLite keeps text in an INTEGER column as text.
            func setLockTimeout(_ value: String?) throws {
                let queue = try openDatabase(database.path)
                try queue.write { db in
                    try db.execute(
                        sql: "UPDATE workflow_instances SET lock_timeout_seconds = ? WHERE instance_id = 'fragile-bad'",
                        arguments: [value])
                }
                try queue.close()
            }
            try setLockTimeout("soon")
            gate.open()
            try await withApp(database) { app in
                _ = register(app)
                #expect(try await app.result(of: "fragile-good", as: String.self) == "released good")
                do {
                    _ = try await app.instance("fragile-bad")
                    Issue.record("reading an instance whose lock_timeout_seconds is text succeeded")
                } catch {
                    #expect(String(describing: error).contains("lock_timeout_seconds"), "\(error)")
                }
                let stored = try rows(database.path, "SELECT status, locked_by FROM workflow_instances WHERE instance_id = 'fragile-bad'")
                #expect(stored.first?["status"] as String? == "running")
                #expect(stored.first?["locked_by"] as String? == nil, "a claim that could not read the row took no lock")

                try setLockTimeout(nil)
                #expect(try await app.result(of: "fragile-bad", as: String.self) == "released bad")
            }
        }
    }
}
