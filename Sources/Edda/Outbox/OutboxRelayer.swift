import Foundation
import Synchronization

/// How the app's outbox relayer sends `outbox_events` rows (see
/// ``EddaApp/Configuration/outboxPublisher``).
public struct OutboxRelayerConfiguration: Sendable {
    /// How soon to look again after finding work, and the base of the idle back-off. Default 1 s.
    public var pollInterval: Duration = .seconds(1)
    /// The longest idle wait between polls; a commit that writes outbox events in this process
    /// wakes the relayer at once. Default 30 s.
    public var maxPollInterval: Duration = .seconds(30)
    /// Rows taken per poll. Default 10.
    public var batchSize = 10
    /// Sending attempts before a failing row is left `failed` for good. Default 3.
    public var maxRetries = 3
    /// Rows older than this are marked `expired` instead of sent. Default `nil` (no limit).
    public var maxAge: Duration?
    /// The lease on the rows a relayer takes: renewed every third of it while they are being
    /// sent, so a row is taken again by another relayer (or this app after a restart) within
    /// this time after the relayer sending it died. Default 10 s.
    public var lease: Duration = .seconds(10)

    /// The defaults documented on each property.
    public init() {}

    func validate() throws {
        guard pollInterval > .zero, maxPollInterval >= pollInterval, batchSize > 0, maxRetries > 0,
              lease > .zero
        else {
            throw EddaUsageError(
                .invalidConfiguration,
                "The outbox relayer needs a positive pollInterval, maxPollInterval ≥ pollInterval, and positive "
                    + "batchSize, maxRetries and lease.")
        }
    }
}

/// Sends the rows of `outbox_events` through an ``OutboxPublisher`` until the app shuts down:
/// woken by commits that write outbox events, backing off while idle, retrying failures up to a
/// limit, and taking back rows whose relayer died (their lease ended).
///
/// Delivery is at least once: a relayer that dies after the broker accepted an event but before
/// recording it leaves the row to be sent again. The event ID (the CloudEvent's `id`) is the
/// consumer's key for dropping the repeat.
struct OutboxRelayer {
    /// How the outbox metric names an outcome that drops the event.
    static func metricOutcome(_ outcome: OutboxOutcome) -> String {
        switch outcome {
        case .invalid: "invalid"
        case .expired: "expired"
        default: "failed"
        }
    }

    /// The key ``WorkflowEngine/outboxWakeup`` is signalled with.
    static let wakeupKey = "outbox"
    let engine: WorkflowEngine
    let store: any OutboxStore
    let publisher: any OutboxPublisher
    let configuration: OutboxRelayerConfiguration

    func run() async {
        var idlePolls = 0
        while !Task.isCancelled {
            let batch = await relayBatch()
            if batch.published > 0 {
                idlePolls = 0
                // A full batch that went out: more may be waiting.
                if batch.taken >= configuration.batchSize { continue }
            } else {
                // Nothing taken, or nothing the broker accepted: back off, so that a broker that
                // is briefly down does not use up the retries of every waiting event at once.
                idlePolls += 1
            }
            await engine.outboxWakeup.wait(for: Self.wakeupKey, timeout: wait(afterIdlePolls: idlePolls))
        }
    }

    /// `pollInterval × 2^min(n, 4)`, at most `maxPollInterval`, plus up to 30 % jitter.
    func wait(afterIdlePolls idlePolls: Int) -> Duration {
        let base = configuration.pollInterval.seconds * Double(1 << min(idlePolls, 4))
        let capped = min(base, configuration.maxPollInterval.seconds)
        return .seconds(capped + Double.random(in: 0...(capped * 0.3)))
    }

    /// Takes one batch and sends it, oldest first; returns how many rows it took and how many
    /// the broker accepted. Rows not yet sent when the app shuts down go back to `pending`.
    func relayBatch() async -> (taken: Int, published: Int) {
        let events: [OutboxEvent]
        do {
            events = try await store.claimOutboxEvents(
                OutboxClaim(limit: configuration.batchSize, leaseUntil: Date().addingTimeInterval(configuration.lease.seconds)),
                now: Date())
        } catch {
            // Cancelled: the app is shutting down, nothing went wrong.
            if !Task.isCancelled { engine.background.failed(.outboxRelayer, "Taking outbox events failed", error) }
            return (0, 0)
        }
        guard !events.isEmpty else {
            engine.background.succeeded(.outboxRelayer)
            return (0, 0)
        }
        // Whether a store call of this batch failed (the broker's answers are the events' own).
        let storeFailed = Mutex(false)
        let unsent = Mutex(Set(events.map(\.eventID)))
        // Renews the leases of the rows not yet finished while the batch is sent.
        let renewer = Task { [store, configuration, engine] in
            while !Task.isCancelled {
                try? await Task.sleep(for: configuration.lease / 3)
                let ids = unsent.withLock { Array($0) }
                guard !Task.isCancelled, !ids.isEmpty else { return }
                do {
                    try await store.renewOutboxEvents(eventIDs: ids, until: Date().addingTimeInterval(configuration.lease.seconds))
                } catch where !Task.isCancelled {
                    storeFailed.withLock { $0 = true }
                    engine.background.failed(.outboxRelayer, "Renewing the lease of outbox events failed", error)
                } catch {
                    return
                }
            }
        }
        var published = 0
        for var event in events {
            event.traceContext = engine.outboxTraceContexts.fields(for: event.eventID)
            let outcome: OutboxOutcome
            if Task.isCancelled {
                outcome = .postponed
            } else if let maxAge = configuration.maxAge, Date().timeIntervalSince(event.createdAt) > maxAge.seconds {
                outcome = .expired("Exceeded max age (\(maxAge), age=\(Int(Date().timeIntervalSince(event.createdAt))) s)")
            } else {
                switch await publisher.publish(event) {
                case .failed(let error) where event.retryCount + 1 < configuration.maxRetries,
                     .retrying(let error) where event.retryCount + 1 < configuration.maxRetries:
                    outcome = .retrying(error)
                case .failed(let error), .retrying(let error):
                    outcome = .failed("\(error) (gave up after \(event.retryCount + 1) attempts)")
                case let other:
                    outcome = other
                }
            }
            unsent.withLock { _ = $0.remove(event.eventID) }
            do {
                try await store.finishOutboxEvent(eventID: event.eventID, outcome: outcome, now: Date())
            } catch where !Task.isCancelled {
                storeFailed.withLock { $0 = true }
                engine.background.failed(
                    .outboxRelayer, "Recording the outcome of outbox event \(event.eventID) failed", error,
                    retrying: "it is sent again when its lease ends")
            } catch {
                // Shutting down: the row's lease ends and it is taken again.
            }
            switch outcome {
            case .retrying, .postponed: break
            default: engine.outboxTraceContexts.remove(event.eventID)
            }
            switch outcome {
            case .published:
                published += 1
                engine.metrics.outboxEvent("published")
                await engine.hooks.eventSent(eventType: event.eventType, eventSource: event.eventSource, dataJSON: event.payload.jsonDescription)
            case .retrying(let error):
                engine.metrics.outboxEvent("retry")
                engine.logger.warning(
                    "Outbox event not sent; it will be retried",
                    metadata: ["edda.event_id": .string(event.eventID), "edda.error": .string(error),
                               "edda.attempt": .stringConvertible(event.retryCount + 1)])
            case .failed(let error), .invalid(let error), .expired(let error):
                engine.metrics.outboxEvent(Self.metricOutcome(outcome))
                engine.logger.error(
                    "Outbox event dropped", metadata: ["edda.event_id": .string(event.eventID), "edda.error": .string(error)])
            case .postponed:
                break
            }
        }
        // No renewal runs after the batch has been recorded.
        renewer.cancel()
        await renewer.value
        if !storeFailed.withLock({ $0 }), !Task.isCancelled { engine.background.succeeded(.outboxRelayer) }
        return (events.count, published)
    }
}
