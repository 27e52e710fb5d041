import Edda
import EddaSQLite
import Foundation

/// A fresh SQLite database file in its own temporary folder, removed by ``remove()``.
///
/// ```swift
/// let database = try TemporaryDatabase()
/// defer { database.remove() }
/// let app = try await database.makeApp()
/// ```
public struct TemporaryDatabase: Sendable {
    /// The folder holding the database (and its WAL files).
    public let directory: URL
    /// The database file's path.
    public var path: String { directory.appendingPathComponent("edda.db").path }
    /// The database as a location for ``EddaApp/Configuration``.
    public var location: DatabaseLocation { .sqlite(path: path) }

    /// Creates an empty folder for the database.
    public init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("edda-test-\(UUID().uuidString.lowercased())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// A configuration for tests: this database, quick recovery and short locks, so that
    /// crash-recovery scenarios finish in seconds.
    public func configuration(serviceName: String = "test") -> EddaApp.Configuration {
        .testing(serviceName: serviceName, database: location)
    }

    /// An app on this database, configured by `configure`.
    public func makeApp(
        serviceName: String = "test", configure: (inout EddaApp.Configuration) -> Void = { _ in }
    ) async throws -> EddaApp {
        var configuration = configuration(serviceName: serviceName)
        configure(&configuration)
        return try await EddaApp(configuration: configuration)
    }

    /// Runs `body` with an app on this database and shuts the app down afterwards, also when
    /// `body` throws.
    public func withApp<T>(
        serviceName: String = "test", configure: (inout EddaApp.Configuration) -> Void = { _ in },
        _ body: (EddaApp) async throws -> T
    ) async throws -> T {
        var configuration = configuration(serviceName: serviceName)
        configure(&configuration)
        return try await EddaApp.running(configuration, body)
    }

    /// Runs `body` with a fresh temporary database, removed afterwards.
    public static func with<T>(_ body: (TemporaryDatabase) async throws -> T) async throws -> T {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        return try await body(database)
    }

    /// Deletes the folder.
    public func remove() {
        try? FileManager.default.removeItem(at: directory)
    }
}

extension EddaApp.Configuration {
    /// A configuration for tests on any database: quick recovery (100 ms), short locks (2 s)
    /// and fast retries (10 ms back-off, 3 attempts), so that crash-recovery scenarios finish in
    /// seconds.
    public static func testing(serviceName: String = "test", database: DatabaseLocation) -> EddaApp.Configuration {
        var configuration = EddaApp.Configuration(serviceName: serviceName, database: database)
        configuration.recoveryInterval = .milliseconds(100)
        configuration.lockTimeout = .seconds(2)
        configuration.defaultRetryPolicy = RetryPolicy(
            initialInterval: .milliseconds(10), backoffCoefficient: 2, maxInterval: .milliseconds(100), maxAttempts: 3,
            maxDuration: .seconds(30))
        return configuration
    }
}

extension EddaApp {
    /// Waits until the instance has reached one of `statuses`, polling every 20 ms, and returns
    /// it. Throws ``WaitTimeoutError`` after `timeout` (default 75 s: a bound that only turns a
    /// hang into a failure, generous because a loaded 2-core machine has taken over 20 s for
    /// what takes milliseconds alone).
    public func waitForStatus(
        _ instanceID: String, in statuses: Set<WorkflowStatus>, timeout: Duration = .seconds(75)
    ) async throws -> WorkflowInstance {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let instance = try await instance(instanceID), statuses.contains(instance.status) {
                return instance
            }
            guard ContinuousClock.now < deadline else {
                let current = try await instance(instanceID)?.status.rawValue ?? "missing"
                throw WaitTimeoutError(message: "\(instanceID) did not reach \(statuses.map(\.rawValue).sorted()) within \(timeout); it is \(current)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// A test helper waited longer than its limit.
public struct WaitTimeoutError: Error, CustomStringConvertible, Sendable {
    /// What was waited for.
    public let message: String
    /// Creates the error.
    public init(message: String) {
        self.message = message
    }
    public var description: String { message }
}
