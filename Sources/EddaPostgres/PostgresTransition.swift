import Edda
import Foundation
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

    /// The statement as a prepared statement, when it has the most frequent shape (see
    /// ``PreparedStepCommit``).
    var prepared: PreparedStepCommit? {
        !needsTransaction && builder.sql == PreparedStepCommit.sql ? PreparedStepCommit(bindings: builder.bindings) : nil
    }
}

/// The transition statement of the most frequent commit — a step that records one history row,
/// renews the lock and writes nothing else — as a named prepared statement: each connection
/// has PostgreSQL parse it once, and after a few executions plan it once (a generic plan), where
/// an unnamed statement is parsed and planned on every commit; that took more server time than
/// the commit's own work. Any other shape goes as an unnamed statement.
struct PreparedStepCommit: PostgresPreparedStatement {
    static let name = "edda_step_commit_v1"

    /// The text ``TransitionStatement`` writes for that shape (the same for every step of it:
    /// the values are all bound).
    static let sql: String = {
        var template = InstanceTransition.step(
            instanceID: "", workerID: "", leaseUntil: Date(timeIntervalSince1970: 0), currentActivityID: "")
        template.history = [NewHistoryEvent(activityID: "", eventType: "", payload: .json("null"))]
        return TransitionStatement(template, now: Date(timeIntervalSince1970: 0)).sql
    }()

    /// The instance's status after the step.
    typealias Row = String

    let bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }

    func decodeRow(_ row: PostgresRow) throws -> String {
        try row.decode((String, String).self).0
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
