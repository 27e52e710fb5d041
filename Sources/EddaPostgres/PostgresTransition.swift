import Edda
import Foundation
import Logging
import PostgresNIO

/// An ``Edda/InstanceTransition`` as one SQL statement: a compare-and-set `UPDATE` of the
/// instance and, gated on it having matched, every row the transition writes (history,
/// compensations, outbox events, the timer) and removes (subscriptions), with the
/// notifications it causes. Run on its own, the statement is its own transaction: one round
/// trip. The parts no single statement can hold (the user's work, messages to deliver, the
/// successor of `recur`) follow it inside a transaction.
///
/// The statement returns one row (`status`, `workflow_name`) if the compare-and-set matched,
/// none otherwise.
struct TransitionStatement {
    private var builder = QueryBuilder()
    /// The statement's text.
    var sql: String { builder.sql }

    /// Whether the transition also needs statements after this one (and so a transaction).
    let needsTransaction: Bool

    init(_ transition: InstanceTransition, now: Date) {
        needsTransaction = !transition.work.isEmpty || !transition.messages.isEmpty || transition.successor != nil
        let id = builder.bind(transition.instanceID)
        let at = builder.bind(now)
        var set = [
            "updated_at = \(at)",
            "status = COALESCE(\(builder.bind(transition.newStatus?.rawValue)), status)",
            "output_data = COALESCE(\(builder.bind(transition.outputJSON)), output_data)",
            "current_activity_id = COALESCE(\(builder.bind(transition.currentActivityID)), current_activity_id)",
        ]
        switch transition.lock {
        case .keep: break
        case .renew(let until): set.append("lock_expires_at = \(builder.bind(until))")
        case .release: set.append("locked_by = NULL, locked_at = NULL, lock_expires_at = NULL")
        }
        var parts = [
            """
            u AS (UPDATE workflow_instances SET \(set.joined(separator: ", "))
                  WHERE instance_id = \(id) AND locked_by = \(builder.bind(transition.workerID))
                    AND status = ANY(\(builder.bind(transition.expectedStatuses.map(\.rawValue))))
                  RETURNING status, workflow_name)
            """,
        ]
        if !transition.history.isEmpty {
            let rows = transition.history.map { event in
                let columns = MessagePayload(event.payload).columns
                return "(\(builder.bind(event.activityID))::text, \(builder.bind(event.eventType))::text, "
                    + "\(builder.bind(columns.type))::text, \(builder.bind(columns.json))::text, \(builder.bind(columns.binary))::bytea)"
            }
            parts.append(
                """
                h AS (INSERT INTO workflow_history
                          (instance_id, activity_id, event_type, data_type, event_data, event_data_binary, created_at)
                      SELECT \(id), v.a, v.e, v.t, v.j, v.b, \(at) FROM u, (VALUES \(rows.joined(separator: ", "))) v(a, e, t, j, b))
                """)
        }
        if !transition.compensations.isEmpty {
            let rows = transition.compensations.map {
                "(\(builder.bind($0.activityID))::text, \(builder.bind($0.name))::text, \(builder.bind($0.argsJSON))::text)"
            }
            parts.append(
                """
                c AS (INSERT INTO workflow_compensations (instance_id, activity_id, activity_name, args, created_at)
                      SELECT \(id), v.a, v.n, v.j, \(at) FROM u, (VALUES \(rows.joined(separator: ", "))) v(a, n, j))
                """)
        }
        if !transition.outboxEvents.isEmpty {
            let rows = transition.outboxEvents.map { event in
                let columns = event.payload.columns
                return "(\(builder.bind(event.eventID))::text, \(builder.bind(event.eventType))::text, "
                    + "\(builder.bind(event.eventSource))::text, \(builder.bind(columns.type))::text, "
                    + "\(builder.bind(columns.json))::text, \(builder.bind(columns.binary))::bytea, \(builder.bind(event.contentType))::text)"
            }
            parts.append(
                """
                o AS (INSERT INTO outbox_events (event_id, event_type, event_source, data_type, event_data, event_data_binary,
                                                 content_type, created_at, status, retry_count)
                      SELECT v.i, v.e, v.s, v.t, v.j, v.b, v.c, \(at), 'pending', 0
                      FROM u, (VALUES \(rows.joined(separator: ", "))) v(i, e, s, t, j, b, c))
                """)
        }
        if transition.removeSubscriptions {
            parts.append("dc AS (DELETE FROM channel_subscriptions WHERE instance_id = \(id) AND EXISTS (SELECT 1 FROM u))")
            parts.append("dt AS (DELETE FROM workflow_timer_subscriptions WHERE instance_id = \(id) AND EXISTS (SELECT 1 FROM u))")
        }
        // An existing timer with the same ID keeps its expiry. Never together with the removal
        // above: a statement's parts cannot see each other's changes to one table.
        precondition(
            transition.timer == nil || !transition.removeSubscriptions,
            "a transition registers a timer or removes the subscriptions, not both")
        if let timer = transition.timer {
            parts.append(
                """
                t AS (INSERT INTO workflow_timer_subscriptions (instance_id, timer_id, expires_at, activity_id, created_at)
                      SELECT \(id), \(builder.bind(timer.timerID)), \(builder.bind(timer.expiresAt)), \(builder.bind(timer.activityID)), \(at)
                      FROM u ON CONFLICT (instance_id, timer_id) DO NOTHING)
                """)
        }
        // Notifications are delivered when the statement's transaction commits.
        var select = ["u.status", "u.workflow_name"]
        if transition.timer != nil {
            select.append("pg_notify('\(NotifyChannel.waits)', '{}')")
        }
        if !transition.outboxEvents.isEmpty {
            select.append("pg_notify('\(NotifyChannel.outbox)', '{}')")
        }
        if case .release = transition.lock {
            select.append(
                """
                CASE WHEN u.status IN ('running', 'compensating') THEN
                    pg_notify('\(NotifyChannel.resumable)', json_build_object('wf_id', \(id)::text, 'wf_name', u.workflow_name)::text)
                END
                """)
        }
        builder.sql = "WITH \(parts.joined(separator: ",\n")) SELECT \(select.joined(separator: ", ")) FROM u"
    }

    var query: PostgresQuery { builder.query }
}

/// A statement this store sends so often that PostgreSQL should parse it once per connection
/// and, after a few executions, plan it once (a generic plan): for these, parsing and planning
/// an unnamed statement took more server time than the statement's own work. Each text is the
/// one the store writes for its shape, derived from a template so that the two cannot drift;
/// a query runs prepared only when its text is identical (the values are all bound).
///
/// A connection prepares a statement with the parameter types of its first execution (PostgresNIO
/// takes them from those bindings; a `NULL` leaves the type to the server, which infers it from
/// the column). So every parameter that may be `NULL` and whose column type differs from the
/// bound one is cast in the text (`lock_timeout_seconds` is bound as `int8`: `::int8`), and
/// times bound as `timestamptz` into `TIMESTAMP` columns rely on the session's UTC time zone
/// (set by ``PostgresStore``), as the unnamed statements do.
protocol FrequentStatement {
    static var name: String { get }
    static var sql: String { get }
}

/// A step that records one history row, keeps the lock as it is and writes nothing else.
enum StepCommit: FrequentStatement {
    static let name = "edda_step_commit_v1"
    static let sql: String = {
        var template = InstanceTransition.step(instanceID: "", workerID: "", currentActivityID: "")
        template.history = [NewHistoryEvent(activityID: "", eventType: "", payload: .json("null"))]
        return TransitionStatement(template, now: Date(timeIntervalSince1970: 0)).sql
    }()
}

/// An instance finishing (completed, failed or cancelled) with nothing else to write.
enum FinishCommit: FrequentStatement {
    static let name = "edda_finish_v1"
    static let sql = TransitionStatement(
        .finish(instanceID: "", workerID: "", as: .completed, outputJSON: ""), now: Date(timeIntervalSince1970: 0)).sql
}

/// A new instance, with its workflow definition if that is new.
enum CreateInstance: FrequentStatement {
    static let name = "edda_create_instance_v1"
    static let sql = PostgresStore.insertInstance(
        NewInstance(instanceID: "", workflowName: "", sourceHash: "", sourceCode: "", ownerService: "", inputJSON: ""),
        now: Date(timeIntervalSince1970: 0)
    ).sql
}

/// A frequent statement's text with a query's values, as a named prepared statement.
struct PreparedStatement<Statement: FrequentStatement>: PostgresPreparedStatement {
    typealias Row = PostgresRow
    static var name: String { Statement.name }
    static var sql: String { Statement.sql }

    let bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

extension PostgresConnection {
    /// The name of the prepared statement `sql` runs as, if it is a frequent one.
    static func preparedName(of sql: String) -> String? {
        switch sql {
        case StepCommit.sql: StepCommit.name
        case FinishCommit.sql: FinishCommit.name
        case CreateInstance.sql: CreateInstance.name
        default: nil
        }
    }

    /// The rows of `query`, run as a named prepared statement when its text is a frequent one
    /// (outside a transaction, the statement is its own: one round trip either way).
    func rows(preparingFrequent query: PostgresQuery, logger: Logger) async throws -> [PostgresRandomAccessRow] {
        switch query.sql {
        case StepCommit.sql: try await rows(PreparedStatement<StepCommit>(bindings: query.binds), logger: logger)
        case FinishCommit.sql: try await rows(PreparedStatement<FinishCommit>(bindings: query.binds), logger: logger)
        case CreateInstance.sql: try await rows(PreparedStatement<CreateInstance>(bindings: query.binds), logger: logger)
        default: try await rows(query, logger: logger)
        }
    }

    /// Runs `statement`. An error that says the statement itself is broken on this connection
    /// closes the connection: PostgresNIO keeps a failed preparation for the connection's life,
    /// and a statement whose plan went stale (a column's type changed under it, `0A000`) fails on
    /// every later execution, so the pool opens a fresh one. (The engine retries the operation;
    /// the statement that failed changed nothing.) Other errors — a conflict, a deadlock, a
    /// timeout — leave the connection as it is.
    private func rows<Statement>(_ statement: PreparedStatement<Statement>, logger: Logger) async throws -> [PostgresRandomAccessRow] {
        do {
            var rows: [PostgresRandomAccessRow] = []
            for try await row in try await execute(statement, logger: logger) { rows.append(row.makeRandomAccess()) }
            return rows
        } catch let error as PSQLError where error.code == .server && Self.breaksPreparedStatement(error.serverInfo?[.sqlState]) {
            logger.warning(
                "Prepared statement \(Statement.name) failed; closing its connection",
                metadata: ["edda.error": .string(error.serverInfo?[.message] ?? "\(error)")])
            try? await close()
            // The pool learns of the close from the close future; wait for it, so that this
            // connection is never handed to the next operation.
            try? await closeFuture.get()
            throw error
        }
    }

    /// Whether a server error with `sqlState` leaves a prepared statement unusable on its
    /// connection: a stale plan (`0A000`), a missing prepared statement (`26000`), or an error in
    /// the statement's text or the objects it names (class `42`).
    static func breaksPreparedStatement(_ sqlState: String?) -> Bool {
        guard let sqlState else { return false }
        return sqlState == "0A000" || sqlState == "26000" || sqlState.hasPrefix("42")
    }
}

extension MessagePayload {
    init(_ payload: HistoryPayload) {
        switch payload {
        case .json(let text): self = .json(text)
        case .binary(let bytes): self = .binary(bytes)
        }
    }
}
