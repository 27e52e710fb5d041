import Foundation

/// A row a driver read from the shared schema, by column name: what the core's decoders
/// (``WorkflowInstance/init(row:withSource:)``, ``HistoryEvent/init(row:instanceID:)``, …) need
/// from a driver's row type, so that what a stored row means is written once.
///
/// Each accessor returns `nil` for SQL `NULL` and for a column the row does not have; it throws
/// only when the value cannot be read as asked (a text column read as an integer).
public protocol StoredRow {
    /// The column's text.
    func text(_ column: String) throws -> String?
    /// The column's integer.
    func integer(_ column: String) throws -> Int?
    /// The column's time (a `TIMESTAMP`, or SQLite's text in the shared schema's formats).
    func timestamp(_ column: String) throws -> Date?
    /// The column's bytes (`BYTEA`, `BLOB`, `LONGBLOB`).
    func bytes(_ column: String) throws -> [UInt8]?
}

/// A column the shared schema declares `NOT NULL` was `NULL` or missing in a row a driver read.
public struct StoredRowError: Error, CustomStringConvertible, Sendable {
    /// The column.
    public let column: String
    public var description: String {
        "A stored row has no value in column \(column), which the shared schema requires; the row was written outside "
            + "Edda (by hand or by a tool that skips the schema's constraints). Fix or delete that row."
    }
}

extension StoredRow {
    /// The text of a column the shared schema declares `NOT NULL`.
    ///
    /// - Throws: ``StoredRowError`` if it is `NULL` or missing.
    public func required(_ column: String) throws -> String {
        guard let value = try text(column) else { throw StoredRowError(column: column) }
        return value
    }

    func required(integer column: String) throws -> Int64 {
        guard let value = try integer(column) else { throw StoredRowError(column: column) }
        return Int64(value)
    }

    /// A `NOT NULL` time; the Unix epoch if it cannot be read (a foreign writer's format).
    func time(_ column: String) throws -> Date {
        try timestamp(column) ?? Date(timeIntervalSince1970: 0)
    }

    /// The payload of a json/binary column pair (`data_type` and the two given columns).
    func payload(json: String, binary: String) throws -> MessagePayload {
        try text("data_type") == "binary" ? .binary(try bytes(binary) ?? []) : .json(try text(json) ?? "null")
    }
}

extension WorkflowInstance {
    /// A `workflow_instances` row (columns named as in the table; `source_code` from
    /// `workflow_definitions` when `withSource`).
    public init(row: some StoredRow, withSource: Bool) throws {
        let input = try row.required("input_data")
        self.init(
            instanceID: try row.required("instance_id"), workflowName: try row.required("workflow_name"),
            sourceHash: try row.required("source_hash"), ownerService: try row.required("owner_service"),
            framework: try row.required("framework"), status: WorkflowStatus(rawValue: try row.required("status")),
            currentActivityID: try row.text("current_activity_id"), continuedFrom: try row.text("continued_from"),
            startedAt: try row.time("started_at"), updatedAt: try row.time("updated_at"),
            inputData: JSONValue(jsonText: input) ?? .string(input),
            outputData: try row.text("output_data").map { JSONValue(jsonText: $0) ?? .string($0) },
            lockedBy: try row.text("locked_by"), lockedAt: try row.timestamp("locked_at"),
            lockExpiresAt: try row.timestamp("lock_expires_at"), lockTimeoutSeconds: try row.integer("lock_timeout_seconds"),
            sourceCode: withSource ? try row.text("source_code") : nil)
    }
}

extension HistoryEvent {
    /// A `workflow_history` row of `instanceID`.
    public init(row: some StoredRow, instanceID: String) throws {
        let payload: HistoryPayload = switch try row.payload(json: "event_data", binary: "event_data_binary") {
        case .json(let text): .json(text)
        case .binary(let bytes): .binary(bytes)
        }
        self.init(
            id: try row.required(integer: "id"), instanceID: instanceID, activityID: try row.required("activity_id"),
            eventType: try row.required("event_type"), payload: payload, createdAt: try row.time("created_at"))
    }
}

extension CompensationRecord {
    /// A `workflow_compensations` row.
    public init(row: some StoredRow) throws {
        self.init(
            id: try row.required(integer: "id"), activityID: try row.required("activity_id"), name: try row.required("activity_name"),
            argsJSON: try row.required("args"))
    }
}

extension ChannelSubscription {
    /// A `channel_subscriptions` row, its `id` read as `subscription_id`.
    public init(row: some StoredRow) throws {
        self.init(
            id: try row.required(integer: "subscription_id"), instanceID: try row.required("instance_id"),
            channel: try row.required("channel"), mode: try row.required("mode"), activityID: try row.text("activity_id"),
            cursor: Int64(try row.integer("cursor_message_id") ?? 0))
    }
}

extension StoredMessage {
    /// A `channel_messages` row.
    public init(row: some StoredRow) throws {
        self.init(
            rowID: try row.required(integer: "id"), messageID: try row.required("message_id"), channel: try row.required("channel"),
            payload: try row.payload(json: "data", binary: "data_binary"), metadataJSON: try row.text("metadata"),
            publishedAt: try row.time("published_at"))
    }
}

extension OutboxEvent {
    /// An `outbox_events` row.
    public init(row: some StoredRow) throws {
        self.init(
            eventID: try row.required("event_id"), eventType: try row.required("event_type"), eventSource: try row.required("event_source"),
            payload: try row.payload(json: "event_data", binary: "event_data_binary"),
            contentType: try row.text("content_type") ?? "application/json", createdAt: try row.time("created_at"),
            status: OutboxStatus(rawValue: try row.required("status")), retryCount: try row.integer("retry_count") ?? 0,
            lastError: try row.text("last_error"))
    }
}

extension Waiter {
    /// A row of a ``WaiterQuery``: the instance's `instance_id`, `framework`, `workflow_name` and
    /// `lock_timeout_seconds`, and its wait — a timer (`timer_row_id`, `timer_id`, `expires_at`,
    /// `activity_id`), a receive's timeout (`timeout_subscription_id`, `channel`, `activity_id`,
    /// `timeout_at`), or else a subscription (the columns of ``ChannelSubscription/init(row:)``).
    public init(row: some StoredRow) throws {
        let wait: Wait
        if let rowID = try row.integer("timer_row_id") {
            let timerID = try row.required("timer_id")
            // A due wait whose time cannot be read is due now.
            wait = .timer(
                rowID: Int64(rowID), timerID: timerID, activityID: try row.text("activity_id") ?? timerID,
                expiresAt: try row.timestamp("expires_at") ?? Date())
        } else if let subscriptionID = try row.integer("timeout_subscription_id") {
            wait = .receiveTimeout(
                subscriptionID: Int64(subscriptionID), channel: try row.required("channel"), activityID: try row.required("activity_id"),
                timeoutAt: try row.timestamp("timeout_at") ?? Date())
        } else {
            wait = .message(try ChannelSubscription(row: row))
        }
        self.init(
            instanceID: try row.required("instance_id"), framework: try row.required("framework"),
            workflowName: try row.required("workflow_name"), lockTimeoutSeconds: try row.integer("lock_timeout_seconds"), wait: wait)
    }
}
