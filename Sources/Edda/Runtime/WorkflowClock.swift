import Foundation

/// The time that durable timers and receive timeouts are measured in.
///
/// Apps use ``SystemClock``. Tests can substitute a clock they advance by hand (see
/// `EddaTesting.ManualClock`), so a workflow that sleeps for a day finishes in milliseconds.
/// Lock leases and database timestamps always use the real time.
public protocol WorkflowClock: Sendable {
    /// The current time.
    func now() -> Date

    /// Suspends until the clock reads `deadline` or later.
    ///
    /// - Throws: `CancellationError` if the task is cancelled first.
    func sleep(until deadline: Date) async throws
}

/// The real time.
public struct SystemClock: WorkflowClock {
    /// Creates the clock.
    public init() {}

    public func now() -> Date { Date() }

    public func sleep(until deadline: Date) async throws {
        let interval = deadline.timeIntervalSinceNow
        guard interval > 0 else { return }
        try await Task.sleep(for: .seconds(interval))
    }
}
