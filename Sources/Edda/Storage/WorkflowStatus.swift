/// The status of a workflow instance: the nine strings of the shared schema.
public struct WorkflowStatus: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    /// The status string stored in `workflow_instances.status`.
    public let rawValue: String

    /// A status from its stored string (any string: other implementations may add statuses).
    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// Executing, or ready to be resumed by any worker.
    public static let running = WorkflowStatus(rawValue: "running")
    /// Finished with a result.
    public static let completed = WorkflowStatus(rawValue: "completed")
    /// Finished with an error, after its compensations ran.
    public static let failed = WorkflowStatus(rawValue: "failed")
    /// Legacy wait status of the reference; still accepted by cancellation and queries.
    public static let waitingForEvent = WorkflowStatus(rawValue: "waiting_for_event")
    /// Suspended until a durable timer expires.
    public static let waitingForTimer = WorkflowStatus(rawValue: "waiting_for_timer")
    /// Suspended until a channel message or event arrives.
    public static let waitingForMessage = WorkflowStatus(rawValue: "waiting_for_message")
    /// Running its compensations after a failure or a cancellation.
    public static let compensating = WorkflowStatus(rawValue: "compensating")
    /// Cancelled; its compensations have run.
    public static let cancelled = WorkflowStatus(rawValue: "cancelled")
    /// Ended by `recur`; a successor instance continues it.
    public static let recurred = WorkflowStatus(rawValue: "recurred")

    /// All nine statuses.
    public static let allCases: [WorkflowStatus] = [
        .running, .completed, .failed, .waitingForEvent, .waitingForTimer, .waitingForMessage,
        .compensating, .cancelled, .recurred,
    ]

    /// Whether an instance in this status has ended for good.
    public var isTerminal: Bool {
        self == .completed || self == .failed || self == .cancelled || self == .recurred
    }

    /// Whether ``EddaApp/cancel(instanceID:cancelledBy:)`` accepts an instance in this status.
    public var isCancellable: Bool {
        self == .running || self == .waitingForEvent || self == .waitingForTimer
            || self == .waitingForMessage || self == .compensating
    }

    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }
}

/// The `event_type` strings of `workflow_history`.
package enum HistoryEventType {
    package static let activityCompleted = "ActivityCompleted"
    package static let activityFailed = "ActivityFailed"
    package static let channelMessageReceived = "ChannelMessageReceived"
    package static let timerExpired = "TimerExpired"
    package static let messageTimeout = "MessageTimeout"
    package static let compensationExecuted = "CompensationExecuted"
    package static let compensationFailed = "CompensationFailed"
    package static let workflowFailed = "WorkflowFailed"
    package static let workflowCancelled = "WorkflowCancelled"
    package static let eventReceived = "EventReceived"
}
