@testable import Edda
import Foundation
import Logging
import EddaTesting
import Testing

@Suite("Worker liveness markers")
struct WorkerLivenessTests {
    @Test("A marker folder others can write to is refused; markers are kept per boot and per database")
    func privateAndScoped() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("edda-liveness-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: base)
        let error = #expect(throws: EddaUsageError.self) {
            _ = try WorkerLiveness(directory: WorkerLiveness.directory(base: base, database: "sqlite:/a.db"), workerID: "w-1")
        }
        #expect(error?.message.contains("not a private folder") == true)

        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: base)
        let first = WorkerLiveness.directory(base: base, database: "sqlite:/a.db")
        #expect(first == WorkerLiveness.directory(base: base, database: "sqlite:/a.db"))
        #expect(first != WorkerLiveness.directory(base: base, database: "postgresql://edda@db:5432/orders"))
        let marker = try WorkerLiveness(directory: first, workerID: "w-1")
        // An app on another database does not see this worker's marker at all.
        let other = try WorkerLiveness(directory: WorkerLiveness.directory(base: base, database: "sqlite:/b.db"), workerID: "w-2")
        _ = FileManager.default.createFile(atPath: first + "/w-0.alive", contents: nil)
        #expect(other.endedWorkers().isEmpty)
        #expect(marker.endedWorkers().map(\.workerID) == ["w-0"])
        marker.remove()
        other.remove()
    }

    @Test("A live worker's marker is never taken for ended, in this process or another; an unlocked one is, once")
    func markers() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edda-liveness-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try WorkerLiveness(directory: directory, workerID: "orders-41-aa")
        let second = try WorkerLiveness(directory: directory, workerID: "orders/42 bb")
        #expect(first.endedWorkers().isEmpty)
        #expect(second.endedWorkers().isEmpty)

        // A marker nobody holds: its process has ended.
        _ = FileManager.default.createFile(atPath: directory + "/orders-40-cc.alive", contents: nil)
        let ended = first.endedWorkers()
        #expect(ended.map(\.workerID) == ["orders-40-cc"])
        // While the first holds it, no one else acts on it.
        #expect(second.endedWorkers().isEmpty)
        first.forget(ended[0])
        #expect(second.endedWorkers().isEmpty)

        // A clean shutdown leaves nothing to take over.
        second.remove()
        #expect(first.endedWorkers().isEmpty)
        first.remove()
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }
}

/// Keeps every log message, for tests that check what the app says.
struct RecordingLogHandler: LogHandler {
    let messages: Recorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        messages.record(event.message.description)
    }
}

@Suite("Instances held by other workers", .timeLimit(.minutes(2)))
struct HeldInstanceReportTests {
    @Test("Instances a worker this one cannot see holds are logged once, with when its lease ends")
    func loggedOnce() async throws {
        try await withDatabase { database in
            let gate = Gate()
            let started = Recorder()
            let hold = ActivityDefinition<String, String>(name: "hold") { input, _ in
                started.record("started")
                await gate.wait()
                return input
            }
            let markers = FileManager.default.temporaryDirectory.appendingPathComponent("edda-held-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: markers) }
            var holderConfiguration = EddaApp.Configuration.testing(serviceName: "holder", database: database.location)
            holderConfiguration.lockTimeout = .seconds(60)
            holderConfiguration.workerLivenessDirectory = markers + "/host-a"
            try await EddaApp.running(holderConfiguration) { holder in
                // Also when a check fails: the holder's shutdown waits for its step.
                defer { gate.open() }
                let flow = holder.register(workflow: "held") { (input: String, context) -> String in
                    try await context.run(hold, input: input)
                }
                let id = try await holder.startDetached(flow, input: "x")
                try await eventually("the step running") { started.count("started") == 1 }

                let messages = Recorder()
                var observer = EddaApp.Configuration.testing(serviceName: "observer", database: database.location)
                observer.workerLivenessDirectory = markers + "/host-b"
                observer.logger = Logger(label: "observer") { _ in RecordingLogHandler(messages: messages) }
                try await EddaApp.running(observer) { app in
                    _ = app.register(workflow: "held") { (input: String, context) -> String in
                        try await context.run(hold, input: input)
                    }
                    let expected = "1 instances held by worker \(holder.workerID) resume when its lease ends at"
                    try await eventually("the report") { messages.all.contains { $0.hasPrefix(expected) } }
                    // Several recovery passes later, still said once.
                    try await Task.sleep(for: .milliseconds(500))
                    #expect(messages.all.filter { $0.hasPrefix(expected) }.count == 1)
                    #expect(try await app.instance(id)?.lockedBy == holder.workerID)
                }
                gate.open()
                _ = try await holder.result(of: id, as: String.self)
            }
        }
    }
}
