import Edda
import EddaSQLite
import Foundation
import Logging
import MetricsTestKit
import Testing

@Suite("Background health", .timeLimit(.minutes(2)))
struct BackgroundHealthTests {
    @Test("A background loop whose store fails is reported by the app, logged with its loop, counted, and healthy again once the store answers")
    func failuresSurface() async throws {
        try await withDatabase { database in
            let outage = StoreOutage()
            let metrics = TestMetrics()
            let messages = Recorder()
            var configuration = EddaApp.Configuration.testing(serviceName: "health", database: database.location)
            configuration.recoveryInterval = .milliseconds(50)
            configuration.metricsFactory = metrics
            configuration.logger = Logger(label: "health") { _ in RecordingLogHandler(messages: messages) }
            let app = try await EddaApp(configuration: configuration, store: CoreOnlyStore(try SQLiteStore(path: database.path), outage: outage))
            func status(_ loop: BackgroundLoop) -> BackgroundLoopStatus? { app.backgroundStatus.first { $0.loop == loop } }
            do {
                let echo = app.register(workflow: "echo") { (input: String, _) -> String in input }
                // A driver with the core alone: no outbox, no push wake-ups.
                #expect(app.backgroundStatus.map(\.loop) == [.recovery, .waitScheduler, .leader, .leaseRenewal])
                try await eventually("a recovery pass") { status(.recovery)?.lastSuccess != nil }
                #expect(app.backgroundStatus.filter { !$0.isHealthy }.isEmpty)

                outage.isOn = true
                try await eventually("failing passes") {
                    (status(.recovery)?.consecutiveFailures ?? 0) >= 3 && (status(.waitScheduler)?.consecutiveFailures ?? 0) >= 1
                }
                let recovery = try #require(status(.recovery))
                #expect(!recovery.isHealthy)
                #expect(recovery.lastFailure?.message == "Recovery pass failed; retrying: the test's store outage")
                #expect(status(.waitScheduler)?.lastFailure?.message.contains("the test's store outage") == true)
                #expect(metrics.counterTotal(label: EddaMetricName.backgroundFailures, dimensions: [(EddaMetricName.loop, "recovery")]) >= 3)
                #expect(messages.all.contains("Recovery pass failed; retrying"))
                #expect(status(.leader)?.isHealthy == true, "a loop that does not read what failed stays healthy")

                outage.isOn = false
                try await eventually("recovered") { app.backgroundStatus.allSatisfy(\.isHealthy) }
                #expect(try #require(status(.recovery)).totalFailures >= 3, "the failures are still counted")
                #expect(messages.all.contains("Background work recovered"))
                // And the app works: an instance runs to its end.
                #expect(try await app.run(echo, input: "ok") == "ok")
            } catch {
                await app.shutdown()
                throw error
            }
            await app.shutdown()
        }
    }
}
