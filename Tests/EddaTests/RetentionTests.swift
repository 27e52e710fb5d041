import Edda
import EddaSQLite
import EddaTesting
import Foundation
import GRDB
import MetricsTestKit
import Testing

/// Retention of finished instances beyond the conformance kit's check: frameworks, the leader's
/// retention, and purges beside running workers.
@Suite("Retention", .timeLimit(.minutes(3)))
struct RetentionTests {
    @Test("another framework's finished instances are left alone unless asked for")
    func otherFrameworks() async throws {
        try await withDatabase { database in
            try await withApp(database) { app in
                let flow = app.register(workflow: "tiny") { (value: Int, _) -> Int in value }
                for value in 1...2 { _ = try await app.run(flow, input: value, instanceID: "tiny-\(value)") }
                let queue = try DatabaseQueue(path: database.path)
                try await queue.write { try $0.execute(sql: "UPDATE workflow_instances SET framework = 'python' WHERE instance_id = 'tiny-2'") }
                try queue.close()
                let later = Date().addingTimeInterval(1)
                #expect(try await app.purgeInstances(try PurgeFilter(endedBefore: later)) == 1)
                #expect(try await app.instance("tiny-1") == nil)
                #expect(try await app.instance("tiny-2") != nil)
                #expect(try await app.purgeInstances(try PurgeFilter(endedBefore: later, allFrameworks: true)) == 1)
                #expect(try await app.instance("tiny-2") == nil)
            }
        }
    }

    @Test("the leader deletes finished instances past instanceRetention, and counts them")
    func leaderRetention() async throws {
        let metrics = TestMetrics()
        try await withDatabase { database in
            try await withApp(database, configure: {
                $0.instanceRetention = .milliseconds(1)
                $0.messageCleanupInterval = .milliseconds(50)
                $0.leaderHeartbeatInterval = .milliseconds(50)
                $0.metricsFactory = metrics
            }) { app in
                let flow = app.register(workflow: "short") { (value: Int, _) -> Int in value }
                _ = try await app.run(flow, input: 1, instanceID: "short-1")
                try await eventually("the leader's retention") { try await app.instance("short-1") == nil }
            }
        }
        #expect(metrics.counterTotal(label: EddaMetricName.purgedInstances) == 1)
    }

    @Test("purges running beside busy workers delete only finished instances", arguments: [Backend.sqlite, Backend.postgres])
    func purgeBesideWorkers(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            try await database.withApp { app in
                let flow = app.register(workflow: "busy") { (value: Int, context) -> Int in
                    var total = value
                    for step in 1...3 {
                        total += try await context.run(
                            ActivityDefinition<Int, Int>(name: "add") { input, _ in input }, input: step)
                    }
                    return total
                }
                let purging = Task {
                    var purged = 0
                    while !Task.isCancelled {
                        purged += (try? await app.purgeInstances(try PurgeFilter(endedBefore: Date().addingTimeInterval(1)))) ?? 0
                        try? await Task.sleep(for: .milliseconds(5))
                    }
                    return purged
                }
                let results = try await withThrowingTaskGroup(of: Int.self) { group in
                    for value in 0..<40 { group.addTask { try await app.run(flow, input: value * 100) } }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                purging.cancel()
                let purged = await purging.value
                #expect(results.sorted() == (0..<40).map { $0 * 100 + 6 })
                let rest = try await app.purgeInstances(try PurgeFilter(endedBefore: Date().addingTimeInterval(2)))
                #expect(purged + rest == 40, "every instance purged once it had finished, none before")
                #expect(try await app.findInstances(InstanceQuery()).instances.isEmpty)
            }
        }
    }
}
