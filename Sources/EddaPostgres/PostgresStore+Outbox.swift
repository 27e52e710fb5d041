import Edda
import Foundation
import Logging
import PostgresNIO

/// The transactional outbox on PostgreSQL.
extension PostgresStore {
    public func claimOutboxEvents(_ claim: OutboxClaim, now: Date) async throws -> [OutboxEvent] {
        try await read { connection in
            // While a row is `processing`, `published_at` holds when its lease ends. Only rows this
            // library wrote are taken (`OutboxEventID`).
            try await connection.rows(
                """
                UPDATE outbox_events SET status = 'processing', published_at = \(claim.leaseUntil)
                WHERE event_id IN (
                    SELECT event_id FROM outbox_events
                    WHERE (status = 'pending' OR (status = 'processing' AND published_at IS NOT NULL AND published_at < \(now)))
                      AND event_id LIKE \(OutboxEventID.likePattern)
                    ORDER BY created_at, event_id LIMIT \(claim.limit)
                    FOR UPDATE SKIP LOCKED)
                RETURNING *
                """, logger: self.logger
            ).map { try OutboxEvent(row: PostgresStoredRow($0)) }
            .sorted { ($0.createdAt, $0.eventID) < ($1.createdAt, $1.eventID) }
        }
    }

    public func renewOutboxEvents(eventIDs: [String], until: Date) async throws {
        guard !eventIDs.isEmpty else { return }
        _ = try await read { connection in
            try await connection.count(
                "UPDATE outbox_events SET published_at = \(until) WHERE status = 'processing' AND event_id = ANY(\(eventIDs))",
                logger: self.logger)
        }
    }

    public func finishOutboxEvent(eventID: String, outcome: OutboxOutcome, now: Date) async throws {
        _ = try await read { connection in
            let query: PostgresQuery
            switch outcome {
            case .published:
                query = """
                    UPDATE outbox_events SET status = 'published', published_at = \(now), last_error = NULL
                    WHERE event_id = \(eventID) AND status = 'processing'
                    """
            case .failed(let error), .retrying(let error):
                let status = if case .failed = outcome { "failed" } else { "pending" }
                query = """
                    UPDATE outbox_events SET status = \(status), retry_count = COALESCE(retry_count, 0) + 1, last_error = \(error),
                        published_at = NULL
                    WHERE event_id = \(eventID) AND status = 'processing'
                    """
            case .invalid(let error), .expired(let error):
                let status = if case .invalid = outcome { "invalid" } else { "expired" }
                query = """
                    UPDATE outbox_events SET status = \(status), last_error = \(error), published_at = NULL
                    WHERE event_id = \(eventID) AND status = 'processing'
                    """
            case .postponed:
                query = """
                    UPDATE outbox_events SET status = 'pending', published_at = NULL
                    WHERE event_id = \(eventID) AND status = 'processing'
                    """
            }
            return try await connection.count(query, logger: self.logger)
        }
    }

    public func outboxEvent(id: String) async throws -> OutboxEvent? {
        try await read { connection in
            try await connection.rows("SELECT * FROM outbox_events WHERE event_id = \(id)", logger: self.logger).first
                .map { try OutboxEvent(row: PostgresStoredRow($0)) }
        }
    }

}

extension PostgresStore: RetentionStore {
    public func purgeInstances(_ filter: PurgeFilter, limit: Int, dryRun: Bool) async throws -> Int {
        func selecting(_ columns: String, suffix: String = "") -> PostgresQuery {
            var builder = QueryBuilder()
            var sql = """
                SELECT \(columns) FROM workflow_instances
                WHERE status = ANY(\(builder.bind(filter.statuses.map(\.rawValue)))) AND updated_at < \(builder.bind(filter.endedBefore))
                """
            if let frameworks = filter.frameworks { sql += " AND framework = ANY(\(builder.bind(frameworks)))" }
            builder.sql = sql + suffix
            return builder.query
        }
        if dryRun {
            let count = selecting("COUNT(*)::int AS n")
            return try await read { connection in
                try await connection.rows(count, logger: self.logger).first?.value("n", as: Int.self) ?? 0
            }
        }
        let select = selecting("instance_id", suffix: " ORDER BY updated_at LIMIT \(max(1, limit)) FOR UPDATE SKIP LOCKED")
        return try await transaction { connection in
            let ids: [String] = try await connection.rows(select, logger: self.logger).map { try $0.value("instance_id") }
            guard !ids.isEmpty else { return 0 }
            try await connection.query("UPDATE workflow_instances SET continued_from = NULL WHERE continued_from = ANY(\(ids))", logger: self.logger)
            // The schema's ON DELETE CASCADE takes every row that refers to these instances.
            return try await connection.count("DELETE FROM workflow_instances WHERE instance_id = ANY(\(ids)) RETURNING 1", logger: self.logger)
        }
    }
}

extension PostgresStore: StatisticsStore {
    public func statistics() async throws -> StoreStatistics {
        try await read { connection in
            guard let row = try await connection.rows(PostgresQuery(unsafeSQL: StoreStatistics.query), logger: self.logger).first else {
                return StoreStatistics(waitingForTimer: 0, waitingForMessage: 0, waitingForEvent: 0, outboxBacklog: 0)
            }
            return StoreStatistics(
                waitingForTimer: try row.value("timers"), waitingForMessage: try row.value("messages"),
                waitingForEvent: try row.value("events"), outboxBacklog: try row.value("outbox"))
        }
    }
}
