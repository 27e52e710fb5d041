import Edda
import EddaSQLite
import EddaTesting
import Foundation
import GRDB
import Testing
import TestSupport

/// What a commit costs on SQLite is the pages it writes to the WAL (each one written, then
/// synced with the commit). These tests count them, so that a statement that touches an index
/// it has no reason to touch shows up as a failure, not as a slower benchmark weeks later.
@Suite("SQLite commits write only the pages they change")
struct SQLiteWriteTests {
    @Test("A step writes the instance row, its updated_at entry and one history row: no status index")
    func stepPages() async throws {
        try await withDatabase { database in
            let store = try SQLiteStore(path: database.path)
            try await store.migrate()
            let now = Date()
            let instance = NewInstance(
                instanceID: "pages-1", workflowName: "pages", sourceHash: "h", sourceCode: "", ownerService: "s", inputJSON: "{}",
                lockedBy: "w", lockExpiresAt: now.addingTimeInterval(60))
            guard case .created = try await store.createInstance(instance, now: now) else {
                Issue.record("the instance existed")
                return
            }
            func pagesWritten(by transition: InstanceTransition, expecting status: WorkflowStatus) async throws -> [Int] {
                try truncateLog(database.path)
                let outcome = try await store.apply(transition, now: Date())
                guard case .applied(let after, _) = outcome else {
                    Issue.record("\(outcome)")
                    return []
                }
                #expect(after == status)
                return try pagesInLog(database.path)
            }
            // The first steps grow the history's pages; measure one in the steady state.
            for index in 1...3 {
                _ = try await pagesWritten(by: step(index), expecting: .running)
            }
            // The row and `idx_instances_updated`; the history row, its three indexes and
            // `sqlite_sequence` (the table is AUTOINCREMENT). Naming `status` in the UPDATE's SET
            // list, even unchanged, would also rewrite `idx_instances_status` and
            // `idx_instances_resumable`: 9.
            let stepPages = try await pagesWritten(by: step(4), expecting: .running)
            #expect(stepPages.count == 7, "\(describe(stepPages, in: database.path))")
            // Ending the instance changes its status and its lock: the row and the five indexes on
            // those columns and `updated_at` (status, resumable, locked, lock_expires, updated).
            let finish = InstanceTransition.finish(instanceID: "pages-1", workerID: "w", as: .completed, outputJSON: #"{"result": 1}"#)
            let finishPages = try await pagesWritten(by: finish, expecting: .completed)
            #expect(finishPages.count == 6, "\(describe(finishPages, in: database.path))")
            let stored = try rows(database.path, "SELECT status, current_activity_id, locked_by FROM workflow_instances")
            #expect(stored.first?["status"] as String? == "completed")
            #expect(stored.first?["current_activity_id"] as String? == "a:4", "a finish keeps the step it ended on")
            #expect(stored.first?["locked_by"] as String? == nil)
            try await store.close()
        }

        func step(_ index: Int) -> InstanceTransition {
            var step = InstanceTransition.step(instanceID: "pages-1", workerID: "w", currentActivityID: "a:\(index)")
            step.history = [NewHistoryEvent(activityID: "a:\(index)", eventType: "ActivityCompleted", payload: .json(#"{"result": 1}"#))]
            return step
        }
    }

    /// Moves every committed page into the database file and empties the WAL.
    private func truncateLog(_ path: String) throws {
        let queue = try openDatabase(path)
        defer { try? queue.close() }
        try queue.writeWithoutTransaction { database in
            let result = try Row.fetchOne(database, sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            guard result?[0] as Int? == 0 else { throw DatabaseError(message: "the WAL checkpoint was blocked: \(String(describing: result))") }
        }
    }

    /// The page of each frame in the WAL file now, read from the file itself (after
    /// ``truncateLog(_:)``, the frames written since).
    private func pagesInLog(_ path: String) throws -> [Int] {
        // The file: a 32-byte header (the page size at byte 8), then frames of a 24-byte header
        // (the page number at byte 0) and the page; numbers are big-endian.
        let log = Array(try Data(contentsOf: URL(fileURLWithPath: path + "-wal")))
        func number(at offset: Int) -> Int { log[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) } }
        let pageSize = log.count >= 32 ? number(at: 8) : 0
        var pages: [Int] = []
        var offset = 32
        while pageSize > 0, offset + 24 + pageSize <= log.count {
            pages.append(number(at: offset))
            offset += 24 + pageSize
        }
        return pages
    }

    /// Each page and the table or index it belongs to now (SQLite's `dbstat` table, where the
    /// library has it), for a failure's message.
    private func describe(_ pages: [Int], in path: String) -> String {
        let names = (try? rows(path, "SELECT pageno, name FROM dbstat")) ?? []
        let owner = Dictionary(names.map { ($0["pageno"] as Int, $0["name"] as String) }, uniquingKeysWith: { first, _ in first })
        return "WAL frames: " + pages.map { "\($0) (\(owner[$0] ?? "?"))" }.joined(separator: ", ")
    }
}
