import Edda
import EddaMySQL
import EddaPostgres
import EddaTesting
import Foundation
import PostgresNIO
import Testing

/// Several worker processes on one PostgreSQL or MySQL database, killed at random while they work.
@Suite("Multi-worker chaos", .timeLimit(.minutes(25)))
struct ChaosTests {
    static let workers = 4
    static let perWorker = 500

    /// Starts worker `index`, its output appended to `log` (kept for the report of a failure).
    static func launch(_ url: String, _ index: Int, log: URL) throws -> Process {
        if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
        let output = try FileHandle(forWritingTo: log)
        output.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CrashTests.workerPath)
        process.arguments = ["chaos", url, "\(index)", "\(perWorker)"]
        process.standardOutput = output
        process.standardError = output
        try process.run()
        try output.close()
        return process
    }

    /// What the database and the workers' logs say of each instance that did not complete.
    static func report(unfinishedIn backend: Backend, _ url: String, logs: [URL]) async throws -> String {
        let unfinished = try await rows(
            backend, url,
            "SELECT instance_id, status, COALESCE(current_activity_id, ''), COALESCE(locked_by, '') FROM workflow_instances "
                + "WHERE workflow_name = 'chaos' AND status <> 'completed' ORDER BY instance_id LIMIT 5")
        let logLines = logs.flatMap { log in
            ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").map { "\(log.lastPathComponent): \($0)" }
        }
        var report = ""
        for instance in unfinished {
            let id = instance[0]
            report += "\n\(instance.joined(separator: " | "))"
            for row in try await rows(backend, url, "SELECT activity_id, event_type FROM workflow_history WHERE instance_id = '\(id)' ORDER BY id") {
                report += "\n  history: \(row.joined(separator: " "))"
            }
            for row in try await rows(backend, url, "SELECT timer_id, activity_id FROM workflow_timer_subscriptions WHERE instance_id = '\(id)'") {
                report += "\n  timer: \(row.joined(separator: " "))"
            }
            for row in try await rows(backend, url, "SELECT channel, COALESCE(activity_id, '') FROM channel_subscriptions WHERE instance_id = '\(id)'") {
                report += "\n  subscription: \(row.joined(separator: " "))"
            }
            for line in logLines where line.contains(id) {
                report += "\n  log: \(line.prefix(400))"
            }
        }
        let errors = logLines.filter { $0.contains("error") || $0.contains("warning") }
        report += "\nworker log lines with a warning or an error: \(errors.count)"
        for line in errors.prefix(40) { report += "\n  \(line.prefix(400))" }
        return report
    }

    /// The rows of `sql` (whose columns are text or integers), each column as text.
    static func rows(_ backend: Backend, _ url: String, _ sql: String) async throws -> [[String]] {
        if backend == .mysql {
            return try await MariaDBTestServer.execute(url, sql).split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        }
        return try await PostgresTestServer.withConnection(url) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: PostgresTestServer.logger).collect().map { row in
                try row.map { cell in
                    if let number = try? cell.decode(Int.self) { return String(number) }
                    return try cell.decode(String.self)
                }
            }
        }
    }

    static func statusCounts(_ backend: Backend, _ url: String) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try await rows(backend, url, "SELECT status, COUNT(*) FROM workflow_instances WHERE workflow_name = 'chaos' GROUP BY status")
        where row.count == 2 {
            counts[row[0]] = Int(row[1])
        }
        return counts
    }

    @Test(
        "4 workers run 2,000 workflows while workers are SIGKILLed and restarted; all complete, no step runs twice",
        arguments: [Backend.postgres, .mysql])
    func killWorkersAtRandom(_ backend: Backend) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CrashTests.workerPath))
        let database = try await BackendDatabase.make(backend)
        let url = try #require(database.url)
        try await database.withApp(configure: { $0.runsBackgroundRecovery = false }) { _ in }
        _ = try await Self.rows(backend, url, "CREATE TABLE chaos_executions (step_key VARCHAR(255) NOT NULL, pid INT NOT NULL)")
        let total = Self.workers * Self.perWorker
        let logDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("edda-chaos-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: logDirectory) }
        let logs = (0..<Self.workers).map { logDirectory.appendingPathComponent("worker-\($0).log") }
        var processes = try (0..<Self.workers).map { try Self.launch(url, $0, log: logs[$0]) }
        defer {
            for process in processes { process.stop(with: SIGKILL) }
        }

        var configuration = EddaApp.Configuration(serviceName: "chaos-test", database: try database.location)
        configuration.runsBackgroundRecovery = false
        let observer = try await EddaApp(configuration: configuration)
        // One job per competing consumer, published while the workers run and are killed (kept
        // until a consumer receives it). On a loaded machine publishing takes minutes: the kills
        // must not wait for it, or the workers would finish their work before the first one.
        let consumers = (0..<total).filter { $0 % 3 == 1 }.count
        let publishing = Task {
            for number in 0..<consumers {
                try await observer.publish(to: "chaos.jobs", data: ["n": number])
            }
        }

        var kills = 0
        var selfExits: [String] = []
        var lastKill = ContinuousClock.now
        // Typically 1–4 minutes alone; beside the rest of the suite on a slow disk (PostgreSQL
        // commits of 0.7 ms and more) it took up to 21 minutes: the margin is for that.
        let deadline = ContinuousClock.now + .seconds(1_380)
        var counts: [String: Int] = [:]
        var eventSent: Set<String> = []
        // Work that stopped moving (an instance stuck for good) fails the test after five
        // quiet minutes, not at the deadline: the statuses change every few seconds while
        // anything runs, even on a loaded machine.
        var lastProgress = ContinuousClock.now
        while ContinuousClock.now < deadline, kills < 10 || ContinuousClock.now - lastProgress < .seconds(300) {
            if kills < 12, ContinuousClock.now - lastKill > .milliseconds(1500) {
                let victim = Int.random(in: 0..<Self.workers)
                guard processes[victim].stop(with: SIGKILL) else {
                    throw TestFailure(message: "worker \(victim) had not ended 60 s after SIGKILL")
                }
                processes[victim] = try Self.launch(url, victim, log: logs[victim])
                kills += 1
                lastKill = .now
            }
            // A worker that stopped by itself (a database error while starting its instances,
            // when the machine is slow) is restarted, as a supervisor would; its instances are
            // created idempotently.
            for index in processes.indices where !processes[index].isRunning {
                selfExits.append("worker \(index): exit \(processes[index].terminationStatus)")
                processes[index] = try Self.launch(url, index, log: logs[index])
            }
            // Deliver the awaited event to every instance waiting for it, from this process.
            var query = InstanceQuery()
            query.workflowName = "chaos"
            query.status = .waitingForMessage
            query.limit = 1000
            // Once each: the event is stored for its instance, so a worker killed before resuming
            // finds it after a restart. (Sending again every pass flooded the database, and this
            // process's PostgreSQL event loop, whenever the workers fell behind.)
            for instance in try await observer.findInstances(query).instances
            where instance.currentActivityID?.hasPrefix("receive_chaos.go") == true && !eventSent.contains(instance.instanceID) {
                try await observer.sendEvent(CloudEventAttributes(type: "chaos.go", source: "/chaos-test"), data: ["n": 1], to: instance.instanceID)
                eventSent.insert(instance.instanceID)
            }
            let previous = counts
            counts = try await Self.statusCounts(backend, url)
            if counts != previous { lastProgress = .now }
            if counts["completed"] == total, kills >= 10 { break }
            try await Task.sleep(for: .milliseconds(300))
        }
        publishing.cancel()
        let published = await publishing.result
        await observer.shutdown()

        let duplicates = try await Self.rows(backend, url, "SELECT step_key, COUNT(*) FROM chaos_executions GROUP BY step_key HAVING COUNT(*) > 1").count
        let executions = Int(try await Self.rows(backend, url, "SELECT COUNT(*) FROM chaos_executions").first?.first ?? "") ?? 0
        let expectedSteps = 2 * total + (0..<total).filter { $0 % 3 == 2 }.count
        print("chaos (\(backend)): \(total) workflows, \(Self.workers) workers, \(kills) SIGKILLs; statuses \(counts); "
            + "\(executions) step executions recorded for \(expectedSteps) steps; \(duplicates) steps ran twice; "
            + "workers that stopped by themselves: \(selfExits.isEmpty ? "none" : selfExits.joined(separator: ", "))")
        #expect(throws: Never.self, "publishing the jobs") { try published.get() }
        #expect(kills >= 10)
        if counts != ["completed": total] {
            Issue.record("not every instance completed: \(counts)\(try await Self.report(unfinishedIn: backend, url, logs: logs))")
        }
        #expect(executions == expectedSteps)
        #expect(duplicates == 0)
    }
}

@Suite("PostgreSQL server restart", .timeLimit(.minutes(8)))
struct PostgresRestartTests {
    @Test("The server restarts in the middle of a run: workers reconnect and finish the work")
    func restartMidRun() async throws {
        let cluster = try await PostgresTestServer.startPrivateCluster()
        defer { cluster.stop() }
        let url = cluster.url + "?connect_timeout=2"
        let recorder = Recorder()
        var configuration = EddaApp.Configuration(serviceName: "restart", database: try .postgres(url: url))
        configuration.lockTimeout = .seconds(2)
        configuration.recoveryInterval = .milliseconds(200)
        configuration.defaultRetryPolicy = RetryPolicy(initialInterval: .milliseconds(50), maxAttempts: 50, maxDuration: .seconds(60))
        let app = try await EddaApp(configuration: configuration)
        let flow = app.register(workflow: "steady") { (index: Int, context) -> Int in
            _ = try await context.run(Note(recorder: recorder), input: "a\(index)")
            try await context.sleep(for: .milliseconds(300 + index * 20))
            _ = try await context.run(Note(recorder: recorder), input: "b\(index)")
            try await context.sleep(for: .milliseconds(300))
            return index
        }
        var ids: [String] = []
        for index in 0..<40 { ids.append(try await app.startDetached(flow, input: index)) }
        try await Task.sleep(for: .milliseconds(400))
        try await cluster.restart()
        for (index, id) in ids.enumerated() {
            // A read made while the pool is being replaced fails ("did not answer"); the next works.
            var result: Int?
            try await eventually("the result of \(id)", timeout: .seconds(180)) {
                result = try? await app.result(of: id, as: Int.self, pollInterval: .milliseconds(200))
                return result != nil
            }
            #expect(result == index)
        }
        for index in 0..<40 {
            #expect(recorder.count("b\(index)") >= 1)
        }
        await app.shutdown()
    }
}
