import Edda
import Foundation

/// `findInstances` on MySQL: the same filters and order as the other stores.
extension MySQLStore {
    public func findInstances(_ query: InstanceQuery) async throws -> InstancePage {
        let validated = try query.validated()
        return try await read { connection in
            let instances = try connection.query(Self.instanceQuery(validated)).map {
                try WorkflowInstance(row: MySQLStoredRow($0), withSource: true)
            }
            return InstancePage(fetched: instances, limit: query.limit)
        }
    }

    static func instanceQuery(_ validated: ValidatedInstanceQuery) -> MySQLQuery {
        let query = validated.query
        var conditions: [MySQLQuery] = []
        // Name and ID searches ignore case, as on the other stores, whatever the collation.
        func contains(_ column: String, _ text: String) -> MySQLQuery {
            "LOWER(\(unescaped: column)) LIKE LOWER(\(InstanceQuery.containsPattern(text)))"
        }
        if let framework = query.framework { conditions.append("i.framework = \(framework)") }
        if let status = query.status { conditions.append("i.status = \(status.rawValue)") }
        if let name = query.workflowName, !name.isEmpty { conditions.append(contains("i.workflow_name", name)) }
        if let id = query.instanceID, !id.isEmpty { conditions.append(contains("i.instance_id", id)) }
        if let search = query.search, !search.isEmpty {
            conditions.append("(\(contains("i.workflow_name", search)) OR \(contains("i.instance_id", search)))")
        }
        if let after = query.startedAfter { conditions.append("i.started_at >= \(after)") }
        if let before = query.startedBefore { conditions.append("i.started_at <= \(before)") }
        for (path, value) in query.inputFilters.sorted(by: { $0.key < $1.key }) {
            // Validated paths hold letters, digits, `_` and `.`; each key is quoted.
            let jsonPath = "$" + path.split(separator: ".").map { ".\"\($0)\"" }.joined()
            let element: MySQLQuery = "JSON_EXTRACT(i.input_data, \(jsonPath))"
            switch value {
            case .null:
                conditions.append("(\(element) IS NULL OR JSON_TYPE(\(element)) = 'NULL')")
            case .bool(let flag):
                conditions.append("(JSON_TYPE(\(element)) = 'BOOLEAN' AND CAST(\(element) AS CHAR) = \(flag ? "true" : "false"))")
            case .number(let number):
                // Exact as a decimal (65 digits, 30 after the point), and equal as a double too
                // (which tells apart magnitudes a decimal cannot hold).
                let text: MySQLQuery = "CAST(\(element) AS CHAR)"
                conditions.append(
                    """
                    (JSON_TYPE(\(element)) IN ('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL')
                     AND CAST(\(text) AS DECIMAL(65, 30)) = CAST(\(number.jsonText) AS DECIMAL(65, 30))
                     AND \(text) + 0 = \(number.jsonText) + 0)
                    """)
            case .string(let text):
                conditions.append("(JSON_TYPE(\(element)) = 'STRING' AND CAST(JSON_UNQUOTE(\(element)) AS BINARY) = CAST(\(text) AS BINARY))")
            case .array, .object:
                // Equal JSON values contain each other (arrays: the same elements).
                conditions.append("(JSON_CONTAINS(\(element), \(value.jsonText)) AND JSON_CONTAINS(\(value.jsonText), \(element)))")
            }
        }
        if let (startedAt, instanceID) = validated.cursor {
            conditions.append("(i.started_at < \(startedAt) OR (i.started_at = \(startedAt) AND i.instance_id < \(instanceID)))")
        }
        var sql: MySQLQuery = """
            SELECT \(unescaped: instanceColumns), d.source_code FROM workflow_instances i
            LEFT JOIN workflow_definitions d ON d.workflow_name = i.workflow_name AND d.source_hash = i.source_hash
            """
        for (index, condition) in conditions.enumerated() {
            sql.append(index == 0 ? "\nWHERE " : " AND ")
            sql.append(condition)
        }
        sql.append("\nORDER BY i.started_at DESC, i.instance_id DESC LIMIT \(query.limit + 1)")
        return sql
    }
}
