import Edda
import EddaTesting
import Foundation

/// The behaviour every ``WorkflowStore`` must have for the engine to keep its guarantees,
/// checked through the public API of ``EddaApp`` and of the store: claims and leases, crash and
/// takeover, timers and receive timeouts, delivery on every channel mode, competing consumption,
/// cancellation with compensations, `recur`, queries and pagination, the outbox, leader
/// election, wake-ups across apps, and migrations.
///
/// A driver runs it from its own test target, with one call that gives a fresh database per
/// check:
///
/// ```swift
/// import EddaConformance
/// import Testing
///
/// @Test func conformance() async throws {
///     try await StoreConformance.verify {
///         ConformanceDatabase(location: .myDatabase(url: try await MyTestServer.freshDatabaseURL()))
///     }
/// }
/// ```
///
/// or one test per check, so that each is reported on its own:
///
/// ```swift
/// @Test(arguments: StoreConformance.checks)
/// func conformance(_ check: StoreConformance.Check) async throws {
///     try await check.run { ConformanceDatabase(location: .myDatabase(url: try await MyTestServer.freshDatabaseURL())) }
/// }
/// ```
///
/// SQLite, PostgreSQL and MariaDB run it in this package's own tests.
public enum StoreConformance {
    /// Every check, in a stable order.
    public static var checks: [Check] { ConformanceChecks.all }

    /// Runs every check, each on a fresh database from `makeDatabase`, and throws one
    /// ``ConformanceFailure`` naming every check that failed (after running them all).
    public static func verify(_ makeDatabase: @escaping @Sendable () async throws -> ConformanceDatabase) async throws {
        var failures: [String] = []
        for check in checks {
            do {
                try await check.run(makeDatabase)
            } catch {
                failures.append("\(check.name): \(error)")
            }
        }
        guard failures.isEmpty else {
            throw ConformanceFailure("\(failures.count) of \(checks.count) checks failed:\n" + failures.joined(separator: "\n"))
        }
    }

    /// A capability a driver may adopt beside ``Edda/WorkflowStore`` (see its documentation).
    public enum Capability: String, Sendable, CustomStringConvertible {
        /// ``Edda/ChannelStore``: channels and events.
        case channels
        /// ``Edda/OutboxStore``: the transactional outbox.
        case outbox
        /// ``Edda/SystemLockStore``: named locks for leader election.
        case systemLocks
        /// ``Edda/RetentionStore``: deleting finished instances.
        case retention

        /// Whether `store` adopts it.
        public func isAdopted(by store: any WorkflowStore) -> Bool {
            switch self {
            case .channels: store is any ChannelStore
            case .outbox: store is any OutboxStore
            case .systemLocks: store is any SystemLockStore
            case .retention: store is any RetentionStore
            }
        }

        /// The capability's name, as in failure messages.
        public var description: String { rawValue }
    }

    /// One behaviour the engine relies on.
    public struct Check: Sendable, CustomStringConvertible {
        /// What it checks, in a sentence.
        public let name: String
        /// The capability the behaviour belongs to, or `nil` for the core every driver provides.
        /// For a driver without it, the check verifies instead that the app refuses the
        /// capability's calls with ``Edda/EddaUsageError/Kind/unsupportedByStore`` (channels,
        /// outbox) or runs without it (system locks).
        public let capability: Capability?
        let body: @Sendable (ConformanceHarness) async throws -> Void

        init(name: String, needs capability: Capability? = nil, body: @escaping @Sendable (ConformanceHarness) async throws -> Void) {
            self.name = name
            self.capability = capability
            self.body = body
        }

        /// The check's name.
        public var description: String { name }

        /// Runs the check on a fresh database from `makeDatabase`, removed afterwards.
        ///
        /// - Throws: ``ConformanceFailure`` when the store does not behave as the engine needs;
        ///   the store's own error when one of its operations fails.
        public func run(_ makeDatabase: @Sendable () async throws -> ConformanceDatabase) async throws {
            let database = try await makeDatabase()
            defer { database.remove() }
            let harness = ConformanceHarness(location: database.location)
            if let capability {
                let store = try await database.location.makeStore()
                let adopted = capability.isAdopted(by: store)
                try await store.close()
                guard adopted else {
                    try await ConformanceChecks.refuses(capability, harness)
                    return
                }
            }
            try await body(harness)
        }
    }
}

/// A fresh, empty database for one conformance check, and how to remove it afterwards.
public struct ConformanceDatabase: Sendable {
    /// Where it is.
    public var location: DatabaseLocation
    /// Removes it (a temporary folder, a database on a test server); called once the check ends.
    public var remove: @Sendable () -> Void

    /// Creates a value with every field given.
    public init(location: DatabaseLocation, remove: @escaping @Sendable () -> Void = {}) {
        self.location = location
        self.remove = remove
    }
}

/// A store did not behave as the engine needs: what was expected, and where the check is.
public struct ConformanceFailure: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public let message: String

    /// Creates the error.
    public init(_ message: String) {
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

/// What a check runs with: its database, and the app settings of the checks.
struct ConformanceHarness: Sendable {
    let location: DatabaseLocation

    /// Test settings: quick recovery, short locks, fast retries.
    func configuration(serviceName: String = "conformance") -> EddaApp.Configuration {
        .testing(serviceName: serviceName, database: location)
    }

    /// Runs `body` with an app on the database and shuts it down afterwards, also on error.
    func withApp<T>(
        serviceName: String = "conformance", configure: (inout EddaApp.Configuration) -> Void = { _ in },
        _ body: (EddaApp) async throws -> T
    ) async throws -> T {
        var configuration = configuration(serviceName: serviceName)
        configure(&configuration)
        return try await EddaApp.running(configuration, body)
    }
}

/// Fails the check with `message` unless `condition` holds.
func expect(
    _ condition: Bool, _ message: @autoclosure () -> String, fileID: StaticString = #fileID, line: UInt = #line
) throws {
    guard condition else { throw ConformanceFailure("\(message()) (\(fileID):\(line))") }
}

/// Fails the check unless `value` equals `expected`.
func expectEqual<T: Equatable>(
    _ value: T, _ expected: T, _ what: @autoclosure () -> String, fileID: StaticString = #fileID, line: UInt = #line
) throws {
    guard value == expected else {
        throw ConformanceFailure("\(what()): expected \(expected), got \(value) (\(fileID):\(line))")
    }
}

/// Fails the check unless `body` throws an error of type `E`.
func expectThrows<E: Error>(
    _ type: E.Type, _ what: @autoclosure () -> String, fileID: StaticString = #fileID, line: UInt = #line,
    _ body: () async throws -> Void
) async throws {
    do {
        try await body()
    } catch is E {
        return
    } catch {
        throw ConformanceFailure("\(what()): expected \(E.self), got \(error) (\(fileID):\(line))")
    }
    throw ConformanceFailure("\(what()): expected \(E.self), nothing was thrown (\(fileID):\(line))")
}
