@testable import Edda
@testable import EddaSQLite
import EddaTesting
import Foundation
import GRDB
import Testing

/// Records a step; used around waits to count live executions.
struct Note: Activity {
    static let name = "note"
    let recorder: Recorder
    func run(_ input: String, context: ActivityContext) async throws -> String {
        recorder.record(input)
        return input
    }
}

struct Nap: Codable, Sendable {
    var seconds: Int
}

/// Notes "before", sleeps, notes "after".
struct Napper: Workflow {
    static let name = "napper"
    let recorder: Recorder
    func run(_ nap: Nap, context: WorkflowContext) async throws -> String {
        _ = try await context.run(Note(recorder: recorder), input: "before")
        try await context.sleep(for: .seconds(nap.seconds))
        return try await context.run(Note(recorder: recorder), input: "after")
    }
}

@Suite("Durable timers", .timeLimit(.minutes(2)))
struct TimerTests {
    @Test("A sleeping workflow holds no lock and no task, and resumes when the clock passes its deadline")
    func sleepWithManualClock() async throws {
        try await withDatabase { database in
            let clock = ManualClock()
            let recorder = Recorder()
            try await withApp(database, configure: { $0.clock = clock }) { app in
                app.register(Napper(recorder: recorder))
                let id = try await app.start(Napper.self, input: Nap(seconds: 86_400))
                let waiting = try #require(try await app.instance(id))
                #expect(waiting.status == .waitingForTimer)
                #expect(waiting.lockedBy == nil)
                #expect(waiting.currentActivityID == "sleep:1")
                #expect(app.engine.runningInstanceIDs[id] == nil)
                let timers = try rows(database, "SELECT timer_id, activity_id, expires_at FROM workflow_timer_subscriptions WHERE instance_id = ?", [id])
                #expect(timers.count == 1)
                #expect(timers.first?["timer_id"] as String? == "sleep:1")
                let expiryText: String = try #require(timers.first?["expires_at"])
                let expiry = try #require(Timestamp.parse(expiryText))
                #expect(abs(expiry.timeIntervalSince(clock.now()) - 86_400) < 1)

                // Not yet: half a day later it still waits.
                clock.advance(by: .seconds(43_200))
                try await Task.sleep(for: .milliseconds(200))
                #expect(try await app.instance(id)?.status == .waitingForTimer)

                clock.advance(by: .seconds(43_200))
                #expect(try await app.result(of: id, as: String.self) == "after")
                #expect(recorder.all == ["before", "after"])
                let history = try await app.history(of: id).map { "\($0.activityID) \($0.eventType)" }
                #expect(history == ["note:1 ActivityCompleted", "sleep:1 TimerExpired", "note:2 ActivityCompleted"])
                let expired = try #require(try await app.history(of: id).first { $0.eventType == "TimerExpired" }?.data)
                #expect(expired["timer_id"] == .string("sleep:1"))
                #expect(expired["result"] == .null)
                #expect(try rows(database, "SELECT * FROM workflow_timer_subscriptions").isEmpty)
            }
        }
    }

    @Test("sleep(until:) in the past is recorded without suspending; explicit timer IDs are used as given")
    func sleepUntilAndExplicitIDs() async throws {
        try await withDatabase { database in
            let clock = ManualClock()
            try await withApp(database, configure: { $0.clock = clock }) { app in
                let flow = app.register(workflow: "deadlines") { (_: NoValue, context) -> String in
                    try await context.sleep(until: Date(timeIntervalSince1970: 0))
                    try await context.sleep(for: .seconds(60), id: "cool-down")
                    return "done"
                }
                let id = try await app.start(flow, input: NoValue())
                #expect(try await app.instance(id)?.currentActivityID == "cool-down")
                clock.advance(by: .seconds(60))
                #expect(try await app.result(of: id, as: String.self) == "done")
                let history = try await app.history(of: id).map { "\($0.activityID) \($0.eventType)" }
                #expect(history == ["sleep_until:1 TimerExpired", "cool-down TimerExpired"])
            }
        }
    }

    @Test("Timers fire on the real clock without a polling delay, and many sleepers each wake once")
    func realClockTimers() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            try await withApp(database) { app in
                app.register(Napper(recorder: recorder))
                var ids: [String] = []
                for _ in 0..<5 {
                    ids.append(try await app.start(Napper.self, input: Nap(seconds: 1)))
                }
                for id in ids {
                    #expect(try await app.result(of: id, as: String.self) == "after")
                }
                #expect(recorder.count("before") == 5)
                #expect(recorder.count("after") == 5)
            }
        }
    }

    @Test("A timer that fell due while no app was running fires after a restart")
    func overdueTimerAfterRestart() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            // The first app's clock stands still, so the timer cannot fire before it shuts down,
            // however slowly that happens; the second app runs on the real clock.
            let id = try await withApp(database, configure: { $0.clock = ManualClock() }) { app in
                app.register(Napper(recorder: recorder))
                return try await app.start(Napper.self, input: Nap(seconds: 1))
            }
            let status: String? = try rows(database, "SELECT status FROM workflow_instances").first?["status"]
            #expect(status == "waiting_for_timer")
            try await Task.sleep(for: .milliseconds(1_200))
            let result = try await withApp(database) { app in
                app.register(Napper(recorder: recorder))
                return try await app.result(of: id, as: String.self)
            }
            #expect(result == "after")
            #expect(recorder.all == ["before", "after"])
        }
    }

    @Test("Cancelling a sleeping workflow ends it at once and removes its timer")
    func cancelSleeping() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            try await withApp(database) { app in
                app.register(Napper(recorder: recorder))
                let id = try await app.start(Napper.self, input: Nap(seconds: 3_600))
                #expect(try await app.cancel(instanceID: id))
                let cancelled = try #require(try await app.instance(id))
                #expect(cancelled.status == .cancelled)
                #expect(cancelled.outputData?["previous_status"] == .string("waiting_for_timer"))
                #expect(try rows(database, "SELECT * FROM workflow_timer_subscriptions").isEmpty)
            }
        }
    }
}
