/// A workflow instance ended as `failed`; thrown by `EddaApp.run(_:input:…)` and
/// ``EddaApp/result(of:as:pollInterval:)``.
public struct WorkflowFailedError: Error, Sendable, CustomStringConvertible {
    /// The failed instance.
    public var instanceID: String
    /// The recorded error type (`output_data.error_type`).
    public var errorType: String
    /// The recorded message (`output_data.error_message`).
    public var message: String
    /// The error the workflow body threw, when it failed in this process during this call.
    public var underlyingError: (any Error)?

    /// Creates the error.
    public init(instanceID: String, errorType: String, message: String, underlyingError: (any Error)? = nil) {
        self.instanceID = instanceID
        self.errorType = errorType
        self.message = message
        self.underlyingError = underlyingError
    }

    public var description: String { "Workflow \(instanceID) failed: \(errorType): \(message)" }
}

/// A workflow instance ended without a result: it was `cancelled`, or `recurred` into a successor.
public struct WorkflowNotCompletedError: Error, Sendable, CustomStringConvertible {
    /// The instance.
    public var instanceID: String
    /// Its final status.
    public var status: WorkflowStatus

    /// Creates the error.
    public init(instanceID: String, status: WorkflowStatus) {
        self.instanceID = instanceID
        self.status = status
    }

    public var description: String {
        "Workflow \(instanceID) ended as '\(status.rawValue)' and has no result"
    }
}
