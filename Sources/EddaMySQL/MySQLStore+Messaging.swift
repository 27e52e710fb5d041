import Edda
import Foundation

/// Timers, channel subscriptions, receives, publishing and delivery, and system locks.
extension MySQLStore {
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
            var sequence = ReceiveSequence(updating: channel, of: instanceID, to: mode, workerID: workerID)
            try sequence.run { try Self.perform($0, on: connection, now: now) }
            return sequence.subscriptionOutcome
        }
    }

    public func receive(_ request: ReceiveRequest, now: Date) async throws -> ReceiveOutcome {
        do {
            return try await transaction { connection in
                var sequence = ReceiveSequence(request)
                try sequence.run { try Self.perform($0, on: connection, now: now) }
                if sequence.rollsBack { throw RolledBack(sequence.outcome) }
                return sequence.outcome
            }
        } catch let rolledBack as RolledBack {
            return rolledBack.outcome
        }
    }

    /// Carries out one step of a receive or subscription change (see ``ReceiveSequence``).
    static func perform(_ effect: ReceiveEffect, on connection: MySQLConnection, now: Date) throws -> ReceiveAnswer {
        switch effect {
        case .checkHolder(let instanceID, let workerID):
            let row = try connection.query("SELECT status, locked_by FROM workflow_instances WHERE instance_id = \(instanceID) FOR UPDATE").first
            let status = try row.map { WorkflowStatus(rawValue: try $0.required("status", $0.string)) }
            let lockedBy = try row?.string("locked_by")
            return .holder(status == .running && lockedBy == workerID ? nil : HolderMismatch(status: status, lockedBy: lockedBy))
        case .findSubscription(let instanceID, let channel):
            return .subscription(try subscription(instanceID, channel: channel, on: connection))
        case .subscribe(let instanceID, let channel, let mode):
            return .subscribed(conflictingMode: try subscribe(instanceID, channel: channel, mode: mode, on: connection, now: now))
        case .unsubscribe(let instanceID, let channel):
            try connection.execute("DELETE FROM channel_subscriptions WHERE instance_id = \(instanceID) AND channel = \(channel)")
        case .insertCompensations(let instanceID, let compensations):
            for compensation in compensations {
                try insertCompensation(compensation, instanceID: instanceID, on: connection, now: now)
            }
        case .findPendingMessage(let subscription):
            return .pendingMessage(try pendingMessage(for: subscription, on: connection))
        case .record(let instanceID, let event, let consumption):
            return .recorded(try record(event, instanceID: instanceID, consuming: consumption, on: connection, now: now))
        case .keepRunning(let instanceID, let activityID, let leaseUntil):
            try connection.execute(
                """
                UPDATE workflow_instances SET current_activity_id = \(activityID),
                    lock_expires_at = \(leaseUntil.roundedUpToSecond), updated_at = \(now)
                WHERE instance_id = \(instanceID)
                """)
        case .suspend(let instanceID, let subscriptionID, let activityID, let timeoutAt):
            try connection.execute(
                """
                UPDATE channel_subscriptions SET activity_id = \(activityID), timeout_at = \(timeoutAt?.roundedUpToSecond)
                WHERE id = \(subscriptionID)
                """)
            try connection.execute(
                """
                UPDATE workflow_instances SET status = 'waiting_for_message', current_activity_id = \(activityID),
                    updated_at = \(now), locked_by = NULL, locked_at = NULL, lock_expires_at = NULL
                WHERE instance_id = \(instanceID)
                """)
        }
        return .done
    }

    /// Inserts `event` unless its step has a history row; only if inserted, consumes the
    /// message. Returns whether it inserted.
    static func record(_ event: NewHistoryEvent, instanceID: String, consuming consumption: Consumption?, on connection: MySQLConnection, now: Date) throws -> Bool {
        guard try insertHistory(event, instanceID: instanceID, on: connection, now: now, ifAbsent: true) else { return false }
        switch consumption {
        case .deleteMessage(let messageID)?:
            try connection.execute("DELETE FROM channel_messages WHERE message_id = \(messageID)")
        case .advanceCursor(let subscriptionID, let rowID)?:
            try connection.execute("UPDATE channel_subscriptions SET cursor_message_id = \(rowID) WHERE id = \(subscriptionID)")
        case nil:
            break
        }
        return true
    }

    static func subscription(_ instanceID: String, channel: String, on connection: MySQLConnection) throws -> ChannelSubscription? {
        try connection.query(
            """
            SELECT \(unescaped: subscriptionColumns) FROM channel_subscriptions s
            WHERE s.instance_id = \(instanceID) AND s.channel = \(channel)
            """
        ).first.map { try ChannelSubscription(row: MySQLStoredRow($0)) }
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
    static func pendingMessage(for subscription: ChannelSubscription, on connection: MySQLConnection) throws -> StoredMessage? {
        let condition: MySQLQuery = subscription.isCompeting
            ? "NOT EXISTS (SELECT 1 FROM channel_message_claims c WHERE c.message_id = m.message_id)"
            : "m.id > \(subscription.cursor)"
        return try connection.query(
            """
            SELECT m.id, m.message_id, m.channel, m.data_type, m.data, m.data_binary, m.metadata, m.published_at
            FROM channel_messages m
            WHERE m.channel = \(subscription.channel) AND \(condition) AND \(addressed(to: "\(subscription.instanceID)"))
            ORDER BY m.id LIMIT 1 FOR UPDATE SKIP LOCKED
            """
        ).first.map { try StoredMessage(row: MySQLStoredRow($0)) }
    }



    public func publish(_ messages: [OutgoingMessage], claim: ClaimPolicy, now: Date) async throws -> [DeliveryReport] {
        let reports = try await transaction { connection in
            try messages.map { try self.publish($0, claim: claim, on: connection, now: now) }
        }
        poller.changed()
        return reports
    }

    /// Stores a message and delivers each waiting subscriber its oldest pending message.
    func publish(_ message: OutgoingMessage, claim: ClaimPolicy, on connection: MySQLConnection, now: Date) throws -> DeliveryReport {
        var sweep = WakeUpSweep.delivery(of: message, claim: claim, now: now)
        try sweep.run { try Self.perform($0, on: connection, now: now) }
        return sweep.report
    }

    public func fireDueWaits(claim: ClaimPolicy, deadline: Date, now: Date, limit: Int) async throws -> [ClaimedInstance] {
        guard !claim.workflowNames.isEmpty else { return [] }
        return try await transaction { connection in
            var sweep = WakeUpSweep.dueWaits(claim: claim, deadline: deadline, now: now, limit: limit)
            try sweep.run { try Self.perform($0, on: connection, now: now) }
            return sweep.claimed
        }
    }

    /// Carries out one step of a wake-up sweep (see ``WakeUpSweep``).
    static func perform(_ effect: WakeUpEffect, on connection: MySQLConnection, now: Date) throws -> WakeUpAnswer {
        switch effect {
        case .storeMessage(let message):
            let columns = message.payload.columns
            return .stored(isNew: try connection.insertUnlessDuplicate(
                """
                INSERT INTO channel_messages (channel, message_id, data_type, data, data_binary, metadata, published_at)
                VALUES (\(message.channel), \(message.messageID), \(columns.type), \(columns.json), \(columns.binary),
                        \(message.metadataJSON), \(now))
                """))
        case .findWaiters(let query):
            return .waiters(try connection.query(waiterQuery(query, now: now)).map { try Waiter(row: MySQLStoredRow($0)) })
        case .findPendingMessage(let subscription):
            return .pendingMessage(try pendingMessage(for: subscription, on: connection))
        case .resume(let resumption):
            return .resumed(try resume(resumption, on: connection, now: now))
        case .loadClaimed(let instanceID):
            return .loaded(try claimedInstance(instanceID, on: connection))
        }
    }

    /// Persists a wake-up (see ``Resumption``). An instance another transaction holds (another
    /// publisher's or sweep's wake-up, a receive registering its wait) is passed over, not
    /// waited for: whoever holds it delivers, or the waiting-subscriber sweep does later.
    /// Waiting made publishers queue behind long sweeps until the lock wait timed out.
    static func resume(_ resumption: Resumption, on connection: MySQLConnection, now: Date) throws -> ResumptionOutcome {
        let id = resumption.instanceID
        guard !(try connection.query("SELECT instance_id FROM workflow_instances WHERE instance_id = \(id) FOR UPDATE SKIP LOCKED").isEmpty)
        else { return .notWaiting }
        let lock: MySQLQuery
        switch resumption.waking {
        case .claim(let workerID, let leaseUntil):
            lock = "locked_by = \(workerID), locked_at = \(now), lock_expires_at = \(leaseUntil.roundedUpToSecond)"
        case .release:
            lock = "locked_by = NULL, locked_at = NULL, lock_expires_at = NULL"
        }
        guard try connection.execute(
            """
            UPDATE workflow_instances SET status = 'running', \(lock), updated_at = \(now)
            WHERE instance_id = \(id) AND status IN ('waiting_for_timer', 'waiting_for_message', 'waiting_for_event')
              AND (locked_by IS NULL OR lock_expires_at < \(now))
            """) == 1
        else { return .notWaiting }
        switch resumption.end {
        case .deleteTimer(let rowID):
            try connection.execute("DELETE FROM workflow_timer_subscriptions WHERE id = \(rowID)")
        case .clearSubscriptionWait(let subscriptionID):
            try connection.execute("UPDATE channel_subscriptions SET activity_id = NULL, timeout_at = NULL WHERE id = \(subscriptionID)")
        }
        let recorded = try record(resumption.record, instanceID: id, consuming: resumption.consume, on: connection, now: now)
        return ResumptionOutcome(woken: resumption.waking.outcome, recorded: recorded)
    }

    /// The statement reading the waiters `query` asks for. The candidates are read without
    /// locks; each is then taken by the compare-and-set of ``resume(_:on:now:)``, which one
    /// worker alone wins. MySQL's `FOR UPDATE` on a join locks every row it reads on the way,
    /// in both tables: locking the scan would make a concurrent publisher's delivery skip the
    /// very subscriber it was meant for.
    static func waiterQuery(_ query: WaiterQuery, now: Date) -> MySQLQuery {
        let free: MySQLQuery = "(i.locked_by IS NULL OR i.lock_expires_at < \(now))"
        let own: MySQLQuery = "i.framework = \(StoredFramework.name)"
        let instance = "i.instance_id, i.framework, i.workflow_name, i.lock_timeout_seconds"
        switch query {
        case .dueTimers(let deadline, let names, let limit):
            return """
                SELECT t.id AS timer_row_id, t.timer_id, t.expires_at, t.activity_id, \(unescaped: instance)
                FROM workflow_timer_subscriptions t JOIN workflow_instances i ON i.instance_id = t.instance_id
                WHERE t.expires_at <= \(deadline) AND i.status = 'waiting_for_timer' AND \(own) AND \(free)
                  AND i.workflow_name IN \(list: names)
                ORDER BY t.expires_at LIMIT \(limit)
                """
        case .dueReceiveTimeouts(let deadline, let names, let limit):
            return """
                SELECT s.id AS timeout_subscription_id, s.channel, s.activity_id, s.timeout_at, \(unescaped: instance)
                FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
                WHERE s.timeout_at <= \(deadline) AND s.activity_id IS NOT NULL AND i.status = 'waiting_for_message'
                  AND \(own) AND \(free) AND i.workflow_name IN \(list: names)
                ORDER BY s.timeout_at LIMIT \(limit)
                """
        case .subscribersWithPendingMessages(let names, let limit):
            return """
                SELECT \(unescaped: waiterColumns)
                FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
                WHERE s.activity_id IS NOT NULL AND i.status = 'waiting_for_message' AND \(own) AND \(free)
                  AND i.workflow_name IN \(list: names)
                  AND EXISTS (SELECT 1 FROM channel_messages m
                              WHERE m.channel = s.channel
                                AND (CASE WHEN s.mode = 'competing'
                                          THEN NOT EXISTS (SELECT 1 FROM channel_message_claims c WHERE c.message_id = m.message_id)
                                          ELSE m.id > COALESCE(s.cursor_message_id, 0) END)
                                AND \(addressed(to: "s.instance_id")))
                ORDER BY s.id LIMIT \(limit)
                """
        case .subscribers(let channel, let target, let after, let limit):
            let targetCondition: MySQLQuery = target.map { " AND s.instance_id = \($0)" } ?? ""
            return """
                SELECT \(unescaped: waiterColumns)
                FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
                WHERE s.channel = \(channel) AND s.activity_id IS NOT NULL
                  AND i.status IN ('waiting_for_message', 'waiting_for_event') AND \(free) AND s.id > \(after)\(targetCondition)
                ORDER BY s.id LIMIT \(limit)
                """
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
