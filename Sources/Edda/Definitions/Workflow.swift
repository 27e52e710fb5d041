/// A durable workflow: orchestration code that survives crashes by replay.
///
/// The body runs from the top every time the instance resumes; each durable operation on the
/// ``WorkflowContext`` (an activity, a deterministic value) returns its recorded result when
/// history has one. So the body must be deterministic: decisions may depend on its input and on
/// what durable operations return, not on the clock, randomness or I/O done directly.
///
/// ```swift
/// struct PlaceOrder: Workflow {
///     static let name = "place_order"
///     let inventory: InventoryClient
///
///     func run(_ order: Order, context: WorkflowContext) async throws -> Receipt {
///         let reservation = try await context.run(ReserveItems(client: inventory), input: order)
///         let payment = try await context.run(ChargeCard(), input: order.payment)
///         return Receipt(reservation: reservation.id, payment: payment.id)
///     }
/// }
/// ```
///
/// Register an instance of the type with ``EddaApp/register(_:)-(Workflow)``; its stored
/// properties (clients, configuration) travel with it.
public protocol Workflow: Sendable {
    /// The input, stored as the instance's `input_data` JSON object.
    associatedtype Input: Codable & Sendable
    /// The result, stored as `output_data.result`.
    associatedtype Output: Codable & Sendable

    /// The durable name stored with every instance. Never derive it from the type name: renaming
    /// the type must not orphan running instances.
    static var name: String { get }

    /// A version of the code, stored as the definition's `source_hash` input. Change it when the
    /// workflow's durable steps change shape. Default `"1"`.
    static var version: String { get }

    /// How long an executing instance's lock lasts before another worker may take the instance
    /// over, if its worker stops renewing it. `nil` uses
    /// ``EddaApp/Configuration/lockTimeout``.
    static var lockTimeout: Duration? { get }

    /// The shape of ``Input``, for forms that start the workflow (the viewer's start form).
    /// Default: derived from `Input`'s `Decodable` conformance (``InputSchema/describing(_:)``).
    static var inputSchema: InputSchema { get }

    /// The workflow body.
    func run(_ input: Input, context: WorkflowContext) async throws -> Output
}

extension Workflow {
    public static var version: String { "1" }
    public static var lockTimeout: Duration? { nil }
    public static var inputSchema: InputSchema { .describing(Input.self) }
}

/// A typed reference to a registered workflow, used to start it.
///
/// ``Workflow`` types are referred to by their metatype (`PlaceOrder.self`); closure-defined
/// workflows return a reference from ``EddaApp/register(workflow:version:lockTimeout:_:)``.
public struct WorkflowReference<Input: Codable & Sendable, Output: Codable & Sendable>: Sendable, Hashable {
    /// The durable name.
    public let name: String

    /// A reference to the registered workflow named `name`.
    public init(name: String) {
        self.name = name
    }
}

extension Workflow {
    /// A reference to this workflow type.
    public static var reference: WorkflowReference<Input, Output> { WorkflowReference(name: name) }
}
