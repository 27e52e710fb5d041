import Edda
import EddaSQLite
import EddaTesting
import Foundation
import GRDB
import Testing
@_exported import TestSupport

/// Runs `body` with a fresh database, removing it afterwards.
func withDatabase(_ body: (TemporaryDatabase) async throws -> Void) async throws {
    let database = try TemporaryDatabase()
    defer { database.remove() }
    try await body(database)
}

/// Runs `body` with an app on `database` and shuts the app down afterwards, also when `body`
/// throws.
func withApp<T>(
    _ database: TemporaryDatabase, serviceName: String = "test",
    configure: (inout EddaApp.Configuration) -> Void = { _ in },
    _ body: (EddaApp) async throws -> T
) async throws -> T {
    try await database.withApp(serviceName: serviceName, configure: configure, body)
}

/// Starts a workflow on an app of its own, waits until it is inside its held step (`hold`
/// recorded `holds` times), and stops that app there, as a crash at that point would. The
/// instance is left `running` for another app to resume. Returns its ID.
func startAndStop<Input: Codable & Sendable, Output: Codable & Sendable>(
    _ database: TemporaryDatabase, register: (EddaApp) -> WorkflowReference<Input, Output>, input: Input,
    instanceID: String? = nil, heldBy recorder: Recorder, holds: Int = 1
) async throws -> String {
    try await withApp(database) { first in
        let id = try await first.startDetached(register(first), input: input, instanceID: instanceID)
        try await eventually("the held step") { recorder.count("hold") == holds }
        return id
    }
}

/// The lock timeout of the lease tests, and how long their one step takes: four leases, so a
/// working renewer extends the lock many times while the step runs.
enum LeaseTestTiming {
    static let lease = Duration.milliseconds(1_500)
    static let step = Duration.seconds(6)
}

/// One reading of an instance's lock.
struct LockSample: Sendable, Equatable {
    var owner: String
    var expiry: Date
}

/// Reads the locks of instances every 100 ms on a thread of its own, so that the readings keep
/// their pace however busy the test process's cooperative pool is.
final class LockSampler: @unchecked Sendable {
    // Safe: `samples` and `stopped` are read and written only while `condition` is locked.
    private let condition = NSCondition()
    private var samples: [String: [LockSample]] = [:]
    private var stopped = false
    private var finished = false

    /// Starts sampling the locks of `instanceIDs` in the SQLite file at `path`.
    init(_ instanceIDs: [String], path: String) {
        let thread = Thread { [self] in
            while true {
                for id in instanceIDs {
                    let row = try? rows(
                        path, "SELECT locked_by, lock_expires_at FROM workflow_instances WHERE instance_id = ?", [id]
                    ).first
                    if let row, let owner: String = row["locked_by"],
                       let expiry = (row["lock_expires_at"] as String?).flatMap(Timestamp.parse) {
                        condition.lock()
                        samples[id, default: []].append(LockSample(owner: owner, expiry: expiry))
                        condition.unlock()
                    }
                }
                condition.lock()
                if !stopped { _ = condition.wait(until: Date().addingTimeInterval(0.1)) }
                let stop = stopped
                if stop { finished = true; condition.broadcast() }
                condition.unlock()
                if stop { return }
            }
        }
        thread.name = "lock sampler"
        thread.start()
    }

    convenience init(of instanceID: String, in database: TemporaryDatabase) {
        self.init([instanceID], path: database.path)
    }

    /// Stops sampling and returns the readings taken while each lock was held, by instance ID.
    func stop() -> [String: [LockSample]] {
        condition.lock()
        stopped = true
        condition.broadcast()
        while !finished { condition.wait() }
        defer { condition.unlock() }
        return samples
    }
}

/// Checks the readings of a lock held through a ``LeaseTestTiming/step``-long step: the lock was
/// `owner`'s throughout, and renewed again and again, far past its first lease. A renewer that
/// never ran leaves one expiry behind, one that woke once two; a late renewer (a loaded
/// machine) still renews, so the check holds however slow the machine is.
func expectRenewed(_ samples: [LockSample], by owner: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(Set(samples.map(\.owner)) == [owner], sourceLocation: sourceLocation)
    let expiries = samples.map(\.expiry)
    #expect(Set(expiries).count >= 3, "the lock was renewed \(Set(expiries).count - 1) times", sourceLocation: sourceLocation)
    if let first = expiries.first, let last = expiries.last {
        #expect(last.timeIntervalSince(first) >= LeaseTestTiming.lease.seconds, sourceLocation: sourceLocation)
    }
}

/// A workflow with one step that takes ``LeaseTestTiming/step``, counted as "slow" in
/// `recorder`: for tests of lock renewal.
func slowStepWorkflow(named name: String, recorder: Recorder) -> (EddaApp) -> WorkflowReference<String, String> {
    let slow = ActivityDefinition<String, String>(name: "slow") { input, _ in
        recorder.record("slow")
        try await Task.sleep(for: LeaseTestTiming.step)
        return input
    }
    return { app in
        app.register(workflow: name) { (input: String, context) in
            try await context.run(slow, input: input)
        }
    }
}
