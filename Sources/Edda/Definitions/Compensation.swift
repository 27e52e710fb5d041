/// An undo action for a saga: runs, newest first, when the workflow fails or is cancelled.
///
/// Register one explicitly with ``WorkflowContext/registerCompensation(_:input:id:)`` after the
/// step it undoes, or declare it on the activity with ``CompensatableActivity``. Registrations
/// are durable and replay-safe: a resumed workflow never registers the same one twice, and a
/// crash during compensation resumes with the ones not yet run.
///
/// ```swift
/// struct RefundPayment: Compensation {
///     static let name = "refund_payment"
///     let gateway: PaymentGateway
///     func run(_ charge: Charge, context: CompensationContext) async throws {
///         try await gateway.refund(charge.id)
///     }
/// }
/// ```
public protocol Compensation: Sendable {
    associatedtype Input: Codable & Sendable
    /// The durable name, stored as the compensation's `activity_name`.
    static var name: String { get }
    /// Undoes the work. Failures are recorded (`CompensationFailed`) and the remaining
    /// compensations still run.
    func run(_ input: Input, context: CompensationContext) async throws
}

/// An activity that knows how to undo itself.
///
/// After each successful live execution the engine registers `compensate(_:output:context:)`
/// in the same transaction that records the result.
///
/// ```swift
/// struct ReserveItems: CompensatableActivity {
///     static let name = "reserve_items"
///     func run(_ order: Order, context: ActivityContext) async throws -> Reservation { … }
///     func compensate(_ order: Order, output: Reservation, context: CompensationContext) async throws {
///         try await inventory.release(output.id)
///     }
/// }
/// ```
public protocol CompensatableActivity: Activity {
    /// The compensation's durable name. Default `"compensate_<activity name>"`.
    static var compensationName: String { get }
    /// Undoes a successful execution, given its input and output.
    func compensate(_ input: Input, output: Output, context: CompensationContext) async throws
}

extension CompensatableActivity {
    public static var compensationName: String { "compensate_" + name }
}

/// What a running compensation knows about itself.
public struct CompensationContext: Sendable {
    /// The workflow instance being compensated.
    public let instanceID: String
    /// The compensation's durable name.
    public let name: String
    /// The ID of the step that registered it.
    public let activityID: String
    /// Whether the instance is compensating because it was cancelled (otherwise it failed).
    public let isCancellation: Bool
}
