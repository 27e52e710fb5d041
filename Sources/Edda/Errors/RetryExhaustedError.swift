/// An activity failed and its retry policy gave up.
///
/// Thrown to the workflow by `WorkflowContext.run(_:input:id:)` when the last attempt failed,
/// when the policy's `maxAttempts` or `maxDuration` was reached, or when the error was not
/// retryable under the policy. The workflow may catch it and carry on; uncaught, it fails the
/// workflow and runs its compensations.
public struct RetryExhaustedError: Error, Sendable, CustomStringConvertible {
    /// The activity's durable name.
    public var activityName: String
    /// How many attempts were made.
    public var attempts: Int
    /// Why retrying stopped, e.g. `Max attempts (5) reached`.
    public var reason: String
    /// The last attempt's error. On replay this is an ``ActivityFailure`` that carries the
    /// recorded type name and message, because the original error value no longer exists.
    public var cause: any Error

    /// Creates the error.
    public init(activityName: String, attempts: Int, reason: String, cause: any Error) {
        self.activityName = activityName
        self.attempts = attempts
        self.reason = reason
        self.cause = cause
    }

    /// The reference's message: `Activity <name> failed after <k> attempts: <reason>`.
    public var description: String {
        "Activity \(activityName) failed after \(attempts) attempts: \(reason)"
    }
}

/// An error recorded in history, rebuilt on replay: its type name and message as recorded.
public struct ActivityFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The recorded error type, e.g. `PaymentDeclined` or `TimeoutError`.
    public var errorType: String
    /// The recorded message.
    public var message: String

    /// Creates a recorded failure.
    public init(errorType: String, message: String) {
        self.errorType = errorType
        self.message = message
    }

    public var description: String { "\(errorType): \(message)" }
}
