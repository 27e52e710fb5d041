import Edda

/// The SQL of ``SQLiteStore``, as named statements.
extension SQLiteStore {
    enum Statements {
        static let instanceColumns = """
            i.instance_id, i.workflow_name, i.source_hash, i.owner_service, i.framework, i.status,
            i.current_activity_id, i.continued_from, i.started_at, i.updated_at, i.input_data, i.output_data,
            i.locked_by, i.locked_at, i.lock_expires_at, i.lock_timeout_seconds
            """

        static let selectInstance = "SELECT \(instanceColumns) FROM workflow_instances i WHERE i.instance_id = ?"

        static let selectInstanceWithSource = """
            SELECT \(instanceColumns), d.source_code FROM workflow_instances i
            LEFT JOIN workflow_definitions d ON d.workflow_name = i.workflow_name AND d.source_hash = i.source_hash
            WHERE i.instance_id = ?
            """

        static let selectStatusAndLock = "SELECT status, locked_by FROM workflow_instances WHERE instance_id = ?"

        static let insertDefinition = """
            INSERT OR IGNORE INTO workflow_definitions (workflow_name, source_hash, source_code, created_at)
            VALUES (?, ?, ?, ?)
            """

        static let insertInstance = """
            INSERT INTO workflow_instances (
                instance_id, workflow_name, source_hash, owner_service, framework, status, continued_from,
                started_at, updated_at, input_data, locked_by, locked_at, lock_expires_at, lock_timeout_seconds)
            VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (instance_id) DO NOTHING
            """

        /// Takes a free or expired lock on a `running` or `compensating` instance of this framework.
        static let claim = """
            UPDATE workflow_instances SET locked_by = ?, locked_at = ?, lock_expires_at = ?, updated_at = ?
            WHERE instance_id = ? AND framework = ? AND status IN ('running', 'compensating')
              AND (locked_by IS NULL OR lock_expires_at < ?)
            """

        /// The compare-and-set of a transition from one expected status. Arguments: updated_at,
        /// (`settingStatus` only) status, then output_data, current_activity_id, then (`renew`
        /// only) lock_expires_at, then instance_id, locked_by, the expected status. The lock is
        /// kept as it is, extended or released.
        ///
        /// A transition that keeps the status (a step) leaves `status` out of its `SET` list:
        /// SQLite rewrites the entries of every index on a column named there, changed or not,
        /// and `status` is in two of them (`idx_instances_status`, `idx_instances_resumable`) —
        /// two more pages in each step's commit.
        static func transition(_ lock: LockChange, settingStatus: Bool) -> String {
            let texts = settingStatus ? TransitionTexts.settingStatus : TransitionTexts.keepingStatus
            switch lock {
            case .keep: return texts.keepingLock
            case .renew: return texts.renewingLock
            case .release: return texts.releasingLock
            }
        }

        /// The three texts of a transition, one per lock change, built once.
        private struct TransitionTexts {
            static let settingStatus = TransitionTexts(settingStatus: true)
            static let keepingStatus = TransitionTexts(settingStatus: false)

            let keepingLock: String
            let renewingLock: String
            let releasingLock: String

            private init(settingStatus: Bool) {
                func text(settingLock lockColumns: String) -> String {
                    """
                    UPDATE workflow_instances SET updated_at = ?,\(settingStatus ? " status = ?," : "")
                        output_data = COALESCE(?, output_data), current_activity_id = COALESCE(?, current_activity_id)\(lockColumns)
                    WHERE instance_id = ? AND locked_by = ? AND status = ?
                    """
                }
                keepingLock = text(settingLock: "")
                renewingLock = text(settingLock: ", lock_expires_at = ?")
                releasingLock = text(settingLock: ", locked_by = NULL, locked_at = NULL, lock_expires_at = NULL")
            }
        }

        static let insertHistory = """
            INSERT INTO workflow_history (instance_id, activity_id, event_type, data_type, event_data, event_data_binary, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """

        static let insertHistoryIfAbsent = """
            INSERT OR IGNORE INTO workflow_history (instance_id, activity_id, event_type, data_type, event_data, event_data_binary, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """

        static let selectHistory = """
            SELECT id, activity_id, event_type, data_type, event_data, event_data_binary, created_at
            FROM workflow_history WHERE instance_id = ? ORDER BY created_at, id
            """

        static let insertCompensation = """
            INSERT INTO workflow_compensations (instance_id, activity_id, activity_name, args, created_at)
            VALUES (?, ?, ?, ?, ?)
            """

        static let selectCompensations = """
            SELECT id, activity_id, activity_name, args FROM workflow_compensations
            WHERE instance_id = ? ORDER BY created_at DESC, id DESC
            """

        /// Compensations registered but not yet recorded as executed or failed.
        static let countPendingCompensations = """
            SELECT COUNT(*) FROM workflow_compensations c WHERE c.instance_id = ?1
              AND NOT EXISTS (SELECT 1 FROM workflow_history h
                              WHERE h.instance_id = ?1 AND h.activity_id = 'compensation_' || c.id)
            """

        static let releaseLock = """
            UPDATE workflow_instances SET locked_by = NULL, locked_at = NULL, lock_expires_at = NULL, updated_at = ?
            WHERE instance_id = ? AND locked_by = ?
            """

        static let renewLock = """
            UPDATE workflow_instances SET lock_expires_at = ? WHERE instance_id = ? AND locked_by = ?
            """

        static let finishCancelled = """
            UPDATE workflow_instances SET status = 'cancelled', output_data = ?, updated_at = ?,
                locked_by = NULL, locked_at = NULL, lock_expires_at = NULL
            WHERE instance_id = ?
            """

        static let markCompensating = """
            UPDATE workflow_instances SET status = 'compensating', output_data = ?, updated_at = ? WHERE instance_id = ?
            """
    }
}
