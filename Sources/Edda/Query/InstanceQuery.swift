import Foundation

/// A filter over workflow instances, for ``EddaApp/findInstances(_:)``.
///
/// All conditions are combined with AND. Results come newest first (`started_at DESC,
/// instance_id DESC`), `limit` at a time; pass a page's ``InstancePage/nextPageToken`` as
/// `pageToken` to get the next one.
///
/// ```swift
/// var query = InstanceQuery()
/// query.status = .failed
/// query.inputFilters = ["customer.id": "c-42"]
/// let page = try await app.findInstances(query)
/// ```
public struct InstanceQuery: Sendable {
    /// Only instances in this status.
    public var status: WorkflowStatus?
    /// Case-insensitive substring of the workflow name.
    public var workflowName: String?
    /// Case-insensitive substring of the instance ID.
    public var instanceID: String?
    /// Case-insensitive substring of the workflow name *or* the instance ID (the viewer's search
    /// box).
    public var search: String?
    /// Only instances started at or after this time.
    public var startedAfter: Date?
    /// Only instances started at or before this time.
    public var startedBefore: Date?
    /// Conditions on the stored input: a dotted path (`customer.id`, matching
    /// `^[a-zA-Z_][a-zA-Z0-9_.]*$`) to the value it must equal. `.null` matches a missing key or
    /// JSON null; numbers compare numerically; booleans match JSON booleans.
    public var inputFilters: [String: JSONValue] = [:]
    /// The page size, 1 to 1,000. Default 50.
    public var limit: Int = 50
    /// Where the page starts: the previous page's ``InstancePage/nextPageToken``.
    public var pageToken: String?
    /// Only instances written by this implementation (`framework` column); `nil` for all.
    /// Default `"swift"`.
    public var framework: String? = StoredFramework.name

    /// A query that matches every instance of this framework, 50 a page.
    public init() {}

    /// Checks the query and throws ``EddaUsageError`` (`.invalidQuery`) for a bad path, limit or
    /// page token.
    public func validated() throws -> ValidatedInstanceQuery {
        for (text, field) in [(workflowName, "workflow_name"), (instanceID, "instance_id"), (search, "search"), (framework, "framework")] {
            if let text { try Identifier.validate(text, field: field, allowEmpty: true) }
        }
        guard (1...1000).contains(limit) else {
            throw EddaUsageError(.invalidQuery, "Invalid limit \(limit): use a page size from 1 to 1000.")
        }
        for path in inputFilters.keys where !Self.isValidPath(path) {
            throw EddaUsageError(
                .invalidQuery,
                "Invalid JSON path: \(path). Use dotted names of letters, digits and underscores, e.g. 'customer.id'.")
        }
        var cursor: (Date, String)?
        if let token = pageToken {
            let parts = token.components(separatedBy: "||")
            guard parts.count == 2, let date = Timestamp.parse(parts[0]), !parts[1].isEmpty else {
                throw EddaUsageError(.invalidQuery, "Invalid page token '\(token)': pass a nextPageToken returned by a previous page.")
            }
            cursor = (date, parts[1])
        }
        return ValidatedInstanceQuery(query: self, cursor: cursor)
    }

    /// A `LIKE` pattern matching `text` anywhere, with `%`, `_` and `\` taken literally (for
    /// `ESCAPE '\'`).
    package static func containsPattern(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "%" || character == "_" || character == "\\" { escaped.append("\\") }
            escaped.append(character)
        }
        return "%" + escaped + "%"
    }

    static func isValidPath(_ path: String) -> Bool {
        guard let first = path.unicodeScalars.first, first.isASCIILetter || first == "_" else { return false }
        return path.unicodeScalars.allSatisfy { $0.isASCIILetter || ("0"..."9").contains($0) || $0 == "_" || $0 == "." }
    }
}

/// An ``InstanceQuery`` that passed validation, with its page cursor decoded.
public struct ValidatedInstanceQuery: Sendable {
    /// The query as given.
    public let query: InstanceQuery
    /// `(started_at, instance_id)` of the last row of the previous page.
    public let cursor: (Date, String)?
}

/// One page of instances.
public struct InstancePage: Sendable {
    /// The instances, newest first.
    public var instances: [WorkflowInstance]
    /// The token for the next page, `nil` on the last page.
    public var nextPageToken: String?
    /// Whether another page follows.
    public var hasMore: Bool

    /// Creates a page.
    public init(instances: [WorkflowInstance], nextPageToken: String?, hasMore: Bool) {
        self.instances = instances
        self.nextPageToken = nextPageToken
        self.hasMore = hasMore
    }

    /// The page a store read for `query`: up to `limit + 1` instances, newest first (the one
    /// beyond the limit only says that another page follows). The next page's token is made
    /// here, in the form ``InstanceQuery/validated()`` reads.
    public init(fetched: [WorkflowInstance], limit: Int) {
        hasMore = fetched.count > limit
        instances = hasMore ? Array(fetched.prefix(limit)) : fetched
        nextPageToken = hasMore ? instances.last.map { "\(Timestamp.iso8601($0.startedAt))||\($0.instanceID)" } : nil
    }
}

extension Unicode.Scalar {
    var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
}
