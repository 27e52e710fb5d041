import Edda
import EddaTesting
import Foundation
import GRDB
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

/// The lock timeout of the lease tests, and how long their one step takes.
///
/// The lease is long enough that a loaded CI machine (every suite starting at once on two
/// cores) does not starve the renewer past it; the step outlasts three leases, so a worker that
/// did not renew would lose the instance to its rival (lease plus a 1 s recovery pass) well
/// before the step ends.
enum LeaseTestTiming {
    static let lease = Duration.seconds(3)
    static let step = Duration.seconds(10)
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
