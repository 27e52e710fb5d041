import Edda
import Foundation
import GRDB

/// The transactional outbox: rows written with a step, taken and finished by a relayer.
extension SQLiteStore {
    public func claimOutboxEvents(_ claim: OutboxClaim, now: Date) async throws -> [OutboxEvent] {
        try await writer.write { database in
            try Row.fetchAll(
                database.cachedStatement(sql: OutboxStatements.claim),
                arguments: [Timestamp.database(claim.leaseUntil), Timestamp.database(now), claim.limit, OutboxEventID.likePattern]
            ).map { try OutboxEvent(row: SQLiteRow($0)) }
            // RETURNING gives no order: send the oldest first.
            .sorted { ($0.createdAt, $0.eventID) < ($1.createdAt, $1.eventID) }
        }
    }

    public func renewOutboxEvents(eventIDs: [String], until: Date) async throws {
        guard !eventIDs.isEmpty else { return }
        try await writer.write { database in
            try database.execute(
                sql: "UPDATE outbox_events SET published_at = ? WHERE status = 'processing' AND event_id IN (SELECT value FROM json_each(?))",
                arguments: [Timestamp.database(until), JSONValue.array(eventIDs.map(JSONValue.string)).jsonText])
        }
    }

    public func finishOutboxEvent(eventID: String, outcome: OutboxOutcome, now: Date) async throws {
        try await writer.write { database in
            switch outcome {
            case .published:
                try database.cachedStatement(sql: OutboxStatements.published).execute(arguments: [Timestamp.database(now), eventID])
            case .failed(let error):
                try database.cachedStatement(sql: OutboxStatements.failed).execute(arguments: ["failed", error, eventID])
            case .retrying(let error):
                try database.cachedStatement(sql: OutboxStatements.failed).execute(arguments: ["pending", error, eventID])
            case .invalid(let error):
                try database.cachedStatement(sql: OutboxStatements.ended).execute(arguments: ["invalid", error, eventID])
            case .expired(let error):
                try database.cachedStatement(sql: OutboxStatements.ended).execute(arguments: ["expired", error, eventID])
            case .postponed:
                try database.cachedStatement(sql: OutboxStatements.postponed).execute(arguments: [eventID])
            }
        }
    }

    public func outboxEvent(id: String) async throws -> OutboxEvent? {
        try await pool.read { database in
            try Row.fetchOne(database, sql: "SELECT * FROM outbox_events WHERE event_id = ?", arguments: [id]).map { try OutboxEvent(row: SQLiteRow($0)) }
        }
    }

    static func insertOutboxEvent(_ event: OutboxEvent, in database: Database, timestamp: String) throws {
        let statement = try database.cachedStatement(sql: OutboxStatements.insert)
        switch event.payload {
        case .json(let text):
            try statement.execute(arguments: [
                event.eventID, event.eventType, event.eventSource, "json", text, nil, event.contentType, timestamp,
            ])
        case .binary(let bytes):
            try statement.execute(arguments: [
                event.eventID, event.eventType, event.eventSource, "binary", nil, Data(bytes), event.contentType, timestamp,
            ])
        }
    }
}

/// The SQL of the outbox.
enum OutboxStatements {
    static let insert = """
        INSERT INTO outbox_events
            (event_id, event_type, event_source, data_type, event_data, event_data_binary, content_type, created_at, status, retry_count)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0)
        """

    /// While a row is `processing`, `published_at` holds when its lease ends (`OutboxClaim`). A
    /// `processing` row without one is another framework's relayer's (Python's sets none): left
    /// to it.
    /// Arguments: lease end, now, limit, the pattern of the event IDs written here
    /// (`OutboxEventID`).
    static let claim = """
        UPDATE outbox_events SET status = 'processing', published_at = ?1
        WHERE event_id IN (
            SELECT event_id FROM outbox_events
            WHERE (status = 'pending' OR (status = 'processing' AND published_at IS NOT NULL AND published_at < ?2))
              AND event_id LIKE ?4
            ORDER BY created_at, event_id LIMIT ?3)
        RETURNING *
        """

    static let published = """
        UPDATE outbox_events SET status = 'published', published_at = ?, last_error = NULL
        WHERE event_id = ? AND status = 'processing'
        """

    /// `failed` (given up) or `pending` (will retry), with the attempt counted.
    static let failed = """
        UPDATE outbox_events SET status = ?, retry_count = COALESCE(retry_count, 0) + 1, last_error = ?, published_at = NULL
        WHERE event_id = ? AND status = 'processing'
        """

    static let postponed = """
        UPDATE outbox_events SET status = 'pending', published_at = NULL WHERE event_id = ? AND status = 'processing'
        """

    static let ended = """
        UPDATE outbox_events SET status = ?, last_error = ?, published_at = NULL
        WHERE event_id = ? AND status = 'processing'
        """
}

extension SQLiteStore: RetentionStore {
    public func purgeInstances(_ filter: PurgeFilter, limit: Int, dryRun: Bool) async throws -> Int {
        var selection = "status IN (\(Self.placeholders(filter.statuses.count))) AND updated_at < ?"
        var values = StatementArguments(filter.statuses.map(\.rawValue))
        values += [Timestamp.database(filter.endedBefore)]
        if let frameworks = filter.frameworks {
            selection += " AND framework IN (\(Self.placeholders(frameworks.count)))"
            values += StatementArguments(frameworks)
        }
        let (condition, arguments) = (selection, values)
        if dryRun {
            return try await pool.read { database in
                try Int.fetchOne(database, sql: "SELECT COUNT(*) FROM workflow_instances WHERE \(condition)", arguments: arguments) ?? 0
            }
        }
        return try await writer.write { database in
            let ids = try String.fetchAll(
                database, sql: "SELECT instance_id FROM workflow_instances WHERE \(condition) ORDER BY updated_at LIMIT ?",
                arguments: arguments + [limit])
            guard !ids.isEmpty else { return 0 }
            let list = Self.placeholders(ids.count)
            try database.execute(
                sql: "UPDATE workflow_instances SET continued_from = NULL WHERE continued_from IN (\(list))", arguments: StatementArguments(ids))
            // The schema's ON DELETE CASCADE takes every row that refers to these instances.
            try database.execute(sql: "DELETE FROM workflow_instances WHERE instance_id IN (\(list))", arguments: StatementArguments(ids))
            return database.changesCount
        }
    }
}
