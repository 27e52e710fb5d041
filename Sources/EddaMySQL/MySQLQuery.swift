import Edda
import Foundation

/// A value in a ``MySQLQuery``: sent as an escaped literal, never as SQL text.
public enum MySQLValue: Sendable, Hashable {
    /// SQL `NULL`.
    case null
    /// Text, escaped for the connection's character set.
    case text(String)
    /// An integer.
    case integer(Int64)
    /// A number (a non-finite one is sent as `NULL`).
    case double(Double)
    /// A point in time, sent as UTC with microseconds (`'2026-12-01 10:00:00.250000'`).
    case timestamp(Date)
    /// Bytes, sent as a hexadecimal literal.
    case bytes([UInt8])
}

/// An SQL statement with its values, written as a string with interpolations: each
/// interpolated value is sent as an escaped literal (by Connector/C's
/// `mysql_real_escape_string`, for the connection's character set), so no value can change the
/// statement.
///
/// ```swift
/// try connection.execute("INSERT INTO shipments (order_id, weight) VALUES (\(order.id), \(order.weight))")
/// ```
///
/// Use `\(unescaped:)` only for SQL text you wrote yourself (a table name from a constant).
public struct MySQLQuery: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    enum Part: Sendable, Hashable {
        case sql(String)
        case value(MySQLValue)
        case list([MySQLValue])
    }

    var parts: [Part]

    /// A statement with no values.
    public init(stringLiteral value: String) {
        parts = [.sql(value)]
    }

    /// A statement with its interpolated values.
    public init(stringInterpolation: StringInterpolation) {
        parts = stringInterpolation.parts
    }

    /// A statement whose whole text is SQL you wrote (no values).
    public init(unsafeSQL: String) {
        parts = [.sql(unsafeSQL)]
    }

    /// The statement with `?` in place of each value (for logs and errors: no values shown).
    public var description: String {
        parts.map { part in
            switch part {
            case .sql(let text): text
            case .value: "?"
            case .list(let values): "(" + values.map { _ in "?" }.joined(separator: ", ") + ")"
            }
        }.joined()
    }

    mutating func append(_ other: MySQLQuery) {
        parts += other.parts
    }

    /// Builds a ``MySQLQuery`` from a string literal: literal text is SQL, interpolations are values.
    public struct StringInterpolation: StringInterpolationProtocol {
        var parts: [Part] = []

        /// An empty statement.
        public init(literalCapacity: Int, interpolationCount: Int) {}

        /// SQL text from the literal.
        public mutating func appendLiteral(_ literal: String) {
            parts.append(.sql(literal))
        }

        /// SQL text you wrote yourself, inserted as is.
        public mutating func appendInterpolation(unescaped text: String) {
            parts.append(.sql(text))
        }

        /// A value, sent escaped.
        public mutating func appendInterpolation(_ value: MySQLValue) {
            parts.append(.value(value))
        }

        /// Text, sent escaped; `nil` is `NULL`.
        public mutating func appendInterpolation(_ value: String?) {
            parts.append(.value(value.map(MySQLValue.text) ?? .null))
        }

        /// An integer; `nil` is `NULL`.
        public mutating func appendInterpolation(_ value: Int?) {
            parts.append(.value(value.map { .integer(Int64($0)) } ?? .null))
        }

        /// An integer; `nil` is `NULL`.
        public mutating func appendInterpolation(_ value: Int64?) {
            parts.append(.value(value.map(MySQLValue.integer) ?? .null))
        }

        /// A number (a non-finite one is `NULL`); `nil` is `NULL`.
        public mutating func appendInterpolation(_ value: Double?) {
            parts.append(.value(value.map(MySQLValue.double) ?? .null))
        }

        /// `1` or `0`.
        public mutating func appendInterpolation(_ value: Bool) {
            parts.append(.value(.integer(value ? 1 : 0)))
        }

        /// A point in time, in UTC with microseconds; `nil` is `NULL`.
        public mutating func appendInterpolation(_ value: Date?) {
            parts.append(.value(value.map(MySQLValue.timestamp) ?? .null))
        }

        /// Bytes, as a hexadecimal literal; `nil` is `NULL`.
        public mutating func appendInterpolation(_ value: [UInt8]?) {
            parts.append(.value(value.map(MySQLValue.bytes) ?? .null))
        }

        /// A parenthesised list for `IN`: `(v1, v2, …)`; an empty list is `(NULL)`, which
        /// matches nothing.
        public mutating func appendInterpolation(list values: [String]) {
            parts.append(.list(values.map(MySQLValue.text)))
        }

        /// Another statement's text and values, inserted in place.
        public mutating func appendInterpolation(_ query: MySQLQuery) {
            parts += query.parts
        }
    }
}

extension MySQLValue {
    /// `YYYY-MM-DD HH:MM:SS.ffffff` in UTC.
    static func timestampText(_ date: Date) -> String {
        var seconds = date.timeIntervalSince1970
        var micros = Int64((seconds - seconds.rounded(.down)) * 1_000_000 + 0.5)
        if micros >= 1_000_000 {
            micros -= 1_000_000
            seconds += 1
        }
        var time = time_t(seconds.rounded(.down))
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d.%06lld", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), micros)
    }
}

extension Date {
    /// This instant rounded up to a whole second. The shared MySQL schema's `TIMESTAMP` columns
    /// hold whole seconds: an expiry (a lease's end, a timer) is stored rounded up, so that it
    /// never falls before the instant it stands for.
    var roundedUpToSecond: Date {
        Date(timeIntervalSince1970: timeIntervalSince1970.rounded(.up))
    }
}
