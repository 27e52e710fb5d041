import Edda
import Foundation
import GRDB

/// Timers, channel subscriptions, receives, publishing and delivery, and system locks.
extension SQLiteStore {
    public func updateSubscription(
        instanceID: String, workerID: String, channel: String, mode: SubscriptionMode?, now: Date
    ) async throws -> SubscriptionOutcome {
        try await writer.write { database in
            if let rejection = try Self.checkHolder(database, instanceID: instanceID, workerID: workerID) {
                return .rejected(status: rejection.status, lockedBy: rejection.lockedBy)
            }
            guard let mode else {
                try database.cachedStatement(sql: MessagingStatements.unsubscribe).execute(arguments: [instanceID, channel])
                return .applied
            }
            if let existing = try Self.subscribe(database, instanceID: instanceID, channel: channel, mode: mode, now: now) {
                return .modeConflict(existingMode: existing)
            }
            return .applied
        }
    }

    /// Thrown inside `receive`'s transaction to roll back its compensation inserts.
    private struct AlreadyRecorded: Error {}

    public func receive(_ request: ReceiveRequest, now: Date) async throws -> ReceiveOutcome {
        do {
            return try await receiveTransaction(request, now: now)
        } catch is AlreadyRecorded {
            return .alreadyRecorded
        }
    }

    private func receiveTransaction(_ request: ReceiveRequest, now: Date) async throws -> ReceiveOutcome {
        try await writer.write { database in
            if let rejection = try Self.checkHolder(database, instanceID: request.instanceID, workerID: request.workerID) {
                return .rejected(status: rejection.status, lockedBy: rejection.lockedBy)
            }
            var subscription = try Self.subscription(database, instanceID: request.instanceID, channel: request.channel)
            if subscription == nil {
                guard request.subscribesIfNeeded else { return .notSubscribed }
                if let existing = try Self.subscribe(
                    database, instanceID: request.instanceID, channel: request.channel, mode: .broadcast, now: now) {
                    return .modeConflict(existingMode: existing)
                }
                subscription = try Self.subscription(database, instanceID: request.instanceID, channel: request.channel)
            }
            guard let subscription else { return .notSubscribed }
            let timestamp = Timestamp.database(now)
            for compensation in request.compensations {
                try database.cachedStatement(sql: Statements.insertCompensation).execute(arguments: [
                    request.instanceID, compensation.activityID, compensation.name, compensation.argsJSON, timestamp,
                ])
            }
            if let message = try Self.pendingMessage(database, for: subscription) {
                guard try Self.consume(
                    message, by: subscription, activityID: request.activityID, ownInstance: true, in: database, now: now)
                else { throw AlreadyRecorded() }
                try database.cachedStatement(sql: MessagingStatements.keepRunning).execute(arguments: [
                    request.activityID, Timestamp.database(request.leaseUntil), timestamp, request.instanceID,
                ])
                return .received(message)
            }
            try database.cachedStatement(sql: MessagingStatements.registerWait).execute(arguments: [
                request.activityID, request.timeoutAt.map(Timestamp.database), subscription.id,
            ])
            try database.cachedStatement(sql: MessagingStatements.suspendForMessage).execute(arguments: [
                request.activityID, timestamp, request.instanceID,
            ])
            return .suspended
        }
    }

    public func publish(_ messages: [OutgoingMessage], claim: ClaimPolicy, now: Date) async throws -> [DeliveryReport] {
        try await writer.write { database in
            try messages.map { try Self.publish($0, claim: claim, in: database, now: now) }
        }
    }

    public func fireDueWaits(claim: ClaimPolicy, deadline: Date, now: Date, limit: Int) async throws -> [ClaimedInstance] {
        let names = claim.workflowNames
        guard !names.isEmpty else { return [] }
        return try await writer.write { database in
            var claimed: [ClaimedInstance] = []
            let timestamp = Timestamp.database(now)
            let namesList = Self.placeholders(names.count)

            // Timers that expired.
            var arguments: StatementArguments = [Timestamp.database(deadline), StoredFramework.name, timestamp]
            arguments += StatementArguments(names)
            arguments += [limit]
            for row in try Row.fetchAll(database, sql: MessagingStatements.dueTimers(namesList), arguments: arguments) {
                let instanceID: String = row["instance_id"]
                let timerID: String = row["timer_id"]
                let activityID: String = row["activity_id"] ?? timerID
                let expiresAt: String = row["expires_at"]
                let payload = StepPayloads.timerExpired(timerID: timerID, expiresAt: Timestamp.parse(expiresAt) ?? now)
                let wake = try Self.wake(database, instanceID: instanceID, row: row, claim: claim, now: now)
                guard wake != .notWaiting else { continue }
                try database.cachedStatement(sql: "DELETE FROM workflow_timer_subscriptions WHERE id = ?").execute(arguments: [row["id"]])
                try database.cachedStatement(sql: Statements.insertHistoryIfAbsent).execute(arguments: [
                    instanceID, activityID, HistoryEventType.timerExpired, "json", payload, nil, timestamp,
                ])
                if wake == .claimed, let instance = try Self.claimedInstance(database, instanceID: instanceID) {
                    claimed.append(instance)
                }
            }

            // Receives that timed out.
            arguments = [Timestamp.database(deadline), StoredFramework.name, timestamp]
            arguments += StatementArguments(names)
            arguments += [limit]
            for row in try Row.fetchAll(database, sql: MessagingStatements.dueReceiveTimeouts(namesList), arguments: arguments) {
                let instanceID: String = row["instance_id"]
                let channel: String = row["channel"]
                let timeoutAt: String = row["timeout_at"]
                let payload = StepPayloads.messageTimeout(channel: channel, timeoutAt: Timestamp.parse(timeoutAt) ?? now)
                let wake = try Self.wake(database, instanceID: instanceID, row: row, claim: claim, now: now)
                guard wake != .notWaiting else { continue }
                try database.cachedStatement(sql: MessagingStatements.clearWait).execute(arguments: [row["id"]])
                try database.cachedStatement(sql: Statements.insertHistoryIfAbsent).execute(arguments: [
                    instanceID, row["activity_id"] as String, HistoryEventType.messageTimeout, "json", payload, nil, timestamp,
                ])
                if wake == .claimed, let instance = try Self.claimedInstance(database, instanceID: instanceID) {
                    claimed.append(instance)
                }
            }

            // Waiting subscribers with a pending message nobody delivered (published while the
            // instance was locked, or by a process that did not deliver it).
            arguments = [StoredFramework.name, timestamp]
            arguments += StatementArguments(names)
            arguments += [limit]
            for row in try Row.fetchAll(database, sql: MessagingStatements.waitingWithPending(namesList), arguments: arguments) {
                let subscription = Subscription(row: row)
                guard let message = try Self.pendingMessage(database, for: subscription) else { continue }
                guard let activityID = subscription.activityID else { continue }
                let wake = try Self.wake(database, instanceID: subscription.instanceID, row: row, claim: claim, now: now)
                guard wake != .notWaiting else { continue }
                try database.cachedStatement(sql: MessagingStatements.clearWait).execute(arguments: [subscription.id])
                _ = try Self.consume(message, by: subscription, activityID: activityID, ownInstance: true, in: database, now: now)
                if wake == .claimed, let instance = try Self.claimedInstance(database, instanceID: subscription.instanceID) {
                    claimed.append(instance)
                }
            }
            return claimed
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

    /// A row of `channel_subscriptions`.
    struct Subscription {
        let id: Int64
        let instanceID: String
        let channel: String
        let mode: String
        let activityID: String?
        let cursor: Int64

        init(row: Row) {
            id = row["subscription_id"]
            instanceID = row["instance_id"]
            channel = row["channel"]
            mode = row["mode"]
            activityID = row["activity_id"]
            cursor = row["cursor_message_id"] ?? 0
        }
    }

    /// `nil` if `workerID` holds the lock of the instance and it is `running`; else what was found.
    static func checkHolder(_ database: Database, instanceID: String, workerID: String) throws -> (status: WorkflowStatus?, lockedBy: String?)? {
        let row = try Row.fetchOne(
            database.cachedStatement(sql: "SELECT status, locked_by FROM workflow_instances WHERE instance_id = ?"),
            arguments: [instanceID])
        let status = (row?["status"] as String?).map(WorkflowStatus.init(rawValue:))
        let lockedBy: String? = row?["locked_by"]
        if status == .running, lockedBy == workerID { return nil }
        return (status, lockedBy)
    }

    static func subscription(_ database: Database, instanceID: String, channel: String) throws -> Subscription? {
        try Row.fetchOne(
            database.cachedStatement(sql: MessagingStatements.selectSubscription), arguments: [instanceID, channel]
        ).map(Subscription.init(row:))
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
    static func pendingMessage(_ database: Database, for subscription: Subscription) throws -> StoredMessage? {
        let sql = subscription.mode == "competing" ? MessagingStatements.pendingCompeting : MessagingStatements.pendingBroadcast
        var arguments: StatementArguments = [subscription.channel]
        if subscription.mode != "competing" { arguments += [subscription.cursor] }
        arguments += [subscription.instanceID]
        return try Row.fetchOne(database.cachedStatement(sql: sql), arguments: arguments).map(message(from:))
    }

    static func message(from row: Row) -> StoredMessage {
        let payload: MessagePayload
        if row["data_type"] as String == "binary" {
            payload = .binary(Array(row["data_binary"] as Data? ?? Data()))
        } else {
            payload = .json(row["data"] ?? "null")
        }
        return StoredMessage(
            rowID: row["id"], messageID: row["message_id"], channel: row["channel"], payload: payload,
            metadataJSON: row["metadata"],
            publishedAt: (row["published_at"] as String?).flatMap(Timestamp.parse) ?? Date(timeIntervalSince1970: 0))
    }

    /// Records `message` as received by the subscription's instance under `activityID` and
    /// consumes it: a broadcast cursor moves past it; a competing message is deleted. Returns
    /// whether it was recorded (`false` if that step already has a history row).
    @discardableResult
    static func consume(
        _ message: StoredMessage, by subscription: Subscription, activityID: String, ownInstance: Bool,
        in database: Database, now: Date
    ) throws -> Bool {
        let timestamp = Timestamp.database(now)
        let statement = try database.cachedStatement(sql: Statements.insertHistoryIfAbsent)
        switch MessageHistory.payload(message, ownInstance: ownInstance) {
        case .json(let text):
            try statement.execute(arguments: [
                subscription.instanceID, activityID, HistoryEventType.channelMessageReceived, "json", text, nil, timestamp,
            ])
        case .binary(let bytes):
            try statement.execute(arguments: [
                subscription.instanceID, activityID, HistoryEventType.channelMessageReceived, "binary", nil, Data(bytes), timestamp,
            ])
        }
        guard database.changesCount == 1 else { return false }
        if subscription.mode == "competing" {
            try database.cachedStatement(sql: "DELETE FROM channel_messages WHERE message_id = ?").execute(arguments: [message.messageID])
        } else {
            try database.cachedStatement(sql: "UPDATE channel_subscriptions SET cursor_message_id = ? WHERE id = ?")
                .execute(arguments: [message.rowID, subscription.id])
        }
        return true
    }

    /// Makes a waiting instance `running` after its wait ended: locked by the claiming worker if
    /// it runs the instance's workflow, else unlocked for any worker of its framework. `row`
    /// holds the instance's `framework`, `workflow_name` and `lock_timeout_seconds`.
    static func wake(_ database: Database, instanceID: String, row: Row, claim: ClaimPolicy, now: Date) throws -> WakeOutcome {
        let timestamp = Timestamp.database(now)
        switch claim.wake(
            framework: row["framework"], workflowName: row["workflow_name"], storedSeconds: row["lock_timeout_seconds"], now: now)
        {
        case .claim(let leaseUntil):
            try database.cachedStatement(sql: MessagingStatements.wakeClaimed).execute(arguments: [
                claim.workerID, timestamp, Timestamp.database(leaseUntil), timestamp, instanceID, timestamp,
            ])
            return database.changesCount == 1 ? .claimed : .notWaiting
        case .release:
            try database.cachedStatement(sql: MessagingStatements.wakeUnlocked).execute(arguments: [timestamp, instanceID, timestamp])
            return database.changesCount == 1 ? .unlocked : .notWaiting
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
            subscriptions[row["channel"]] = row["mode"]
        }
        return subscriptions
    }

    /// Stores a message and delivers it to the subscribers waiting on its channel.
    static func publish(_ message: OutgoingMessage, claim: ClaimPolicy, in database: Database, now: Date) throws -> DeliveryReport {
        let timestamp = Timestamp.database(now)
        let statement = try database.cachedStatement(sql: MessagingStatements.insertMessage)
        switch message.payload {
        case .json(let text):
            try statement.execute(arguments: [
                message.channel, message.messageID, "json", text, nil, message.metadataJSON, timestamp,
            ])
        case .binary(let bytes):
            try statement.execute(arguments: [
                message.channel, message.messageID, "binary", nil, Data(bytes), message.metadataJSON, timestamp,
            ])
        }
        guard database.changesCount == 1 else {
            return DeliveryReport(messageID: message.messageID, deliveredTo: [], claimed: [], isDuplicate: true)
        }

        var sql = MessagingStatements.waitingSubscribers + " AND s.id > ?"
        if message.targetInstanceID != nil { sql += " AND s.instance_id = ?" }
        sql += " ORDER BY s.id LIMIT ?"
        var delivered: [String] = []
        var claimed: [ClaimedInstance] = []
        var sweep = DeliverySweep(publishing: message.messageID)
        var after: Int64 = 0
        while !sweep.isFinished {
            var arguments: StatementArguments = [message.channel, timestamp, after]
            if let target = message.targetInstanceID { arguments += [target] }
            let pageSize = sweep.pageSize
            arguments += [pageSize]
            let page = try Row.fetchAll(database.cachedStatement(sql: sql), arguments: arguments)
            for row in page where !sweep.isFinished {
                let subscription = Subscription(row: row)
                after = subscription.id
                guard let activityID = subscription.activityID else { continue }
                // Each waiting subscriber gets its oldest pending message: usually this one, but an
                // older one it missed comes first, so that nothing is skipped by its cursor.
                guard let next = try pendingMessage(database, for: subscription) else {
                    sweep.record(.nothingPending, mode: subscription.mode)
                    continue
                }
                let own = (row["framework"] as String) == StoredFramework.name
                // The wait ends only with the wake-up (see `WakeOutcome`).
                let woken = try wake(database, instanceID: subscription.instanceID, row: row, claim: claim, now: now)
                guard woken != .notWaiting else { continue }
                try database.cachedStatement(sql: MessagingStatements.clearWait).execute(arguments: [subscription.id])
                guard try consume(next, by: subscription, activityID: activityID, ownInstance: own, in: database, now: now) else {
                    sweep.record(.alreadyRecorded, mode: subscription.mode)
                    continue
                }
                sweep.record(.consumed(messageID: next.messageID), mode: subscription.mode)
                if next.messageID == message.messageID { delivered.append(subscription.instanceID) }
                if woken == .claimed, let instance = try claimedInstance(database, instanceID: subscription.instanceID) {
                    claimed.append(instance)
                }
            }
            sweep.read(page: page.count, of: pageSize)
        }
        return DeliveryReport(messageID: message.messageID, deliveredTo: delivered, claimed: claimed)
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
        SELECT t.id, t.instance_id, t.timer_id, t.expires_at, t.activity_id,
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
        SELECT s.id, s.instance_id, s.channel, s.activity_id, s.timeout_at,
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
