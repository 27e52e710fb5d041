/// An activity failure that must not be retried.
///
/// Throw it from an activity when trying again cannot help (a declined card, invalid input).
/// The engine records the failure once and rethrows a `TerminalError` with the same message to
/// the workflow, live and on replay alike.
///
/// ```swift
/// guard order.quantity > 0 else { throw TerminalError("quantity must be positive") }
/// ```
public struct TerminalError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as the activity said it.
    public var message: String

    /// A terminal failure with `message`.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { "TerminalError: \(message)" }
}
