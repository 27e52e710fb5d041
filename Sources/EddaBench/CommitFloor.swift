import Edda
import EddaPostgres
import Foundation
import GRDB
import Logging
import PostgresNIO

/// The raw commit floor: single-row `INSERT` transactions, one after another, on the same kind
/// of database as the workload (BENCHMARKS.md, "The floor and the targets"). Every figure is
/// judged against the floor measured in the same run, because this machine's disk varies.
enum CommitFloor {
    /// Commits per second of `count` single-row transactions on a scratch file beside `path`
    /// (same folder, so the same disk), with WAL and the given `synchronous` level, as the store
    /// uses them.
    static func sqlite(beside path: String, durability: String, count: Int, spacing: Duration) throws -> Double {
        try timedCommits(count, spacing: spacing, onScratch: path + ".floor", durability: durability) { database in
            try database.execute(sql: "CREATE TABLE floor (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
        } commits: { database in
            let insert = try database.makeStatement(sql: "INSERT INTO floor (value) VALUES (?)")
            return { value in try insert.execute(arguments: [value]) }
        }
    }

    /// Commits per second of `count` raw step commits on a scratch file beside `path` with the
    /// shared schema: each transaction is what a step's commit must write at the least — the
    /// compare-and-set `UPDATE` of one `workflow_instances` row's `updated_at` and
    /// `current_activity_id` (the schema indexes the table ten times, `updated_at` among them)
    /// and one `workflow_history` row — as plain SQL, with no engine around it. The
    /// distance between a workload's commit and this one is the engine's own cost.
    static func sqliteStep(beside path: String, durability: String, count: Int, spacing: Duration) throws -> Double {
        try timedCommits(count, spacing: spacing, onScratch: path + ".step-floor", durability: durability) { database in
            let now = Timestamp.database(Date())
            for statement in SharedSchema.migrations(in: .sqlite).flatMap(\.statements) { try database.execute(sql: statement) }
            try database.execute(
                sql: "INSERT INTO workflow_definitions (workflow_name, source_hash, source_code) VALUES ('floor', 'h', '')")
            try database.execute(
                sql: """
                    INSERT INTO workflow_instances (instance_id, workflow_name, source_hash, owner_service, framework, status,
                        input_data, locked_by, locked_at, lock_expires_at, started_at, updated_at)
                    VALUES ('floor-1', 'floor', 'h', 'bench', 'swift', 'running', '{}', 'w', ?, ?, ?, ?)
                    """, arguments: [now, now, now, now])
        } commits: { database in
            let update = try database.makeStatement(
                sql: """
                    UPDATE workflow_instances SET updated_at = ?, current_activity_id = ?
                    WHERE instance_id = 'floor-1' AND locked_by = 'w' AND status IN ('running')
                    """)
            let insert = try database.makeStatement(
                sql: """
                    INSERT INTO workflow_history (instance_id, activity_id, event_type, data_type, event_data, created_at)
                    VALUES ('floor-1', ?, 'ActivityCompleted', 'json', ?, ?)
                    """)
            return { step in
                let at = Timestamp.database(Date())
                try update.execute(arguments: [at, "step:\(step)"])
                guard database.changesCount == 1 else { throw BenchError("the step floor's compare-and-set matched no row") }
                try insert.execute(arguments: ["step:\(step)", "{\"result\": \(step)}", at])
            }
        }
    }

    /// Commits per second of the five raw commits of `count / 5` three-activity workflows (W1's
    /// shape) on a scratch file beside `path` with the shared schema, as plain SQL with no engine
    /// around it: the start (the instance row, through all of the table's indexes), three step
    /// commits (as ``sqliteStep(beside:durability:count:spacing:)``) and the finish (the status, the
    /// output and the released lock, through the indexes on those columns; the instance's
    /// subscriptions removed). What W1 costs beyond this is the engine's; what this costs beyond
    /// the floor is the schema's.
    static func sqliteWorkflow(beside path: String, durability: String, count: Int, spacing: Duration) throws -> Double {
        try timedCommits(count, spacing: spacing, onScratch: path + ".workflow-floor", durability: durability) { database in
            for statement in SharedSchema.migrations(in: .sqlite).flatMap(\.statements) { try database.execute(sql: statement) }
            try database.execute(
                sql: "INSERT INTO workflow_definitions (workflow_name, source_hash, source_code) VALUES ('floor', 'h', '')")
        } commits: { database in
            let start = try database.makeStatement(
                sql: """
                    INSERT INTO workflow_instances (instance_id, workflow_name, source_hash, owner_service, framework, status,
                        continued_from, started_at, updated_at, input_data, locked_by, locked_at, lock_expires_at,
                        lock_timeout_seconds)
                    VALUES (?, 'floor', 'h', 'bench', 'swift', 'running', NULL, ?, ?, ?, 'w', ?, ?, NULL)
                    """)
            let step = try database.makeStatement(
                sql: """
                    UPDATE workflow_instances SET updated_at = ?, current_activity_id = ?
                    WHERE instance_id = ? AND locked_by = 'w' AND status = 'running'
                    """)
            let history = try database.makeStatement(
                sql: """
                    INSERT INTO workflow_history (instance_id, activity_id, event_type, data_type, event_data, created_at)
                    VALUES (?, ?, 'ActivityCompleted', 'json', ?, ?)
                    """)
            let finish = try database.makeStatement(
                sql: """
                    UPDATE workflow_instances SET updated_at = ?, status = 'completed', output_data = ?,
                        locked_by = NULL, locked_at = NULL, lock_expires_at = NULL
                    WHERE instance_id = ? AND locked_by = 'w' AND status = 'running'
                    """)
            let removeChannels = try database.makeStatement(sql: "DELETE FROM channel_subscriptions WHERE instance_id = ?")
            let removeTimers = try database.makeStatement(sql: "DELETE FROM workflow_timer_subscriptions WHERE instance_id = ?")
            return { index in
                let (workflow, phase) = index.quotientAndRemainder(dividingBy: 5)
                let id = "floor-\(workflow)"
                let at = Timestamp.database(Date())
                switch phase {
                case 0:
                    try start.execute(arguments: [id, at, at, "{\"n\": \(workflow)}", at, at])
                case 4:
                    try finish.execute(arguments: [at, "{\"result\": {\"x\": \(workflow)}}", id])
                    guard database.changesCount == 1 else { throw BenchError("the workflow floor's finish matched no row") }
                    try removeChannels.execute(arguments: [id])
                    try removeTimers.execute(arguments: [id])
                default:
                    let activity = "step_\(phase):1"
                    try step.execute(arguments: [at, activity, id])
                    guard database.changesCount == 1 else { throw BenchError("the workflow floor's step matched no row") }
                    try history.execute(arguments: [id, activity, "{\"result\": \(phase)}", at])
                }
            }
        }
    }

    /// Commits per second of the five raw commits of `count / 5` three-activity workflows on
    /// PostgreSQL: what ``sqliteWorkflow(beside:durability:count:spacing:)`` writes, each commit one
    /// prepared statement (a step is one data-modifying CTE, as the store sends it) through a
    /// connection pool, with no engine around it. It runs in a scratch database with the shared
    /// schema, `<the benchmark database>_floor` on the same server, dropped afterwards.
    static func postgresWorkflow(url: String, count: Int, spacing: Duration) async throws -> Double {
        guard var components = URLComponents(string: url) else { throw BenchError("not a PostgreSQL URL: \(url)") }
        components.path += "_floor"
        guard let scratch = components.string else { throw BenchError("no scratch database URL for \(url)") }
        try await PostgresAdministration.recreate(url: scratch)
        do {
            let rate = try await withClient(try PostgresURL.configuration(from: scratch)) { client, logger in
                for statement in SharedSchema.migrations(in: .postgresql).flatMap(\.statements) {
                    try await client.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await client.query(
                    "INSERT INTO workflow_definitions (workflow_name, source_hash, source_code) VALUES ('floor', 'h', '')",
                    logger: logger)
                var clock = CommitClock(spacing: spacing)
                for index in 0..<count {
                    let (workflow, phase) = index.quotientAndRemainder(dividingBy: 5)
                    let id = "floor-\(workflow)"
                    let rows = try await clock.time {
                        let now = Date()
                        return switch phase {
                        case 0: try await client.rowCount(of: try WorkflowFloorStart(id: id, now: now), logger: logger)
                        case 4: try await client.rowCount(of: try WorkflowFloorFinish(id: id, now: now), logger: logger)
                        default: try await client.rowCount(of: try WorkflowFloorStep(id: id, step: phase, now: now), logger: logger)
                        }
                    }
                    guard rows == 1 else { throw BenchError("the workflow floor's commit \(index) wrote \(rows) rows, not 1") }
                }
                return clock.commitsPerSecond(count)
            }
            try await PostgresAdministration.drop(url: scratch)
            return rate
        } catch {
            try? await PostgresAdministration.drop(url: scratch)
            throw error
        }
    }

    /// Creates `scratch` (WAL, the durability's `synchronous`), runs `setUp` on it, then times
    /// `count` transactions, the `n`th running the work `commits` prepared, each after `spacing`
    /// (see ``CommitClock``); removes the file.
    private static func timedCommits(
        _ count: Int, spacing: Duration, onScratch scratch: String, durability: String, setUp: (Database) throws -> Void,
        commits: (Database) throws -> (Int) throws -> Void
    ) throws -> Double {
        let suffixes = ["", "-wal", "-shm"]
        for suffix in suffixes { try? FileManager.default.removeItem(atPath: scratch + suffix) }
        defer { for suffix in suffixes { try? FileManager.default.removeItem(atPath: scratch + suffix) } }
        let queue = try DatabaseQueue(path: scratch)
        try queue.writeWithoutTransaction { database in
            _ = try String.fetchOne(database, sql: "PRAGMA journal_mode = WAL")
            try database.execute(sql: "PRAGMA synchronous = \(durability == "normal" ? "NORMAL" : "FULL")")
            try setUp(database)
        }
        var clock = CommitClock(spacing: spacing)
        try queue.writeWithoutTransaction { database in
            let commit = try commits(database)
            for index in 0..<count {
                try clock.time {
                    try database.inTransaction(.immediate) {
                        try commit(index)
                        return .commit
                    }
                }
            }
        }
        return clock.commitsPerSecond(count)
    }

    /// Commits per second of `count` single-row autocommit `INSERT`s through a connection pool of
    /// the kind the store uses, in the (scratch) benchmark database.
    static func postgres(_ configuration: PostgresClient.Configuration, count: Int, spacing: Duration) async throws -> Double {
        try await withClient(configuration) { client, logger in
            try await client.query("CREATE TABLE IF NOT EXISTS edda_bench_floor (id BIGSERIAL PRIMARY KEY, value INT NOT NULL)", logger: logger)
            var clock = CommitClock(spacing: spacing)
            for value in 0..<count {
                try await clock.time {
                    try await client.query("INSERT INTO edda_bench_floor (value) VALUES (\(value))", logger: logger)
                }
            }
            try await client.query("DROP TABLE edda_bench_floor", logger: logger)
            return clock.commitsPerSecond(count)
        }
    }

    /// Runs `body` with a connection pool of `configuration`, which runs as long as `body` does.
    private static func withClient<T: Sendable>(
        _ configuration: PostgresClient.Configuration, _ body: @escaping @Sendable (PostgresClient, Logger) async throws -> T
    ) async throws -> T {
        let logger = Logger(label: "edda-bench.floor")
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            group.addTask { try await body(client, logger) }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            throw BenchError("the floor measurement ended without a result")
        }
    }
}

/// Times a floor's commits, each after `spacing` of busy CPU time: a workload's engine spends
/// CPU between its commits, and a disk may commit back-to-back commits faster than spaced ones
/// (this machine's did: see `--floor-spacing-us`). Only the commits are timed.
struct CommitClock {
    let spacing: Duration
    private var committing = Duration.zero

    init(spacing: Duration) { self.spacing = spacing }

    @discardableResult
    mutating func time<T>(_ commit: () throws -> T) rethrows -> T {
        busyWait(spacing)
        let start = ContinuousClock.now
        defer { committing += ContinuousClock.now - start }
        return try commit()
    }

    @discardableResult
    mutating func time<T>(_ commit: () async throws -> T) async rethrows -> T {
        busyWait(spacing)
        let start = ContinuousClock.now
        defer { committing += ContinuousClock.now - start }
        return try await commit()
    }

    func commitsPerSecond(_ count: Int) -> Double { Double(count) / committing.seconds }
}

extension PostgresClient {
    /// How many rows `statement` returned.
    fileprivate func rowCount<Statement: WorkflowFloorStatement>(of statement: Statement, logger: Logger) async throws -> Int {
        try await execute(statement, logger: logger).reduce(0) { count, _ in count + 1 }
    }
}

/// One of the statements of ``CommitFloor/postgresWorkflow(url:count:spacing:)``: it returns
/// the instance's ID once if it wrote what it should.
private protocol WorkflowFloorStatement: PostgresPreparedStatement where Row == String {
    var bindings: PostgresBindings { get }
}

extension WorkflowFloorStatement {
    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> String { try row.decode(String.self) }

    static func bind(_ values: any PostgresEncodable...) throws -> PostgresBindings {
        var bindings = PostgresBindings()
        for value in values { try bindings.append(value) }
        return bindings
    }
}

/// The start: the instance row, locked.
private struct WorkflowFloorStart: WorkflowFloorStatement {
    static let sql = """
        INSERT INTO workflow_instances (instance_id, workflow_name, source_hash, owner_service, framework, status,
            continued_from, started_at, updated_at, input_data, locked_by, locked_at, lock_expires_at, lock_timeout_seconds)
        VALUES ($1, 'floor', 'h', 'bench', 'swift', 'running', NULL, $2, $2, $3, 'w', $2, $4, NULL)
        RETURNING instance_id
        """
    let bindings: PostgresBindings

    init(id: String, now: Date) throws { bindings = try Self.bind(id, now, "{\"n\": 1}", now.addingTimeInterval(300)) }
}

/// A step: the instance's compare-and-set and its history row, in one statement.
private struct WorkflowFloorStep: WorkflowFloorStatement {
    static let sql = """
        WITH u AS (UPDATE workflow_instances SET updated_at = $1, current_activity_id = $2
                   WHERE instance_id = $3 AND locked_by = 'w' AND status = 'running' RETURNING instance_id)
        INSERT INTO workflow_history (instance_id, activity_id, event_type, data_type, event_data, created_at)
        SELECT u.instance_id, $2, 'ActivityCompleted', 'json', $4, $1 FROM u
        RETURNING instance_id
        """
    let bindings: PostgresBindings

    init(id: String, step: Int, now: Date) throws { bindings = try Self.bind(now, "step_\(step):1", id, "{\"result\": \(step)}") }
}

/// The finish: the status, the output and the released lock; the instance's subscriptions
/// removed.
private struct WorkflowFloorFinish: WorkflowFloorStatement {
    static let sql = """
        WITH u AS (UPDATE workflow_instances SET updated_at = $1, status = 'completed', output_data = $2,
                       locked_by = NULL, locked_at = NULL, lock_expires_at = NULL
                   WHERE instance_id = $3 AND locked_by = 'w' AND status = 'running' RETURNING instance_id),
             dc AS (DELETE FROM channel_subscriptions WHERE instance_id = $3 AND EXISTS (SELECT 1 FROM u)),
             dt AS (DELETE FROM workflow_timer_subscriptions WHERE instance_id = $3 AND EXISTS (SELECT 1 FROM u))
        SELECT instance_id FROM u
        """
    let bindings: PostgresBindings

    init(id: String, now: Date) throws { bindings = try Self.bind(now, "{\"result\": {\"x\": 1}}", id) }
}
