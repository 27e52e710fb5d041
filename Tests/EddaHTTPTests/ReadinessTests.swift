import Edda
import EddaSQLite
import EddaHTTP
import EddaTesting
import Foundation
import GRDB
import Testing
import TestSupport

/// Readiness means the store can commit, not merely answer a read. The tests run as root, where
/// file permissions stop nothing, so they make writes impossible from inside SQLite: another
/// connection holding the write lock (as a stuck process or a long migration would), and a
/// trigger that fails the write (as a read-only or full disk would).
@Suite("Readiness", .timeLimit(.minutes(2)))
struct ReadinessTests {
    static var routes: EddaRoutes.Configuration {
        var routes = EddaRoutes.Configuration()
        routes.readinessTimeout = .milliseconds(500)
        return routes
    }

    @Test("While another connection holds the write lock, readiness answers 503; once it is released, 200")
    func writeLockHeld() async throws {
        try await withEddaServer(routes: Self.routes) { _, base, database in
            // Eventually: on a loaded machine one commit may take longer than the short timeout.
            try await eventually("readiness") { try await httpRequest("\(base)/health/ready", method: .GET).status == 200 }
            let blocker = try await WriteLockHolder(path: database.path)
            do {
                // Reads still work: a read-only check would say ready.
                #expect(try await httpRequest("\(base)/health/live", method: .GET).status == 200)
                let reply = try await httpRequest("\(base)/health/ready", method: .GET)
                #expect(reply.status == 503)
                #expect(reply.json?["status"] == "unavailable")
                #expect(reply.json?["reason"]?.stringValue?.contains("did not commit within") == true, "\(reply.body)")
                #expect(try await httpRequest("\(base)/health", method: .GET).status == 503)
            } catch {
                blocker.release()
                throw error
            }
            blocker.release()
            try await eventually("readiness after the lock is released") {
                try await httpRequest("\(base)/health/ready", method: .GET).status == 200
            }
        }
    }

    @Test("When writes fail, readiness answers 503 at once; when they work again, 200")
    func writesFail() async throws {
        try await withEddaServer(routes: Self.routes) { _, base, database in
            // Eventually: on a loaded machine one commit may take longer than the short timeout.
            try await eventually("readiness") { try await httpRequest("\(base)/health/ready", method: .GET).status == 200 }
            let connection = try openDatabase(database.path)
            defer { try? connection.close() }
            try await connection.write { db in
                for event in ["INSERT", "UPDATE"] {
                    try db.execute(sql: """
                        CREATE TRIGGER refuse_\(event.lowercased()) BEFORE \(event) ON system_locks
                        BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END
                        """)
                }
            }
            let reply = try await httpRequest("\(base)/health/ready", method: .GET)
            #expect(reply.status == 503)
            #expect(reply.json?["reason"] == "a write to the database failed", "\(reply.body)")
            // The error's details (SQL, paths) are logged, not sent.
            #expect(!reply.body.contains("simulated"))
            try await connection.write { db in
                try db.execute(sql: "DROP TRIGGER refuse_insert")
                try db.execute(sql: "DROP TRIGGER refuse_update")
            }
            // Eventually: on a loaded machine one commit may take longer than the short timeout.
            try await eventually("readiness") { try await httpRequest("\(base)/health/ready", method: .GET).status == 200 }
        }
    }
}

/// Holds SQLite's write lock on a database file (`BEGIN IMMEDIATE` on a connection of its own)
/// until released. The connection lives on a thread of its own, since GRDB closes any
/// transaction left open when an access ends.
final class WriteLockHolder: Sendable {
    private let released = DispatchSemaphore(value: 0)

    /// Returns once the lock is held.
    init(path: String) async throws {
        let queue = try openDatabase(path)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let released = self.released
            let thread = Thread {
                var locked = false
                do {
                    try queue.inDatabase { db in
                        try db.execute(sql: "BEGIN IMMEDIATE")
                        locked = true
                        continuation.resume()
                        released.wait()
                        try db.execute(sql: "ROLLBACK")
                    }
                } catch {
                    if !locked { continuation.resume(throwing: error) }
                }
                try? queue.close()
            }
            thread.start()
        }
    }

    /// Rolls the transaction back, releasing the lock (shortly after this returns).
    func release() {
        released.signal()
    }
}
