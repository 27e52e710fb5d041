import Foundation

/// The store operations a workflow body's waits need, for ``WorkflowContext``: the context asks
/// the engine, and the engine asks the store.
extension WorkflowEngine {
    /// Subscribes a held instance to `channel` in `mode`, or unsubscribes it (`mode` `nil`).
    func changeSubscription(
        instanceID: String, workerID: String, channel: String, mode: SubscriptionMode?
    ) async throws -> SubscriptionOutcome {
        try await storeOperation {
            try await store.updateSubscription(instanceID: instanceID, workerID: workerID, channel: channel, mode: mode, now: Date())
        }
    }

    /// Takes the next pending message for a held instance, or registers its wait and suspends it.
    func receive(_ request: ReceiveRequest) async throws -> ReceiveOutcome {
        try await storeOperation { try await store.receive(request, now: Date()) }
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
