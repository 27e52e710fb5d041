// The `block-pool` mode: activity code that blocks every thread of Swift's cooperative pool
// while the instances' short leases must be renewed (see LeaseTests in EddaTests).
import Edda
import EddaSQLite
import EddaPostgres
import EddaMySQL
import Foundation
import GRDB
import Logging
import PostgresNIO
import Synchronization

/// Records whether the cooperative pool was really saturated: once every blocker is blocking,
/// a task is started on the pool; it can run only when a blocker lets its thread go.
final class PoolProbe: Sendable {
    private struct State {
        var started = 0
        var spawnedAt: Date?
        var ranAt: Date?
        var blockerEnds: [Date] = []
    }
    private let state = Mutex(State())
    let blockers: Int

    init(blockers: Int) {
        self.blockers = blockers
    }

    /// Called by a blocker just before it blocks its thread. The last one starts the probe task.
    func blockerStarting() {
        let last = state.withLock { state -> Bool in
            state.started += 1
            if state.started == blockers { state.spawnedAt = Date() }
            return state.started == blockers
        }
        if last {
            Task.detached { self.state.withLock { $0.ranAt = Date() } }
        }
    }

    func blockerEnded() {
        state.withLock { $0.blockerEnds.append(Date()) }
    }

    /// `spawned_at`, `ran_at` and `first_end`, seconds since 1970.
    var readings: [String: Double] {
        state.withLock { state in
            var readings: [String: Double] = [:]
            readings["spawned_at"] = state.spawnedAt?.timeIntervalSince1970
            readings["ran_at"] = state.ranAt?.timeIntervalSince1970
            readings["first_end"] = state.blockerEnds.min()?.timeIntervalSince1970
            return readings
        }
    }
}

/// Blocks its thread — no `await`, a synchronous wait — for the given number of seconds, as
/// CPU-heavy or blocking user code would.
struct BlockThread: Activity {
    static let name = "block_thread"
    let probe: PoolProbe

    func run(_ seconds: Double, context: ActivityContext) async throws -> Double {
        probe.blockerStarting()
        let until = Date().addingTimeInterval(seconds)
        while Date() < until { usleep(5_000) }
        probe.blockerEnded()
        return seconds
    }
}

/// One blocking step, under a 1.5 s lease that must be renewed several times meanwhile.
struct PoolBlocker: Workflow {
    static let name = "pool_blocker"
    static var lockTimeout: Duration? { .milliseconds(1_500) }
    let probe: PoolProbe

    func run(_ seconds: Double, context: WorkflowContext) async throws -> Double {
        try await context.run(BlockThread(probe: probe), input: seconds)
    }
}

/// Reads the instances' locks every 100 ms, from a task on a thread of its own (the cooperative
/// pool is blocked), until stopped, through a connection of its own: on SQLite a read-only one,
/// read synchronously — the store's async reads give their reader connection back only once the
/// calling task resumes, so cooperative tasks caught by the block hold the store's readers and
/// the sampler would measure its own wait; on PostgreSQL one outside the store's pool, whose
/// manager runs on the cooperative pool (a lease that needs a new connection waits for it). On
/// MySQL through the app's store.
final class LockSampler: Sendable {
    private final class Readings: Sendable {
        let samples = Mutex<[String: [[String]]]>([:])
        let stopped = Atomic(false)
    }
    private let executor: DedicatedThreadExecutor
    private let readings = Readings()
    private let task: Task<Void, Never>

    init(app: EddaApp, ids: [String], database: String) throws {
        let sqlitePath = database.contains("://") ? nil : database
        let postgres = database.hasPrefix("postgres") ? URLComponents(string: database) : nil
        let executor = DedicatedThreadExecutor(name: "lock sampler")
        let readings = self.readings
        var configuration = Configuration()
        configuration.readonly = true
        let sqlite = try sqlitePath.map { try DatabaseQueue(path: $0, configuration: configuration) }
        task = Task(executorPreference: executor) {
            await PreferredTaskExecutor.$current.withValue(executor) {
                var connection: PostgresConnection?
                if let postgres {
                    do {
                        connection = try await Self.connect(to: postgres)
                    } catch {
                        // The sampler would otherwise read through the app's pool: fail, loudly.
                        FileHandle.standardError.write(Data("lock sampler: cannot connect to PostgreSQL: \(error)\n".utf8))
                        exit(3)
                    }
                }
                while !readings.stopped.load(ordering: .relaxed) {
                    for id in ids {
                        var lock: (owner: String, expiry: Date)?
                        if let sqlite {
                            lock = Self.lock(of: id, in: sqlite)
                        } else if let connection {
                            lock = try? await Self.lock(of: id, on: connection)
                        } else if let instance = try? await app.instance(id), let owner = instance.lockedBy,
                                  let expiry = instance.lockExpiresAt {
                            lock = (owner, expiry)
                        }
                        if let lock {
                            readings.samples.withLock { $0[id, default: []].append([lock.owner, Timestamp.iso8601(lock.expiry)]) }
                        }
                    }
                    await executor.wait(until: .now + .milliseconds(100))
                }
                try? await connection?.close()
            }
        }
        self.executor = executor
    }

    /// The lock of instance `id`, read synchronously on the calling thread.
    private static func lock(of id: String, in queue: DatabaseQueue) -> (owner: String, expiry: Date)? {
        try? queue.read { database in
            try Row.fetchOne(
                database, sql: "SELECT locked_by, lock_expires_at FROM workflow_instances WHERE instance_id = ?", arguments: [id]
            ).flatMap { row -> (String, Date)? in
                guard let owner: String = row["locked_by"], let text: String = row["lock_expires_at"],
                      let expiry = Timestamp.parse(text) else { return nil }
                return (owner, expiry)
            }
        }
    }

    private static func connect(to url: URLComponents) async throws -> PostgresConnection {
        let configuration = PostgresConnection.Configuration(
            host: url.host ?? "127.0.0.1", port: url.port ?? 5432, username: url.user ?? "postgres", password: url.password,
            database: String(url.path.dropFirst()), tls: .disable)
        return try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Logger(label: "lock-sampler"))
    }

    private static func lock(of id: String, on connection: PostgresConnection) async throws -> (owner: String, expiry: Date)? {
        let rows = try await connection.query(
            "SELECT locked_by, lock_expires_at FROM workflow_instances WHERE instance_id = \(id)", logger: Logger(label: "lock-sampler"))
        for try await (owner, expiry) in rows.decode((String?, Date?).self) {
            if let owner, let expiry { return (owner, expiry) }
        }
        return nil
    }

    func stop() async -> [String: [[String]]] {
        readings.stopped.store(true, ordering: .relaxed)
        executor.wake()
        await task.value
        executor.shutdown()
        return readings.samples.withLock { $0 }
    }
}

/// Starts one `pool_blocker` instance per cooperative thread (`blocked-1`, …), samples their
/// locks while they block, waits for all, and prints one JSON line: the probe's readings and the
/// lock samples (`[owner, expiry]` by instance ID).
func runPoolBlockers(database: String, seconds: Double) async throws {
    let location: DatabaseLocation = database.contains("://")
        ? try .url(database, drivers: [PostgresStore.self, MySQLStore.self]) : .sqlite(path: database)
    let app = try await EddaApp(configuration: .init(serviceName: "pool-blocker", database: location))
    let blockers = ProcessInfo.processInfo.activeProcessorCount
    let probe = PoolProbe(blockers: blockers)
    app.register(PoolBlocker(probe: probe))
    let ids = (1...blockers).map { "blocked-\($0)" }
    for id in ids {
        _ = try await app.startDetached(PoolBlocker.self, input: seconds, instanceID: id)
    }
    let sampler = try LockSampler(app: app, ids: ids, database: database)
    for id in ids {
        _ = try await app.result(of: id, as: Double.self)
    }
    let samples = await sampler.stop()
    await app.shutdown()
    let report: [String: JSONValue] = [
        "worker": .string(app.workerID),
        "probe": .object(probe.readings.mapValues { .string(String($0)) }),
        "samples": .object(samples.mapValues { .array($0.map { .array($0.map(JSONValue.string)) }) }),
    ]
    print(JSONValue.object(report).jsonText)
}
