/// An activity defined by a closure, for small programs and tests.
///
/// ```swift
/// let greet = ActivityDefinition<String, String>(name: "greet") { name, _ in "Hello, \(name)!" }
/// let text = try await context.run(greet, input: "Ada")
/// ```
///
/// ``WorkflowContext/run(_:input:id:)`` accepts it like an ``Activity`` type.
public struct ActivityDefinition<Input: Codable & Sendable, Output: Codable & Sendable>: Sendable {
    /// The durable name.
    public let name: String
    /// The retry policy, or `nil` for the app default.
    public var retryPolicy: RetryPolicy?
    let body: @Sendable (Input, ActivityContext) async throws -> Output

    /// Defines an activity named `name` that runs `body`.
    public init(
        name: String, retryPolicy: RetryPolicy? = nil,
        _ body: @escaping @Sendable (Input, ActivityContext) async throws -> Output
    ) {
        self.name = name
        self.retryPolicy = retryPolicy
        self.body = body
    }
}
