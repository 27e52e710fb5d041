import Edda
import GRDB
import Synchronization

/// Runs write transactions on SQLite's single writer connection with group commit.
///
/// A caller that finds the writer idle becomes the *leader*: it runs its transaction right away
/// on its own thread (no hop to another thread and back, which costs more than the transaction
/// itself when the database is idle). Callers that arrive while a transaction is in flight queue
/// up; the queued closures are then run together in one `BEGIN IMMEDIATE` transaction, each in
/// its own savepoint (so one failing closure rolls back only its own changes), and committed
/// once: concurrent callers share fsyncs. Nothing waits to fill a batch.
///
/// A leader never waits for another process's write lock on its own thread (a cooperative one,
/// usually): if the lock is taken it hands its write to the writer's queue, where SQLite's busy
/// wait blocks only that queue's thread.
final class WriteBatcher: Sendable {
    private struct PendingWrite: Sendable {
        /// Runs the caller's closure; returns the thunk that delivers its result after commit.
        let run: @Sendable (Database) throws -> @Sendable () -> Void
        let fail: @Sendable (any Error) -> Void
    }

    private struct State {
        var pending: [PendingWrite] = []
        var draining = false
    }

    private let pool: DatabasePool
    /// Restores the writer connection's busy timeout after a leader's attempt without one.
    private let restoreBusyTimeout: String
    private let state = Mutex(State())
    /// Write transactions requested (one per store operation).
    let transactions = Atomic<Int>(0)
    /// SQLite commits made (a commit may carry several transactions).
    let commits = Atomic<Int>(0)
    /// Where the size of each commit's batch is reported.
    let instruments = Mutex<StoreInstruments?>(nil)

    init(pool: DatabasePool, busyTimeout: Duration) {
        self.pool = pool
        self.restoreBusyTimeout = "PRAGMA busy_timeout = \(Int(busyTimeout.seconds * 1_000))"
    }

    /// Runs `body` in a write transaction shared with other concurrent writes, and returns its
    /// value once that transaction has committed.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let isLeader = state.withLock { state -> Bool in
            if state.draining { return false }
            state.draining = true
            return true
        }
        transactions.add(1, ordering: .relaxed)
        if isLeader {
            if let value = try lead(body) { return value }
            // Another process holds the write lock: wait for it on the writer's queue, not here.
            return try await enqueue(body, holdsDrain: true)
        }
        return try await enqueue(body, holdsDrain: false)
    }

    /// Queues `body` for the writer's queue, starting a drain there unless one runs. With
    /// `holdsDrain`, the caller has already claimed the drain (a leader that found the database
    /// locked by another process) and hands it over.
    private func enqueue<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T, holdsDrain: Bool) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let pending = PendingWrite(
                run: { database in
                    let value = try body(database)
                    return { continuation.resume(returning: value) }
                },
                fail: { error in continuation.resume(throwing: error) }
            )
            let startDrain = state.withLock { state -> Bool in
                state.pending.append(pending)
                if holdsDrain { return true }
                if state.draining { return false }
                state.draining = true
                return true
            }
            if startDrain {
                pool.asyncWriteWithoutTransaction { database in self.drain(database) }
            }
        }
    }

    /// Runs the leader's own transaction on the calling thread, then hands whatever queued up
    /// meanwhile to the writer queue. Returns `nil`, still holding the drain, when another
    /// process holds SQLite's write lock: the caller's thread (a cooperative one, usually) must
    /// not sit in SQLite's busy wait, which can last up to the busy timeout.
    private func lead<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) throws -> T? {
        let outcome = LeaderOutcome<T>()
        let own = PendingWrite(
            run: { database in
                let value = try body(database)
                return { outcome.result = .success(value) }
            },
            fail: { error in outcome.result = .failure(error) })
        runSynchronously { database in
            outcome.lockedElsewhere = !self.execute([own], in: database, waitingForLock: false)
        }
        if outcome.lockedElsewhere { return nil }
        let handOff = state.withLock { state -> Bool in
            if state.pending.isEmpty {
                state.draining = false
                return false
            }
            return true
        }
        if handOff {
            pool.asyncWriteWithoutTransaction { database in self.drain(database) }
        }
        guard let result = outcome.result else {
            throw DatabaseError(message: "the leader's write produced no result")
        }
        return try result.get()
    }

    private func runSynchronously(_ work: (Database) -> Void) {
        // The synchronous GRDB API: on an idle serial writer queue it runs on this thread.
        pool.writeWithoutTransaction(work)
    }

    private func drain(_ database: Database) {
        while true {
            let batch = state.withLock { state -> [PendingWrite] in
                if state.pending.isEmpty {
                    state.draining = false
                    return []
                }
                let batch = state.pending
                state.pending.removeAll(keepingCapacity: true)
                return batch
            }
            if batch.isEmpty { return }
            execute(batch, in: database)
        }
    }

    /// The leader's result, set and read on the leader's own thread only.
    private final class LeaderOutcome<T>: @unchecked Sendable {
        // Safe: written inside `runSynchronously`, which returns before it is read, on one thread.
        var result: Result<T, any Error>?
        var lockedElsewhere = false
    }

    /// Begins a write transaction. Without `waitingForLock`, returns `false` at once (nothing
    /// run, nothing failed) if another connection holds the write lock, instead of waiting up to
    /// the busy timeout.
    ///
    /// `BEGIN`, `COMMIT` and the savepoints run as cached statements, compiled once per
    /// connection (GRDB's `beginTransaction()` and `commit()` compile their SQL on every call).
    private func begin(_ database: Database, waitingForLock: Bool) throws -> Bool {
        let beginImmediate = try database.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION")
        if waitingForLock {
            try beginImmediate.execute()
            return true
        }
        try database.cachedStatement(sql: "PRAGMA busy_timeout = 0").execute()
        defer { try? database.cachedStatement(sql: restoreBusyTimeout).execute() }
        do {
            try beginImmediate.execute()
            return true
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
            return false
        }
    }

    /// Runs `batch` in one transaction and commits it. Returns `false` only when it did not
    /// start because the write lock was held elsewhere and `waitingForLock` is `false`.
    @discardableResult
    private func execute(_ batch: [PendingWrite], in database: Database, waitingForLock: Bool = true) -> Bool {
        do {
            guard try begin(database, waitingForLock: waitingForLock) else { return false }
        } catch {
            for write in batch { write.fail(error) }
            return true
        }
        var completions: [@Sendable () -> Void] = []
        completions.reserveCapacity(batch.count)
        var failures: [(PendingWrite, any Error)] = []
        if batch.count == 1 {
            do {
                completions.append(try batch[0].run(database))
            } catch {
                failures.append((batch[0], error))
            }
        } else {
            for write in batch {
                do {
                    try database.cachedStatement(sql: "SAVEPOINT edda_write").execute()
                    let completion = try write.run(database)
                    try database.cachedStatement(sql: "RELEASE SAVEPOINT edda_write").execute()
                    completions.append(completion)
                } catch {
                    try? database.execute(sql: "ROLLBACK TO SAVEPOINT edda_write")
                    try? database.execute(sql: "RELEASE SAVEPOINT edda_write")
                    failures.append((write, error))
                }
            }
        }
        do {
            if completions.isEmpty {
                try database.rollback()
            } else {
                try database.cachedStatement(sql: "COMMIT TRANSACTION").execute()
                commits.add(1, ordering: .relaxed)
                instruments.withLock { $0 }?.groupCommit(transactions: completions.count)
            }
        } catch {
            try? database.rollback()
            for write in batch { write.fail(error) }
            return true
        }
        for completion in completions { completion() }
        for (write, error) in failures { write.fail(error) }
        return true
    }
}
