import Edda
import Foundation
import PostgresNIO

/// `findInstances` on PostgreSQL: the same filters and order as SQLite.
extension PostgresStore {
    public func findInstances(_ query: InstanceQuery) async throws -> InstancePage {
        let validated = try query.validated()
        let built = Self.instanceQuery(validated)
        return try await read { connection in
            let instances = try await connection.rows(built, logger: self.logger).map {
                try WorkflowInstance(row: PostgresStoredRow($0), withSource: true)
            }
            return InstancePage(fetched: instances, limit: query.limit)
        }
    }

    static func instanceQuery(_ validated: ValidatedInstanceQuery) -> PostgresQuery {
        let query = validated.query
        var builder = QueryBuilder()
        var conditions: [String] = []
        if let framework = query.framework { conditions.append("i.framework = \(builder.bind(framework))") }
        if let status = query.status { conditions.append("i.status = \(builder.bind(status.rawValue))") }
        if let name = query.workflowName, !name.isEmpty {
            conditions.append("i.workflow_name ILIKE \(builder.bind(likePattern(name))) ESCAPE '\\'")
        }
        if let id = query.instanceID, !id.isEmpty {
            conditions.append("i.instance_id ILIKE \(builder.bind(likePattern(id))) ESCAPE '\\'")
        }
        if let search = query.search, !search.isEmpty {
            let pattern = builder.bind(likePattern(search))
            conditions.append("(i.workflow_name ILIKE \(pattern) ESCAPE '\\' OR i.instance_id ILIKE \(pattern) ESCAPE '\\')")
        }
        if let after = query.startedAfter { conditions.append("i.started_at >= \(builder.bind(after))") }
        if let before = query.startedBefore { conditions.append("i.started_at <= \(builder.bind(before))") }
        for (path, value) in query.inputFilters.sorted(by: { $0.key < $1.key }) {
            let element = "(i.input_data::jsonb #> \(builder.bind(path.split(separator: ".").map(String.init))))"
            switch value {
            case .null:
                conditions.append("(\(element) IS NULL OR jsonb_typeof(\(element)) = 'null')")
            case .bool(let flag):
                conditions.append("(jsonb_typeof(\(element)) = 'boolean' AND \(element)::text = \(builder.bind(flag ? "true" : "false")))")
            case .number(let number):
                conditions.append("(jsonb_typeof(\(element)) = 'number' AND (\(element))::text::numeric = \(builder.bind(number.jsonText))::numeric)")
            case .string(let text):
                conditions.append("(jsonb_typeof(\(element)) = 'string' AND \(element) #>> '{}' = \(builder.bind(text)))")
            case .array, .object:
                conditions.append("\(element) = \(builder.bind(value.jsonText))::jsonb")
            }
        }
        if let (startedAt, instanceID) = validated.cursor {
            let stamp = builder.bind(startedAt)
            conditions.append("(i.started_at < \(stamp) OR (i.started_at = \(stamp) AND i.instance_id < \(builder.bind(instanceID))))")
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        builder.sql = """
            SELECT \(instanceColumns), d.source_code FROM workflow_instances i
            LEFT JOIN workflow_definitions d ON d.workflow_name = i.workflow_name AND d.source_hash = i.source_hash
            \(whereClause)
            ORDER BY i.started_at DESC, i.instance_id DESC
            LIMIT \(builder.bind(query.limit + 1))
            """
        return builder.query
    }

    /// A pattern matching `text` anywhere (SQLite's `LIKE` and PostgreSQL's `ILIKE` are
    /// case-insensitive).
    private static func likePattern(_ text: String) -> String {
        InstanceQuery.containsPattern(text)
    }
}
