/// Sends outbox events to a broker for the app's outbox relayer.
///
/// `EddaHTTP` provides `HTTPOutboxPublisher`, which POSTs each event as a structured-mode
/// CloudEvent. Implement this protocol to send events elsewhere (a queue, a log, a test).
public protocol OutboxPublisher: Sendable {
    /// Sends one event and says how it went:
    /// - ``OutboxOutcome/published`` when the broker accepted it;
    /// - ``OutboxOutcome/invalid(_:)`` when the broker refused it for good (it is not retried);
    /// - ``OutboxOutcome/failed(_:)`` when it may succeed later (it is retried).
    func publish(_ event: OutboxEvent) async -> OutboxOutcome
}
