import Edda
import Foundation
import GRDB

/// Timers, channel subscriptions, receives, publishing and delivery, and system locks.
extension SQLiteStore {
    public func updateSubscription(
        instanceID: String, workerID: String, channel: String, mode: SubscriptionMode?, now: Date
    ) async throws -> SubscriptionOutcome {
        try await writer.write { database in
            var sequence = ReceiveSequence(updating: channel, of: instanceID, to: mode, workerID: workerID)
            try sequence.run { try Self.perform($0, in: database, now: now) }
            return sequence.subscriptionOutcome
        }
    }

    public func receive(_ request: ReceiveRequest, now: Date) async throws -> ReceiveOutcome {
        do {
            return try await writer.write { database in
                var sequence = ReceiveSequence(request)
                try sequence.run { try Self.perform($0, in: database, now: now) }
                if sequence.rollsBack { throw RolledBack(sequence.outcome) }
                return sequence.outcome
            }
        } catch let rolledBack as RolledBack {
            return rolledBack.outcome
        }
    }

    public func publish(_ messages: [OutgoingMessage], claim: ClaimPolicy, now: Date) async throws -> [DeliveryReport] {
        try await writer.write { database in
            try messages.map { try Self.publish($0, claim: claim, in: database, now: now) }
        }
    }

    public func fireDueWaits(claim: ClaimPolicy, deadline: Date, now: Date, limit: Int) async throws -> [ClaimedInstance] {
        guard !claim.workflowNames.isEmpty else { return [] }
        return try await writer.write { database in
            var sweep = WakeUpSweep.dueWaits(claim: claim, deadline: deadline, now: now, limit: limit)
            try sweep.run { try Self.perform($0, in: database, now: now) }
            return sweep.claimed
        }
    }

    public func nextWaitDeadline(workflowNames: [String]) async throws -> Date? {
        guard !workflowNames.isEmpty else { return nil }
        return try await pool.read { database in
            var arguments: StatementArguments = [StoredFramework.name]
            arguments += StatementArguments(workflowNames)
            arguments += [StoredFramework.name]
            arguments += StatementArguments(workflowNames)
            let text = try String.fetchOne(
                database, sql: MessagingStatements.nextDeadline(Self.placeholders(workflowNames.count)), arguments: arguments)
            return text.flatMap(Timestamp.parse)
        }
    }

    public func deleteChannelMessages(publishedBefore cutoff: Date) async throws -> Int {
        try await writer.write { database in
            try database.execute(
                sql: "DELETE FROM channel_messages WHERE published_at < ?", arguments: [Timestamp.database(cutoff)])
            return database.changesCount
        }
    }

    public func acquireSystemLock(name: String, workerID: String, until: Date, now: Date) async throws -> Bool {
        try await writer.write { database in
            try database.execute(
                sql: "INSERT INTO system_locks (lock_name) VALUES (?) ON CONFLICT (lock_name) DO NOTHING", arguments: [name])
            let timestamp = Timestamp.database(now)
            try database.execute(
                sql: """
                    UPDATE system_locks SET locked_by = ?, locked_at = ?, lock_expires_at = ?
                    WHERE lock_name = ? AND (locked_by IS NULL OR locked_by = ? OR lock_expires_at IS NULL OR lock_expires_at <= ?)
                    """,
                arguments: [workerID, timestamp, Timestamp.database(until), name, workerID, timestamp])
            return database.changesCount == 1
        }
    }

    public func releaseSystemLock(name: String, workerID: String) async throws {
        try await writer.write { database in
            try database.execute(
                sql: """
                    UPDATE system_locks SET locked_by = NULL, locked_at = NULL, lock_expires_at = NULL
                    WHERE lock_name = ? AND locked_by = ?
                    """,
                arguments: [name, workerID])
        }
    }

    public func successor(of instanceID: String) async throws -> String? {
        try await pool.read { database in
            try String.fetchOne(
                database, sql: "SELECT instance_id FROM workflow_instances WHERE continued_from = ? ORDER BY started_at DESC LIMIT 1",
                arguments: [instanceID])
        }
    }

    // MARK: - Building blocks (inside a write transaction)

    /// `nil` if `workerID` holds the lock of the instance and it is `running`; else what was found.
    static func checkHolder(_ database: Database, instanceID: String, workerID: String) throws -> HolderMismatch? {
        let (status, lockedBy) = try statusAndLock(database, instanceID: instanceID)
        if status == .running, lockedBy == workerID { return nil }
        return HolderMismatch(status: status, lockedBy: lockedBy)
    }

    static func subscription(_ database: Database, instanceID: String, channel: String) throws -> ChannelSubscription? {
        try Row.fetchOne(
            database.cachedStatement(sql: MessagingStatements.selectSubscription), arguments: [instanceID, channel]
        ).map { try ChannelSubscription(row: SQLiteRow($0)) }
    }

    /// Subscribes unless subscribed already; returns the conflicting existing mode, if any.
    static func subscribe(_ database: Database, instanceID: String, channel: String, mode: SubscriptionMode, now: Date) throws -> String? {
        let stored = mode == .competing ? "competing" : "broadcast"
        if let existing = try String.fetchOne(
            database.cachedStatement(sql: "SELECT mode FROM channel_subscriptions WHERE channel = ? AND mode <> ? LIMIT 1"),
            arguments: [channel, stored]) {
            return existing
        }
        try database.cachedStatement(sql: MessagingStatements.subscribe).execute(arguments: [
            instanceID, channel, stored, stored == "broadcast" ? 1 : 0, channel, Timestamp.database(now),
        ])
        return nil
    }

    /// The oldest message the subscription has not seen (broadcast) or nobody has consumed
    /// (competing), skipping messages addressed to other instances.
    static func pendingMessage(_ database: Database, for subscription: ChannelSubscription) throws -> StoredMessage? {
        let sql = subscription.isCompeting ? MessagingStatements.pendingCompeting : MessagingStatements.pendingBroadcast
        var arguments: StatementArguments = [subscription.channel]
        if !subscription.isCompeting { arguments += [subscription.cursor] }
        arguments += [subscription.instanceID]
        return try Row.fetchOne(database.cachedStatement(sql: sql), arguments: arguments).map { try StoredMessage(row: SQLiteRow($0)) }
    }


    /// Carries out one step of a receive or subscription change (see ``ReceiveSequence``).
    static func perform(_ effect: ReceiveEffect, in database: Database, now: Date) throws -> ReceiveAnswer {
        let timestamp = Timestamp.database(now)
        switch effect {
        case .checkHolder(let instanceID, let workerID):
            return .holder(try checkHolder(database, instanceID: instanceID, workerID: workerID))
        case .findSubscription(let instanceID, let channel):
            return .subscription(try subscription(database, instanceID: instanceID, channel: channel))
        case .subscribe(let instanceID, let channel, let mode):
            return .subscribed(conflictingMode: try subscribe(database, instanceID: instanceID, channel: channel, mode: mode, now: now))
        case .unsubscribe(let instanceID, let channel):
            try database.cachedStatement(sql: MessagingStatements.unsubscribe).execute(arguments: [instanceID, channel])
        case .insertCompensations(let instanceID, let compensations):
            for compensation in compensations {
                try database.cachedStatement(sql: Statements.insertCompensation).execute(arguments: [
                    instanceID, compensation.activityID, compensation.name, compensation.argsJSON, timestamp,
                ])
            }
        case .findPendingMessage(let subscription):
            return .pendingMessage(try pendingMessage(database, for: subscription))
        case .record(let instanceID, let event, let consumption):
            return .recorded(try record(event, instanceID: instanceID, consuming: consumption, in: database, now: now))
        case .keepRunning(let instanceID, let activityID, let leaseUntil):
            try database.cachedStatement(sql: MessagingStatements.keepRunning).execute(arguments: [
                activityID, Timestamp.database(leaseUntil), timestamp, instanceID,
            ])
        case .suspend(let instanceID, let subscriptionID, let activityID, let timeoutAt):
            try database.cachedStatement(sql: MessagingStatements.registerWait).execute(arguments: [
                activityID, timeoutAt.map(Timestamp.database), subscriptionID,
            ])
            try database.cachedStatement(sql: MessagingStatements.suspendForMessage).execute(arguments: [activityID, timestamp, instanceID])
        }
        return .done
    }

    /// Inserts `event` unless its step has a history row; only if inserted, consumes the
    /// message. Returns whether it inserted.
    static func record(_ event: NewHistoryEvent, instanceID: String, consuming consumption: Consumption?, in database: Database, now: Date) throws -> Bool {
        try insertHistory(database, instanceID: instanceID, event: event, timestamp: Timestamp.database(now), ifAbsent: true)
        guard database.changesCount == 1 else { return false }
        if let consumption { try consume(consumption, in: database) }
        return true
    }

    static func consume(_ consumption: Consumption, in database: Database) throws {
        switch consumption {
        case .deleteMessage(let messageID):
            try database.cachedStatement(sql: "DELETE FROM channel_messages WHERE message_id = ?").execute(arguments: [messageID])
        case .advanceCursor(let subscriptionID, let rowID):
            try database.cachedStatement(sql: "UPDATE channel_subscriptions SET cursor_message_id = ? WHERE id = ?")
                .execute(arguments: [rowID, subscriptionID])
        }
    }

    /// Carries out one step of a wake-up sweep (see ``WakeUpSweep``).
    static func perform(_ effect: WakeUpEffect, in database: Database, now: Date) throws -> WakeUpAnswer {
        switch effect {
        case .storeMessage(let message): return .stored(isNew: try insertMessage(message, in: database, now: now))
        case .findWaiters(let query): return .waiters(try waiters(query, in: database, now: now))
        case .findPendingMessage(let subscription): return .pendingMessage(try pendingMessage(database, for: subscription))
        case .resume(let resumption): return .resumed(try resume(resumption, in: database, now: now))
        case .loadClaimed(let instanceID): return .loaded(try claimedInstance(database, instanceID: instanceID))
        }
    }

    /// Persists a wake-up (see ``Resumption``).
    static func resume(_ resumption: Resumption, in database: Database, now: Date) throws -> ResumptionOutcome {
        let timestamp = Timestamp.database(now)
        switch resumption.waking {
        case .claim(let workerID, let leaseUntil):
            try database.cachedStatement(sql: MessagingStatements.wakeClaimed).execute(arguments: [
                workerID, timestamp, Timestamp.database(leaseUntil), timestamp, resumption.instanceID, timestamp,
            ])
        case .release:
            try database.cachedStatement(sql: MessagingStatements.wakeUnlocked).execute(arguments: [timestamp, resumption.instanceID, timestamp])
        }
        guard database.changesCount == 1 else { return .notWaiting }
        switch resumption.end {
        case .deleteTimer(let rowID):
            try database.cachedStatement(sql: "DELETE FROM workflow_timer_subscriptions WHERE id = ?").execute(arguments: [rowID])
        case .clearSubscriptionWait(let subscriptionID):
            try database.cachedStatement(sql: MessagingStatements.clearWait).execute(arguments: [subscriptionID])
        }
        let recorded = try record(resumption.record, instanceID: resumption.instanceID, consuming: resumption.consume, in: database, now: now)
        return ResumptionOutcome(woken: resumption.waking.outcome, recorded: recorded)
    }

    /// The waiting instances `query` asks for.
    static func waiters(_ query: WaiterQuery, in database: Database, now: Date) throws -> [Waiter] {
        let timestamp = Timestamp.database(now)
        func fetch(_ sql: String, _ arguments: StatementArguments) throws -> [Waiter] {
            try Row.fetchAll(database.cachedStatement(sql: sql), arguments: arguments).map { try Waiter(row: SQLiteRow($0)) }
        }
        switch query {
        case .dueTimers(let deadline, let names, let limit):
            return try fetch(
                MessagingStatements.dueTimers(placeholders(names.count)),
                [Timestamp.database(deadline), StoredFramework.name, timestamp] + StatementArguments(names) + [limit])
        case .dueReceiveTimeouts(let deadline, let names, let limit):
            return try fetch(
                MessagingStatements.dueReceiveTimeouts(placeholders(names.count)),
                [Timestamp.database(deadline), StoredFramework.name, timestamp] + StatementArguments(names) + [limit])
        case .subscribersWithPendingMessages(let names, let limit):
            return try fetch(
                MessagingStatements.waitingWithPending(placeholders(names.count)),
                [StoredFramework.name, timestamp] + StatementArguments(names) + [limit])
        case .subscribers(let channel, let target, let after, let limit):
            var sql = MessagingStatements.waitingSubscribers + " AND s.id > ?"
            var arguments: StatementArguments = [channel, timestamp, after]
            if let target {
                sql += " AND s.instance_id = ?"
                arguments += [target]
            }
            return try fetch(sql + " ORDER BY s.id LIMIT ?", arguments + [limit])
        }
    }

    /// An instance just claimed, with everything replay needs.
    static func claimedInstance(_ database: Database, instanceID: String) throws -> ClaimedInstance? {
        guard let instance = try fetchInstance(database, id: instanceID) else { return nil }
        return ClaimedInstance(
            instance: instance, history: try fetchHistory(database, instanceID: instanceID),
            compensations: try fetchCompensations(database, instanceID: instanceID),
            subscriptions: try fetchSubscriptions(database, instanceID: instanceID))
    }

    static func fetchSubscriptions(_ database: Database, instanceID: String) throws -> [String: String] {
        var subscriptions: [String: String] = [:]
        for row in try Row.fetchAll(
            database.cachedStatement(sql: "SELECT channel, mode FROM channel_subscriptions WHERE instance_id = ?"),
            arguments: [instanceID]) {
            subscriptions[try row.decode(forColumn: "channel")] = try row.decode(String.self, forColumn: "mode")
        }
        return subscriptions
    }

    /// Stores a message and delivers it to the subscribers waiting on its channel.
    static func publish(_ message: OutgoingMessage, claim: ClaimPolicy, in database: Database, now: Date) throws -> DeliveryReport {
        var sweep = WakeUpSweep.delivery(of: message, claim: claim, now: now)
        try sweep.run { try perform($0, in: database, now: now) }
        return sweep.report
    }

    /// Inserts a message unless its ID exists; returns whether it did.
    static func insertMessage(_ message: OutgoingMessage, in database: Database, now: Date) throws -> Bool {
        let timestamp = Timestamp.database(now)
        let statement = try database.cachedStatement(sql: MessagingStatements.insertMessage)
        switch message.payload {
        case .json(let text):
            try statement.execute(arguments: [message.channel, message.messageID, "json", text, nil, message.metadataJSON, timestamp])
        case .binary(let bytes):
            try statement.execute(arguments: [message.channel, message.messageID, "binary", nil, Data(bytes), message.metadataJSON, timestamp])
        }
        return database.changesCount == 1
    }

    /// Applies the waiting-and-messaging parts of a transition, after its compare-and-set.
    static func applyMessaging(_ transition: InstanceTransition, in database: Database, now: Date) throws -> [DeliveryReport] {
        let timestamp = Timestamp.database(now)
        if let timer = transition.timer {
            try database.cachedStatement(sql: MessagingStatements.insertTimer).execute(arguments: [
                transition.instanceID, timer.timerID, Timestamp.database(timer.expiresAt), timer.activityID, timestamp,
            ])
        }
        if let successor = transition.successor {
            try recur(database, from: transition.instanceID, to: successor, now: now)
        }
        guard !transition.messages.isEmpty else { return [] }
        let claim = transition.claimPolicy ?? ClaimPolicy(workerID: transition.workerID, leases: [:])
        let reports = try transition.messages.map { try publish($0, claim: claim, in: database, now: now) }
        for event in transition.historyAfterDelivery?(reports) ?? [] {
            try insertHistory(database, instanceID: transition.instanceID, event: event, timestamp: timestamp)
        }
        return reports
    }

    /// Ends an instance by `recur`: archives its history, drops its waits, claims and
    /// compensations, and creates its successor.
    static func recur(_ database: Database, from instanceID: String, to successor: NewInstance, now: Date) throws {
        let timestamp = Timestamp.database(now)
        try database.execute(sql: MessagingStatements.archiveHistory, arguments: [timestamp, instanceID])
        for sql in MessagingStatements.recurCleanup {
            try database.execute(sql: sql, arguments: [instanceID])
        }
        guard try insertInstance(successor, in: database, now: now) else {
            throw DatabaseError(message: "recur: successor instance \(successor.instanceID) exists already")
        }
    }

    static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: max(count, 1)).joined(separator: ", ")
    }
}

/// The SQL of the waiting-and-messaging operations.
enum MessagingStatements {
    static let selectSubscription = """
        SELECT id AS subscription_id, instance_id, channel, mode, activity_id, cursor_message_id
        FROM channel_subscriptions WHERE instance_id = ? AND channel = ?
        """

    /// Arguments: instance, channel, mode, is-broadcast (1/0), channel, subscribed_at.
    static let subscribe = """
        INSERT INTO channel_subscriptions (instance_id, channel, mode, cursor_message_id, subscribed_at)
        SELECT ?1, ?2, ?3, CASE WHEN ?4 = 1 THEN COALESCE((SELECT MAX(id) FROM channel_messages WHERE channel = ?5), 0) END, ?6
        WHERE true
        ON CONFLICT (instance_id, channel) DO NOTHING
        """

    static let unsubscribe = "DELETE FROM channel_subscriptions WHERE instance_id = ? AND channel = ?"

    /// Messages addressed to another instance (`target_instance_id`, or the CloudEvents
    /// extension `eddainstanceid`) are not for this subscriber. The last argument is the
    /// subscriber's instance ID.
    private static func addressed(to subscriber: String) -> String {
        """
        (m.metadata IS NULL OR NOT json_valid(m.metadata)
         OR COALESCE(json_extract(m.metadata, '$.target_instance_id'),
                     json_extract(m.metadata, '$.ce_extensions.eddainstanceid')) IS NULL
         OR COALESCE(json_extract(m.metadata, '$.target_instance_id'),
                     json_extract(m.metadata, '$.ce_extensions.eddainstanceid')) = \(subscriber))
        """
    }

    private static let addressedToSubscriber = addressed(to: "?")

    /// A message `m` the subscription `s` has not received yet.
    private static let pendingForSubscription = """
        m.channel = s.channel
          AND (CASE WHEN s.mode = 'competing'
                    THEN NOT EXISTS (SELECT 1 FROM channel_message_claims c WHERE c.message_id = m.message_id)
                    ELSE m.id > COALESCE(s.cursor_message_id, 0) END)
          AND \(addressed(to: "s.instance_id"))
        """

    private static let messageColumns = "m.id, m.message_id, m.channel, m.data_type, m.data, m.data_binary, m.metadata, m.published_at"

    static let pendingBroadcast = """
        SELECT \(messageColumns) FROM channel_messages m
        WHERE m.channel = ? AND m.id > ? AND \(addressedToSubscriber)
        ORDER BY m.id LIMIT 1
        """

    static let pendingCompeting = """
        SELECT \(messageColumns) FROM channel_messages m
        WHERE m.channel = ?
          AND NOT EXISTS (SELECT 1 FROM channel_message_claims c WHERE c.message_id = m.message_id)
          AND \(addressedToSubscriber)
        ORDER BY m.id LIMIT 1
        """

    /// Arguments: activity, lock expiry, updated_at, instance.
    static let keepRunning = """
        UPDATE workflow_instances SET current_activity_id = ?, lock_expires_at = ?, updated_at = ? WHERE instance_id = ?
        """

    /// Arguments: activity, timeout_at, subscription row ID.
    static let registerWait = "UPDATE channel_subscriptions SET activity_id = ?, timeout_at = ? WHERE id = ?"

    static let clearWait = "UPDATE channel_subscriptions SET activity_id = NULL, timeout_at = NULL WHERE id = ?"

    /// Arguments: activity, updated_at, instance.
    static let suspendForMessage = """
        UPDATE workflow_instances SET status = 'waiting_for_message', current_activity_id = ?, updated_at = ?,
            locked_by = NULL, locked_at = NULL, lock_expires_at = NULL
        WHERE instance_id = ?
        """

    /// A message ID seen before (an event received twice) inserts nothing.
    static let insertMessage = """
        INSERT INTO channel_messages (channel, message_id, data_type, data, data_binary, metadata, published_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (message_id) DO NOTHING
        """

    /// Subscribers waiting on a channel whose instance is free. Arguments: channel, now.
    static let waitingSubscribers = """
        SELECT s.id AS subscription_id, s.instance_id, s.channel, s.mode, s.activity_id, s.cursor_message_id,
               i.framework, i.workflow_name, i.lock_timeout_seconds
        FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
        WHERE s.channel = ? AND s.activity_id IS NOT NULL
          AND i.status IN ('waiting_for_message', 'waiting_for_event')
          AND (i.locked_by IS NULL OR i.lock_expires_at < ?)
        """

    private static let isWaitingAndFree = """
        status IN ('waiting_for_timer', 'waiting_for_message', 'waiting_for_event')
          AND (locked_by IS NULL OR lock_expires_at < ?)
        """

    /// Arguments: worker, locked_at, lock expiry, updated_at, instance, now.
    static let wakeClaimed = """
        UPDATE workflow_instances SET status = 'running', locked_by = ?, locked_at = ?, lock_expires_at = ?, updated_at = ?
        WHERE instance_id = ? AND \(isWaitingAndFree)
        """

    /// Arguments: updated_at, instance, now.
    static let wakeUnlocked = """
        UPDATE workflow_instances SET status = 'running', locked_by = NULL, locked_at = NULL, lock_expires_at = NULL,
            updated_at = ?
        WHERE instance_id = ? AND \(isWaitingAndFree)
        """

    static let insertTimer = """
        INSERT INTO workflow_timer_subscriptions (instance_id, timer_id, expires_at, activity_id, created_at)
        VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (instance_id, timer_id) DO NOTHING
        """

    /// Arguments: deadline, framework, now, names…, limit.
    static func dueTimers(_ names: String) -> String {
        """
        SELECT t.id AS timer_row_id, t.instance_id, t.timer_id, t.expires_at, t.activity_id,
               i.framework, i.workflow_name, i.lock_timeout_seconds
        FROM workflow_timer_subscriptions t JOIN workflow_instances i ON i.instance_id = t.instance_id
        WHERE t.expires_at <= ? AND i.status = 'waiting_for_timer' AND i.framework = ?
          AND (i.locked_by IS NULL OR i.lock_expires_at < ?) AND i.workflow_name IN (\(names))
        ORDER BY t.expires_at LIMIT ?
        """
    }

    /// Arguments: deadline, framework, now, names…, limit.
    static func dueReceiveTimeouts(_ names: String) -> String {
        """
        SELECT s.id AS timeout_subscription_id, s.instance_id, s.channel, s.activity_id, s.timeout_at,
               i.framework, i.workflow_name, i.lock_timeout_seconds
        FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
        WHERE s.timeout_at <= ? AND s.activity_id IS NOT NULL AND i.status = 'waiting_for_message' AND i.framework = ?
          AND (i.locked_by IS NULL OR i.lock_expires_at < ?) AND i.workflow_name IN (\(names))
        ORDER BY s.timeout_at LIMIT ?
        """
    }

    /// Arguments: framework, now, names…, limit.
    static func waitingWithPending(_ names: String) -> String {
        """
        SELECT s.id AS subscription_id, s.instance_id, s.channel, s.mode, s.activity_id, s.cursor_message_id,
               i.framework, i.workflow_name, i.lock_timeout_seconds
        FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
        WHERE s.activity_id IS NOT NULL AND i.status = 'waiting_for_message' AND i.framework = ?
          AND (i.locked_by IS NULL OR i.lock_expires_at < ?) AND i.workflow_name IN (\(names))
          AND EXISTS (SELECT 1 FROM channel_messages m WHERE \(pendingForSubscription))
        ORDER BY s.id LIMIT ?
        """
    }

    /// Arguments: framework, names…, framework, names….
    static func nextDeadline(_ names: String) -> String {
        """
        SELECT MIN(deadline) FROM (
            SELECT MIN(t.expires_at) AS deadline
            FROM workflow_timer_subscriptions t JOIN workflow_instances i ON i.instance_id = t.instance_id
            WHERE i.status = 'waiting_for_timer' AND i.framework = ? AND i.workflow_name IN (\(names))
            UNION ALL
            SELECT MIN(s.timeout_at)
            FROM channel_subscriptions s JOIN workflow_instances i ON i.instance_id = s.instance_id
            WHERE s.activity_id IS NOT NULL AND s.timeout_at IS NOT NULL AND i.status = 'waiting_for_message'
              AND i.framework = ? AND i.workflow_name IN (\(names))
        )
        """
    }

    /// Arguments: archived_at, instance.
    static let archiveHistory = """
        INSERT INTO workflow_history_archive
            (instance_id, activity_id, event_type, data_type, event_data, event_data_binary, created_at, archived_at)
        SELECT instance_id, activity_id, event_type, data_type, event_data, event_data_binary, created_at, ?1
        FROM workflow_history WHERE instance_id = ?2 ORDER BY created_at, id
        """

    static let recurCleanup = [
        "DELETE FROM workflow_history WHERE instance_id = ?",
        "DELETE FROM workflow_timer_subscriptions WHERE instance_id = ?",
        "DELETE FROM channel_subscriptions WHERE instance_id = ?",
        "DELETE FROM channel_message_claims WHERE instance_id = ?",
        "DELETE FROM workflow_compensations WHERE instance_id = ?",
    ]
}
