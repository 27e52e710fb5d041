/// The workflow's code no longer matches its recorded history.
///
/// Raised during replay when the code reaches a durable operation whose ID, name or kind differs
/// from what was recorded (for example, an activity was renamed, reordered or removed while
/// instances were in flight). The engine stops that execution without running anything against
/// the wrong history and leaves the instance `running` and unlocked, so it resumes normally once
/// the code matches again (deploy the previous code, or give new steps new names).
public struct NondeterminismError: Error, Sendable, CustomStringConvertible {
    /// The instance whose replay diverged.
    public var instanceID: String
    /// The durable operation ID where the divergence was found.
    public var activityID: String
    /// What the code asked for versus what history holds.
    public var detail: String

    /// Creates the error.
    public init(instanceID: String, activityID: String, detail: String) {
        self.instanceID = instanceID
        self.activityID = activityID
        self.detail = detail
    }

    public var description: String {
        "Nondeterministic replay of \(instanceID) at '\(activityID)': \(detail). "
            + "The instance is left running; restore the code that recorded this history, "
            + "or give changed steps new names, then resume it."
    }
}
