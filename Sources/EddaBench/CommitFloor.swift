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
    static func sqlite(beside path: String, durability: String, count: Int) throws -> Double {
        let scratch = path + ".floor"
        let suffixes = ["", "-wal", "-shm"]
        for suffix in suffixes { try? FileManager.default.removeItem(atPath: scratch + suffix) }
        defer { for suffix in suffixes { try? FileManager.default.removeItem(atPath: scratch + suffix) } }
        let queue = try DatabaseQueue(path: scratch)
        let synchronous = durability == "normal" ? "NORMAL" : "FULL"
        try queue.writeWithoutTransaction { database in
            _ = try String.fetchOne(database, sql: "PRAGMA journal_mode = WAL")
            try database.execute(sql: "PRAGMA synchronous = \(synchronous)")
            try database.execute(sql: "CREATE TABLE floor (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
        }
        let start = ContinuousClock.now
        try queue.writeWithoutTransaction { database in
            let insert = try database.makeStatement(sql: "INSERT INTO floor (value) VALUES (?)")
            for value in 0..<count {
                try database.inTransaction(.immediate) {
                    try insert.execute(arguments: [value])
                    return .commit
                }
            }
        }
        return Double(count) / (ContinuousClock.now - start).seconds
    }

    /// Commits per second of `count` single-row autocommit `INSERT`s through a connection pool of
    /// the kind the store uses, in the (scratch) benchmark database.
    static func postgres(_ configuration: PostgresClient.Configuration, count: Int) async throws -> Double {
        let logger = Logger(label: "edda-bench.floor")
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Double?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            group.addTask {
                try await client.query("CREATE TABLE IF NOT EXISTS edda_bench_floor (id BIGSERIAL PRIMARY KEY, value INT NOT NULL)", logger: logger)
                let start = ContinuousClock.now
                for value in 0..<count {
                    try await client.query("INSERT INTO edda_bench_floor (value) VALUES (\(value))", logger: logger)
                }
                let rate = Double(count) / (ContinuousClock.now - start).seconds
                try await client.query("DROP TABLE edda_bench_floor", logger: logger)
                return rate
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let rate = result { return rate }
            }
            throw BenchError("the floor measurement ended without a result")
        }
    }
}
