/// An identifier was refused before anything was written: it was empty, longer than the shared
/// schema's columns hold, or contained a control character.
///
/// Every identifier that reaches the database — instance IDs, workflow and activity names,
/// channels, event types and sources, message and outbox event IDs, worker and service names —
/// is checked once, in the core, before any write and on every backend, with the rules of
/// ``Identifier``. A database would otherwise truncate at a NUL byte (SQLite), refuse the row
/// (PostgreSQL) or cut it at the column's length (MySQL), mixing up different identifiers.
///
/// HTTP routes answer `400 Bad Request` naming ``field``.
public struct InvalidIdentifierError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong with the identifier.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        let rawValue: String
        /// The identifier is empty.
        public static let empty = Problem(rawValue: "empty")
        /// The identifier is longer than ``Identifier/maximumLength`` bytes of UTF-8.
        public static let tooLong = Problem(rawValue: "tooLong")
        /// The identifier contains a control character (U+0000–U+001F, U+007F–U+009F), such as a
        /// NUL byte or a newline.
        public static let controlCharacter = Problem(rawValue: "controlCharacter")
        public var description: String { rawValue }
    }

    /// The name of the refused field as the shared schema and the HTTP API spell it, such as
    /// `instance_id`, `workflow_name` or `channel`.
    public var field: String
    /// What is wrong with it.
    public var problem: Problem
    /// A printable rendering of the refused value (control characters escaped, shortened).
    public var value: String
    /// The refused value's length in bytes of UTF-8.
    public var byteCount: Int

    /// Creates the error for `field`, whose `rawValue` has `problem`.
    public init(field: String, problem: Problem, rawValue: String) {
        self.field = field
        self.problem = problem
        self.value = Identifier.printable(rawValue)
        self.byteCount = rawValue.utf8.count
    }

    public var description: String {
        switch problem {
        case .empty:
            return "\(field) must not be empty."
        case .tooLong:
            return "\(field) must be at most \(Identifier.maximumLength) bytes of UTF-8; "
                + "got \(byteCount) (\(value)). Use a shorter \(field)."
        default:
            return "\(field) must not contain control characters (NUL, newlines, tabs, U+007F–U+009F); "
                + "got \(value). Remove them from the \(field)."
        }
    }
}

/// The rules every identifier that reaches the database follows.
///
/// - At most ``maximumLength`` (255) bytes of UTF-8: what the shared schema's `VARCHAR(255)`
///   columns hold on MySQL (and an index key can hold on every backend).
/// - No control characters: nothing in U+0000–U+001F or U+007F–U+009F. A NUL byte would
///   truncate the key in SQLite, so that two different IDs would name one row.
/// - Not empty, unless a field says otherwise.
///
/// Any other Unicode text is allowed, including spaces, `/`, `%`, quotes and non-ASCII letters.
public enum Identifier {
    /// The longest identifier accepted, in bytes of UTF-8.
    public static let maximumLength = 255

    /// Checks `value` against the identifier rules.
    ///
    /// - Parameters:
    ///   - value: The identifier.
    ///   - field: Its name in errors, as the schema spells it (`instance_id`, `channel`).
    ///   - allowEmpty: Whether the empty string is acceptable for this field.
    /// - Throws: ``InvalidIdentifierError`` naming `field`.
    public static func validate(_ value: String, field: String, allowEmpty: Bool = false) throws(InvalidIdentifierError) {
        if value.isEmpty {
            if allowEmpty { return }
            throw InvalidIdentifierError(field: field, problem: .empty, rawValue: value)
        }
        var length = 0
        for scalar in value.unicodeScalars {
            if isControl(scalar) {
                throw InvalidIdentifierError(field: field, problem: .controlCharacter, rawValue: value)
            }
            length += UTF8.width(scalar)
        }
        if length > maximumLength {
            throw InvalidIdentifierError(field: field, problem: .tooLong, rawValue: value)
        }
    }

    /// Checks an identifier that only looks up an existing row (cancel, read): it may be one
    /// that another tool wrote with characters new identifiers may not have (a newline), but
    /// never a NUL, which the database would cut the key at, so that the lookup would find
    /// another row.
    ///
    /// - Throws: ``InvalidIdentifierError`` (`.controlCharacter`) for a NUL.
    public static func validateLookup(_ value: String, field: String) throws(InvalidIdentifierError) {
        if value.utf8.contains(0) {
            throw InvalidIdentifierError(field: field, problem: .controlCharacter, rawValue: value)
        }
    }

    /// Checks an optional identifier: `nil` is accepted.
    public static func validate(_ value: String?, field: String) throws(InvalidIdentifierError) {
        if let value { try validate(value, field: field) }
    }

    /// Whether `scalar` is a control character (Unicode general category Cc).
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// `value` with control characters escaped as `\u{…}` and cut to about 80 characters, for
    /// error messages and logs.
    static func printable(_ value: String) -> String {
        var result = ""
        var count = 0
        for scalar in value.unicodeScalars {
            if count >= 80 {
                result += "…"
                break
            }
            if isControl(scalar) {
                result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
            count += 1
        }
        return "\"\(result)\""
    }
}
