import Edda
import Foundation
import Logging
import PostgresNIO

/// Timers, channel subscriptions, receives, publishing and delivery, and system locks.
extension PostgresStore {
    /// A row of `channel_subscriptions`.
    struct Subscription {
        let id: Int
        let instanceID: String
        let channel: String
        let mode: String
        let activityID: String?
        let cursor: Int

        init(row: PostgresRandomAccessRow) throws {
            id = try row.value("subscription_id")
            instanceID = try row.value("instance_id")
            channel = try row.value("channel")
            mode = try row.value("mode")
            activityID = try row.value("activity_id")
            cursor = try row.value("cursor_message_id", as: Int?.self) ?? 0
        }
    }

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
            if let rejection = try await self.checkHolder(instanceID, workerID: workerID, on: connection) {
                return .rejected(status: rejection.status, lockedBy: rejection.lockedBy)
            }
            guard let mode else {
                try await connection.query(
                    "DELETE FROM channel_subscriptions WHERE instance_id = \(instanceID) AND channel = \(channel)", logger: self.logger)
                return .applied
            }
            if let existing = try await self.subscribe(instanceID, channel: channel, mode: mode, on: connection, now: now) {
                return .modeConflict(existingMode: existing)
            }
            return .applied
        }
    }

    /// `nil` if `workerID` holds the instance (row locked) and it is `running`.
    func checkHolder(_ instanceID: String, workerID: String, on connection: PostgresConnection) async throws
        -> (status: WorkflowStatus?, lockedBy: String?)?
    {
        let row = try await connection.rows(
            "SELECT status, locked_by FROM workflow_instances WHERE instance_id = \(instanceID) FOR UPDATE", logger: logger
        ).first
        let status = try row.map { WorkflowStatus(rawValue: try $0.value("status")) }
        let lockedBy: String? = try row?.value("locked_by")
        if status == .running, lockedBy == workerID { return nil }
        return (status, lockedBy)
    }

    func subscription(_ instanceID: String, channel: String, on connection: PostgresConnection) async throws -> Subscription? {
        try await connection.rows(
            """
            SELECT \(unescaped: Self.subscriptionColumns) FROM channel_subscriptions s
            WHERE s.instance_id = \(instanceID) AND s.channel = \(channel)
            """, logger: logger
        ).first.map(Subscription.init(row:))
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
    func pendingMessage(for subscription: Subscription, on connection: PostgresConnection) async throws -> StoredMessage? {
        var builder = QueryBuilder()
        let channel = builder.bind(subscription.channel)
        let condition: String
        if subscription.mode == "competing" {
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
        return try await connection.rows(builder.query, logger: logger).first.map(Self.message(from:))
    }

    static func message(from row: PostgresRandomAccessRow) throws -> StoredMessage {
        StoredMessage(
            rowID: Int64(try row.value("id", as: Int.self)), messageID: try row.value("message_id"), channel: try row.value("channel"),
            payload: MessagePayload(type: try row.value("data_type"), json: try row.value("data"), binary: try row.value("data_binary")),
            metadataJSON: try row.value("metadata"), publishedAt: try row.value("published_at"))
    }

    /// Records `message` as received under `activityID` and consumes it; `false` if the step
    /// already has a history row.
    func consume(
        _ message: StoredMessage, by subscription: Subscription, activityID: String, ownInstance: Bool,
        on connection: PostgresConnection, now: Date
    ) async throws -> Bool {
        let payload = MessageHistory.payload(message, ownInstance: ownInstance)
        let recorded = try await insertHistory(
            NewHistoryEvent(activityID: activityID, eventType: HistoryEventType.channelMessageReceived, payload: payload),
            instanceID: subscription.instanceID, on: connection, now: now, ifAbsent: true)
        guard recorded else { return false }
        if subscription.mode == "competing" {
            try await connection.query("DELETE FROM channel_messages WHERE message_id = \(message.messageID)", logger: logger)
        } else {
            try await connection.query(
                "UPDATE channel_subscriptions SET cursor_message_id = \(Int(message.rowID)) WHERE id = \(subscription.id)", logger: logger)
        }
        return true
    }

    func clearWait(_ subscriptionID: Int, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE channel_subscriptions SET activity_id = NULL, timeout_at = NULL WHERE id = \(subscriptionID)", logger: logger)
    }

    public func receive(_ request: ReceiveRequest, now: Date) async throws -> ReceiveOutcome {
        do {
            return try await transaction { connection in
                if let rejection = try await self.checkHolder(request.instanceID, workerID: request.workerID, on: connection) {
                    return .rejected(status: rejection.status, lockedBy: rejection.lockedBy)
                }
                var subscription = try await self.subscription(request.instanceID, channel: request.channel, on: connection)
                if subscription == nil {
                    guard request.subscribesIfNeeded else { return .notSubscribed }
                    if let existing = try await self.subscribe(request.instanceID, channel: request.channel, mode: .broadcast, on: connection, now: now) {
                        return .modeConflict(existingMode: existing)
                    }
                    subscription = try await self.subscription(request.instanceID, channel: request.channel, on: connection)
                }
                guard let subscription else { return .notSubscribed }
                for compensation in request.compensations {
                    try await self.insertCompensation(compensation, instanceID: request.instanceID, on: connection, now: now)
                }
                if let message = try await self.pendingMessage(for: subscription, on: connection) {
                    guard try await self.consume(
                        message, by: subscription, activityID: request.activityID, ownInstance: true, on: connection, now: now)
                    else { throw AlreadyRecorded() }
                    try await connection.query(
                        """
                        UPDATE workflow_instances SET current_activity_id = \(request.activityID), lock_expires_at = \(request.leaseUntil),
                            updated_at = \(now)
                        WHERE instance_id = \(request.instanceID)
                        """, logger: self.logger)
                    return .received(message)
                }
                try await connection.query(
                    "UPDATE channel_subscriptions SET activity_id = \(request.activityID), timeout_at = \(request.timeoutAt) WHERE id = \(subscription.id)",
                    logger: self.logger)
                try await connection.query(
                    """
                    UPDATE workflow_instances SET status = 'waiting_for_message', current_activity_id = \(request.activityID),
                        updated_at = \(now), locked_by = NULL, locked_at = NULL, lock_expires_at = NULL
                    WHERE instance_id = \(request.instanceID)
                    """, logger: self.logger)
                if request.timeoutAt != nil { try await self.notify(NotifyChannel.waits, "{}", on: connection) }
                return .suspended
            }
        } catch is AlreadyRecorded {
            return .alreadyRecorded
        }
    }

    /// Thrown inside `receive`'s transaction to roll it back.
    private struct AlreadyRecorded: Error {}

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
        let columns = message.payload.columns
        let inserted = try await connection.count(
            """
            INSERT INTO channel_messages (channel, message_id, data_type, data, data_binary, metadata, published_at)
            VALUES (\(message.channel), \(message.messageID), \(columns.type), \(columns.json), \(columns.binary),
                    \(message.metadataJSON), \(now))
            ON CONFLICT (message_id) DO NOTHING RETURNING 1
            """, logger: logger)
        guard inserted == 1 else {
            return DeliveryReport(messageID: message.messageID, deliveredTo: [], claimed: [], isDuplicate: true)
        }
        var delivered: [String] = []
        var claimed: [ClaimedInstance] = []
        var sweep = DeliverySweep(publishing: message.messageID)
        var after = 0
        while !sweep.isFinished {
            var builder = QueryBuilder()
            var sql = """
                SELECT \(Self.waiterColumns)
                FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
                WHERE s.channel = \(builder.bind(message.channel)) AND s.activity_id IS NOT NULL
                  AND i.status IN ('waiting_for_message', 'waiting_for_event')
                  AND (i.locked_by IS NULL OR i.lock_expires_at < \(builder.bind(now))) AND s.id > \(builder.bind(after))
                """
            if let target = message.targetInstanceID { sql += " AND s.instance_id = \(builder.bind(target))" }
            let pageSize = sweep.pageSize
            builder.sql = sql + " ORDER BY s.id LIMIT \(builder.bind(pageSize)) FOR UPDATE OF s SKIP LOCKED"
            let page = try await connection.rows(builder.query, logger: logger)
            for row in page where !sweep.isFinished {
                let subscription = try Subscription(row: row)
                after = subscription.id
                guard let activityID = subscription.activityID else { continue }
                guard let next = try await pendingMessage(for: subscription, on: connection) else {
                    sweep.record(.nothingPending, mode: subscription.mode)
                    continue
                }
                let own = try row.value("framework", as: String.self) == StoredFramework.name
                // Wake first: the wake-up re-reads the instance under its row lock, so if another
                // writer took the instance meanwhile (another framework's delivery takes its lock
                // before writing), nothing is consumed and the wait stays registered. Consuming
                // first left a consumed message beside an instance that waited for ever.
                let woken = try await wake(subscription.instanceID, row: row, claim: claim, on: connection, now: now)
                guard woken != .notWaiting else { continue }
                try await clearWait(subscription.id, on: connection)
                guard try await consume(next, by: subscription, activityID: activityID, ownInstance: own, on: connection, now: now) else {
                    sweep.record(.alreadyRecorded, mode: subscription.mode)
                    continue
                }
                sweep.record(.consumed(messageID: next.messageID), mode: subscription.mode)
                if next.messageID == message.messageID { delivered.append(subscription.instanceID) }
                if woken == .claimed, let instance = try await claimedInstance(subscription.instanceID, on: connection) {
                    claimed.append(instance)
                }
            }
            sweep.read(page: page.count, of: pageSize)
        }
        return DeliveryReport(messageID: message.messageID, deliveredTo: delivered, claimed: claimed)
    }

    /// Makes a waiting instance `running`: locked by the claiming worker if it runs the
    /// instance's workflow, else unlocked and announced to the other workers.
    func wake(
        _ instanceID: String, row: PostgresRandomAccessRow, claim: ClaimPolicy, on connection: PostgresConnection, now: Date
    ) async throws -> WakeOutcome {
        let workflowName: String = try row.value("workflow_name")
        let waiting = """
            status IN ('waiting_for_timer', 'waiting_for_message', 'waiting_for_event')
            """
        let waking = claim.wake(
            framework: try row.value("framework"), workflowName: workflowName, storedSeconds: try row.value("lock_timeout_seconds"),
            now: now)
        if case .claim(let leaseUntil) = waking {
            let woken = try await connection.count(
                """
                UPDATE workflow_instances SET status = 'running', locked_by = \(claim.workerID), locked_at = \(now),
                    lock_expires_at = \(leaseUntil), updated_at = \(now)
                WHERE instance_id = \(instanceID) AND \(unescaped: waiting) AND (locked_by IS NULL OR lock_expires_at < \(now))
                RETURNING 1
                """, logger: logger)
            return woken == 1 ? .claimed : .notWaiting
        }
        let woken = try await connection.count(
            """
            UPDATE workflow_instances SET status = 'running', locked_by = NULL, locked_at = NULL, lock_expires_at = NULL,
                updated_at = \(now)
            WHERE instance_id = \(instanceID) AND \(unescaped: waiting) AND (locked_by IS NULL OR lock_expires_at < \(now))
            RETURNING 1
            """, logger: logger)
        guard woken == 1 else { return .notWaiting }
        try await notifyResumable(instanceID, workflowName: workflowName, on: connection)
        return .unlocked
    }

    public func fireDueWaits(claim: ClaimPolicy, deadline: Date, now: Date, limit: Int) async throws -> [ClaimedInstance] {
        let names = claim.workflowNames
        guard !names.isEmpty else { return [] }
        return try await transaction { connection in
            var claimed: [ClaimedInstance] = []
            let timers = try await connection.rows(
                """
                SELECT t.id, t.instance_id, t.timer_id, t.expires_at, t.activity_id, i.framework, i.workflow_name, i.lock_timeout_seconds
                FROM workflow_timer_subscriptions t JOIN workflow_instances i ON i.instance_id = t.instance_id
                WHERE t.expires_at <= \(deadline) AND i.status = 'waiting_for_timer' AND i.framework = \(StoredFramework.name)
                  AND (i.locked_by IS NULL OR i.lock_expires_at < \(now)) AND i.workflow_name = ANY(\(names))
                ORDER BY t.expires_at LIMIT \(limit) FOR UPDATE OF t SKIP LOCKED
                """, logger: self.logger)
            for row in timers {
                let instanceID: String = try row.value("instance_id")
                let timerID: String = try row.value("timer_id")
                let activityID: String = try row.value("activity_id") ?? timerID
                let wake = try await self.wake(instanceID, row: row, claim: claim, on: connection, now: now)
                guard wake != .notWaiting else { continue }
                try await connection.query("DELETE FROM workflow_timer_subscriptions WHERE id = \(try row.value("id", as: Int.self))", logger: self.logger)
                try await self.insertHistory(
                    NewHistoryEvent(
                        activityID: activityID, eventType: HistoryEventType.timerExpired,
                        payload: .json(StepPayloads.timerExpired(timerID: timerID, expiresAt: try row.value("expires_at")))),
                    instanceID: instanceID, on: connection, now: now, ifAbsent: true)
                if wake == .claimed, let instance = try await self.claimedInstance(instanceID, on: connection) {
                    claimed.append(instance)
                }
            }

            let timeouts = try await connection.rows(
                """
                SELECT s.id, s.instance_id, s.channel, s.activity_id, s.timeout_at, i.framework, i.workflow_name, i.lock_timeout_seconds
                FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
                WHERE s.timeout_at <= \(deadline) AND s.activity_id IS NOT NULL AND i.status = 'waiting_for_message'
                  AND i.framework = \(StoredFramework.name) AND (i.locked_by IS NULL OR i.lock_expires_at < \(now))
                  AND i.workflow_name = ANY(\(names))
                ORDER BY s.timeout_at LIMIT \(limit) FOR UPDATE OF s SKIP LOCKED
                """, logger: self.logger)
            for row in timeouts {
                let instanceID: String = try row.value("instance_id")
                let channel: String = try row.value("channel")
                let timeoutAt: Date = try row.value("timeout_at")
                let wake = try await self.wake(instanceID, row: row, claim: claim, on: connection, now: now)
                guard wake != .notWaiting else { continue }
                try await self.clearWait(try row.value("id"), on: connection)
                let payload = StepPayloads.messageTimeout(channel: channel, timeoutAt: timeoutAt)
                try await self.insertHistory(
                    NewHistoryEvent(activityID: try row.value("activity_id"), eventType: HistoryEventType.messageTimeout, payload: .json(payload)),
                    instanceID: instanceID, on: connection, now: now, ifAbsent: true)
                if wake == .claimed, let instance = try await self.claimedInstance(instanceID, on: connection) {
                    claimed.append(instance)
                }
            }

            // Waiting subscribers with a pending message nobody delivered to them.
            let waiting = try await connection.rows(
                PostgresQuery(unsafeSQL: """
                    SELECT \(Self.waiterColumns)
                    FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
                    WHERE s.activity_id IS NOT NULL AND i.status = 'waiting_for_message' AND i.framework = $1
                      AND (i.locked_by IS NULL OR i.lock_expires_at < $2) AND i.workflow_name = ANY($3)
                      AND EXISTS (SELECT 1 FROM channel_messages m
                                  WHERE m.channel = s.channel
                                    AND (CASE WHEN s.mode = 'competing'
                                              THEN NOT EXISTS (SELECT 1 FROM channel_message_claims c WHERE c.message_id = m.message_id)
                                              ELSE m.id > COALESCE(s.cursor_message_id, 0) END)
                                    AND \(Self.addressed(to: "s.instance_id")))
                    ORDER BY s.id LIMIT $4 FOR UPDATE OF s SKIP LOCKED
                    """, binds: try Self.bindings(StoredFramework.name, now, names, limit)),
                logger: self.logger)
            for row in waiting {
                let subscription = try Subscription(row: row)
                guard let activityID = subscription.activityID,
                      let message = try await self.pendingMessage(for: subscription, on: connection)
                else { continue }
                let wake = try await self.wake(subscription.instanceID, row: row, claim: claim, on: connection, now: now)
                guard wake != .notWaiting else { continue }
                try await self.clearWait(subscription.id, on: connection)
                _ = try await self.consume(message, by: subscription, activityID: activityID, ownInstance: true, on: connection, now: now)
                if wake == .claimed, let instance = try await self.claimedInstance(subscription.instanceID, on: connection) {
                    claimed.append(instance)
                }
            }
            return claimed
        }
    }

    static func bindings(_ framework: String, _ now: Date, _ names: [String], _ limit: Int) throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(framework)
        bindings.append(now)
        bindings.append(names)
        bindings.append(limit)
        return bindings
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
