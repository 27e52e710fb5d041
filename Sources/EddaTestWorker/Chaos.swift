// The chaos worker: many workers on one PostgreSQL database, killed and restarted by the test.
//
//   edda-test-worker chaos <postgresql-or-mysql-url> <worker-index> <workflows-per-worker>
import Edda
import EddaMySQL
import EddaPostgres
import Foundation
import PostgresNIO

/// Records its execution in the test's own table, inside the step's commit: a step that
/// committed twice would leave two rows.
struct ChaosStep: Activity {
    static let name = "chaos_step"
    /// Whether the database is MySQL (else PostgreSQL).
    let onMySQL: Bool

    func run(_ label: String, context: ActivityContext) async throws -> String {
        let key = "\(context.instanceID)/\(context.activityID)"
        let pid = Int(ProcessInfo.processInfo.processIdentifier)
        if onMySQL {
            context.mysqlTransaction { connection in
                try connection.execute("INSERT INTO chaos_executions (step_key, pid) VALUES (\(key), \(pid))")
            }
        } else {
            context.postgresTransaction { connection in
                try await connection.query(
                    "INSERT INTO chaos_executions (step_key, pid) VALUES (\(key), \(pid))", logger: chaosLogger)
            }
        }
        return label
    }
}

let chaosLogger = Logger(label: "chaos")

/// Steps, a timer, and — by index — an event wait or a competing channel receive.
struct ChaosWorkflow: Workflow {
    static let name = "chaos"
    let onMySQL: Bool

    struct Input: Codable, Sendable {
        var index: Int
    }

    func run(_ input: Input, context: WorkflowContext) async throws -> String {
        _ = try await context.run(ChaosStep(onMySQL: onMySQL), input: "first")
        try await context.sleep(for: .milliseconds(200 + (input.index % 5) * 150))
        switch input.index % 3 {
        case 0:
            _ = try await context.waitEvent("chaos.go", as: [String: Int].self)
        case 1:
            try await context.subscribe("chaos.jobs", mode: .competing)
            _ = try await context.receive("chaos.jobs", as: [String: Int].self)
        default:
            _ = try await context.run(ChaosStep(onMySQL: onMySQL), input: "middle")
        }
        return try await context.run(ChaosStep(onMySQL: onMySQL), input: "last")
    }
}

func runChaosWorker(url: String, workerIndex: Int, count: Int) async throws -> Never {
    var configuration = EddaApp.Configuration(serviceName: "chaos-\(workerIndex)", database: try .url(url, drivers: [PostgresStore.self, MySQLStore.self]))
    configuration.lockTimeout = .seconds(2)
    configuration.recoveryInterval = .milliseconds(200)
    configuration.resumeBatchSize = 50
    configuration.defaultRetryPolicy = RetryPolicy(initialInterval: .milliseconds(20), maxAttempts: 20, maxDuration: .seconds(120))
    let app = try await EddaApp(configuration: configuration)
    app.register(ChaosWorkflow(onMySQL: url.hasPrefix("mysql")))
    // Idempotent: a restarted worker finds its instances created already.
    for index in 0..<count {
        let global = workerIndex * count + index
        try await app.startDetached(ChaosWorkflow.self, input: .init(index: global), instanceID: "chaos-\(global)")
    }
    print("started")
    while true { try await Task.sleep(for: .seconds(3600)) }
}
