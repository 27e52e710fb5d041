import Edda
import Foundation

/// Timers, channel subscriptions, receives, publishing and delivery, and system locks.
extension MySQLStore {
    /// A row of `channel_subscriptions`.
    struct Subscription {
        let id: Int
        let instanceID: String
        let channel: String
        let mode: String
        let activityID: String?
        let cursor: Int

        init(row: MySQLRow) throws {
            id = try row.required("subscription_id", row.int)
            instanceID = try row.required("instance_id", row.string)
            channel = try row.required("channel", row.string)
            mode = try row.required("mode", row.string)
            activityID = try row.string("activity_id")
            cursor = try row.int("cursor_message_id") ?? 0
        }
    }

    static let subscriptionColumns = "s.id AS subscription_id, s.instance_id, s.channel, s.mode, s.activity_id, s.cursor_message_id"
    static let waiterColumns = subscriptionColumns + ", i.framework, i.workflow_name, i.lock_timeout_seconds"

    /// The string at `path` in a message's metadata, or `NULL`.
    private static func metadataString(_ path: String) -> String {
        "(CASE WHEN JSON_TYPE(JSON_EXTRACT(m.metadata, '\(path)')) = 'STRING' THEN JSON_UNQUOTE(JSON_EXTRACT(m.metadata, '\(path)')) END)"
    }

    /// Messages addressed to another instance are not for this subscriber (`subscriber` is SQL:
    /// a column or a literal).
    static func addressed(to subscriber: MySQLQuery) -> MySQLQuery {
        let target = "COALESCE(\(metadataString("$.target_instance_id")), \(metadataString("$.ce_extensions.eddainstanceid")))"
        return "(m.metadata IS NULL OR \(unescaped: target) IS NULL OR \(unescaped: target) = \(subscriber))"
    }

    public func updateSubscription(
        instanceID: String, workerID: String, channel: String, mode: SubscriptionMode?, now: Date
    ) async throws -> SubscriptionOutcome {
        try await transaction { connection in
            if let rejection = try Self.checkHolder(instanceID, workerID: workerID, on: connection) {
                return .rejected(status: rejection.status, lockedBy: rejection.lockedBy)
            }
            guard let mode else {
                try connection.execute("DELETE FROM channel_subscriptions WHERE instance_id = \(instanceID) AND channel = \(channel)")
                return .applied
            }
            if let existing = try Self.subscribe(instanceID, channel: channel, mode: mode, on: connection, now: now) {
                return .modeConflict(existingMode: existing)
            }
            return .applied
        }
    }

    /// `nil` if `workerID` holds the instance (row locked) and it is `running`.
    static func checkHolder(_ instanceID: String, workerID: String, on connection: MySQLConnection) throws
        -> (status: WorkflowStatus?, lockedBy: String?)?
    {
        let row = try connection.query("SELECT status, locked_by FROM workflow_instances WHERE instance_id = \(instanceID) FOR UPDATE").first
        let status = try row.map { WorkflowStatus(rawValue: try $0.required("status", $0.string)) }
        let lockedBy = try row?.string("locked_by")
        if status == .running, lockedBy == workerID { return nil }
        return (status, lockedBy)
    }

    static func subscription(_ instanceID: String, channel: String, on connection: MySQLConnection) throws -> Subscription? {
        try connection.query(
            """
            SELECT \(unescaped: subscriptionColumns) FROM channel_subscriptions s
            WHERE s.instance_id = \(instanceID) AND s.channel = \(channel)
            """
        ).first.map(Subscription.init(row:))
    }

    /// Subscribes unless subscribed already; returns the conflicting existing mode, if any.
    static func subscribe(_ instanceID: String, channel: String, mode: SubscriptionMode, on connection: MySQLConnection, now: Date) throws -> String? {
        let stored = mode == .competing ? "competing" : "broadcast"
        if let existing = try connection.query(
            "SELECT mode FROM channel_subscriptions WHERE channel = \(channel) AND mode <> \(stored) LIMIT 1").first {
            return try existing.string("mode")
        }
        var cursor: Int?
        if stored == "broadcast" {
            cursor = try connection.query("SELECT COALESCE(MAX(id), 0) AS newest FROM channel_messages WHERE channel = \(channel)")
                .first?.int("newest") ?? 0
        }
        try connection.insertUnlessDuplicate(
            """
            INSERT INTO channel_subscriptions (instance_id, channel, mode, cursor_message_id, subscribed_at)
            VALUES (\(instanceID), \(channel), \(stored), \(cursor), \(now))
            """)
        return nil
    }

    /// The oldest message the subscription has not received, locked against other consumers.
    static func pendingMessage(for subscription: Subscription, on connection: MySQLConnection) throws -> StoredMessage? {
        let condition: MySQLQuery = subscription.mode == "competing"
            ? "NOT EXISTS (SELECT 1 FROM channel_message_claims c WHERE c.message_id = m.message_id)"
            : "m.id > \(subscription.cursor)"
        return try connection.query(
            """
            SELECT m.id, m.message_id, m.channel, m.data_type, m.data, m.data_binary, m.metadata, m.published_at
            FROM channel_messages m
            WHERE m.channel = \(subscription.channel) AND \(condition) AND \(addressed(to: "\(subscription.instanceID)"))
            ORDER BY m.id LIMIT 1 FOR UPDATE SKIP LOCKED
            """
        ).first.map(message(from:))
    }

    static func message(from row: MySQLRow) throws -> StoredMessage {
        StoredMessage(
            rowID: Int64(try row.required("id", row.int)), messageID: try row.required("message_id", row.string),
            channel: try row.required("channel", row.string),
            payload: MessagePayload(type: try row.required("data_type", row.string), json: try row.string("data"), binary: try row.bytes("data_binary")),
            metadataJSON: try row.string("metadata"), publishedAt: try row.required("published_at", row.date))
    }

    /// Records `message` as received under `activityID` and consumes it; `false` if the step
    /// already has a history row.
    static func consume(
        _ message: StoredMessage, by subscription: Subscription, activityID: String, ownInstance: Bool,
        on connection: MySQLConnection, now: Date
    ) throws -> Bool {
        let payload = MessageHistory.payload(message, ownInstance: ownInstance)
        let recorded = try insertHistory(
            NewHistoryEvent(activityID: activityID, eventType: HistoryEventType.channelMessageReceived, payload: payload),
            instanceID: subscription.instanceID, on: connection, now: now, ifAbsent: true)
        guard recorded else { return false }
        if subscription.mode == "competing" {
            try connection.execute("DELETE FROM channel_messages WHERE message_id = \(message.messageID)")
        } else {
            try connection.execute("UPDATE channel_subscriptions SET cursor_message_id = \(Int(message.rowID)) WHERE id = \(subscription.id)")
        }
        return true
    }

    static func clearWait(_ subscriptionID: Int, on connection: MySQLConnection) throws {
        try connection.execute("UPDATE channel_subscriptions SET activity_id = NULL, timeout_at = NULL WHERE id = \(subscriptionID)")
    }

    public func receive(_ request: ReceiveRequest, now: Date) async throws -> ReceiveOutcome {
        do {
            return try await transaction { connection in
                if let rejection = try Self.checkHolder(request.instanceID, workerID: request.workerID, on: connection) {
                    return .rejected(status: rejection.status, lockedBy: rejection.lockedBy)
                }
                var subscription = try Self.subscription(request.instanceID, channel: request.channel, on: connection)
                if subscription == nil {
                    guard request.subscribesIfNeeded else { return .notSubscribed }
                    if let existing = try Self.subscribe(request.instanceID, channel: request.channel, mode: .broadcast, on: connection, now: now) {
                        return .modeConflict(existingMode: existing)
                    }
                    subscription = try Self.subscription(request.instanceID, channel: request.channel, on: connection)
                }
                guard let subscription else { return .notSubscribed }
                for compensation in request.compensations {
                    try Self.insertCompensation(compensation, instanceID: request.instanceID, on: connection, now: now)
                }
                if let message = try Self.pendingMessage(for: subscription, on: connection) {
                    guard try Self.consume(
                        message, by: subscription, activityID: request.activityID, ownInstance: true, on: connection, now: now)
                    else { throw AlreadyRecorded() }
                    try connection.execute(
                        """
                        UPDATE workflow_instances SET current_activity_id = \(request.activityID),
                            lock_expires_at = \(request.leaseUntil.roundedUpToSecond), updated_at = \(now)
                        WHERE instance_id = \(request.instanceID)
                        """)
                    return .received(message)
                }
                try connection.execute(
                    """
                    UPDATE channel_subscriptions SET activity_id = \(request.activityID), timeout_at = \(request.timeoutAt?.roundedUpToSecond)
                    WHERE id = \(subscription.id)
                    """)
                try connection.execute(
                    """
                    UPDATE workflow_instances SET status = 'waiting_for_message', current_activity_id = \(request.activityID),
                        updated_at = \(now), locked_by = NULL, locked_at = NULL, lock_expires_at = NULL
                    WHERE instance_id = \(request.instanceID)
                    """)
                return .suspended
            }
        } catch is AlreadyRecorded {
            return .alreadyRecorded
        }
    }

    /// Thrown inside `receive`'s transaction to roll it back.
    private struct AlreadyRecorded: Error {}

    public func publish(_ messages: [OutgoingMessage], claim: ClaimPolicy, now: Date) async throws -> [DeliveryReport] {
        let reports = try await transaction { connection in
            try messages.map { try self.publish($0, claim: claim, on: connection, now: now) }
        }
        poller.changed()
        return reports
    }

    /// Stores a message and delivers each waiting subscriber its oldest pending message. The
    /// waiting subscribers are read without locks (see `fireDueWaits`); `wake`'s compare-and-set
    /// decides which publisher or sweep delivers to each.
    func publish(_ message: OutgoingMessage, claim: ClaimPolicy, on connection: MySQLConnection, now: Date) throws -> DeliveryReport {
        let columns = message.payload.columns
        let inserted = try connection.insertUnlessDuplicate(
            """
            INSERT INTO channel_messages (channel, message_id, data_type, data, data_binary, metadata, published_at)
            VALUES (\(message.channel), \(message.messageID), \(columns.type), \(columns.json), \(columns.binary),
                    \(message.metadataJSON), \(now))
            """)
        guard inserted else {
            return DeliveryReport(messageID: message.messageID, deliveredTo: [], claimed: [], isDuplicate: true)
        }
        var delivered: [String] = []
        var claimed: [ClaimedInstance] = []
        var sweep = DeliverySweep(publishing: message.messageID)
        var after = 0
        while !sweep.isFinished {
            let target: MySQLQuery = message.targetInstanceID.map { " AND s.instance_id = \($0)" } ?? ""
            let pageSize = sweep.pageSize
            let page = try connection.query(
                """
                SELECT \(unescaped: Self.waiterColumns)
                FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
                WHERE s.channel = \(message.channel) AND s.activity_id IS NOT NULL
                  AND i.status IN ('waiting_for_message', 'waiting_for_event')
                  AND (i.locked_by IS NULL OR i.lock_expires_at < \(now)) AND s.id > \(after)\(target)
                ORDER BY s.id LIMIT \(pageSize)
                """)
            for row in page where !sweep.isFinished {
                let subscription = try Subscription(row: row)
                after = subscription.id
                guard let activityID = subscription.activityID else { continue }
                guard let next = try Self.pendingMessage(for: subscription, on: connection) else {
                    sweep.record(.nothingPending, mode: subscription.mode)
                    continue
                }
                let own = try row.string("framework") == StoredFramework.name
                // Wake first (see the PostgreSQL driver): consuming only once the instance is
                // known to still wait.
                let woken = try Self.wake(subscription.instanceID, row: row, claim: claim, on: connection, now: now)
                guard woken != .notWaiting else { continue }
                try Self.clearWait(subscription.id, on: connection)
                guard try Self.consume(next, by: subscription, activityID: activityID, ownInstance: own, on: connection, now: now) else {
                    sweep.record(.alreadyRecorded, mode: subscription.mode)
                    continue
                }
                sweep.record(.consumed(messageID: next.messageID), mode: subscription.mode)
                if next.messageID == message.messageID { delivered.append(subscription.instanceID) }
                if woken == .claimed, let instance = try Self.claimedInstance(subscription.instanceID, on: connection) {
                    claimed.append(instance)
                }
            }
            sweep.read(page: page.count, of: pageSize)
        }
        return DeliveryReport(messageID: message.messageID, deliveredTo: delivered, claimed: claimed)
    }

    /// Makes a waiting instance `running`: locked by the claiming worker if it runs the
    /// instance's workflow, else unlocked for the other workers.
    static func wake(_ instanceID: String, row: MySQLRow, claim: ClaimPolicy, on connection: MySQLConnection, now: Date) throws -> WakeOutcome {
        let waking = claim.wake(
            framework: try row.required("framework", row.string), workflowName: try row.required("workflow_name", row.string),
            storedSeconds: try row.int("lock_timeout_seconds"), now: now)
        let lock: MySQLQuery
        if case .claim(let leaseUntil) = waking {
            lock = "locked_by = \(claim.workerID), locked_at = \(now), lock_expires_at = \(leaseUntil.roundedUpToSecond)"
        } else {
            lock = "locked_by = NULL, locked_at = NULL, lock_expires_at = NULL"
        }
        // An instance another transaction holds (another publisher's or sweep's wake, a receive
        // registering its wait) is passed over, not waited for: whoever holds it delivers, or the
        // waiting-subscriber sweep does later. Waiting here made publishers queue behind long
        // sweeps until the lock wait timed out.
        guard !(try connection.query(
            "SELECT instance_id FROM workflow_instances WHERE instance_id = \(instanceID) FOR UPDATE SKIP LOCKED").isEmpty)
        else { return .notWaiting }
        let woken = try connection.execute(
            """
            UPDATE workflow_instances SET status = 'running', \(lock), updated_at = \(now)
            WHERE instance_id = \(instanceID) AND status IN ('waiting_for_timer', 'waiting_for_message', 'waiting_for_event')
              AND (locked_by IS NULL OR lock_expires_at < \(now))
            """)
        guard woken == 1 else { return .notWaiting }
        if case .claim = waking { return .claimed }
        return .unlocked
    }

    /// The candidates (due timers, due receive timeouts, waiting subscribers with a pending
    /// message) are read without locks; each is then taken by the compare-and-set of `wake`,
    /// which one worker alone wins (and which passes over an instance another transaction holds). MySQL's `FOR UPDATE` on a join locks every row it reads on
    /// the way, in both tables: locking the scan would make a concurrent publisher's
    /// delivery skip the very subscriber it was meant for.
    public func fireDueWaits(claim: ClaimPolicy, deadline: Date, now: Date, limit: Int) async throws -> [ClaimedInstance] {
        let names = claim.workflowNames
        guard !names.isEmpty else { return [] }
        return try await transaction { connection in
            var claimed: [ClaimedInstance] = []
            let timers = try connection.query(
                """
                SELECT t.id, t.instance_id, t.timer_id, t.expires_at, t.activity_id, i.framework, i.workflow_name, i.lock_timeout_seconds
                FROM workflow_timer_subscriptions t JOIN workflow_instances i ON i.instance_id = t.instance_id
                WHERE t.expires_at <= \(deadline) AND i.status = 'waiting_for_timer' AND i.framework = \(StoredFramework.name)
                  AND (i.locked_by IS NULL OR i.lock_expires_at < \(now)) AND i.workflow_name IN \(list: names)
                ORDER BY t.expires_at LIMIT \(limit)
                """)
            for row in timers {
                let instanceID = try row.required("instance_id", row.string)
                let timerID = try row.required("timer_id", row.string)
                let activityID = try row.string("activity_id") ?? timerID
                let wake = try Self.wake(instanceID, row: row, claim: claim, on: connection, now: now)
                guard wake != .notWaiting else { continue }
                try connection.execute("DELETE FROM workflow_timer_subscriptions WHERE id = \(try row.required("id", row.int))")
                try Self.insertHistory(
                    NewHistoryEvent(
                        activityID: activityID, eventType: HistoryEventType.timerExpired,
                        payload: .json(StepPayloads.timerExpired(timerID: timerID, expiresAt: try row.required("expires_at", row.date)))),
                    instanceID: instanceID, on: connection, now: now, ifAbsent: true)
                if wake == .claimed, let instance = try Self.claimedInstance(instanceID, on: connection) {
                    claimed.append(instance)
                }
            }

            let timeouts = try connection.query(
                """
                SELECT s.id, s.instance_id, s.channel, s.activity_id, s.timeout_at, i.framework, i.workflow_name, i.lock_timeout_seconds
                FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
                WHERE s.timeout_at <= \(deadline) AND s.activity_id IS NOT NULL AND i.status = 'waiting_for_message'
                  AND i.framework = \(StoredFramework.name) AND (i.locked_by IS NULL OR i.lock_expires_at < \(now))
                  AND i.workflow_name IN \(list: names)
                ORDER BY s.timeout_at LIMIT \(limit)
                """)
            for row in timeouts {
                let instanceID = try row.required("instance_id", row.string)
                let wake = try Self.wake(instanceID, row: row, claim: claim, on: connection, now: now)
                guard wake != .notWaiting else { continue }
                try Self.clearWait(try row.required("id", row.int), on: connection)
                let payload = StepPayloads.messageTimeout(
                    channel: try row.required("channel", row.string), timeoutAt: try row.required("timeout_at", row.date))
                try Self.insertHistory(
                    NewHistoryEvent(
                        activityID: try row.required("activity_id", row.string), eventType: HistoryEventType.messageTimeout, payload: .json(payload)),
                    instanceID: instanceID, on: connection, now: now, ifAbsent: true)
                if wake == .claimed, let instance = try Self.claimedInstance(instanceID, on: connection) {
                    claimed.append(instance)
                }
            }

            // Waiting subscribers with a pending message nobody delivered to them.
            let waiting = try connection.query(
                """
                SELECT \(unescaped: Self.waiterColumns)
                FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
                WHERE s.activity_id IS NOT NULL AND i.status = 'waiting_for_message' AND i.framework = \(StoredFramework.name)
                  AND (i.locked_by IS NULL OR i.lock_expires_at < \(now)) AND i.workflow_name IN \(list: names)
                  AND EXISTS (SELECT 1 FROM channel_messages m
                              WHERE m.channel = s.channel
                                AND (CASE WHEN s.mode = 'competing'
                                          THEN NOT EXISTS (SELECT 1 FROM channel_message_claims c WHERE c.message_id = m.message_id)
                                          ELSE m.id > COALESCE(s.cursor_message_id, 0) END)
                                AND \(Self.addressed(to: "s.instance_id")))
                ORDER BY s.id LIMIT \(limit)
                """)
            for row in waiting {
                let subscription = try Subscription(row: row)
                guard let activityID = subscription.activityID,
                      let message = try Self.pendingMessage(for: subscription, on: connection)
                else { continue }
                let wake = try Self.wake(subscription.instanceID, row: row, claim: claim, on: connection, now: now)
                guard wake != .notWaiting else { continue }
                try Self.clearWait(subscription.id, on: connection)
                _ = try Self.consume(message, by: subscription, activityID: activityID, ownInstance: true, on: connection, now: now)
                if wake == .claimed, let instance = try Self.claimedInstance(subscription.instanceID, on: connection) {
                    claimed.append(instance)
                }
            }
            return claimed
        }
    }

    public func nextWaitDeadline(workflowNames: [String]) async throws -> Date? {
        guard !workflowNames.isEmpty else { return nil }
        return try await read { connection in
            try connection.query(
                """
                SELECT MIN(deadline) AS deadline FROM (
                    SELECT MIN(t.expires_at) AS deadline
                    FROM workflow_timer_subscriptions t JOIN workflow_instances i ON i.instance_id = t.instance_id
                    WHERE i.status = 'waiting_for_timer' AND i.framework = \(StoredFramework.name) AND i.workflow_name IN \(list: workflowNames)
                    UNION ALL
                    SELECT MIN(s.timeout_at)
                    FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
                    WHERE s.activity_id IS NOT NULL AND s.timeout_at IS NOT NULL AND i.status = 'waiting_for_message'
                      AND i.framework = \(StoredFramework.name) AND i.workflow_name IN \(list: workflowNames)
                ) deadlines
                """
            ).first?.date("deadline")
        }
    }

    public func deleteChannelMessages(publishedBefore cutoff: Date) async throws -> Int {
        try await read { connection in
            try connection.execute("DELETE FROM channel_messages WHERE published_at < \(cutoff)")
        }
    }

    public func acquireSystemLock(name: String, workerID: String, until: Date, now: Date) async throws -> Bool {
        try await transaction { connection in
            try connection.insertUnlessDuplicate("INSERT INTO system_locks (lock_name) VALUES (\(name))")
            return try connection.execute(
                """
                UPDATE system_locks SET locked_by = \(workerID), locked_at = \(now), lock_expires_at = \(until.roundedUpToSecond)
                WHERE lock_name = \(name)
                  AND (locked_by IS NULL OR locked_by = \(workerID) OR lock_expires_at IS NULL OR lock_expires_at <= \(now))
                """) == 1
        }
    }

    public func releaseSystemLock(name: String, workerID: String) async throws {
        try await read { connection in
            try connection.execute(
                """
                UPDATE system_locks SET locked_by = NULL, locked_at = NULL, lock_expires_at = NULL
                WHERE lock_name = \(name) AND locked_by = \(workerID)
                """)
        }
    }
}
