import CoreMetrics
import Edda
import EddaSQLite
import EddaTesting
import Foundation
import MetricsTestKit
import Testing

/// The metrics an app reports, read from swift-metrics' in-memory backend given to the app as
/// its factory (the process's `MetricsSystem` stays untouched).
@Suite("Metrics", .timeLimit(.minutes(2)))
struct MetricsTests {
    typealias Name = EddaMetricName

    func total(_ metrics: TestMetrics, _ label: String, _ dimensions: [(String, String)]) -> Int64 {
        metrics.counterTotal(label: label, dimensions: dimensions)
    }

    @Test("a saga with a retry and a compensation: exact counts of starts, ends, attempts by outcome, compensations and commits")
    func saga() async throws {
        let metrics = TestMetrics()
        try await withDatabase { database in
            let recorder = Recorder()
            // Nothing writes beside the workflow (no background loops, no lease renewal within a
            // minute's lease), so that each commit's batch is the workflow's own operation alone.
            try await withApp(database, configure: {
                $0.metricsFactory = metrics
                $0.runsBackgroundRecovery = false
                $0.lockTimeout = .seconds(60)
            }) { app in
                let flow = registerTrip(app, recorder: recorder)
                await #expect(throws: WorkflowFailedError.self) { try await app.run(flow, input: NoValue()) }
            }
            #expect(recorder.all == ["book hotel", "attempt 1", "attempt 2", "undo booking-hotel"])
        }
        #expect(total(metrics, Name.workflowStarts, [(Name.workflow, "trip")]) == 1)
        #expect(total(metrics, Name.workflowEnds, [(Name.workflow, "trip"), (Name.status, "failed")]) == 1)
        #expect(metrics.counterTotal(label: Name.workflowEnds) == 1)
        #expect(total(metrics, Name.activityAttempts, [(Name.activity, "book"), (Name.outcome, "success")]) == 1)
        #expect(total(metrics, Name.activityAttempts, [(Name.activity, "flaky"), (Name.outcome, "retry")]) == 1)
        #expect(total(metrics, Name.activityAttempts, [(Name.activity, "flaky"), (Name.outcome, "success")]) == 1)
        #expect(total(metrics, Name.activityAttempts, [(Name.activity, "explode"), (Name.outcome, "failure")]) == 1)
        #expect(metrics.counterTotal(label: Name.activityAttempts) == 4)
        #expect(total(metrics, Name.compensations, [(Name.activity, Book.compensationName), (Name.outcome, "success")]) == 1)
        #expect(metrics.counterTotal(label: Name.compensations) == 1)
        #expect(metrics.counterTotal(label: Name.replayedSteps) == 0)
        // One duration per attempt, under the attempt's outcome.
        #expect(try metrics.expectTimer(Name.activityDuration, [(Name.activity, "flaky"), (Name.outcome, "retry")]).values.count == 1)
        #expect(metrics.timers(label: Name.activityDuration).reduce(0) { $0 + $1.values.count } == 4)
        // Commits: three steps (book, flaky, the failure of explode), begin compensating, the
        // compensation's record, the end.
        let commits = Dictionary(grouping: metrics.timers(label: Name.commitDuration)) {
            $0.dimensions.first { $0.0 == Name.transition }?.1 ?? ""
        }.mapValues { $0.reduce(0) { $0 + $1.values.count } }
        #expect(commits == ["step": 3, "compensate": 1, "compensation": 1, "finish": 1])
        // SQLite's group commit reports each commit's batch: one operation at a time here (the
        // instance's creation and its six commits).
        let batches = try metrics.expectRecorder(Name.commitBatchSize).values
        #expect(batches.count >= 7 && batches.allSatisfy { $0 == 1 }, "\(batches)")
    }

    @Test("a resumption after a wait replays the recorded step without running it again")
    func replay() async throws {
        let metrics = TestMetrics()
        try await withDatabase { database in
            let recorder = Recorder()
            try await withApp(database, configure: { $0.metricsFactory = metrics }) { app in
                let flow = registerWaiting(app, recorder: recorder)
                let id = try await app.start(flow, input: NoValue())
                #expect(try await app.instance(id)?.status == .waitingForMessage)
                try await app.publish(to: "go", data: "now")
                try await eventually("the workflow completes") { try await app.instance(id)?.status == .completed }
            }
            #expect(recorder.all == ["book car"])
        }
        #expect(total(metrics, Name.workflowStarts, [(Name.workflow, "waiting")]) == 1)
        #expect(total(metrics, Name.workflowEnds, [(Name.workflow, "waiting"), (Name.status, "completed")]) == 1)
        #expect(total(metrics, Name.activityAttempts, [(Name.activity, "book"), (Name.outcome, "success")]) == 1)
        #expect(total(metrics, Name.replayedSteps, [(Name.workflow, "waiting")]) == 1)
        #expect(metrics.timers(label: Name.commitDuration).contains { $0.dimensions.contains { $0 == (Name.transition, "receive") } })
        // The resumption after the message: one resume lag, for a message.
        #expect(metrics.timers(label: Name.resumeLag).map(\.dimensions.description) == [[(Name.waitKind, "message")].description])
        #expect(metrics.timers(label: Name.resumeLag).flatMap(\.values).count == 1)
    }

    @Test(
        "the resume lag of a timer is measured from its expiry; the leader measures waiting instances and the outbox backlog",
        arguments: Backend.allCases)
    func lagAndGauges(_ backend: Backend) async throws {
        let metrics = TestMetrics()
        try await withBackend(backend) { database in
            try await database.withApp(configure: {
                $0.metricsFactory = metrics
                $0.leaderHeartbeatInterval = .milliseconds(50)
            }) { app in
                let sleeper = app.register(workflow: "sleeper") { (seconds: Double, context) -> String in
                    try await context.sleep(for: .milliseconds(Int(seconds * 1000)))
                    return "awake"
                }
                let waiter = app.register(workflow: "waiter") { (_: NoValue, context) -> String in
                    try await context.waitEvent("never", as: String.self).data
                }
                let short = try await app.start(sleeper, input: 0.2)
                _ = try await app.start(sleeper, input: 3600)
                _ = try await app.start(waiter, input: NoValue())
                _ = try await app.start(waiter, input: NoValue())
                try await eventually("the short sleep ends") { try await app.instance(short)?.status == .completed }
                try await eventually("the gauges show the waits") {
                    (try? metrics.expectGauge(Name.waitingInstances, [(Name.waitKind, "timer")]).lastValue) == 1
                        && (try? metrics.expectGauge(Name.waitingInstances, [(Name.waitKind, "message")]).lastValue) == 2
                }
            }
        }
        let lags = metrics.timers(label: Name.resumeLag)
        #expect(lags.map(\.dimensions.description) == [[(Name.waitKind, "timer")].description])
        let lag = try #require(lags.first?.lastValue)
        #expect(lag >= 0 && lag < 60_000_000_000, "from the expiry to the resumption: \(lag) ns")
        #expect(try metrics.expectGauge(Name.outboxBacklog).lastValue == 0)
    }

    @Test("a claim lost to the running worker, one won after a crash, and the lease renewals of a long step are counted")
    func claimsAndRenewals() async throws {
        let metrics = TestMetrics()
        try await withDatabase { database in
            let recorder = Recorder()
            let gate = Gate()
            func register(_ app: EddaApp) -> WorkflowReference<NoValue, String> {
                app.register(workflow: "long", lockTimeout: .seconds(3)) { (_: NoValue, context) -> String in
                    try await context.run(Hold(gate: gate, recorder: recorder), input: "x")
                }
            }
            // Left running by a worker that stopped inside its step.
            let crashed = try await startAndStop(database, register: register, input: NoValue(), heldBy: recorder)
            try await withApp(database, configure: {
                $0.metricsFactory = metrics
                $0.runsBackgroundRecovery = false
            }) { running in
                _ = register(running)
                try await eventually("the stopped worker's lock runs out") {
                    try await running.instance(crashed)?.lockExpiresAt.map { $0 < Date() } ?? true
                }
                async let resumed = running.resume(instanceID: crashed)
                try await eventually("the resume runs the step") { recorder.count("hold") == 2 }
                let ranElsewhere = try await withApp(database, configure: {
                    $0.metricsFactory = metrics
                    $0.runsBackgroundRecovery = false
                }) { other in
                    _ = register(other)
                    return try await other.resume(instanceID: crashed)
                }
                #expect(!ranElsewhere)
                // A renewal of the 3 s lease (every second) while the step holds.
                try await Task.sleep(for: .milliseconds(1_500))
                gate.open()
                #expect(try await resumed)
            }
        }
        #expect(total(metrics, Name.claims, [(Name.outcome, "won")]) == 1)
        #expect(total(metrics, Name.claims, [(Name.outcome, "lost")]) == 1)
        #expect(total(metrics, Name.leaseRenewals, [(Name.outcome, "renewed")]) >= 1)
        #expect(total(metrics, Name.leaseRenewals, [(Name.outcome, "lost")]) == 0)
    }
}
