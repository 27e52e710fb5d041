import Edda
import Foundation

/// The transactional outbox on MySQL.
extension MySQLStore {
    public func claimOutboxEvents(_ claim: OutboxClaim, now: Date) async throws -> [OutboxEvent] {
        try await transaction { connection in
            // While a row is `processing`, `published_at` holds when its lease ends. Only rows this
            // library wrote are taken (`OutboxEventID`).
            let ids = try connection.query(
                """
                SELECT event_id FROM outbox_events
                WHERE (status = 'pending' OR (status = 'processing' AND published_at IS NOT NULL AND published_at < \(now)))
                  AND event_id LIKE \(OutboxEventID.likePattern)
                ORDER BY created_at, event_id LIMIT \(claim.limit)
                FOR UPDATE SKIP LOCKED
                """
            ).map { try $0.required("event_id", $0.string) }
            guard !ids.isEmpty else { return [] }
            try connection.execute(
                "UPDATE outbox_events SET status = 'processing', published_at = \(claim.leaseUntil.roundedUpToSecond) WHERE event_id IN \(list: ids)")
            return try connection.query("SELECT * FROM outbox_events WHERE event_id IN \(list: ids) ORDER BY created_at, event_id")
                .map { try OutboxEvent(row: MySQLStoredRow($0)) }
        }
    }

    public func renewOutboxEvents(eventIDs: [String], until: Date) async throws {
        guard !eventIDs.isEmpty else { return }
        try await read { connection in
            try connection.execute(
                "UPDATE outbox_events SET published_at = \(until.roundedUpToSecond) WHERE status = 'processing' AND event_id IN \(list: eventIDs)")
        }
    }

    public func finishOutboxEvent(eventID: String, outcome: OutboxOutcome, now: Date) async throws {
        try await read { connection in
            let change: MySQLQuery
            switch outcome {
            case .published:
                change = "status = 'published', published_at = \(now), last_error = NULL"
            case .failed(let error), .retrying(let error):
                let status = if case .failed = outcome { "failed" } else { "pending" }
                change = "status = \(status), retry_count = COALESCE(retry_count, 0) + 1, last_error = \(error), published_at = NULL"
            case .invalid(let error), .expired(let error):
                let status = if case .invalid = outcome { "invalid" } else { "expired" }
                change = "status = \(status), last_error = \(error), published_at = NULL"
            case .postponed:
                change = "status = 'pending', published_at = NULL"
            }
            try connection.execute("UPDATE outbox_events SET \(change) WHERE event_id = \(eventID) AND status = 'processing'")
        }
    }

    public func outboxEvent(id: String) async throws -> OutboxEvent? {
        try await read { connection in
            try connection.query("SELECT * FROM outbox_events WHERE event_id = \(id)").first.map { try OutboxEvent(row: MySQLStoredRow($0)) }
        }
    }

}

extension MySQLStore: RetentionStore {
    public func purgeInstances(_ filter: PurgeFilter, limit: Int, dryRun: Bool) async throws -> Int {
        var selection: MySQLQuery = "status IN \(list: filter.statuses.map(\.rawValue)) AND updated_at < \(filter.endedBefore)"
        if let frameworks = filter.frameworks { selection.append(" AND framework IN \(list: frameworks)") }
        let condition = selection
        if dryRun {
            return try await read { connection in
                try connection.query("SELECT COUNT(*) AS n FROM workflow_instances WHERE \(condition)").first?.int("n") ?? 0
            }
        }
        return try await transaction { connection in
            let ids = try connection.query(
                "SELECT instance_id FROM workflow_instances WHERE \(condition) ORDER BY updated_at LIMIT \(max(1, limit)) FOR UPDATE SKIP LOCKED"
            ).map { try $0.required("instance_id", $0.string) }
            guard !ids.isEmpty else { return 0 }
            try connection.execute("UPDATE workflow_instances SET continued_from = NULL WHERE continued_from IN \(list: ids)")
            // The schema's ON DELETE CASCADE takes every row that refers to these instances.
            return try connection.execute("DELETE FROM workflow_instances WHERE instance_id IN \(list: ids)")
        }
    }
}

extension MySQLStore: StatisticsStore {
    public func statistics() async throws -> StoreStatistics {
        try await read { connection in
            let row = try connection.query(MySQLQuery(unsafeSQL: StoreStatistics.query)).first
            func count(_ column: String) throws -> Int { try row?.int(column) ?? 0 }
            return StoreStatistics(
                waitingForTimer: try count("timers"), waitingForMessage: try count("messages"),
                waitingForEvent: try count("events"), outboxBacklog: try count("outbox"))
        }
    }
}
