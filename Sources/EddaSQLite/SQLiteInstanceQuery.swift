import Edda
import GRDB

/// Builds the SQL of ``SQLiteStore/findInstances(_:)``; every value is a bound argument.
enum SQLiteInstanceQuery {
    static func build(_ validated: ValidatedInstanceQuery) -> (String, StatementArguments) {
        let query = validated.query
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let framework = query.framework {
            conditions.append("i.framework = ?")
            arguments += [framework]
        }
        if let status = query.status {
            conditions.append("i.status = ?")
            arguments += [status.rawValue]
        }
        if let name = query.workflowName, !name.isEmpty {
            conditions.append("i.workflow_name LIKE ? ESCAPE '\\'")
            arguments += [likePattern(name)]
        }
        if let id = query.instanceID, !id.isEmpty {
            conditions.append("i.instance_id LIKE ? ESCAPE '\\'")
            arguments += [likePattern(id)]
        }
        if let search = query.search, !search.isEmpty {
            conditions.append("(i.workflow_name LIKE ? ESCAPE '\\' OR i.instance_id LIKE ? ESCAPE '\\')")
            arguments += [likePattern(search), likePattern(search)]
        }
        if let after = query.startedAfter {
            conditions.append("i.started_at >= ?")
            arguments += [Timestamp.database(after)]
        }
        if let before = query.startedBefore {
            conditions.append("i.started_at <= ?")
            arguments += [Timestamp.database(before)]
        }
        for (path, value) in query.inputFilters.sorted(by: { $0.key < $1.key }) {
            let jsonPath = "$." + path
            switch value {
            case .null:
                conditions.append("json_type(i.input_data, ?) IS NULL OR json_type(i.input_data, ?) = 'null'")
                conditions[conditions.count - 1] = "(\(conditions[conditions.count - 1]))"
                arguments += [jsonPath, jsonPath]
            case .bool(let flag):
                conditions.append("json_type(i.input_data, ?) = ?")
                arguments += [jsonPath, flag ? "true" : "false"]
            case .number(let number):
                conditions.append("(json_type(i.input_data, ?) IN ('integer', 'real') AND json_extract(i.input_data, ?) = ?)")
                // SQLite reads JSON integers of up to 64 bits exactly and other numbers as REAL.
                if let integer = number.int64Value {
                    arguments += [jsonPath, jsonPath, integer]
                } else {
                    arguments += [jsonPath, jsonPath, number.doubleValue]
                }
            case .string(let text):
                conditions.append("(json_type(i.input_data, ?) = 'text' AND json_extract(i.input_data, ?) = ?)")
                arguments += [jsonPath, jsonPath, text]
            case .array, .object:
                conditions.append("json_extract(i.input_data, ?) = json(?)")
                arguments += [jsonPath, value.jsonText]
            }
        }
        if let (startedAt, instanceID) = validated.cursor {
            conditions.append("(i.started_at < ? OR (i.started_at = ? AND i.instance_id < ?))")
            let stamp = Timestamp.database(startedAt)
            arguments += [stamp, stamp, instanceID]
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = """
            SELECT \(SQLiteStore.Statements.instanceColumns), d.source_code FROM workflow_instances i
            LEFT JOIN workflow_definitions d ON d.workflow_name = i.workflow_name AND d.source_hash = i.source_hash
            \(whereClause)
            ORDER BY i.started_at DESC, i.instance_id DESC
            LIMIT ?
            """
        arguments += [query.limit + 1]
        return (sql, arguments)
    }

    /// A pattern matching `text` anywhere (SQLite's `LIKE` and PostgreSQL's `ILIKE` are
    /// case-insensitive).
    private static func likePattern(_ text: String) -> String {
        InstanceQuery.containsPattern(text)
    }
}
