@testable import Edda
@testable import EddaSQLite
import EddaTesting
import Foundation
import GRDB
import Logging
import ServiceLifecycle
import Testing

struct Countdown: Codable, Sendable {
    var remaining: Int
    var total: Int
}

@Suite("Recur and background services", .timeLimit(.minutes(2)))
struct RecurAndLeaderTests {
    @Test("recur ends each instance as recurred, archives its history, and the chain ends with the result")
    func recurChain() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            try await withApp(database) { app in
                let loop = app.register(workflow: "countdown") { (state: Countdown, context) -> Int in
                    try await context.subscribe("ticks")
                    _ = try await context.run(Note(recorder: recorder), input: "tick \(state.remaining)")
                    if state.remaining == 0 { return state.total }
                    try await context.recur(with: Countdown(remaining: state.remaining - 1, total: state.total + state.remaining))
                }
                let first = try await app.start(loop, input: Countdown(remaining: 3, total: 0))
                #expect(try await app.result(of: first, as: Int.self) == 6)
                #expect(recorder.all == ["tick 3", "tick 2", "tick 1", "tick 0"])

                let chain = try rows(database, "SELECT instance_id, status, continued_from, output_data, input_data FROM workflow_instances ORDER BY started_at, rowid")
                #expect(chain.map { $0["status"] as String } == ["recurred", "recurred", "recurred", "completed"])
                #expect(chain[0]["instance_id"] as String == first)
                for index in 1..<4 {
                    #expect(chain[index]["continued_from"] as String? == chain[index - 1]["instance_id"] as String)
                }
                let output = try #require(JSONValue(jsonText: chain[0]["output_data"]))
                #expect(output["recur_kwargs"] == ["remaining": 2, "total": 3])
                // History moved to the archive; the recurred instances keep no history, waits or compensations.
                #expect(try rows(database, "SELECT * FROM workflow_history WHERE instance_id = ?", [first]).isEmpty)
                let archived = try rows(database, "SELECT activity_id FROM workflow_history_archive WHERE instance_id = ?", [first])
                #expect(archived.map { $0["activity_id"] as String } == ["note:1"])
                #expect(try rows(database, "SELECT * FROM channel_subscriptions").isEmpty)
            }
        }
    }

    @Test("run follows a recurring workflow to its last instance")
    func runThroughRecur() async throws {
        try await withDatabase { database in
            try await withApp(database) { app in
                let loop = app.register(workflow: "doubling") { (value: Int, context) -> Int in
                    if value >= 100 { return value }
                    try await context.recur(with: value * 2)
                }
                let doubled = try await app.run(loop, input: 3)
                #expect(doubled == 192)
                let failing = app.register(workflow: "bad-recur") { (value: Int, context) -> Int in
                    try await context.recur(with: "not a number")
                }
                let failure = await #expect(throws: WorkflowFailedError.self) { try await app.run(failing, input: 1) }
                #expect(failure?.message.contains("does not decode") == true)
            }
        }
    }

    @Test("The leader lease moves to another app when the leader shuts down, and the leader deletes expired messages")
    func leaderFailover() async throws {
        try await withDatabase { database in
            let configure: (inout EddaApp.Configuration) -> Void = {
                $0.leaderHeartbeatInterval = .milliseconds(100)
                // Failover comes from the release on shutdown; a lease this long never lapses on
                // a live leader, however loaded the machine is.
                $0.leaderLeaseDuration = .seconds(60)
                $0.messageRetention = .seconds(3_600)
                $0.messageCleanupInterval = .milliseconds(100)
            }
            let first = try await database.makeApp(serviceName: "first", configure: configure)
            try await eventually("a leader") { first.isLeader }
            let second = try await database.makeApp(serviceName: "second", configure: configure)
            try await Task.sleep(for: .milliseconds(300))
            #expect(first.isLeader)
            #expect(!second.isLeader)
            let holder: String? = try rows(database, "SELECT locked_by FROM system_locks WHERE lock_name = 'edda_leader_swift'").first?["locked_by"]
            #expect(holder == first.workerID)

            await first.shutdown()
            try await eventually("the second app to lead") { second.isLeader }

            // A message older than the retention is deleted by the (new) leader; a fresh one is kept.
            try await second.publish(to: "old", data: Job(number: 1))
            try await second.publish(to: "fresh", data: Job(number: 2))
            let pool = try openDatabase(database.path)
            try await pool.write { db in
                try db.execute(sql: "UPDATE channel_messages SET published_at = '2000-01-01 00:00:00.000000' WHERE channel = 'old'")
            }
            try pool.close()
            try await eventually("the old message to be deleted") {
                try rows(database, "SELECT channel FROM channel_messages").map { $0["channel"] as String } == ["fresh"]
            }
            await second.shutdown()
        }
    }

    @Test("A leader that stops renewing loses the lease to another app after it expires")
    func leaderLeaseExpiry() async throws {
        try await withDatabase { database in
            // A lease held by a worker that died: written straight to the table.
            let queue = try openDatabase(database.path)
            try await database.withApp { _ in }  // creates the schema
            let expiry = Date().addingTimeInterval(3)
            try await queue.write { db in
                let soon = Timestamp.database(expiry)
                try db.execute(
                    sql: "INSERT OR REPLACE INTO system_locks (lock_name, locked_by, locked_at, lock_expires_at) VALUES ('edda_leader_swift', 'dead-worker', ?, ?)",
                    arguments: [soon, soon])
            }
            try queue.close()
            try await withApp(database, configure: {
                $0.leaderHeartbeatInterval = .milliseconds(100)
                $0.leaderLeaseDuration = .milliseconds(400)
            }) { app in
                // Leadership is seen only after the dead worker's lease ran out. (Polling sees it
                // late, never early, so a slow machine cannot fail this.)
                var takenAt: Date?
                try await eventually("the lease to pass to the live app") {
                    if app.isLeader { takenAt = Date() }
                    return takenAt != nil
                }
                // (A millisecond allows for the stored timestamp's rounding.)
                #expect(try #require(takenAt) >= expiry.addingTimeInterval(-0.001))
            }
        }
    }

    @Test("As a ServiceLifecycle service the app resumes deliveries, fires hooks, and stops everything on graceful shutdown")
    func serviceLifecycle() async throws {
        try await withDatabase { database in
            let hooks = RecordingHooks()
            let app = try await database.makeApp { configuration in
                configuration.hooks = hooks
                configuration.leaderHeartbeatInterval = .milliseconds(100)
                configuration.leaderLeaseDuration = .milliseconds(400)
            }
            let flow = app.register(workflow: "greeter") { (_: NoValue, context) -> String in
                let event = try await context.waitEvent("hello", as: [String: String].self)
                return event.data["name"] ?? ""
            }
            let group = ServiceGroup(services: [app], logger: Logger(label: "test"))
            let running = Task { try await group.run() }
            let id = try await app.start(flow, input: NoValue())
            try await app.sendEvent(CloudEventAttributes(type: "hello", source: "/"), data: ["name": "Ada"])
            #expect(try await app.result(of: id, as: String.self) == "Ada")
            #expect(hooks.events.contains("event hello \(id) {\"name\":\"Ada\"}"))
            try await eventually("leadership") { app.isLeader }

            await group.triggerGracefulShutdown()
            try await running.value
            #expect(!app.isLeader)
            let holder: String?? = try rows(database, "SELECT locked_by FROM system_locks WHERE lock_name = 'edda_leader_swift'").first?["locked_by"]
            #expect(holder == .some(nil))
        }
    }
}
