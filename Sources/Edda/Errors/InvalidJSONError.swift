/// Text that is not valid JSON (RFC 8259), or that nests deeper than Edda reads.
///
/// Thrown by ``JSONValue/init(parsing:)-(String)``. The offset counts UTF-8 bytes from the start
/// of the text, so a caller can point at the mistake.
public struct InvalidJSONError: Error, Sendable, CustomStringConvertible {
    /// The UTF-8 byte offset where the text stops being valid JSON.
    public var offset: Int
    /// What is wrong there (for example "a number must not have leading zeros").
    public var reason: String

    /// Creates the error.
    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }

    /// Arrays and objects nested more than ``JSONValue/maximumNestingDepth`` levels deep.
    static func tooDeep(at offset: Int) -> InvalidJSONError {
        InvalidJSONError(
            offset: offset,
            reason: "arrays and objects are nested more than \(JSONValue.maximumNestingDepth) levels deep, "
                + "the most Edda reads (as Foundation's JSON parser); flatten the document")
    }

    public var description: String {
        "Invalid JSON at byte \(offset): \(reason)."
    }
}
