/// The workflow instance was cancelled.
///
/// Thrown out of durable operations (`run`, `start`, deterministic values) once a cancellation
/// of the instance has been noticed, so the workflow body unwinds. Let it propagate: the engine
/// then runs the registered compensations and records the instance as `cancelled`. A body that
/// catches it and goes on is still stopped at its next durable operation.
public struct WorkflowCancelledError: Error, Sendable, CustomStringConvertible {
    /// The cancelled instance.
    public var instanceID: String

    /// Creates the error.
    public init(instanceID: String) {
        self.instanceID = instanceID
    }

    public var description: String { "Workflow instance \(instanceID) was cancelled" }
}
