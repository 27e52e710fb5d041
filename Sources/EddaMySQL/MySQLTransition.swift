import Edda
import Foundation

/// An ``Edda/InstanceTransition`` as one batch of statements sent at once, inside one
/// transaction: the compare-and-set `UPDATE` of the instance, then every row the transition
/// writes (history, compensations, outbox events, the timer) and removes (subscriptions), each
/// gated on the `UPDATE` having matched (`@edda_matched`), and last the instance's status and
/// holder, read in the same transaction. The store commits it in a second round trip, and only
/// if the compare-and-set matched (see `MySQLConnection.transactionBatch`). The parts no batch
/// can hold (the user's work, messages to deliver, the successor of `recur`) take the
/// statement-by-statement path instead.
struct TransitionBatch {
    private(set) var statements: [MySQLQuery] = []
    /// The status the instance has once the transition applied, when the transition says it
    /// (then the batch reads only whether it matched).
    private let knownStatus: WorkflowStatus?

    init(_ transition: InstanceTransition, now: Date) {
        let id = transition.instanceID
        knownStatus = transition.newStatus ?? (transition.expectedStatuses.count == 1 ? transition.expectedStatuses[0] : nil)
        var set: MySQLQuery = "updated_at = \(now)"
        if let status = transition.newStatus { set.append(", status = \(status.rawValue)") }
        if let output = transition.outputJSON { set.append(", output_data = \(output)") }
        if let activity = transition.currentActivityID { set.append(", current_activity_id = \(activity)") }
        switch transition.lock {
        case .keep: break
        case .renew(let until): set.append(", lock_expires_at = \(until.roundedUpToSecond)")
        case .release: set.append(", locked_by = NULL, locked_at = NULL, lock_expires_at = NULL")
        }
        statements.append(
            """
            UPDATE workflow_instances SET \(set)
            WHERE instance_id = \(id) AND locked_by = \(transition.workerID)
              AND status IN \(list: transition.expectedStatuses.map(\.rawValue))
            """)
        statements.append("SET @edda_matched = ROW_COUNT()")
        for event in transition.history {
            let columns = MessagePayload(event.payload).columns
            statements.append(
                """
                INSERT INTO workflow_history (instance_id, activity_id, event_type, data_type, event_data, event_data_binary, created_at)
                SELECT \(id), \(event.activityID), \(event.eventType), \(columns.type), \(columns.json), \(columns.binary), \(now)
                FROM DUAL WHERE @edda_matched = 1
                """)
        }
        for compensation in transition.compensations {
            statements.append(
                """
                INSERT INTO workflow_compensations (instance_id, activity_id, activity_name, args, created_at)
                SELECT \(id), \(compensation.activityID), \(compensation.name), \(compensation.argsJSON), \(now)
                FROM DUAL WHERE @edda_matched = 1
                """)
        }
        for event in transition.outboxEvents {
            let columns = event.payload.columns
            statements.append(
                """
                INSERT INTO outbox_events (event_id, event_type, event_source, data_type, event_data, event_data_binary,
                                           content_type, created_at, status, retry_count)
                SELECT \(event.eventID), \(event.eventType), \(event.eventSource), \(columns.type), \(columns.json),
                       \(columns.binary), \(event.contentType), \(now), 'pending', 0
                FROM DUAL WHERE @edda_matched = 1
                """)
        }
        if transition.removeSubscriptions {
            statements.append("DELETE FROM channel_subscriptions WHERE instance_id = \(id) AND @edda_matched = 1")
            statements.append("DELETE FROM workflow_timer_subscriptions WHERE instance_id = \(id) AND @edda_matched = 1")
        }
        if let timer = transition.timer {
            // An existing timer with the same ID keeps its expiry.
            statements.append(
                """
                INSERT INTO workflow_timer_subscriptions (instance_id, timer_id, expires_at, activity_id, created_at)
                SELECT \(id), \(timer.timerID), \(timer.expiresAt.roundedUpToSecond), \(timer.activityID), \(now)
                FROM DUAL WHERE @edda_matched = 1
                ON DUPLICATE KEY UPDATE id = id
                """)
        }
        statements.append(
            knownStatus == nil
                ? "SELECT @edda_matched AS matched, status FROM workflow_instances WHERE instance_id = \(id)"
                : "SELECT @edda_matched AS matched")
    }

    /// The outcome, from the batch's last result; `nil` if the compare-and-set did not match
    /// (the caller reads why).
    func outcome(_ read: MySQLConnection.Outcome?) throws -> TransitionOutcome? {
        guard let row = read?.rows.first, try row.int("matched") == 1 else { return nil }
        return .applied(status: try knownStatus ?? WorkflowStatus(rawValue: try row.required("status", row.string)))
    }
}
