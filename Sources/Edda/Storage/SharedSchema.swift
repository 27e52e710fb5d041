/// The family's shared schema (the "Durax" schema of Python Edda, Go Romancy and Ruby Shikibu),
/// described once and rendered in each SQL dialect the family ships.
///
/// The reference keeps one dbmate file per dialect (`migrations/{sqlite,postgresql,mysql}/`);
/// they differ only in column types, the current-time default, auto-increment keys, the spelling
/// of named unique keys, MySQL's `TIMESTAMP NULL` and `ON UPDATE CURRENT_TIMESTAMP`, and its
/// indexes without `IF NOT EXISTS`. Here the tables, columns, constraints and indexes are written
/// once and rendered statement by statement as those files write them (a test compares the
/// renderings with the files of the installed Python package). A driver applies
/// ``migrations(in:)`` through ``SchemaMigrator``.
public enum SharedSchema {
    /// An SQL dialect of the shared schema.
    public enum Dialect: String, Sendable, CaseIterable {
        /// SQLite: `TEXT` times, `INTEGER PRIMARY KEY AUTOINCREMENT`.
        case sqlite
        /// PostgreSQL: `TIMESTAMP`, `SERIAL`, `BYTEA`.
        case postgresql
        /// MySQL and MariaDB: `VARCHAR(n)`, `LONGTEXT`, `LONGBLOB`, `AUTO_INCREMENT`.
        case mysql
    }

    /// The shared schema's migrations in `dialect`, one for each of ``SchemaMigrator/versions``.
    public static func migrations(in dialect: Dialect) -> [SchemaMigration] {
        [SchemaMigration(version: "20251217000000", statements: statements(of: initialSchema, in: dialect))]
    }

    /// The DDL of `tables` in `dialect`: each table, then its indexes.
    static func statements(of tables: [Table], in dialect: Dialect) -> [String] {
        tables.flatMap { table in [table.createStatement(in: dialect)] + table.indexes.map { table.indexStatement($0, in: dialect) } }
    }

    // MARK: - The model

    enum ColumnType {
        /// An auto-incremented integer primary key.
        case autoID
        case int
        /// `VARCHAR(n)` on MySQL, `TEXT` elsewhere.
        case varchar(Int)
        /// `TEXT` everywhere.
        case text
        /// `LONGTEXT` on MySQL, `TEXT` elsewhere.
        case longText
        case blob
        /// `TIMESTAMP`; `TEXT` on SQLite.
        case timestamp
    }

    struct Column {
        let name: String
        let type: ColumnType
        var notNull = false
        var primaryKey = false
        var unique = false
        /// An SQL literal, or `nil`; see ``defaultsToNow``.
        var defaultValue: String?
        var defaultsToNow = false
        /// MySQL's `ON UPDATE CURRENT_TIMESTAMP`.
        var updatesToNow = false
    }

    enum Element {
        case column(Column)
        case primaryKey([String])
        case check(name: String, expression: String)
        case foreignKey([String], references: String, cascades: Bool)
        case unique(name: String, columns: [String])
    }

    struct Table {
        let name: String
        let elements: [Element]
        /// Each: the index's name and its column list as written (`"instance_id, created_at DESC"`).
        var indexes: [(name: String, columns: String)] = []

        func createStatement(in dialect: Dialect) -> String {
            let body = elements.map { "    " + $0.sql(in: dialect) }.joined(separator: ",\n")
            return "CREATE TABLE IF NOT EXISTS \(name) (\n\(body)\n)"
        }

        func indexStatement(_ index: (name: String, columns: String), in dialect: Dialect) -> String {
            "CREATE INDEX \(dialect == .mysql ? "" : "IF NOT EXISTS ")\(index.name) ON \(name)(\(index.columns))"
        }
    }
}

extension SharedSchema.ColumnType {
    func sql(in dialect: SharedSchema.Dialect) -> String {
        switch (self, dialect) {
        case (.autoID, .sqlite): "INTEGER PRIMARY KEY AUTOINCREMENT"
        case (.autoID, .postgresql): "SERIAL PRIMARY KEY"
        case (.autoID, .mysql): "INT AUTO_INCREMENT PRIMARY KEY"
        case (.int, .mysql): "INT"
        case (.int, _): "INTEGER"
        case (.varchar(let length), .mysql): "VARCHAR(\(length))"
        case (.longText, .mysql): "LONGTEXT"
        case (.varchar, _), (.text, _), (.longText, _): "TEXT"
        case (.blob, .sqlite): "BLOB"
        case (.blob, .postgresql): "BYTEA"
        case (.blob, .mysql): "LONGBLOB"
        case (.timestamp, .sqlite): "TEXT"
        case (.timestamp, _): "TIMESTAMP"
        }
    }
}

extension SharedSchema.Element {
    func sql(in dialect: SharedSchema.Dialect) -> String {
        switch self {
        case .column(let column):
            var sql = "\(column.name) \(column.type.sql(in: dialect))"
            if column.primaryKey { sql += " PRIMARY KEY" }
            if column.notNull { sql += " NOT NULL" }
            // MySQL makes a TIMESTAMP column NOT NULL unless told otherwise.
            if case .timestamp = column.type, dialect == .mysql, !column.notNull, !column.primaryKey { sql += " NULL" }
            if column.unique { sql += " UNIQUE" }
            if column.defaultsToNow {
                switch dialect {
                case .sqlite: sql += " DEFAULT (datetime('now'))"
                case .postgresql: sql += " DEFAULT NOW()"
                case .mysql: sql += " DEFAULT CURRENT_TIMESTAMP"
                }
            } else if let value = column.defaultValue {
                sql += " DEFAULT \(value)"
            }
            if column.updatesToNow, dialect == .mysql { sql += " ON UPDATE CURRENT_TIMESTAMP" }
            return sql
        case .primaryKey(let columns):
            return "PRIMARY KEY (\(columns.joined(separator: ", ")))"
        case .check(let name, let expression):
            return "CONSTRAINT \(name) CHECK (\(expression))"
        case .foreignKey(let columns, let references, let cascades):
            return "FOREIGN KEY (\(columns.joined(separator: ", "))) REFERENCES \(references)" + (cascades ? " ON DELETE CASCADE" : "")
        case .unique(let name, let columns):
            let list = columns.joined(separator: ", ")
            return dialect == .mysql ? "UNIQUE KEY \(name) (\(list))" : "CONSTRAINT \(name) UNIQUE (\(list))"
        }
    }
}

// MARK: - Migration 20251217000000_initial_schema

extension SharedSchema {
    private static func column(
        _ name: String, _ type: ColumnType, notNull: Bool = false, primaryKey: Bool = false, unique: Bool = false,
        default value: String? = nil, now: Bool = false, updatesToNow: Bool = false
    ) -> Element {
        .column(Column(
            name: name, type: type, notNull: notNull, primaryKey: primaryKey, unique: unique, defaultValue: value,
            defaultsToNow: now, updatesToNow: updatesToNow))
    }

    private static let id = column("id", .autoID)
    private static let instanceID = column("instance_id", .varchar(255), notNull: true)
    private static let instanceCascade = Element.foreignKey(["instance_id"], references: "workflow_instances(instance_id)", cascades: true)
    private static func createdNow(_ name: String = "created_at") -> Element { column(name, .timestamp, notNull: true, now: true) }
    /// The history's columns, shared by `workflow_history` and its archive.
    private static let historyColumns = [
        id, instanceID,
        column("activity_id", .varchar(255), notNull: true),
        column("event_type", .varchar(100), notNull: true),
        column("data_type", .varchar(10), notNull: true, default: "'json'"),
        column("event_data", .longText),
        column("event_data_binary", .blob),
    ]

    static let initialSchema: [Table] = [
        Table(name: "schema_version", elements: [
            column("version", .int, primaryKey: true),
            createdNow("applied_at"),
            column("description", .text, notNull: true),
        ]),
        Table(
            name: "workflow_definitions",
            elements: [
                column("workflow_name", .varchar(255), notNull: true),
                column("source_hash", .varchar(64), notNull: true),
                column("source_code", .longText, notNull: true),
                createdNow(),
                .primaryKey(["workflow_name", "source_hash"]),
            ],
            indexes: [("idx_definitions_name", "workflow_name"), ("idx_definitions_hash", "source_hash")]),
        Table(
            name: "workflow_instances",
            elements: [
                column("instance_id", .varchar(255), primaryKey: true),
                column("workflow_name", .varchar(255), notNull: true),
                column("source_hash", .varchar(64), notNull: true),
                column("owner_service", .varchar(255), notNull: true),
                column("framework", .varchar(50), notNull: true, default: "'python'"),
                column("status", .varchar(50), notNull: true, default: "'running'"),
                column("current_activity_id", .varchar(255)),
                column("continued_from", .varchar(255)),
                createdNow("started_at"),
                column("updated_at", .timestamp, notNull: true, now: true, updatesToNow: true),
                column("input_data", .longText, notNull: true),
                column("output_data", .longText),
                column("locked_by", .varchar(255)),
                column("locked_at", .timestamp),
                column("lock_timeout_seconds", .int),
                column("lock_expires_at", .timestamp),
                .check(
                    name: "valid_status",
                    expression: "status IN ('running', 'completed', 'failed', 'waiting_for_event', 'waiting_for_timer', "
                        + "'waiting_for_message', 'compensating', 'cancelled', 'recurred')"),
                .foreignKey(["continued_from"], references: "workflow_instances(instance_id)", cascades: false),
                .foreignKey(
                    ["workflow_name", "source_hash"], references: "workflow_definitions(workflow_name, source_hash)", cascades: false),
            ],
            indexes: [
                ("idx_instances_status", "status"), ("idx_instances_workflow", "workflow_name"),
                ("idx_instances_owner", "owner_service"), ("idx_instances_framework", "framework"),
                ("idx_instances_locked", "locked_by, locked_at"), ("idx_instances_lock_expires", "lock_expires_at"),
                ("idx_instances_updated", "updated_at"), ("idx_instances_hash", "source_hash"),
                ("idx_instances_continued_from", "continued_from"), ("idx_instances_resumable", "status, locked_by"),
            ]),
        Table(
            name: "workflow_history",
            elements: historyColumns + [
                createdNow(), instanceCascade, .unique(name: "unique_instance_activity", columns: ["instance_id", "activity_id"]),
            ],
            indexes: [("idx_history_instance", "instance_id, activity_id"), ("idx_history_created", "created_at")]),
        Table(
            name: "workflow_history_archive",
            elements: historyColumns + [
                column("created_at", .timestamp, notNull: true), createdNow("archived_at"), instanceCascade,
            ],
            indexes: [("idx_history_archive_instance", "instance_id"), ("idx_history_archive_archived", "archived_at")]),
        Table(
            name: "workflow_compensations",
            elements: [
                id, instanceID,
                column("activity_id", .varchar(255), notNull: true),
                column("activity_name", .varchar(255), notNull: true),
                column("args", .longText, notNull: true),
                createdNow(), instanceCascade,
            ],
            indexes: [("idx_compensations_instance", "instance_id, created_at DESC")]),
        Table(
            name: "workflow_timer_subscriptions",
            elements: [
                id, instanceID,
                column("timer_id", .varchar(255), notNull: true),
                column("expires_at", .timestamp, notNull: true),
                column("activity_id", .varchar(255)),
                createdNow(), instanceCascade, .unique(name: "unique_instance_timer", columns: ["instance_id", "timer_id"]),
            ],
            indexes: [("idx_timer_subscriptions_expires", "expires_at"), ("idx_timer_subscriptions_instance", "instance_id")]),
        Table(
            name: "workflow_group_memberships",
            elements: [
                id, instanceID,
                column("group_name", .varchar(255), notNull: true),
                createdNow("joined_at"), instanceCascade, .unique(name: "unique_instance_group", columns: ["instance_id", "group_name"]),
            ],
            indexes: [("idx_group_memberships_group", "group_name"), ("idx_group_memberships_instance", "instance_id")]),
        Table(
            name: "outbox_events",
            elements: [
                column("event_id", .varchar(255), primaryKey: true),
                column("event_type", .varchar(255), notNull: true),
                column("event_source", .varchar(255), notNull: true),
                column("data_type", .varchar(10), notNull: true, default: "'json'"),
                column("event_data", .longText),
                column("event_data_binary", .blob),
                column("content_type", .varchar(100), notNull: true, default: "'application/json'"),
                createdNow(),
                column("published_at", .timestamp),
                column("status", .varchar(50), notNull: true, default: "'pending'"),
                column("retry_count", .int, default: "0"),
                column("last_error", .text),
                .check(name: "valid_outbox_status", expression: "status IN ('pending', 'processing', 'published', 'failed', 'invalid', 'expired')"),
            ],
            indexes: [
                ("idx_outbox_status", "status, created_at"), ("idx_outbox_retry", "status, retry_count"),
                ("idx_outbox_published", "published_at"),
            ]),
        Table(
            name: "channel_messages",
            elements: [
                id,
                column("channel", .varchar(255), notNull: true),
                column("message_id", .varchar(255), notNull: true, unique: true),
                column("data_type", .varchar(10), notNull: true),
                column("data", .longText),
                column("data_binary", .blob),
                column("metadata", .text),
                createdNow("published_at"),
                .check(name: "valid_data_type", expression: "data_type IN ('json', 'binary')"),
                .check(
                    name: "data_type_consistency",
                    expression: "(data_type = 'json' AND data IS NOT NULL AND data_binary IS NULL) OR "
                        + "(data_type = 'binary' AND data IS NULL AND data_binary IS NOT NULL)"),
            ],
            indexes: [("idx_channel_messages_channel", "channel, published_at"), ("idx_channel_messages_id", "id")]),
        Table(
            name: "channel_subscriptions",
            elements: [
                id, instanceID,
                column("channel", .varchar(255), notNull: true),
                column("mode", .varchar(20), notNull: true),
                column("activity_id", .varchar(255)),
                column("cursor_message_id", .int),
                column("timeout_at", .timestamp),
                createdNow("subscribed_at"), instanceCascade,
                .check(name: "valid_mode", expression: "mode IN ('broadcast', 'competing')"),
                .unique(name: "unique_instance_channel", columns: ["instance_id", "channel"]),
            ],
            indexes: [
                ("idx_channel_subscriptions_channel", "channel"), ("idx_channel_subscriptions_instance", "instance_id"),
                ("idx_channel_subscriptions_waiting", "channel, activity_id"), ("idx_channel_subscriptions_timeout", "timeout_at"),
            ]),
        Table(
            name: "channel_delivery_cursors",
            elements: [
                id,
                column("channel", .varchar(255), notNull: true),
                instanceID,
                column("last_delivered_id", .int, notNull: true),
                column("updated_at", .timestamp, notNull: true, now: true, updatesToNow: true),
                instanceCascade, .unique(name: "unique_channel_instance", columns: ["channel", "instance_id"]),
            ],
            indexes: [("idx_channel_delivery_cursors_channel", "channel")]),
        Table(
            name: "channel_message_claims",
            elements: [
                column("message_id", .varchar(255), primaryKey: true),
                instanceID,
                createdNow("claimed_at"),
                .foreignKey(["message_id"], references: "channel_messages(message_id)", cascades: true),
                instanceCascade,
            ],
            indexes: [("idx_channel_message_claims_instance", "instance_id")]),
        Table(
            name: "system_locks",
            elements: [
                column("lock_name", .varchar(255), primaryKey: true),
                column("locked_by", .varchar(255)),
                column("locked_at", .timestamp),
                column("lock_expires_at", .timestamp),
            ],
            indexes: [("idx_system_locks_expires", "lock_expires_at")]),
    ]
}
