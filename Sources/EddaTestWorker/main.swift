// A worker process for crash tests: runs the `crash_steps` workflow on the SQLite file given as
// the first argument. Each step records its execution in the `executions` table inside the
// step's own commit transaction, so a count above one means a completed step ran twice. A step
// runs only once the `gate` table allows its index (see `Gate`).
//
//   edda-test-worker <db-path> start <instance-id> <steps>   start the workflow and run it
//   edda-test-worker <db-path> start-waiter <instance-id> <deadline>
//                                                             start the `waiter` workflow (its timer
//                                                             falls due at <deadline>, seconds since
//                                                             1970), then serve
//   edda-test-worker <db-path> serve                          resume whatever is unfinished
//   edda-test-worker <db-path> start-service <instance-id> <steps>
//                                                             start the workflow detached and run the
//                                                             app as a ServiceLifecycle service that
//                                                             shuts down gracefully on SIGTERM;
//                                                             EDDA_TEST_STEP_DELAY (seconds) sets how
//                                                             long each step takes
//   edda-test-worker <db-path> relay-hang                     relay outbox events to a broker that
//                                                             never answers (prints "sending <id>");
//                                                             lease EDDA_TEST_OUTBOX_LEASE seconds
//   edda-test-worker <db-path-or-url> block-pool <seconds>    block every cooperative thread for
//                                                             <seconds> in activities with a 1.5 s
//                                                             lease; prints the lock samples (see
//                                                             PoolBlocking.swift)
//   edda-test-worker chaos <postgresql-url> <index> <count>    a chaos worker (see Chaos.swift)
import Edda
import EddaSQLite
import Foundation
import GRDB
import Logging
import ServiceLifecycle

struct StepInput: Codable, Sendable {
    var index: Int
}

/// The highest step index the test lets run, read from the one-row `gate` table the test writes;
/// with no row, every step may run. A step past the gate waits at it, so the test decides where
/// each kill lands however slowly it gets to see the worker's progress.
struct Gate: Sendable {
    let queue: DatabaseQueue

    func pass(_ index: Int) async throws {
        while true {
            let allowed = try await queue.read { try Int.fetchOne($0, sql: "SELECT allowed FROM gate") }
            if allowed ?? .max >= index { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

struct Step: Activity {
    static let name = "step"
    let delay: Duration
    var gate: Gate?

    func run(_ input: StepInput, context: ActivityContext) async throws -> Int {
        try await gate?.pass(input.index)
        try await Task.sleep(for: delay)
        let activityID = context.activityID
        context.transaction { db in
            try db.execute(
                sql: "INSERT INTO executions (activity_id, pid) VALUES (?, ?)",
                arguments: [activityID, Int(ProcessInfo.processInfo.processIdentifier)])
        }
        return input.index * 10
    }
}

struct CrashSteps: Workflow {
    static let name = "crash_steps"
    let delay: Duration
    let gate: Gate

    func run(_ steps: Int, context: WorkflowContext) async throws -> Int {
        var total = 0
        for index in 1...steps {
            total += try await context.run(Step(delay: delay, gate: gate), input: StepInput(index: index))
        }
        return total
    }
}

/// A step, a durable sleep until the deadline the test chose, a wait for the `go` event, and a
/// last step. The test picks the deadline so that it sees the sleeping state even when the
/// machine is loaded, and kills the worker before the timer falls due.
struct Waiter: Workflow {
    static let name = "waiter"

    func run(_ deadline: Date, context: WorkflowContext) async throws -> String {
        _ = try await context.run(Step(delay: .zero), input: StepInput(index: 1))
        try await context.sleep(until: deadline)
        let event = try await context.waitEvent("go", as: [String: String].self)
        _ = try await context.run(Step(delay: .zero), input: StepInput(index: 2))
        return event.data["word"] ?? ""
    }
}

/// A broker that never answers: the event stays `processing` until the process dies.
struct HangingPublisher: OutboxPublisher {
    func publish(_ event: OutboxEvent) async -> OutboxOutcome {
        FileHandle.standardOutput.write(Data("sending \(event.eventID)\n".utf8))
        while true { try? await Task.sleep(for: .seconds(3600)) }
    }
}

let arguments = CommandLine.arguments
if arguments.count == 5, arguments[1] == "chaos" {
    do {
        try await runChaosWorker(url: arguments[2], workerIndex: Int(arguments[3]) ?? 0, count: Int(arguments[4]) ?? 10)
    } catch {
        FileHandle.standardError.write(Data("edda-test-worker: \(error)\n".utf8))
        exit(1)
    }
}
if arguments.count == 4, arguments[2] == "block-pool" {
    do {
        try await runPoolBlockers(database: arguments[1], seconds: Double(arguments[3]) ?? 6)
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("edda-test-worker: \(error)\n".utf8))
        exit(1)
    }
}
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: edda-test-worker <db-path> start <id> <steps> | serve\n".utf8))
    exit(2)
}
let path = arguments[1]
do {
    var queueConfiguration = Configuration()
    queueConfiguration.busyMode = .timeout(10)
    let queue = try DatabaseQueue(path: path, configuration: queueConfiguration)
    try queue.write { db in
        try db.execute(sql: "CREATE TABLE IF NOT EXISTS executions (activity_id TEXT NOT NULL, pid INTEGER NOT NULL)")
        try db.execute(sql: "CREATE TABLE IF NOT EXISTS gate (allowed INTEGER NOT NULL)")
    }

    var configuration = EddaApp.Configuration(serviceName: "crash-worker", database: .sqlite(path: path))
    // EDDA_TEST_LOCK_TIMEOUT (seconds) lengthens the lease, for tests of takeover before it lapses.
    configuration.lockTimeout = .seconds(ProcessInfo.processInfo.environment["EDDA_TEST_LOCK_TIMEOUT"].flatMap(Double.init) ?? 1)
    configuration.recoveryInterval = .milliseconds(100)
    if let markers = ProcessInfo.processInfo.environment["EDDA_TEST_LIVENESS_DIR"] {
        configuration.workerLivenessDirectory = markers
    }
    if arguments[2] == "relay-hang" {
        configuration.outboxPublisher = HangingPublisher()
        configuration.outboxRelayer.lease = .seconds(
            ProcessInfo.processInfo.environment["EDDA_TEST_OUTBOX_LEASE"].flatMap(Double.init) ?? 10)
    }
    let app = try await EddaApp(configuration: configuration)
    let stepDelay = ProcessInfo.processInfo.environment["EDDA_TEST_STEP_DELAY"].flatMap(Double.init).map { Duration.seconds($0) }
    app.register(CrashSteps(delay: stepDelay ?? .milliseconds(150), gate: Gate(queue: queue)))
    app.register(Waiter())
    switch arguments[2] {
    case "start-waiter":
        guard arguments.count == 5, let seconds = Double(arguments[4]) else {
            throw CocoaError(.formatting, userInfo: [NSLocalizedDescriptionKey: "start-waiter needs <instance-id> <deadline>"])
        }
        try await app.start(Waiter.self, input: Date(timeIntervalSince1970: seconds), instanceID: arguments[3])
        while true { try await Task.sleep(for: .seconds(3600)) }
    case "start-service":
        try await app.startDetached(CrashSteps.self, input: Int(arguments[4]) ?? 3, instanceID: arguments[3])
        print("started")
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: app)], gracefulShutdownSignals: [.sigterm], logger: Logger(label: "edda-test-worker")))
        try await group.run()
        print("stopped")
        exit(0)
    case "start":
        let instanceID = arguments[3]
        let steps = Int(arguments[4]) ?? 10
        let result = try await app.run(CrashSteps.self, input: steps, instanceID: instanceID)
        print("completed \(result)")
    default:
        // Resume whatever the background recovery finds, until killed.
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
    await app.shutdown()
} catch {
    FileHandle.standardError.write(Data("edda-test-worker: \(error)\n".utf8))
    exit(1)
}
