import Foundation

/// Which finished instances a purge deletes: those that ended (``statuses``, all of them final)
/// before ``endedBefore``, of ``frameworks``. Running, waiting and compensating instances are
/// never purged.
public struct PurgeFilter: Sendable, Hashable {
    /// The statuses an instance may be purged in: only final ones.
    public static let finalStatuses: [WorkflowStatus] = [.completed, .failed, .cancelled, .recurred]

    /// Instances whose last change (`updated_at`, the moment they ended) is before this.
    public var endedBefore: Date
    /// The final statuses to purge, in ``finalStatuses`` order.
    public private(set) var statuses: [WorkflowStatus]
    /// The frameworks whose instances are purged; `nil` for every framework's.
    public var frameworks: [String]?

    /// A filter of this library's instances in `statuses` (default: every final status) that
    /// ended before `endedBefore`; `allFrameworks` also takes other frameworks' instances.
    ///
    /// - Throws: ``EddaUsageError`` (`.invalidQuery`) for a status that is not final, or an
    ///   empty list.
    public init(endedBefore: Date, statuses: [WorkflowStatus] = PurgeFilter.finalStatuses, allFrameworks: Bool = false) throws {
        let unknown = statuses.filter { !Self.finalStatuses.contains($0) }
        guard unknown.isEmpty, !statuses.isEmpty else {
            throw EddaUsageError(
                .invalidQuery,
                "Only finished instances can be purged: give one or more of "
                    + "\(Self.finalStatuses.map(\.rawValue).joined(separator: ", "))"
                    + (unknown.isEmpty ? "." : "; '\(unknown.map(\.rawValue).joined(separator: "', '"))' is not final."))
        }
        self.endedBefore = endedBefore
        self.statuses = Self.finalStatuses.filter(statuses.contains)
        self.frameworks = allFrameworks ? nil : [StoredFramework.name]
    }
}

/// A store that deletes finished instances. Every table of the shared schema that refers to an
/// instance deletes its rows with it (the schema's `ON DELETE CASCADE`: history, archived
/// history, compensations, subscriptions, timers, message claims, delivery cursors, group
/// memberships); a successor's `continued_from` that names a purged instance is cleared.
public protocol RetentionStore: WorkflowStore {
    /// Deletes up to `limit` instances `filter` selects, oldest end first, in one transaction;
    /// returns how many it deleted. With `dryRun`, deletes nothing and returns how many
    /// instances `filter` selects in all (`limit` does not apply).
    func purgeInstances(_ filter: PurgeFilter, limit: Int, dryRun: Bool) async throws -> Int
}

/// How the app purges: in batches of ``batchSize``, each its own transaction, so that a purge
/// of millions of rows never holds a long transaction beside the running workers.
enum Retention {
    static let batchSize = 500

    /// Deletes every instance `filter` selects, batch by batch; returns how many.
    static func purge(_ store: any RetentionStore, _ filter: PurgeFilter, dryRun: Bool) async throws -> Int {
        if dryRun { return try await store.purgeInstances(filter, limit: batchSize, dryRun: true) }
        var total = 0
        while true {
            try Task.checkCancellation()
            let deleted = try await store.purgeInstances(filter, limit: batchSize, dryRun: false)
            total += deleted
            if deleted < batchSize { return total }
        }
    }
}
