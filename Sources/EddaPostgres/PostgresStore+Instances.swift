import Edda
import Foundation
import Logging
import PostgresNIO

/// Instances, steps, locks, cancellation and queries.
extension PostgresStore {
    static let instanceColumns = """
        i.instance_id, i.workflow_name, i.source_hash, i.owner_service, i.framework, i.status,
        i.current_activity_id, i.continued_from, i.started_at, i.updated_at, i.input_data, i.output_data,
        i.locked_by, i.locked_at, i.lock_expires_at, i.lock_timeout_seconds
        """

    public func createInstance(_ instance: NewInstance, now: Date) async throws -> CreateInstanceOutcome {
        // One statement, its own transaction.
        let created = try await read { connection in
            try await connection.rows(preparingFrequent: Self.insertInstance(instance, now: now), logger: self.logger).count == 1
        }
        if created { return .created }
        guard let existing = try await read({ connection in try await self.fetchInstance(instance.instanceID, on: connection) }) else {
            throw PostgresStoreError("instance \(instance.instanceID) neither inserted nor found")
        }
        return .existing(existing)
    }

    /// Inserts the definition (if new) and the instance; returns a row if the instance is new.
    static func insertInstance(_ instance: NewInstance, now: Date) -> PostgresQuery {
        let lockedAt: Date? = instance.lockedBy == nil ? nil : now
        return """
            WITH d AS (INSERT INTO workflow_definitions (workflow_name, source_hash, source_code, created_at)
                       VALUES (\(instance.workflowName), \(instance.sourceHash), \(instance.sourceCode), \(NewInstance.definitionCreatedAt))
                       ON CONFLICT DO NOTHING)
            INSERT INTO workflow_instances (
                instance_id, workflow_name, source_hash, owner_service, framework, status, continued_from,
                started_at, updated_at, input_data, locked_by, locked_at, lock_expires_at, lock_timeout_seconds)
            VALUES (\(instance.instanceID), \(instance.workflowName), \(instance.sourceHash), \(instance.ownerService),
                    \(StoredFramework.name), 'running', \(instance.continuedFrom), \(now), \(now), \(instance.inputJSON),
                    \(instance.lockedBy), \(lockedAt), \(instance.lockExpiresAt), \(instance.lockTimeoutSeconds)::int8)
            ON CONFLICT (instance_id) DO NOTHING
            RETURNING 1
            """
    }

    public func claim(instanceID: String, workerID: String, leaseUntil: Date, now: Date) async throws -> ClaimedInstance? {
        try await transaction { connection in
            let claimed = try await connection.count(
                """
                UPDATE workflow_instances SET locked_by = \(workerID), locked_at = \(now), lock_expires_at = \(leaseUntil),
                    updated_at = \(now)
                WHERE instance_id = \(instanceID) AND framework = \(StoredFramework.name)
                  AND status IN ('running', 'compensating') AND (locked_by IS NULL OR lock_expires_at < \(now))
                RETURNING 1
                """, logger: self.logger)
            guard claimed == 1 else { return nil }
            return try await self.claimedInstance(instanceID, on: connection)
        }
    }

    /// An instance just claimed, with everything replay needs.
    func claimedInstance(_ instanceID: String, on connection: PostgresConnection) async throws -> ClaimedInstance? {
        guard let instance = try await fetchInstance(instanceID, on: connection) else { return nil }
        var subscriptions: [String: String] = [:]
        for row in try await connection.rows(
            "SELECT channel, mode FROM channel_subscriptions WHERE instance_id = \(instanceID)", logger: logger) {
            subscriptions[try row.value("channel")] = try row.value("mode")
        }
        return ClaimedInstance(
            instance: instance, history: try await fetchHistory(instanceID, on: connection),
            compensations: try await fetchCompensations(instanceID, on: connection), subscriptions: subscriptions)
    }

    public func apply(_ transition: InstanceTransition, now: Date) async throws -> TransitionOutcome {
        let statement = TransitionStatement(transition, now: now)
        let outcome: TransitionOutcome?
        if statement.needsTransaction {
            outcome = try await transaction { connection in
                try await self.apply(transition, statement, on: connection, now: now)
            }
        } else {
            // One statement, its own transaction: one round trip.
            outcome = try await read { connection in
                try await connection.rows(preparingFrequent: statement.query, logger: self.logger).first.map {
                    TransitionOutcome.applied(status: WorkflowStatus(rawValue: try $0.value("status")))
                }
            }
        }
        if let outcome { return outcome }
        // Rejected: why, read afresh (not from the statement's snapshot, which may predate the
        // change that made the compare-and-set fail).
        return try await read { connection in
            let row = try await connection.rows(
                "SELECT status, locked_by FROM workflow_instances WHERE instance_id = \(transition.instanceID)", logger: self.logger
            ).first
            return .rejected(
                status: try row.map { WorkflowStatus(rawValue: try $0.value("status")) }, lockedBy: try row?.value("locked_by"))
        }
    }

    /// Applies a transition that needs more than its statement, inside the caller's transaction;
    /// `nil` if the compare-and-set did not match.
    private func apply(
        _ transition: InstanceTransition, _ statement: TransitionStatement, on connection: PostgresConnection, now: Date
    ) async throws -> TransitionOutcome? {
        guard let updated = try await connection.rows(statement.query, logger: logger).first else { return nil }
        for work in transition.work {
            let work = try PostgresTransactionalWork.required(work)
            do {
                try await work.body(connection)
            } catch {
                throw TransactionalWorkError(underlying: error)
            }
        }
        if let successor = transition.successor {
            try await recur(from: transition.instanceID, to: successor, on: connection, now: now)
        }
        var deliveries: [DeliveryReport] = []
        if !transition.messages.isEmpty {
            let claim = transition.claimPolicy ?? ClaimPolicy(workerID: transition.workerID, leases: [:])
            for message in transition.messages {
                deliveries.append(try await publish(message, claim: claim, on: connection, now: now))
            }
            for event in transition.historyAfterDelivery?(deliveries) ?? [] {
                try await insertHistory(event, instanceID: transition.instanceID, on: connection, now: now)
            }
        }
        return .applied(status: WorkflowStatus(rawValue: try updated.value("status")), deliveries: deliveries)
    }

    /// Inserts a history row; `false` if the step ID already has one.
    @discardableResult
    func insertHistory(
        _ event: NewHistoryEvent, instanceID: String, on connection: PostgresConnection, now: Date, ifAbsent: Bool = false
    ) async throws -> Bool {
        let columns = MessagePayload(event.payload).columns
        let conflict = ifAbsent ? "ON CONFLICT (instance_id, activity_id) DO NOTHING" : ""
        return try await connection.count(
            """
            INSERT INTO workflow_history (instance_id, activity_id, event_type, data_type, event_data, event_data_binary, created_at)
            VALUES (\(instanceID), \(event.activityID), \(event.eventType), \(columns.type), \(columns.json), \(columns.binary), \(now))
            \(unescaped: conflict) RETURNING 1
            """, logger: logger) == 1
    }

    func insertCompensation(_ compensation: CompensationRecord, instanceID: String, on connection: PostgresConnection, now: Date) async throws {
        try await connection.query(
            """
            INSERT INTO workflow_compensations (instance_id, activity_id, activity_name, args, created_at)
            VALUES (\(instanceID), \(compensation.activityID), \(compensation.name), \(compensation.argsJSON), \(now))
            """, logger: logger)
    }

    func notify(_ channel: String, _ payload: String, on connection: PostgresConnection) async throws {
        try await connection.query("SELECT pg_notify(\(channel), \(payload))", logger: logger)
    }

    func notifyResumable(_ instanceID: String, workflowName: String, on connection: PostgresConnection) async throws {
        let payload = JSONValue.object(["wf_id": .string(instanceID), "wf_name": .string(workflowName)]).jsonText
        try await notify(NotifyChannel.resumable, payload, on: connection)
    }

    public func releaseLock(instanceID: String, workerID: String, now: Date) async throws {
        // Read to the end: the statement has run (and committed) only once its result is in.
        _ = try await read { connection in
            try await connection.count(
                """
                WITH u AS (UPDATE workflow_instances SET locked_by = NULL, locked_at = NULL, lock_expires_at = NULL, updated_at = \(now)
                           WHERE instance_id = \(instanceID) AND locked_by = \(workerID)
                           RETURNING status, workflow_name)
                SELECT pg_notify(\(NotifyChannel.resumable), json_build_object('wf_id', instance_id, 'wf_name', workflow_name)::text)
                FROM (SELECT \(instanceID)::text AS instance_id, workflow_name FROM u WHERE status IN ('running', 'compensating')) r
                """, logger: self.logger)
        }
    }

    public func renewLocks(instanceIDs: [String], workerID: String, leaseUntil: Date, now: Date) async throws -> [String: WorkflowStatus] {
        guard !instanceIDs.isEmpty else { return [:] }
        return try await read { connection in
            var held: [String: WorkflowStatus] = [:]
            for row in try await connection.rows(
                """
                UPDATE workflow_instances SET lock_expires_at = \(leaseUntil)
                WHERE instance_id = ANY(\(instanceIDs)) AND locked_by = \(workerID)
                RETURNING instance_id, status
                """, logger: self.logger) {
                held[try row.value("instance_id")] = WorkflowStatus(rawValue: try row.value("status"))
            }
            return held
        }
    }

    public func requestCancellation(instanceID: String, cancelledBy: String, now: Date) async throws -> CancellationOutcome {
        try await transaction { connection in
            let row = try await connection.rows(
                """
                SELECT status, framework, workflow_name, locked_by, lock_expires_at FROM workflow_instances
                WHERE instance_id = \(instanceID) FOR UPDATE
                """, logger: self.logger).first
            let candidate = try row.map {
                CancellationCandidate(
                    status: WorkflowStatus(rawValue: try $0.value("status")), framework: try $0.value("framework"),
                    lockedBy: try $0.value("locked_by"), lockExpiresAt: try $0.value("lock_expires_at"))
            }
            let plan: CancellationPlan
            switch CancellationPlan.decide(candidate, framework: StoredFramework.name, cancelledBy: cancelledBy, now: now) {
            case .refuse(let outcome): return outcome
            case .proceed(let proceeding): plan = proceeding
            }
            let recorded = try await self.insertHistory(plan.historyEvent, instanceID: instanceID, on: connection, now: now, ifAbsent: true)
            guard recorded, let row else { return plan.alreadyRequested }

            let pending = try await connection.rows(
                """
                SELECT COUNT(*) AS n FROM workflow_compensations c WHERE c.instance_id = \(instanceID)
                  AND NOT EXISTS (SELECT 1 FROM workflow_history h
                                  WHERE h.instance_id = c.instance_id AND h.activity_id = 'compensation_' || c.id)
                """, logger: self.logger).first?.value("n", as: Int.self) ?? 0
            let ending = plan.ending(pendingCompensations: pending)
            switch ending {
            case .cancelNow(let output):
                try await connection.query(
                    """
                    UPDATE workflow_instances SET status = 'cancelled', output_data = \(output), updated_at = \(now),
                        locked_by = NULL, locked_at = NULL, lock_expires_at = NULL
                    WHERE instance_id = \(instanceID)
                    """, logger: self.logger)
                try await connection.query("DELETE FROM channel_subscriptions WHERE instance_id = \(instanceID)", logger: self.logger)
                try await connection.query("DELETE FROM workflow_timer_subscriptions WHERE instance_id = \(instanceID)", logger: self.logger)
            case .compensate(let output, let holder):
                try await connection.query(
                    "UPDATE workflow_instances SET status = 'compensating', output_data = \(output), updated_at = \(now) WHERE instance_id = \(instanceID)",
                    logger: self.logger)
                try await connection.query("DELETE FROM workflow_timer_subscriptions WHERE instance_id = \(instanceID)", logger: self.logger)
                try await connection.query(
                    "UPDATE channel_subscriptions SET activity_id = NULL, timeout_at = NULL WHERE instance_id = \(instanceID)",
                    logger: self.logger)
                if holder == nil {
                    try await self.notifyResumable(instanceID, workflowName: try row.value("workflow_name"), on: connection)
                }
            }
            return ending.outcome
        }
    }

    public func resumableInstances(workflowNames: [String], limit: Int, now: Date) async throws -> [ResumableInstance] {
        guard !workflowNames.isEmpty else { return [] }
        return try await read { connection in
            try await connection.rows(
                """
                SELECT instance_id, workflow_name, lock_timeout_seconds FROM workflow_instances
                WHERE framework = \(StoredFramework.name) AND status IN ('running', 'compensating')
                  AND (locked_by IS NULL OR lock_expires_at < \(now)) AND workflow_name = ANY(\(workflowNames))
                ORDER BY updated_at LIMIT \(limit)
                """, logger: self.logger
            ).map {
                ResumableInstance(
                    instanceID: try $0.value("instance_id"), workflowName: try $0.value("workflow_name"),
                    lockTimeoutSeconds: try $0.value("lock_timeout_seconds"))
            }
        }
    }

    // MARK: - Reads

    public func instance(id: String) async throws -> WorkflowInstance? {
        try await read { connection in try await self.fetchInstance(id, on: connection, withSource: true) }
    }

    public func history(instanceID: String) async throws -> [HistoryEvent] {
        try await read { connection in try await self.fetchHistory(instanceID, on: connection) }
    }

    public func compensations(instanceID: String) async throws -> [CompensationRecord] {
        try await read { connection in try await self.fetchCompensations(instanceID, on: connection) }
    }

    public func successor(of instanceID: String) async throws -> String? {
        try await read { connection in
            try await connection.rows(
                "SELECT instance_id FROM workflow_instances WHERE continued_from = \(instanceID) ORDER BY started_at DESC LIMIT 1",
                logger: self.logger
            ).first?.value("instance_id")
        }
    }

    func fetchInstance(_ id: String, on connection: PostgresConnection, withSource: Bool = false) async throws -> WorkflowInstance? {
        let sql = withSource
            ? """
              SELECT \(Self.instanceColumns), d.source_code FROM workflow_instances i
              LEFT JOIN workflow_definitions d ON d.workflow_name = i.workflow_name AND d.source_hash = i.source_hash
              WHERE i.instance_id = $1
              """
            : "SELECT \(Self.instanceColumns) FROM workflow_instances i WHERE i.instance_id = $1"
        var bindings = PostgresBindings()
        bindings.append(id)
        return try await connection.rows(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger).first.map {
            try WorkflowInstance(row: PostgresStoredRow($0), withSource: withSource)
        }
    }

    func fetchHistory(_ instanceID: String, on connection: PostgresConnection) async throws -> [HistoryEvent] {
        try await connection.rows(
            """
            SELECT id, activity_id, event_type, data_type, event_data, event_data_binary, created_at
            FROM workflow_history WHERE instance_id = \(instanceID) ORDER BY created_at, id
            """, logger: logger
        ).map { try HistoryEvent(row: PostgresStoredRow($0), instanceID: instanceID) }
    }

    func fetchCompensations(_ instanceID: String, on connection: PostgresConnection) async throws -> [CompensationRecord] {
        try await connection.rows(
            """
            SELECT id, activity_id, activity_name, args FROM workflow_compensations
            WHERE instance_id = \(instanceID) ORDER BY created_at DESC, id DESC
            """, logger: logger
        ).map { try CompensationRecord(row: PostgresStoredRow($0)) }
    }

    /// Ends an instance by `recur`: archives its history, drops its waits, claims and
    /// compensations, and creates its successor.
    func recur(from instanceID: String, to successor: NewInstance, on connection: PostgresConnection, now: Date) async throws {
        try await connection.query(
            """
            INSERT INTO workflow_history_archive
                (instance_id, activity_id, event_type, data_type, event_data, event_data_binary, created_at, archived_at)
            SELECT instance_id, activity_id, event_type, data_type, event_data, event_data_binary, created_at, \(now)
            FROM workflow_history WHERE instance_id = \(instanceID) ORDER BY created_at, id
            """, logger: logger)
        for table in ["workflow_history", "workflow_timer_subscriptions", "channel_subscriptions", "channel_message_claims", "workflow_compensations"] {
            try await connection.query("DELETE FROM \(unescaped: table) WHERE instance_id = \(instanceID)", logger: logger)
        }
        guard try await connection.count(Self.insertInstance(successor, now: now), logger: logger) == 1 else {
            throw PostgresStoreError("recur: successor instance \(successor.instanceID) exists already")
        }
    }
}

/// A store invariant failed.
struct PostgresStoreError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
