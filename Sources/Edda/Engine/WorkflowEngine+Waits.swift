import Foundation

/// The store operations a workflow body's waits need, for ``WorkflowContext``: the context asks
/// the engine, and the engine asks the store.
extension WorkflowEngine {
    /// Subscribes a held instance to `channel` in `mode`, or unsubscribes it (`mode` `nil`).
    func changeSubscription(
        instanceID: String, workerID: String, channel: String, mode: SubscriptionMode?
    ) async throws -> SubscriptionOutcome {
        try await storeOperation {
            try await channelStore().updateSubscription(
                instanceID: instanceID, workerID: workerID, channel: channel, mode: mode, now: Date())
        }
    }

    /// Takes the next pending message for a held instance, or registers its wait and suspends it.
    func receive(_ request: ReceiveRequest) async throws -> ReceiveOutcome {
        let channels = try channelStore()
        let started = ContinuousClock.now
        let outcome = try await storeOperation { try await channels.receive(request, now: Date()) }
        metrics.committed("receive", duration: ContinuousClock.now - started)
        return outcome
    }

    /// The app's store as a ``ChannelStore``, or a usage error if its driver has no channels.
    func channelStore() throws -> any ChannelStore {
        guard let channels = store as? any ChannelStore else {
            throw EddaUsageError(
                .unsupportedByStore,
                "\(type(of: store)) does not support channels and events (it is not a ChannelStore); "
                    + "subscribe, receive, publish, sendTo and waitEvent need a database driver that does.")
        }
        return channels
    }

    /// Refuses a step's messages or outbox events when the store cannot keep them: the step
    /// could never commit, so it fails at once (an ``EddaUsageError`` is not retried).
    func checkCapabilities(messages: [OutgoingMessage], outboxEvents: [OutboxEvent]) throws {
        if !messages.isEmpty { _ = try channelStore() }
        if !outboxEvents.isEmpty, !(store is any OutboxStore) {
            throw EddaUsageError(
                .unsupportedByStore,
                "\(type(of: store)) has no transactional outbox (it is not an OutboxStore); sendEvent needs a database driver that has one.")
        }
    }

    /// Runs a store operation; its failure becomes an ``EngineStoreError``, which stops the
    /// execution (the instance is left for a later one) instead of failing the workflow.
    func storeOperation<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw EngineStoreError(underlying: error)
        }
    }
}
