import Edda
import Foundation

/// Instances, steps, locks, cancellation and queries.
extension MySQLStore {
    static let instanceColumns = """
        i.instance_id, i.workflow_name, i.source_hash, i.owner_service, i.framework, i.status,
        i.current_activity_id, i.continued_from, i.started_at, i.updated_at, i.input_data, i.output_data,
        i.locked_by, i.locked_at, i.lock_expires_at, i.lock_timeout_seconds
        """

    /// `workflow_definitions.created_at` of rows this library writes: the Unix epoch's first
    /// second (`TIMESTAMP` begins there), so that they are never a workflow name's newest row
    /// (see ``Edda/NewInstance/definitionCreatedAt``).
    static let definitionCreatedAt = max(NewInstance.definitionCreatedAt, Date(timeIntervalSince1970: 1))

    public func createInstance(_ instance: NewInstance, now: Date) async throws -> CreateInstanceOutcome {
        let created = try await read { connection in
            // One batch: the definition (if new) and the instance, in one transaction.
            do {
                _ = try connection.transactionBatch(Self.insertInstanceStatements(instance, now: now))
                return true
            } catch let error as MySQLError where error.isDuplicateKey {
                return false
            }
        }
        if created { return .created }
        guard let existing = try await read({ connection in try Self.fetchInstance(instance.instanceID, on: connection) }) else {
            throw MySQLStoreError("instance \(instance.instanceID) neither inserted nor found")
        }
        return .existing(existing)
    }

    /// Inserts the definition (if new) and the instance; `false` if the instance exists.
    static func insertInstance(_ instance: NewInstance, on connection: MySQLConnection, now: Date) throws -> Bool {
        let statements = insertInstanceStatements(instance, now: now)
        try connection.execute(statements[0])
        return try connection.insertUnlessDuplicate(statements[1])
    }

    /// The definition's upsert and the instance's insert (which fails on a duplicate ID).
    static func insertInstanceStatements(_ instance: NewInstance, now: Date) -> [MySQLQuery] {
        let lockedAt: Date? = instance.lockedBy == nil ? nil : now
        return [
            """
            INSERT INTO workflow_definitions (workflow_name, source_hash, source_code, created_at)
            VALUES (\(instance.workflowName), \(instance.sourceHash), \(instance.sourceCode), \(definitionCreatedAt))
            ON DUPLICATE KEY UPDATE workflow_name = workflow_name
            """,
            """
            INSERT INTO workflow_instances (
                instance_id, workflow_name, source_hash, owner_service, framework, status, continued_from,
                started_at, updated_at, input_data, locked_by, locked_at, lock_expires_at, lock_timeout_seconds)
            VALUES (\(instance.instanceID), \(instance.workflowName), \(instance.sourceHash), \(instance.ownerService),
                    \(StoredFramework.name), 'running', \(instance.continuedFrom), \(now), \(now), \(instance.inputJSON),
                    \(instance.lockedBy), \(lockedAt), \(instance.lockExpiresAt?.roundedUpToSecond), \(instance.lockTimeoutSeconds))
            """,
        ]
    }

    public func claim(instanceID: String, workerID: String, leaseUntil: Date, now: Date) async throws -> ClaimedInstance? {
        // One batch: the compare-and-set and the reads replay needs (useless, and
        // ignored, when the compare-and-set did not match).
        try await read { connection in
            let outcomes = try connection.transactionBatch([
                """
                UPDATE workflow_instances SET locked_by = \(workerID), locked_at = \(now), lock_expires_at = \(leaseUntil.roundedUpToSecond),
                    updated_at = \(now)
                WHERE instance_id = \(instanceID) AND framework = \(StoredFramework.name)
                  AND status IN ('running', 'compensating') AND (locked_by IS NULL OR lock_expires_at < \(now))
                """,
            ] + Self.claimedInstanceQueries(instanceID))
            guard outcomes[0].affectedRows == 1 else { return nil }
            return try Self.claimedInstance(instanceID, from: outcomes.dropFirst())
        }
    }

    /// An instance just claimed, with everything replay needs (read in one round trip).
    static func claimedInstance(_ instanceID: String, on connection: MySQLConnection) throws -> ClaimedInstance? {
        try claimedInstance(instanceID, from: try connection.runAll(claimedInstanceQueries(instanceID))[...])
    }

    /// The instance, its subscriptions, history and compensations.
    static func claimedInstanceQueries(_ instanceID: String) -> [MySQLQuery] {
        [
            instanceQuery(instanceID, withSource: false),
            "SELECT channel, mode FROM channel_subscriptions WHERE instance_id = \(instanceID)",
            historyQuery(instanceID),
            compensationsQuery(instanceID),
        ]
    }

    /// The claimed instance from the outcomes of ``claimedInstanceQueries(_:)``.
    static func claimedInstance(_ instanceID: String, from results: ArraySlice<MySQLConnection.Outcome>) throws -> ClaimedInstance? {
        let results = Array(results)
        guard let row = results[0].rows.first else { return nil }
        var subscriptions: [String: String] = [:]
        for row in results[1].rows {
            subscriptions[try row.required("channel", row.string)] = try row.required("mode", row.string)
        }
        return ClaimedInstance(
            instance: try WorkflowInstance(row: MySQLStoredRow(row), withSource: false),
            history: try results[2].rows.map { try HistoryEvent(row: MySQLStoredRow($0), instanceID: instanceID) },
            compensations: try results[3].rows.map { try CompensationRecord(row: MySQLStoredRow($0)) }, subscriptions: subscriptions)
    }

    public func apply(_ transition: InstanceTransition, now: Date) async throws -> TransitionOutcome {
        guard transition.work.isEmpty, transition.messages.isEmpty, transition.successor == nil else {
            return try await transaction { connection in
                try self.apply(transition, on: connection, now: now)
            }
        }
        // Everything the transition writes, in one batch (see `TransitionBatch`).
        let batch = TransitionBatch(transition, now: now)
        return try await read { connection in
            // Committed only if the compare-and-set matched (see `transactionBatch`).
            var applied: TransitionOutcome?
            _ = try connection.transactionBatch(batch.statements) { outcomes in
                applied = try batch.outcome(outcomes.last)
                return applied != nil
            }
            if let applied { return applied }
            return try Self.rejection(transition.instanceID, on: connection)
        }
    }

    /// Why a compare-and-set did not match: the status and holder found, read afresh.
    static func rejection(_ instanceID: String, on connection: MySQLConnection) throws -> TransitionOutcome {
        let row = try connection.query("SELECT status, locked_by FROM workflow_instances WHERE instance_id = \(instanceID)").first
        return .rejected(
            status: try row.map { WorkflowStatus(rawValue: try $0.required("status", $0.string)) }, lockedBy: try row?.string("locked_by"))
    }

    /// Applies a transition that needs more than its batch, inside the caller's transaction: the
    /// batch first (compare-and-set and the rows it writes), then the user's work, the successor
    /// of `recur` and the deliveries.
    private func apply(_ transition: InstanceTransition, on connection: MySQLConnection, now: Date) throws -> TransitionOutcome {
        let id = transition.instanceID
        let batch = TransitionBatch(transition, now: now)
        guard case .applied(let status, _)? = try batch.outcome(try connection.runAll(batch.statements).last) else {
            return try Self.rejection(id, on: connection)
        }
        for work in transition.work {
            let work = try MySQLTransactionalWork.required(work)
            do {
                try work.body(connection)
            } catch {
                throw TransactionalWorkError(underlying: error)
            }
        }
        if let successor = transition.successor {
            try Self.recur(from: id, to: successor, on: connection, now: now)
        }
        var deliveries: [DeliveryReport] = []
        if !transition.messages.isEmpty {
            let claim = transition.claimPolicy ?? ClaimPolicy(workerID: transition.workerID, leases: [:])
            for message in transition.messages {
                deliveries.append(try publish(message, claim: claim, on: connection, now: now))
            }
            for event in transition.historyAfterDelivery?(deliveries) ?? [] {
                try Self.insertHistory(event, instanceID: id, on: connection, now: now)
            }
        }
        return .applied(status: status, deliveries: deliveries)
    }

    /// Inserts a history row; `false` if the step ID already has one (only with `ifAbsent`).
    @discardableResult
    static func insertHistory(
        _ event: NewHistoryEvent, instanceID: String, on connection: MySQLConnection, now: Date, ifAbsent: Bool = false
    ) throws -> Bool {
        let columns = MessagePayload(event.payload).columns
        let insert: MySQLQuery = """
            INSERT INTO workflow_history (instance_id, activity_id, event_type, data_type, event_data, event_data_binary, created_at)
            VALUES (\(instanceID), \(event.activityID), \(event.eventType), \(columns.type), \(columns.json), \(columns.binary), \(now))
            """
        if ifAbsent { return try connection.insertUnlessDuplicate(insert) }
        try connection.execute(insert)
        return true
    }

    static func insertCompensation(_ compensation: CompensationRecord, instanceID: String, on connection: MySQLConnection, now: Date) throws {
        try connection.execute(
            """
            INSERT INTO workflow_compensations (instance_id, activity_id, activity_name, args, created_at)
            VALUES (\(instanceID), \(compensation.activityID), \(compensation.name), \(compensation.argsJSON), \(now))
            """)
    }

    public func releaseLock(instanceID: String, workerID: String, now: Date) async throws {
        try await read { connection in
            try connection.execute(
                """
                UPDATE workflow_instances SET locked_by = NULL, locked_at = NULL, lock_expires_at = NULL, updated_at = \(now)
                WHERE instance_id = \(instanceID) AND locked_by = \(workerID)
                """)
        }
        poller.changed()
    }

    public func renewLocks(instanceIDs: [String], workerID: String, leaseUntil: Date, now: Date) async throws -> [String: WorkflowStatus] {
        guard !instanceIDs.isEmpty else { return [:] }
        return try await read { connection in
            // One batch. `updated_at = updated_at`: a renewal is not a change (the column
            // would otherwise take the server's time, `ON UPDATE CURRENT_TIMESTAMP`).
            let outcomes = try connection.transactionBatch([
                """
                UPDATE workflow_instances SET lock_expires_at = \(leaseUntil.roundedUpToSecond), updated_at = updated_at
                WHERE instance_id IN \(list: instanceIDs) AND locked_by = \(workerID)
                """,
                "SELECT instance_id, status FROM workflow_instances WHERE instance_id IN \(list: instanceIDs) AND locked_by = \(workerID)",
            ])
            var held: [String: WorkflowStatus] = [:]
            for row in outcomes[1].rows {
                held[try row.required("instance_id", row.string)] = WorkflowStatus(rawValue: try row.required("status", row.string))
            }
            return held
        }
    }

    public func requestCancellation(instanceID: String, cancelledBy: String, now: Date) async throws -> CancellationOutcome {
        let outcome = try await transaction { connection -> CancellationOutcome in
            let row = try connection.query(
                """
                SELECT status, framework, workflow_name, locked_by, lock_expires_at FROM workflow_instances
                WHERE instance_id = \(instanceID) FOR UPDATE
                """).first
            let candidate = try row.map {
                CancellationCandidate(
                    status: WorkflowStatus(rawValue: try $0.required("status", $0.string)), framework: try $0.required("framework", $0.string),
                    lockedBy: try $0.string("locked_by"), lockExpiresAt: try $0.date("lock_expires_at"))
            }
            let plan: CancellationPlan
            switch CancellationPlan.decide(candidate, framework: StoredFramework.name, cancelledBy: cancelledBy, now: now) {
            case .refuse(let outcome): return outcome
            case .proceed(let proceeding): plan = proceeding
            }
            let recorded = try Self.insertHistory(plan.historyEvent, instanceID: instanceID, on: connection, now: now, ifAbsent: true)
            guard recorded, row != nil else { return plan.alreadyRequested }

            let pending = try connection.query(
                """
                SELECT COUNT(*) AS n FROM workflow_compensations c WHERE c.instance_id = \(instanceID)
                  AND NOT EXISTS (SELECT 1 FROM workflow_history h
                                  WHERE h.instance_id = c.instance_id AND h.activity_id = CONCAT('compensation_', c.id))
                """).first?.int("n") ?? 0
            let ending = plan.ending(pendingCompensations: pending)
            switch ending {
            case .cancelNow(let output):
                try connection.execute(
                    """
                    UPDATE workflow_instances SET status = 'cancelled', output_data = \(output), updated_at = \(now),
                        locked_by = NULL, locked_at = NULL, lock_expires_at = NULL
                    WHERE instance_id = \(instanceID)
                    """)
                try connection.execute("DELETE FROM channel_subscriptions WHERE instance_id = \(instanceID)")
                try connection.execute("DELETE FROM workflow_timer_subscriptions WHERE instance_id = \(instanceID)")
            case .compensate(let output, _):
                try connection.execute(
                    "UPDATE workflow_instances SET status = 'compensating', output_data = \(output), updated_at = \(now) WHERE instance_id = \(instanceID)")
                try connection.execute("DELETE FROM workflow_timer_subscriptions WHERE instance_id = \(instanceID)")
                try connection.execute("UPDATE channel_subscriptions SET activity_id = NULL, timeout_at = NULL WHERE instance_id = \(instanceID)")
            }
            return ending.outcome
        }
        poller.changed()
        return outcome
    }

    public func resumableInstances(workflowNames: [String], limit: Int, now: Date) async throws -> [ResumableInstance] {
        guard !workflowNames.isEmpty else { return [] }
        return try await read { connection in
            try connection.query(
                """
                SELECT instance_id, workflow_name, lock_timeout_seconds FROM workflow_instances
                WHERE framework = \(StoredFramework.name) AND status IN ('running', 'compensating')
                  AND (locked_by IS NULL OR lock_expires_at < \(now)) AND workflow_name IN \(list: workflowNames)
                ORDER BY updated_at LIMIT \(limit)
                """
            ).map {
                ResumableInstance(
                    instanceID: try $0.required("instance_id", $0.string), workflowName: try $0.required("workflow_name", $0.string),
                    lockTimeoutSeconds: try $0.int("lock_timeout_seconds"))
            }
        }
    }

    // MARK: - Reads

    public func instance(id: String) async throws -> WorkflowInstance? {
        try await read { connection in try Self.fetchInstance(id, on: connection, withSource: true) }
    }

    public func history(instanceID: String) async throws -> [HistoryEvent] {
        try await read { connection in try Self.fetchHistory(instanceID, on: connection) }
    }

    public func compensations(instanceID: String) async throws -> [CompensationRecord] {
        try await read { connection in try Self.fetchCompensations(instanceID, on: connection) }
    }

    public func successor(of instanceID: String) async throws -> String? {
        try await read { connection in
            try connection.query(
                "SELECT instance_id FROM workflow_instances WHERE continued_from = \(instanceID) ORDER BY started_at DESC LIMIT 1"
            ).first?.string("instance_id")
        }
    }

    static func fetchInstance(_ id: String, on connection: MySQLConnection, withSource: Bool = false) throws -> WorkflowInstance? {
        try connection.query(instanceQuery(id, withSource: withSource)).first.map {
            try WorkflowInstance(row: MySQLStoredRow($0), withSource: withSource)
        }
    }

    static func instanceQuery(_ id: String, withSource: Bool) -> MySQLQuery {
        withSource
            ? """
              SELECT \(unescaped: instanceColumns), d.source_code FROM workflow_instances i
              LEFT JOIN workflow_definitions d ON d.workflow_name = i.workflow_name AND d.source_hash = i.source_hash
              WHERE i.instance_id = \(id)
              """
            : "SELECT \(unescaped: instanceColumns) FROM workflow_instances i WHERE i.instance_id = \(id)"
    }

    static func fetchHistory(_ instanceID: String, on connection: MySQLConnection) throws -> [HistoryEvent] {
        try connection.query(historyQuery(instanceID)).map { try HistoryEvent(row: MySQLStoredRow($0), instanceID: instanceID) }
    }

    static func historyQuery(_ instanceID: String) -> MySQLQuery {
        """
        SELECT id, activity_id, event_type, data_type, event_data, event_data_binary, created_at
        FROM workflow_history WHERE instance_id = \(instanceID) ORDER BY created_at, id
        """
    }

    static func fetchCompensations(_ instanceID: String, on connection: MySQLConnection) throws -> [CompensationRecord] {
        try connection.query(compensationsQuery(instanceID)).map { try CompensationRecord(row: MySQLStoredRow($0)) }
    }

    static func compensationsQuery(_ instanceID: String) -> MySQLQuery {
        """
        SELECT id, activity_id, activity_name, args FROM workflow_compensations
        WHERE instance_id = \(instanceID) ORDER BY created_at DESC, id DESC
        """
    }

    /// Ends an instance by `recur`: archives its history, drops its waits, claims and
    /// compensations, and creates its successor.
    static func recur(from instanceID: String, to successor: NewInstance, on connection: MySQLConnection, now: Date) throws {
        try connection.execute(
            """
            INSERT INTO workflow_history_archive
                (instance_id, activity_id, event_type, data_type, event_data, event_data_binary, created_at, archived_at)
            SELECT instance_id, activity_id, event_type, data_type, event_data, event_data_binary, created_at, \(now)
            FROM workflow_history WHERE instance_id = \(instanceID) ORDER BY created_at, id
            """)
        for table in ["workflow_history", "workflow_timer_subscriptions", "channel_subscriptions", "channel_message_claims", "workflow_compensations"] {
            try connection.execute("DELETE FROM \(unescaped: table) WHERE instance_id = \(instanceID)")
        }
        guard try insertInstance(successor, on: connection, now: now) else {
            throw MySQLStoreError("recur: successor instance \(successor.instanceID) exists already")
        }
    }
}

extension MySQLConnection {
    /// Runs an `INSERT`; `false` if it hit a duplicate key (and changed nothing). Inside a
    /// transaction only the statement is undone, as InnoDB does for a failed statement.
    @discardableResult
    func insertUnlessDuplicate(_ insert: MySQLQuery) throws -> Bool {
        do {
            try execute(insert)
            return true
        } catch let error as MySQLError where error.isDuplicateKey {
            return false
        }
    }
}

extension MessagePayload {
    init(_ payload: HistoryPayload) {
        switch payload {
        case .json(let text): self = .json(text)
        case .binary(let bytes): self = .binary(bytes)
        }
    }

    /// `(data_type, JSON text, bytes)` for the shared schema's json/binary column pairs.
    var columns: (type: String, json: String?, binary: [UInt8]?) {
        switch self {
        case .json(let text): return ("json", text, nil)
        case .binary(let bytes): return ("binary", nil, bytes)
        }
    }
}
