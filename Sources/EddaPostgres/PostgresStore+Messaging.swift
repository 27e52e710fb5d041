import Edda
import Foundation
import Logging
import PostgresNIO

/// Timers, channel subscriptions, receives, publishing and delivery, and system locks.
extension PostgresStore {
    static let subscriptionColumns = "s.id AS subscription_id, s.instance_id, s.channel, s.mode, s.activity_id, s.cursor_message_id"
    static let waiterColumns = subscriptionColumns + ", i.framework, i.workflow_name, i.lock_timeout_seconds"

    /// Messages addressed to another instance are not for this subscriber.
    static func addressed(to subscriber: String) -> String {
        """
        (m.metadata IS NULL
         OR COALESCE(m.metadata::jsonb ->> 'target_instance_id', m.metadata::jsonb #>> '{ce_extensions,eddainstanceid}') IS NULL
         OR COALESCE(m.metadata::jsonb ->> 'target_instance_id', m.metadata::jsonb #>> '{ce_extensions,eddainstanceid}') = \(subscriber))
        """
    }

    public func updateSubscription(
        instanceID: String, workerID: String, channel: String, mode: SubscriptionMode?, now: Date
    ) async throws -> SubscriptionOutcome {
        try await transaction { connection in
            var sequence = ReceiveSequence(updating: channel, of: instanceID, to: mode, workerID: workerID)
            try await sequence.run { try await self.perform($0, on: connection, now: now) }
            return sequence.subscriptionOutcome
        }
    }

    public func receive(_ request: ReceiveRequest, now: Date) async throws -> ReceiveOutcome {
        do {
            return try await transaction { connection in
                var sequence = ReceiveSequence(request)
                try await sequence.run { try await self.perform($0, on: connection, now: now) }
                if sequence.rollsBack { throw RolledBack(sequence.outcome) }
                return sequence.outcome
            }
        } catch let rolledBack as RolledBack {
            return rolledBack.outcome
        }
    }

    /// Carries out one step of a receive or subscription change (see ``ReceiveSequence``).
    func perform(_ effect: ReceiveEffect, on connection: PostgresConnection, now: Date) async throws -> ReceiveAnswer {
        switch effect {
        case .checkHolder(let instanceID, let workerID):
            let row = try await connection.rows(
                "SELECT status, locked_by FROM workflow_instances WHERE instance_id = \(instanceID) FOR UPDATE", logger: logger
            ).first
            let status = try row.map { WorkflowStatus(rawValue: try $0.value("status")) }
            let lockedBy: String? = try row?.value("locked_by")
            return .holder(status == .running && lockedBy == workerID ? nil : HolderMismatch(status: status, lockedBy: lockedBy))
        case .findSubscription(let instanceID, let channel):
            return .subscription(try await subscription(instanceID, channel: channel, on: connection))
        case .subscribe(let instanceID, let channel, let mode):
            return .subscribed(conflictingMode: try await subscribe(instanceID, channel: channel, mode: mode, on: connection, now: now))
        case .unsubscribe(let instanceID, let channel):
            try await connection.query(
                "DELETE FROM channel_subscriptions WHERE instance_id = \(instanceID) AND channel = \(channel)", logger: logger)
        case .insertCompensations(let instanceID, let compensations):
            for compensation in compensations {
                try await insertCompensation(compensation, instanceID: instanceID, on: connection, now: now)
            }
        case .findPendingMessage(let subscription):
            return .pendingMessage(try await pendingMessage(for: subscription, on: connection))
        case .record(let instanceID, let event, let consumption):
            guard try await insertHistory(event, instanceID: instanceID, on: connection, now: now, ifAbsent: true) else { return .recorded(false) }
            switch consumption {
            case .deleteMessage(let messageID):
                try await connection.query("DELETE FROM channel_messages WHERE message_id = \(messageID)", logger: logger)
            case .advanceCursor(let subscriptionID, let rowID):
                try await connection.query(
                    "UPDATE channel_subscriptions SET cursor_message_id = \(rowID) WHERE id = \(subscriptionID)", logger: logger)
            }
            return .recorded(true)
        case .keepRunning(let instanceID, let activityID, let leaseUntil):
            try await connection.query(
                """
                UPDATE workflow_instances SET current_activity_id = \(activityID), lock_expires_at = \(leaseUntil), updated_at = \(now)
                WHERE instance_id = \(instanceID)
                """, logger: logger)
        case .suspend(let instanceID, let subscriptionID, let activityID, let timeoutAt):
            try await connection.query(
                "UPDATE channel_subscriptions SET activity_id = \(activityID), timeout_at = \(timeoutAt) WHERE id = \(subscriptionID)",
                logger: logger)
            try await connection.query(
                """
                UPDATE workflow_instances SET status = 'waiting_for_message', current_activity_id = \(activityID),
                    updated_at = \(now), locked_by = NULL, locked_at = NULL, lock_expires_at = NULL
                WHERE instance_id = \(instanceID)
                """, logger: logger)
            if timeoutAt != nil { try await notify(NotifyChannel.waits, "{}", on: connection) }
        }
        return .done
    }

    func subscription(_ instanceID: String, channel: String, on connection: PostgresConnection) async throws -> ChannelSubscription? {
        try await connection.rows(
            """
            SELECT \(unescaped: Self.subscriptionColumns) FROM channel_subscriptions s
            WHERE s.instance_id = \(instanceID) AND s.channel = \(channel)
            """, logger: logger
        ).first.map { try ChannelSubscription(row: PostgresStoredRow($0)) }
    }

    /// Subscribes unless subscribed already; returns the conflicting existing mode, if any.
    func subscribe(_ instanceID: String, channel: String, mode: SubscriptionMode, on connection: PostgresConnection, now: Date) async throws -> String? {
        let stored = mode == .competing ? "competing" : "broadcast"
        if let existing = try await connection.rows(
            "SELECT mode FROM channel_subscriptions WHERE channel = \(channel) AND mode <> \(stored) LIMIT 1", logger: logger
        ).first {
            return try existing.value("mode")
        }
        try await connection.query(
            """
            INSERT INTO channel_subscriptions (instance_id, channel, mode, cursor_message_id, subscribed_at)
            SELECT \(instanceID), \(channel), \(stored),
                   CASE WHEN \(stored) = 'broadcast' THEN COALESCE((SELECT MAX(id) FROM channel_messages WHERE channel = \(channel)), 0) END,
                   \(now)
            ON CONFLICT (instance_id, channel) DO NOTHING
            """, logger: logger)
        return nil
    }

    /// The oldest message the subscription has not received, locked against other consumers.
    func pendingMessage(for subscription: ChannelSubscription, on connection: PostgresConnection) async throws -> StoredMessage? {
        var builder = QueryBuilder()
        let channel = builder.bind(subscription.channel)
        let condition: String
        if subscription.isCompeting {
            condition = "NOT EXISTS (SELECT 1 FROM channel_message_claims c WHERE c.message_id = m.message_id)"
        } else {
            condition = "m.id > \(builder.bind(subscription.cursor))"
        }
        let subscriber = builder.bind(subscription.instanceID)
        builder.sql = """
            SELECT m.id, m.message_id, m.channel, m.data_type, m.data, m.data_binary, m.metadata, m.published_at
            FROM channel_messages m
            WHERE m.channel = \(channel) AND \(condition) AND \(Self.addressed(to: subscriber))
            ORDER BY m.id LIMIT 1 FOR UPDATE SKIP LOCKED
            """
        return try await connection.rows(builder.query, logger: logger).first.map { try StoredMessage(row: PostgresStoredRow($0)) }
    }


    public func publish(_ messages: [OutgoingMessage], claim: ClaimPolicy, now: Date) async throws -> [DeliveryReport] {
        try await transaction { connection in
            var reports: [DeliveryReport] = []
            for message in messages {
                reports.append(try await self.publish(message, claim: claim, on: connection, now: now))
            }
            return reports
        }
    }

    /// Stores a message and delivers each waiting subscriber its oldest pending message.
    func publish(_ message: OutgoingMessage, claim: ClaimPolicy, on connection: PostgresConnection, now: Date) async throws -> DeliveryReport {
        var sweep = WakeUpSweep.delivery(of: message, claim: claim, now: now)
        try await sweep.run { try await self.perform($0, on: connection, now: now) }
        return sweep.report
    }

    public func fireDueWaits(claim: ClaimPolicy, deadline: Date, now: Date, limit: Int) async throws -> [ClaimedInstance] {
        guard !claim.workflowNames.isEmpty else { return [] }
        return try await transaction { connection in
            var sweep = WakeUpSweep.dueWaits(claim: claim, deadline: deadline, now: now, limit: limit)
            try await sweep.run { try await self.perform($0, on: connection, now: now) }
            return sweep.claimed
        }
    }

    /// Carries out one step of a wake-up sweep (see ``WakeUpSweep``).
    func perform(_ effect: WakeUpEffect, on connection: PostgresConnection, now: Date) async throws -> WakeUpAnswer {
        switch effect {
        case .storeMessage(let message):
            let columns = message.payload.columns
            let inserted = try await connection.count(
                """
                INSERT INTO channel_messages (channel, message_id, data_type, data, data_binary, metadata, published_at)
                VALUES (\(message.channel), \(message.messageID), \(columns.type), \(columns.json), \(columns.binary),
                        \(message.metadataJSON), \(now))
                ON CONFLICT (message_id) DO NOTHING RETURNING 1
                """, logger: logger)
            return .stored(isNew: inserted == 1)
        case .findWaiters(let query):
            return .waiters(try await connection.rows(Self.waiterQuery(query, now: now), logger: logger).map { try Waiter(row: PostgresStoredRow($0)) })
        case .findPendingMessage(let subscription):
            return .pendingMessage(try await pendingMessage(for: subscription, on: connection))
        case .resume(let resumption):
            let row = try await connection.rows(Self.resumeStatement(resumption, now: now), logger: logger).first
            return .resumed(try row.map { ResumptionOutcome(woken: resumption.waking.outcome, recorded: try $0.value("recorded", as: Int.self) == 1) }
                ?? .notWaiting)
        case .loadClaimed(let instanceID):
            return .loaded(try await claimedInstance(instanceID, on: connection))
        }
    }

    /// A wake-up (see ``Resumption``) as one statement: the compare-and-set, and gated on it the
    /// end of the wait and the history row, and gated on that row the consumption; an unlocked
    /// instance is announced on commit. One row (`recorded`: 1 or 0) if the instance was woken.
    static func resumeStatement(_ resumption: Resumption, now: Date) -> PostgresQuery {
        var builder = QueryBuilder()
        let id = builder.bind(resumption.instanceID)
        let at = builder.bind(now)
        let lock: String
        switch resumption.waking {
        case .claim(let workerID, let leaseUntil):
            lock = "locked_by = \(builder.bind(workerID)), locked_at = \(at), lock_expires_at = \(builder.bind(leaseUntil))"
        case .release:
            lock = "locked_by = NULL, locked_at = NULL, lock_expires_at = NULL"
        }
        let columns = MessagePayload(resumption.record.payload).columns
        var parts = [
            """
            w AS (UPDATE workflow_instances SET status = 'running', \(lock), updated_at = \(at)
                  WHERE instance_id = \(id) AND status IN ('waiting_for_timer', 'waiting_for_message', 'waiting_for_event')
                    AND (locked_by IS NULL OR lock_expires_at < \(at))
                  RETURNING workflow_name)
            """,
            """
            h AS (INSERT INTO workflow_history (instance_id, activity_id, event_type, data_type, event_data, event_data_binary, created_at)
                  SELECT \(id), \(builder.bind(resumption.record.activityID)), \(builder.bind(resumption.record.eventType)),
                         \(builder.bind(columns.type)), \(builder.bind(columns.json)), \(builder.bind(columns.binary))::bytea, \(at) FROM w
                  ON CONFLICT (instance_id, activity_id) DO NOTHING RETURNING 1)
            """,
        ]
        var consume = resumption.consume
        switch resumption.end {
        case .deleteTimer(let rowID):
            parts.append("e AS (DELETE FROM workflow_timer_subscriptions WHERE id = \(builder.bind(rowID)) AND EXISTS (SELECT 1 FROM w))")
        case .clearSubscriptionWait(let subscriptionID):
            // One statement cannot update a row twice: a cursor that moves moves here.
            var cursor = ""
            if case .advanceCursor(subscriptionID, let rowID)? = consume {
                cursor = ", cursor_message_id = CASE WHEN EXISTS (SELECT 1 FROM h) THEN \(builder.bind(rowID)) ELSE cursor_message_id END"
                consume = nil
            }
            parts.append(
                """
                e AS (UPDATE channel_subscriptions SET activity_id = NULL, timeout_at = NULL\(cursor)
                      WHERE id = \(builder.bind(subscriptionID)) AND EXISTS (SELECT 1 FROM w))
                """)
        }
        switch consume {
        case .deleteMessage(let messageID)?:
            parts.append("c AS (DELETE FROM channel_messages WHERE message_id = \(builder.bind(messageID)) AND EXISTS (SELECT 1 FROM h))")
        case .advanceCursor(let subscriptionID, let rowID)?:
            parts.append(
                """
                c AS (UPDATE channel_subscriptions SET cursor_message_id = \(builder.bind(rowID))
                      WHERE id = \(builder.bind(subscriptionID)) AND EXISTS (SELECT 1 FROM h))
                """)
        case nil:
            break
        }
        var select = "(SELECT count(*) FROM h)::int AS recorded"
        if case .release = resumption.waking {
            select += """
                , pg_notify('\(NotifyChannel.resumable)', json_build_object('wf_id', \(id)::text, 'wf_name', w.workflow_name)::text)
                """
        }
        builder.sql = "WITH \(parts.joined(separator: ",\n")) SELECT \(select) FROM w"
        return builder.query
    }

    /// The statement reading the waiters `query` asks for.
    static func waiterQuery(_ query: WaiterQuery, now: Date) -> PostgresQuery {
        var builder = QueryBuilder()
        let free = "(i.locked_by IS NULL OR i.lock_expires_at < \(builder.bind(now)))"
        let own = "i.framework = \(builder.bind(StoredFramework.name))"
        let instance = "i.instance_id, i.framework, i.workflow_name, i.lock_timeout_seconds"
        switch query {
        case .dueTimers(let deadline, let names, let limit):
            builder.sql = """
                SELECT t.id AS timer_row_id, t.timer_id, t.expires_at, t.activity_id, \(instance)
                FROM workflow_timer_subscriptions t JOIN workflow_instances i ON i.instance_id = t.instance_id
                WHERE t.expires_at <= \(builder.bind(deadline)) AND i.status = 'waiting_for_timer' AND \(own) AND \(free)
                  AND i.workflow_name = ANY(\(builder.bind(names)))
                ORDER BY t.expires_at LIMIT \(builder.bind(limit)) FOR UPDATE OF t SKIP LOCKED
                """
        case .dueReceiveTimeouts(let deadline, let names, let limit):
            builder.sql = """
                SELECT s.id AS timeout_subscription_id, s.channel, s.activity_id, s.timeout_at, \(instance)
                FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
                WHERE s.timeout_at <= \(builder.bind(deadline)) AND s.activity_id IS NOT NULL AND i.status = 'waiting_for_message'
                  AND \(own) AND \(free) AND i.workflow_name = ANY(\(builder.bind(names)))
                ORDER BY s.timeout_at LIMIT \(builder.bind(limit)) FOR UPDATE OF s SKIP LOCKED
                """
        case .subscribersWithPendingMessages(let names, let limit):
            builder.sql = """
                SELECT \(waiterColumns)
                FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
                WHERE s.activity_id IS NOT NULL AND i.status = 'waiting_for_message' AND \(own) AND \(free)
                  AND i.workflow_name = ANY(\(builder.bind(names)))
                  AND EXISTS (SELECT 1 FROM channel_messages m
                              WHERE m.channel = s.channel
                                AND (CASE WHEN s.mode = 'competing'
                                          THEN NOT EXISTS (SELECT 1 FROM channel_message_claims c WHERE c.message_id = m.message_id)
                                          ELSE m.id > COALESCE(s.cursor_message_id, 0) END)
                                AND \(addressed(to: "s.instance_id")))
                ORDER BY s.id LIMIT \(builder.bind(limit)) FOR UPDATE OF s SKIP LOCKED
                """
        case .subscribers(let channel, let target, let after, let limit):
            let targetCondition = target.map { " AND s.instance_id = \(builder.bind($0))" } ?? ""
            builder.sql = """
                SELECT \(waiterColumns)
                FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
                WHERE s.channel = \(builder.bind(channel)) AND s.activity_id IS NOT NULL
                  AND i.status IN ('waiting_for_message', 'waiting_for_event') AND \(free)
                  AND s.id > \(builder.bind(after))\(targetCondition)
                ORDER BY s.id LIMIT \(builder.bind(limit)) FOR UPDATE OF s SKIP LOCKED
                """
        }
        return builder.query
    }

    public func nextWaitDeadline(workflowNames: [String]) async throws -> Date? {
        guard !workflowNames.isEmpty else { return nil }
        return try await read { connection in
            try await connection.rows(
                """
                SELECT MIN(deadline) AS deadline FROM (
                    SELECT MIN(t.expires_at) AS deadline
                    FROM workflow_timer_subscriptions t JOIN workflow_instances i ON i.instance_id = t.instance_id
                    WHERE i.status = 'waiting_for_timer' AND i.framework = \(StoredFramework.name) AND i.workflow_name = ANY(\(workflowNames))
                    UNION ALL
                    SELECT MIN(s.timeout_at)
                    FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
                    WHERE s.activity_id IS NOT NULL AND s.timeout_at IS NOT NULL AND i.status = 'waiting_for_message'
                      AND i.framework = \(StoredFramework.name) AND i.workflow_name = ANY(\(workflowNames))
                ) deadlines
                """, logger: self.logger
            ).first?.value("deadline", as: Date?.self)
        }
    }

    public func deleteChannelMessages(publishedBefore cutoff: Date) async throws -> Int {
        try await transaction { connection in
            try await connection.count("DELETE FROM channel_messages WHERE published_at < \(cutoff) RETURNING 1", logger: self.logger)
        }
    }

    public func acquireSystemLock(name: String, workerID: String, until: Date, now: Date) async throws -> Bool {
        try await transaction { connection in
            try await connection.query(
                "INSERT INTO system_locks (lock_name) VALUES (\(name)) ON CONFLICT (lock_name) DO NOTHING", logger: self.logger)
            return try await connection.count(
                """
                UPDATE system_locks SET locked_by = \(workerID), locked_at = \(now), lock_expires_at = \(until)
                WHERE lock_name = \(name)
                  AND (locked_by IS NULL OR locked_by = \(workerID) OR lock_expires_at IS NULL OR lock_expires_at <= \(now))
                RETURNING 1
                """, logger: self.logger) == 1
        }
    }

    public func releaseSystemLock(name: String, workerID: String) async throws {
        try await transaction { connection in
            _ = try await connection.query(
                """
                UPDATE system_locks SET locked_by = NULL, locked_at = NULL, lock_expires_at = NULL
                WHERE lock_name = \(name) AND locked_by = \(workerID)
                """, logger: self.logger)
        }
    }
}
