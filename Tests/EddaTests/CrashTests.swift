@testable import Edda
@testable import EddaSQLite
import EddaTesting
import Foundation
import GRDB
import Testing

extension Process {
    /// Kills the process with SIGKILL, as a crash would, and waits until it has ended (if it
    /// still runs: so that no worker outlives its test).
    func kill() {
        if !stop(with: SIGKILL) { Issue.record("worker \(processIdentifier) had not ended 60 s after SIGKILL") }
    }
}

@Suite("Crash recovery", .timeLimit(.minutes(5)))
struct CrashTests {
    /// The `edda-test-worker` binary, built next to the test bundle.
    static var workerPath: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return bundle.appendingPathComponent("edda-test-worker").path
    }

    static func launch(_ arguments: [String], environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: workerPath)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return process
    }

    @Test("a worker killed while its workflow sleeps and while it waits for an event: the workflow resumes after restart")
    func killWhileWaiting() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.workerPath), "edda-test-worker not built at \(Self.workerPath)")
        try await withDatabase { database in
            func status() throws -> String? {
                // The worker creates the schema when it starts.
                (try? rows(database, "SELECT status FROM workflow_instances WHERE instance_id = 'waiter-1'"))?.first?["status"]
            }
            // The timer falls due in an hour, so the sleeping state lasts until this test, however
            // late it looks, has seen it and killed the worker; then the test moves the deadline
            // into the past, as if the hour had gone by with no worker alive.
            let deadline = Date().addingTimeInterval(3_600)
            var worker = try Self.launch([database.path, "start-waiter", "waiter-1", "\(deadline.timeIntervalSince1970)"])
            // Whatever happens, no worker outlives the test.
            defer { worker.kill() }
            try await eventually("the durable sleep", timeout: .seconds(90)) { try status() == "waiting_for_timer" }
            worker.kill()
            // The timer falls due while no worker runs; the restarted one fires it.
            let queue = try openDatabase(database.path)
            let moved = try await queue.write { db in
                try db.execute(
                    sql: "UPDATE workflow_timer_subscriptions SET expires_at = ? WHERE instance_id = 'waiter-1'",
                    arguments: [Timestamp.database(Date().addingTimeInterval(-1))])
                return db.changesCount
            }
            try queue.close()
            #expect(moved == 1)
            worker = try Self.launch([database.path, "serve"])
            try await eventually("the event wait after the overdue timer fired", timeout: .seconds(90)) { try status() == "waiting_for_message" }
            worker.kill()

            // The event arrives while no worker runs: it is delivered durably.
            let receipt = try await database.withApp(configure: { $0.runsBackgroundRecovery = false }) { app in
                try await app.sendEvent(CloudEventAttributes(type: "go", source: "/test"), data: ["word": "onwards"])
            }
            #expect(receipt.deliveredTo == ["waiter-1"])
            #expect(try status() == "running")

            worker = try Self.launch([database.path, "serve"])
            try await eventually("completion", timeout: .seconds(90)) { try status() == "completed" }
            let output: String? = try rows(database, "SELECT output_data FROM workflow_instances").first?["output_data"]
            #expect(output.flatMap(JSONValue.init(jsonText:))?["result"] == "onwards")
            let executions = try rows(database, "SELECT activity_id, COUNT(*) AS n FROM executions GROUP BY activity_id ORDER BY activity_id")
            #expect(executions.map { $0["activity_id"] as String } == ["step:1", "step:2"])
            #expect(executions.allSatisfy { $0["n"] as Int == 1 })
        }
    }

    @Test("SIGTERM: the step in progress finishes and commits, the instance is released at once, and the next worker runs only the rest")
    func gracefulShutdownOnSIGTERM() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.workerPath), "edda-test-worker not built at \(Self.workerPath)")
        try await withDatabase { database in
            func executed() -> [String] {
                ((try? rows(database, "SELECT activity_id FROM executions ORDER BY rowid")) ?? []).map { $0["activity_id"] as String }
            }
            // Step 3 waits at the gate (inside the step) however late this test looks: at most
            // steps 1 and 2 can commit before the signal.
            let queue = try openDatabase(database.path)
            try await queue.write { db in
                try db.execute(sql: "CREATE TABLE IF NOT EXISTS gate (allowed INTEGER NOT NULL)")
                try db.execute(sql: "INSERT INTO gate (allowed) VALUES (2)")
            }
            try queue.close()
            // Each step takes 3 s, on a 10 s lease: the release at shutdown, not the lease, must
            // free the instance. (On the test worker's usual 1 s lease, a loaded machine's late
            // renewals made the 3 s step lose its lock over and over.)
            let worker = try Self.launch(
                [database.path, "start-service", "drain-1", "3"],
                environment: ["EDDA_TEST_STEP_DELAY": "3", "EDDA_TEST_LOCK_TIMEOUT": "10"])
            defer { worker.kill() }
            // SIGTERM while step 2 runs (step 1 committed).
            try await eventually("the first step", timeout: .seconds(90)) { !executed().isEmpty }
            let signalled = ContinuousClock.now
            Glibc.kill(worker.processIdentifier, SIGTERM)
            try await eventually("the worker to exit", timeout: .seconds(60)) { !worker.isRunning }
            let exitTime = ContinuousClock.now - signalled
            print("SIGTERM to exit: \(exitTime)")
            #expect(worker.terminationReason == .exit && worker.terminationStatus == 0)
            // Step 2 was not cut short: it finished and committed within the grace period. (Had
            // this test looked so late that step 3 was already waiting at its gate, that step
            // would have been cancelled when the 10 s grace ran out: the same rows.)
            #expect(executed() == ["step:1", "step:2"])
            let instance = try #require(try rows(database, "SELECT status, locked_by FROM workflow_instances WHERE instance_id = 'drain-1'").first)
            #expect(instance["status"] as String == "running")
            #expect(instance["locked_by"] as String? == nil, "released for the next worker, not left to its lease")

            // The next worker resumes it at once and runs step 3 only.
            try await database.withApp(configure: { $0.recoveryInterval = .milliseconds(100) }) { app in
                app.register(workflow: "crash_steps") { (steps: Int, context) -> Int in
                    var total = 0
                    for index in 1...steps {
                        total += try await context.run(
                            ActivityDefinition<ShutdownStepInput, Int>(name: "step") { input, _ in input.index * 10 },
                            input: ShutdownStepInput(index: index))
                    }
                    return total
                }
                try await eventually("completion by the next worker", timeout: .seconds(60)) {
                    try await app.instance("drain-1")?.status == .completed
                }
            }
            #expect(executed() == ["step:1", "step:2"], "steps 1 and 2 were not run again")
        }
    }

    @Test("a worker restarted on the same host resumes a killed worker's instance at once, not when its 120 s lease lapses")
    func restartTakesOverAtOnce() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.workerPath), "edda-test-worker not built at \(Self.workerPath)")
        try await withDatabase { database in
            let markers = FileManager.default.temporaryDirectory.appendingPathComponent("edda-markers-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: markers) }
            let environment = ["EDDA_TEST_LOCK_TIMEOUT": "120", "EDDA_TEST_LIVENESS_DIR": markers]
            func completedSteps() -> Int {
                (try? rows(database, "SELECT COUNT(*) AS n FROM executions").first?["n"] as Int?) ?? 0
            }
            let queue = try openDatabase(database.path)
            try await queue.write { db in
                try db.execute(sql: "CREATE TABLE IF NOT EXISTS gate (allowed INTEGER NOT NULL)")
                try db.execute(sql: "INSERT INTO gate (allowed) VALUES (2)")
            }
            try queue.close()
            var current = try Self.launch([database.path, "start", "takeover-1", "3"], environment: environment)
            defer { current.kill() }
            // Killed inside step 3 (held at the gate), with 120 s left on its lease.
            try await eventually("two steps", timeout: .seconds(90)) { completedSteps() == 2 }
            current.kill()
            let held: String? = try rows(database, "SELECT locked_by FROM workflow_instances WHERE instance_id = 'takeover-1'")
                .first?["locked_by"]
            #expect(held != nil, "the killed worker's lock is still in the database")
            let gate = try openDatabase(database.path)
            try await gate.write { db in try db.execute(sql: "UPDATE gate SET allowed = 3") }
            try gate.close()

            let restarted = ContinuousClock.now
            current = try Self.launch([database.path, "serve"], environment: environment)
            // Far sooner than the lease (120 s), even on a loaded machine (under a full run beside two
            // CPU burners it took 8.5 s; alone, 0.3–0.6 s).
            try await eventually("completion after the restart", timeout: .seconds(90)) {
                try rows(database, "SELECT status FROM workflow_instances WHERE instance_id = 'takeover-1'").first?["status"]
                    as String? == "completed"
            }
            let elapsed = ContinuousClock.now - restarted
            print("Restart to completion of the interrupted instance: \(elapsed)")
            #expect(elapsed < .seconds(90))
            let executions = try rows(database, "SELECT activity_id, COUNT(*) AS n FROM executions GROUP BY activity_id")
            #expect(executions.count == 3 && executions.allSatisfy { $0["n"] as Int == 1 })
        }
    }

    @Test("an outbox row a killed relayer was sending is taken again when its lease ends (seconds), and sent once")
    func outboxLeaseAfterKill() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.workerPath), "edda-test-worker not built at \(Self.workerPath)")
        try await withDatabase { database in
            let eventID = try await database.withApp(configure: { $0.runsBackgroundRecovery = false }) { app in
                let emit = ActivityDefinition<String, String>(name: "emit") { id, context in
                    try context.sendEventTransactional(type: "order.shipped", source: "/shop", data: ["id": id])
                }
                let flow = app.register(workflow: "emitter") { (id: String, context) -> String in
                    try await context.run(emit, input: id)
                }
                return try await app.run(flow, input: "A")
            }
            func status() throws -> String? {
                let found = try rows(database, "SELECT status FROM outbox_events WHERE event_id = ?", [eventID])
                return found.first?["status"]
            }
            let relayer = try Self.launch([database.path, "relay-hang"], environment: ["EDDA_TEST_OUTBOX_LEASE": "2"])
            defer { relayer.kill() }
            try await eventually("the relayer sending", timeout: .seconds(90)) { try status() == "processing" }
            relayer.kill()
            let killed = ContinuousClock.now

            let sent = Recorder()
            struct Recording: OutboxPublisher {
                let sent: Recorder
                func publish(_ event: OutboxEvent) async -> OutboxOutcome {
                    sent.record(event.eventID)
                    return .published
                }
            }
            try await database.withApp(configure: { configuration in
                configuration.outboxPublisher = Recording(sent: sent)
                configuration.outboxRelayer.lease = .seconds(2)
                configuration.outboxRelayer.pollInterval = .milliseconds(100)
                configuration.outboxRelayer.maxPollInterval = .milliseconds(500)
            }) { _ in
                // Well before the old ten-minute reclaim, and on a loaded machine too (under a full
                // run beside two CPU burners it took 17 s; alone, 2.4 s with this 2 s lease).
                try await eventually("published after the lease ended", timeout: .seconds(120)) { try status() == "published" }
            }
            print("Kill to publication of the row the dead relayer held: \(ContinuousClock.now - killed)")
            #expect(sent.all == [eventID])
        }
    }

    @Test("a worker killed with SIGKILL mid-workflow is resumed by a new process; no completed step runs twice")
    func killAndRestart() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.workerPath), "edda-test-worker not built at \(Self.workerPath)")
        try await withDatabase { database in
            let steps = 12
            // The worker runs steps up to the gate and waits inside the next one: each kill lands
            // mid-step, after a known number of completed steps, however late this test looks.
            func openGate(to allowed: Int) async throws {
                let queue = try openDatabase(database.path)
                defer { try? queue.close() }
                try await queue.write { db in
                    try db.execute(sql: "CREATE TABLE IF NOT EXISTS gate (allowed INTEGER NOT NULL)")
                    try db.execute(sql: "DELETE FROM gate")
                    try db.execute(sql: "INSERT INTO gate (allowed) VALUES (?)", arguments: [allowed])
                }
            }
            func completedSteps() -> Int {
                // The worker creates the table when it starts.
                (try? rows(database, "SELECT COUNT(*) AS n FROM executions").first?["n"] as Int?) ?? 0
            }
            try await openGate(to: 4)
            var kills = 0
            let first = try Self.launch([database.path, "start", "crash-1", "\(steps)"])
            var current = first
            // Whatever happens, no worker outlives the test.
            defer { current.kill() }
            // Kill the worker three times: after steps 4, 7 and 10, each time inside the next step.
            for gate in [4, 7, 10] {
                try await eventually("steps up to \(gate)", timeout: .seconds(90)) { completedSteps() >= gate }
                current.kill()
                kills += 1
                #expect(current.terminationReason == .uncaughtSignal)
                #expect(completedSteps() == gate)
                try await openGate(to: gate + 3)
                current = try Self.launch([database.path, "serve"])
            }
            try await openGate(to: steps)
            try await eventually("completion after \(kills) kills", timeout: .seconds(120)) {
                try rows(database, "SELECT status FROM workflow_instances WHERE instance_id = 'crash-1'").first?["status"] as String? == "completed"
            }
            let executions = try rows(database, "SELECT activity_id, COUNT(*) AS n FROM executions GROUP BY activity_id")
            #expect(executions.count == steps)
            #expect(executions.allSatisfy { $0["n"] as Int == 1 })
            let output = try #require(try rows(database, "SELECT output_data FROM workflow_instances").first)
            #expect(JSONValue(jsonText: output["output_data"])?["result"] == .number(Double((1...steps).reduce(0, +) * 10)))
            let pids = try rows(database, "SELECT DISTINCT pid FROM executions")
            #expect(pids.count == 4)
        }
    }
}

@Suite("Leases", .timeLimit(.minutes(2)))
struct LeaseTests {
    @Test("a worker renews its lock while a long step runs: the lock stays its own and its expiry moves on")
    func renewalKeepsOwnership() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let register = slowStepWorkflow(named: "long_step", recorder: recorder)
            try await withApp(database, serviceName: "owner", configure: { $0.lockTimeout = LeaseTestTiming.lease }) { owner in
                let sampler = LockSampler(of: "long-1", in: database)
                let result = try await owner.run(register(owner), input: "done", instanceID: "long-1")
                let samples = sampler.stop()
                #expect(result == "done")
                expectRenewed(samples.values.first ?? [], by: owner.workerID)
                #expect(try await owner.history(of: "long-1").count == 1)
            }
            #expect(recorder.count("slow") == 1)
        }
    }

    @Test("leases are renewed on schedule while activity code blocks every thread of the cooperative pool", arguments: Backend.allCases)
    func renewalSurvivesSaturatedPool(_ backend: Backend) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CrashTests.workerPath), "edda-test-worker not built at \(CrashTests.workerPath)")
        try await withBackend(backend) { database in
            // One instance per cooperative thread of the worker, each blocking its thread for 6 s
            // under a 1.5 s lease, in a process of its own so that no other test shares its pool.
            // The worker samples the locks every 100 ms from a thread of its own.
            let target = database.sqlite?.path ?? database.url ?? ""
            let report = try await onOwnThread {
                try runCommand([CrashTests.workerPath, target, "block-pool", "\(LeaseTestTiming.step.seconds)"])
            }
            let line = try #require(report.split(separator: "\n").last(where: { $0.hasPrefix("{") }), "no report in: \(report)")
            let json = try #require(JSONValue(jsonText: String(line)))
            // The pool really was saturated: a task started once every blocker blocked could run
            // only when the first of them let its thread go.
            let probe = try #require(json["probe"])
            let (spawned, ran, firstEnd) = try (
                #require(probe["spawned_at"]?.stringValue.flatMap(Double.init)),
                #require(probe["ran_at"]?.stringValue.flatMap(Double.init)),
                #require(probe["first_end"]?.stringValue.flatMap(Double.init)))
            #expect(ran >= firstEnd - 0.05, "the probe ran \(ran - spawned) s after it was started, before a blocker ended")
            let worker = try #require(json["worker"]?.stringValue)
            let blockers = ProcessInfo.processInfo.activeProcessorCount
            for index in 1...blockers {
                let readings = json["samples"]?["blocked-\(index)"]?.arrayValue ?? []
                let samples = readings.compactMap { reading -> LockSample? in
                    guard let owner = reading[0]?.stringValue, let expiry = reading[1]?.stringValue.flatMap(Timestamp.parse) else { return nil }
                    return LockSample(owner: owner, expiry: expiry)
                }
                #expect(samples.count >= 20, "blocked-\(index): \(samples.count) readings")
                expectRenewed(samples, by: worker)
            }
            let completed = try await database.withApp(configure: { $0.runsBackgroundRecovery = false }) { app in
                try await app.findInstances(InstanceQuery()).instances.filter { $0.status == .completed }.count
            }
            #expect(completed == blockers)
        }
    }

    @Test("a worker whose lock was taken over while a step ran writes nothing: the new holder's state stands")
    func lostLockWritesNothing() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let gate = Gate()
            let step = ActivityDefinition<String, String>(name: "held_step") { input, _ in
                recorder.record("hold")
                await gate.wait()
                return input
            }
            try await withApp(database, serviceName: "owner") { owner in
                let flow = owner.register(workflow: "taken_over") { (input: String, context) in
                    try await context.run(step, input: input)
                }
                let id = try await owner.startDetached(flow, input: "x", instanceID: "taken-1")
                try await eventually("the held step") { recorder.count("hold") == 1 }
                // What another worker does once this one's lease has lapsed (a frozen process):
                // it takes the lock over.
                let rival = Timestamp.database(Date().addingTimeInterval(3_600))
                let queue = try openDatabase(database.path)
                try await queue.write { db in
                    try db.execute(
                        sql: "UPDATE workflow_instances SET locked_by = 'rival-worker', lock_expires_at = ? WHERE instance_id = ?",
                        arguments: [rival, id])
                }
                try queue.close()
                gate.open()
                try await eventually("the owner to give the instance up") { owner.engine.runningInstanceIDs.isEmpty }
                let instance = try #require(try rows(database, "SELECT status, locked_by, lock_expires_at, output_data FROM workflow_instances").first)
                #expect(instance["status"] == "running")
                #expect(instance["locked_by"] == "rival-worker")
                #expect(instance["lock_expires_at"] == rival)
                #expect(instance["output_data"] as String? == nil)
                #expect(try rows(database, "SELECT * FROM workflow_history").isEmpty)
            }
        }
    }

    @Test("the first renewal is planned from the lock's expiry, so a slow claim does not use up the lease")
    func renewalPlannedFromExpiry() {
        let lease = Duration.seconds(3)
        // A claim whose write took two seconds to commit: one second of its lease is left.
        let slow = ExecutionControl(instanceID: "slow-claim", lease: lease)
        slow.markClaimed(lockExpiresAt: Date().addingTimeInterval(1))
        #expect(slow.renewalDue <= ContinuousClock.now)
        // A claim that committed at once is renewed a third of the lease later.
        let prompt = ExecutionControl(instanceID: "prompt-claim", lease: lease)
        prompt.markClaimed(lockExpiresAt: Date().addingTimeInterval(3))
        let wait = prompt.renewalDue - ContinuousClock.now
        #expect(wait > .milliseconds(900) && wait <= .seconds(1))
        // An expiry from a clock running ahead never plans a renewal later than a full lease would.
        let ahead = ExecutionControl(instanceID: "ahead", lease: lease)
        ahead.markClaimed(lockExpiresAt: Date().addingTimeInterval(60))
        #expect(ahead.renewalDue - ContinuousClock.now <= .seconds(1))
    }
}

/// The test worker's step input (`StepInput` in edda-test-worker).
struct ShutdownStepInput: Codable, Sendable {
    var index: Int
}
