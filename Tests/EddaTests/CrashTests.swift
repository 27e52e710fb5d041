import Edda
import EddaTesting
import Foundation
import GRDB
import Testing

@Suite("Crash recovery", .timeLimit(.minutes(5)))
struct CrashTests {
    /// The `edda-test-worker` binary, built next to the test bundle.
    static var workerPath: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return bundle.appendingPathComponent("edda-test-worker").path
    }

    static func launch(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: workerPath)
        process.arguments = arguments
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
            // The timer's deadline leaves a wide window to see the sleeping state in, even when
            // the chaos suite loads both cores and this poller runs late.
            let deadline = Date().addingTimeInterval(10)
            var worker = try Self.launch([database.path, "start-waiter", "waiter-1", "\(deadline.timeIntervalSince1970)"])
            // Whatever happens, no worker outlives the test.
            defer {
                if worker.isRunning {
                    kill(worker.processIdentifier, SIGKILL)
                    worker.waitUntilExit()
                }
            }
            try await eventually("the durable sleep", timeout: .seconds(90)) { try status() == "waiting_for_timer" }
            kill(worker.processIdentifier, SIGKILL)
            worker.waitUntilExit()
            // The timer falls due while no worker runs; the restarted one fires it.
            #expect(Date() < deadline, "the worker was killed only after its timer fell due")
            try await Task.sleep(for: .seconds(max(0, deadline.timeIntervalSinceNow) + 0.2))
            worker = try Self.launch([database.path, "serve"])
            try await eventually("the event wait after the overdue timer fired", timeout: .seconds(90)) { try status() == "waiting_for_message" }
            kill(worker.processIdentifier, SIGKILL)
            worker.waitUntilExit()

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

    @Test("a worker killed with SIGKILL mid-workflow is resumed by a new process; no completed step runs twice")
    func killAndRestart() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.workerPath), "edda-test-worker not built at \(Self.workerPath)")
        try await withDatabase { database in
            let steps = 12
            var kills = 0
            let first = try Self.launch([database.path, "start", "crash-1", "\(steps)"])
            var current = first
            // Whatever happens, no worker outlives the test.
            defer {
                if current.isRunning {
                    kill(current.processIdentifier, SIGKILL)
                    current.waitUntilExit()
                }
            }
            // Kill the worker three times, each after it has made some progress.
            for round in 1...3 {
                // Generous: the chaos suite may be loading both cores at the same time.
                try await eventually("progress before kill \(round)", timeout: .seconds(90)) {
                    // The worker creates the table when it starts.
                    let done = (try? rows(database, "SELECT COUNT(*) AS n FROM executions").first?["n"] as Int?) ?? 0
                    return done >= round * 3
                }
                kill(current.processIdentifier, SIGKILL)
                current.waitUntilExit()
                kills += 1
                #expect(current.terminationReason == .uncaughtSignal)
                current = try Self.launch([database.path, "serve"])
            }
            try await eventually("completion after \(kills) kills", timeout: .seconds(120)) {
                try rows(database, "SELECT status FROM workflow_instances WHERE instance_id = 'crash-1'").first?["status"] as String? == "completed"
            }
            let executions = try rows(database, "SELECT activity_id, COUNT(*) AS n FROM executions GROUP BY activity_id")
            #expect(executions.count == steps)
            #expect(executions.allSatisfy { $0["n"] as Int == 1 })
            let output = try #require(try rows(database, "SELECT output_data FROM workflow_instances").first)
            #expect(JSONValue(jsonText: output["output_data"])?["result"] == .number(Double((1...steps).reduce(0, +) * 10)))
            let pids = try rows(database, "SELECT DISTINCT pid FROM executions")
            #expect(pids.count >= 2)
        }
    }
}

@Suite("Leases", .timeLimit(.minutes(2)))
struct LeaseTests {
    @Test("a worker renews its lock while a long step runs, so no other worker takes the instance over")
    func renewalKeepsOwnership() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let register = slowStepWorkflow(named: "long_step", recorder: recorder)
            let owner = try await database.makeApp(serviceName: "owner") { $0.lockTimeout = .milliseconds(1_500) }
            let rival = try await database.makeApp(serviceName: "rival") { $0.lockTimeout = .milliseconds(1_500) }
            _ = register(rival)
            let result = try await owner.run(register(owner), input: "done", instanceID: "long-1")
            #expect(result == "done")
            #expect(recorder.count("slow") == 1)
            let history = try await owner.history(of: "long-1")
            #expect(history.count == 1)
            await rival.shutdown()
            await owner.shutdown()
        }
    }
}
