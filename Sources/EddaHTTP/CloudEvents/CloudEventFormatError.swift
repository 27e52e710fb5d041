/// A request that is not a valid CloudEvent (CloudEvents 1.0, HTTP binding).
///
/// The events endpoint answers it with `400 {"error", "error_type", "retryable": false}`, where
/// `error_type` is ``kind``.
public struct CloudEventFormatError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of mistake, named as the CloudEvents SDKs name it.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        /// The error type name sent in the response.
        public let name: String
        /// `specversion`, `id`, `source` or `type` is missing or empty.
        public static let missingRequiredFields = Kind(name: "MissingRequiredFields")
        /// A required attribute has an invalid value (for example a `specversion` other than `1.0`).
        public static let invalidRequiredFields = Kind(name: "InvalidRequiredFields")
        /// The body is not the JSON a structured or batch event must be.
        public static let invalidStructuredJSON = Kind(name: "InvalidStructuredJSON")
        /// An attribute name is not lower-case letters and digits, or an attribute has the wrong type.
        public static let invalidAttribute = Kind(name: "InvalidAttribute")
        /// JSON data (binary mode with a JSON content type) does not parse.
        public static let invalidData = Kind(name: "DataUnmarshallerError")
        /// Text that must be UTF-8 is not: a structured or batch body, JSON data, or a `ce-`
        /// header value once percent-decoded.
        public static let invalidEncoding = Kind(name: "InvalidEncoding")
        public var description: String { name }
    }

    /// What kind of mistake it is.
    public let kind: Kind
    /// What is wrong and how to fix it.
    public let message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
