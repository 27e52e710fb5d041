import Edda
import Foundation

/// Tools' access to a MySQL server beyond the store: `edda-bench` recreates its scratch
/// database and measures the raw commit floor through the same kind of connection the store
/// uses.
package enum MySQLAdministration {
    /// Drops and creates the database `url` names (`utf8mb4`, binary collation: identifiers
    /// compare exactly).
    package static func recreateDatabase(url: String) async throws {
        var configuration = try MySQLConfiguration(url: url)
        let name = configuration.database
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw MySQLStoreError("'\(name)' is not a plain database name")
        }
        configuration.database = ""
        let connection = try await MySQLConnection.open(configuration, name: "edda-mysql-admin")
        defer { Task { await connection.close() } }
        try await connection.thread.run {
            try connection.execute("DROP DATABASE IF EXISTS \(unescaped: name)")
            try connection.execute("CREATE DATABASE \(unescaped: name) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        }
    }

    /// Commits per second of `count` single-row autocommit `INSERT`s on one pooled connection in
    /// the database `url` names.
    package static func commitFloor(url: String, count: Int) async throws -> Double {
        let pool = MySQLPool(configuration: try MySQLConfiguration(url: url), acquireTimeout: .seconds(30))
        defer { Task { await pool.close() } }
        return try await pool.withConnection { connection in
            try connection.execute("CREATE TABLE IF NOT EXISTS edda_bench_floor (id BIGINT AUTO_INCREMENT PRIMARY KEY, value INT NOT NULL)")
            let start = ContinuousClock.now
            for value in 0..<count {
                try connection.execute("INSERT INTO edda_bench_floor (value) VALUES (\(value))")
            }
            let rate = Double(count) / (ContinuousClock.now - start).seconds
            try connection.execute("DROP TABLE edda_bench_floor")
            return rate
        }
    }
}
