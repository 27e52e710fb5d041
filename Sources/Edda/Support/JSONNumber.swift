import Foundation

/// A JSON number, kept exactly as it was written.
///
/// JSON numbers have no fixed precision, and other implementations write integers Swift's
/// `Double` cannot hold (`9007199254740993`, `9223372036854775807`) or exponents beyond its
/// range (`1e400`). A `JSONNumber` stores the number's literal text, so reading JSON text and
/// writing it back (``JSONValue/init(parsing:)-(String)``, ``JSONValue/jsonText``) never changes
/// a number. Convert it when you need arithmetic:
///
/// ```swift
/// let count = JSONNumber(jsonText: "9223372036854775807")
/// count?.int64Value   // 9223372036854775807 (exact, or nil)
/// count?.doubleValue  // 9.223372036854776e+18 (nearest Double)
/// ```
///
/// Equality is numeric and exact: two numbers are equal when they denote the same decimal
/// value, however they are written (`1`, `1.0`, `10e-1` and `1E0` are equal, as are `0` and
/// `-0`); no conversion to `Double` takes part, so `9007199254740993` and `9007199254740992`
/// differ. Hashing agrees with equality.
public struct JSONNumber: Sendable, Hashable, Codable, CustomStringConvertible,
    ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    /// The number's JSON text, as written (for example `"-0"`, `"1.5e-7"`, `"1e400"`).
    public let jsonText: String

    /// A number from its JSON text; `nil` unless `jsonText` is exactly one JSON number
    /// (RFC 8259: an optional `-`, no leading zeros, no `+`, no surrounding whitespace).
    public init?(jsonText: String) {
        guard Self.isValidLiteral(jsonText) else { return nil }
        self.jsonText = jsonText
    }

    /// For text a parser has already checked against the JSON number grammar.
    init(validatedJSONText: String) {
        self.jsonText = validatedJSONText
    }

    /// The integer `value`, exactly.
    public init(_ value: some BinaryInteger) {
        self.jsonText = String(value)
    }

    /// The shortest text that reads back as `value` (`0.1` is `0.1`, `3.0` is `3`); `nil` if
    /// `value` is NaN or infinite, which JSON cannot represent.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        self.jsonText = Self.text(of: value)
    }

    public init(integerLiteral value: Int) {
        self.init(value)
    }

    /// A float literal; it must be finite.
    public init(floatLiteral value: Double) {
        precondition(value.isFinite, "A JSONNumber literal must be finite")
        self.jsonText = Self.text(of: value)
    }

    /// The same text JSONEncoder writes for a `Double`, so values stored before and after
    /// `JSONNumber` existed read the same.
    private static func text(of value: Double) -> String {
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }

    public var description: String { jsonText }

    /// The nearest `Double`; infinite when the number is beyond `Double`'s range (`1e400`),
    /// zero when it is too small to tell apart from zero.
    public var doubleValue: Double {
        Double(jsonText) ?? .nan
    }

    /// The number as an `Int64` if it is an integer in `Int64`'s range (`42`, `4.2e1` and
    /// `-9223372036854775808` are; `4.5` and `9223372036854775808` are not).
    public var int64Value: Int64? {
        guard let (negative, magnitude) = integerMagnitude else { return nil }
        if negative {
            if magnitude == UInt64(Int64.max) + 1 { return .min }
            return magnitude <= UInt64(Int64.max) ? -Int64(magnitude) : nil
        }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    /// The number as a `UInt64` if it is an integer in `UInt64`'s range.
    public var uint64Value: UInt64? {
        guard let (negative, magnitude) = integerMagnitude else { return nil }
        return negative && magnitude != 0 ? nil : magnitude
    }

    // MARK: Exact value

    /// The decimal value in a canonical form: the significant digits without leading or
    /// trailing zeros, and the power of ten they are multiplied by. Zero has no digits (so `-0`
    /// equals `0`). `nil` for exponents too large to normalise exactly (beyond ±10^15), which are
    /// then compared by their text.
    private struct Decomposed: Hashable {
        var negative: Bool
        var digits: [UInt8]
        var exponent: Int
    }

    private var decomposed: Decomposed? {
        let bytes = Array(jsonText.utf8)
        var index = 0
        var negative = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        var digits: [UInt8] = []
        var exponent = 0
        var hugeExponent = false
        while index < bytes.count, Self.isDigit(bytes[index]) {
            digits.append(bytes[index])
            index += 1
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < bytes.count, Self.isDigit(bytes[index]) {
                digits.append(bytes[index])
                exponent -= 1
                index += 1
            }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            var exponentNegative = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
                exponentNegative = bytes[index] == UInt8(ascii: "-")
                index += 1
            }
            var written = 0
            while index < bytes.count, Self.isDigit(bytes[index]) {
                // Beyond 10^15, exact normalisation would need big integers; such numbers are
                // compared by their text instead.
                if written <= 1_000_000_000_000_000 { written = written * 10 + Int(bytes[index] - UInt8(ascii: "0")) }
                index += 1
            }
            hugeExponent = written > 1_000_000_000_000_000
            exponent += exponentNegative ? -written : written
        }
        let leadingZeros = digits.prefix { $0 == UInt8(ascii: "0") }.count
        digits.removeFirst(leadingZeros)
        if digits.isEmpty { return Decomposed(negative: false, digits: [], exponent: 0) }
        if hugeExponent { return nil }
        while digits.last == UInt8(ascii: "0") {
            digits.removeLast()
            exponent += 1
        }
        return Decomposed(negative: negative, digits: digits, exponent: exponent)
    }

    /// The sign and magnitude if the number is an integer of at most 64 bits.
    private var integerMagnitude: (negative: Bool, magnitude: UInt64)? {
        guard let value = decomposed, value.exponent >= 0 || value.digits.isEmpty,
              value.digits.count + value.exponent <= 20 else { return nil }
        var magnitude: UInt64 = 0
        for digit in value.digits {
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            magnitude = sum
        }
        for _ in 0..<value.exponent {
            let (times10, overflow) = magnitude.multipliedReportingOverflow(by: 10)
            if overflow { return nil }
            magnitude = times10
        }
        return (value.negative, magnitude)
    }

    public static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        if lhs.jsonText == rhs.jsonText { return true }
        guard let left = lhs.decomposed, let right = rhs.decomposed else { return false }
        return left == right
    }

    public func hash(into hasher: inout Hasher) {
        if let value = decomposed {
            hasher.combine(value)
        } else {
            hasher.combine(jsonText)
        }
    }

    // MARK: Grammar

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    /// Whether `text` is exactly one JSON number (RFC 8259, section 6).
    static func isValidLiteral(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            literalEnd(in: bytes, from: 0) == bytes.count
        }
    }

    /// Where the number starting at `start` ends, or `nil` if no valid number starts there.
    /// (The caller decides whether what follows may follow a number.)
    static func literalEnd(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var index = start
        let count = bytes.count
        if index < count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < count else { return nil }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if isDigit(bytes[index]) {
            while index < count, isDigit(bytes[index]) { index += 1 }
        } else {
            return nil
        }
        if index < count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            let fractionStart = index
            while index < count, isDigit(bytes[index]) { index += 1 }
            guard index > fractionStart else { return nil }
        }
        if index < count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") { index += 1 }
            let exponentStart = index
            while index < count, isDigit(bytes[index]) { index += 1 }
            guard index > exponentStart else { return nil }
        }
        return index
    }

    // MARK: Codable

    /// Decoders hand numbers over as Swift numeric types, not as text, so a number decoded here
    /// is exact when it is an integer of at most 64 bits or a `Double` written in its shortest
    /// form; others are the nearest `Double`. (``JSONValue/init(parsing:)-(String)`` keeps every
    /// number exactly.)
    public init(from decoder: any Decoder) throws {
        self = try Self.decode(from: decoder.singleValueContainer())
    }

    static func decode(from container: any SingleValueDecodingContainer) throws -> JSONNumber {
        let double = try container.decode(Double.self)
        guard double.isFinite else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: container.codingPath, debugDescription: "\(double) is not a JSON number"))
        }
        // Beyond 2^53 a Double skips integers: ask for the exact integer (a success when it fits
        // 64 bits, so no failed attempt for the common case).
        if double.rounded() == double, double.magnitude >= 9_007_199_254_740_992, double.magnitude <= 18_446_744_073_709_551_616 {
            if double < 0, let exact = try? container.decode(Int64.self) { return JSONNumber(exact) }
            if double > 0, let exact = try? container.decode(UInt64.self) { return JSONNumber(exact) }
        }
        return JSONNumber(validatedJSONText: text(of: double))
    }

    /// Encoders take numbers as Swift numeric types: integers of at most 64 bits are written
    /// exactly, other numbers as the nearest `Double`.
    ///
    /// - Throws: `EncodingError.invalidValue` for numbers beyond `Double`'s range (`1e400`),
    ///   which no `Double` can carry; ``JSONValue/jsonText`` writes them exactly.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let exact = int64Value {
            if exact == 0, jsonText.hasPrefix("-") {
                try container.encode(-0.0)
            } else {
                try container.encode(exact)
            }
        } else if let exact = uint64Value {
            try container.encode(exact)
        } else {
            let double = doubleValue
            guard double.isFinite else {
                throw EncodingError.invalidValue(self, .init(
                    codingPath: encoder.codingPath,
                    debugDescription: "The JSON number \(jsonText) is beyond Double's range; an Encoder can only write it as a Double. Use JSONValue.jsonText to write it exactly."))
            }
            try container.encode(double)
        }
    }
}
