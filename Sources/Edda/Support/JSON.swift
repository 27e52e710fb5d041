import Foundation

/// The JSON coders used for everything Edda stores.
///
/// Dates are written as ISO 8601 text, which is what the sibling implementations read.
enum JSON {
    /// Shared coders: configured once, never mutated afterwards (encoding and decoding with
    /// them is thread-safe).
    private static let sharedEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()

    private static let sharedDecoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    static func encode<T: Encodable>(_ value: T) throws -> String {
        if let text = jsonValueText(value) { return text }
        let data = try sharedEncoder.encode(value)
        return String(decoding: data, as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        if let value = try jsonValue(type, from: text) { return value }
        return try sharedDecoder.decode(type, from: Data(text.utf8))
    }

    /// ``JSONValue``s written by ``JSONValue/jsonText``, which keeps their numbers exact (an
    /// `Encoder` only takes numbers as Swift numeric types).
    private static func jsonValueText<T: Encodable>(_ value: T) -> String? {
        if T.self == JSONValue.self, let json = value as? JSONValue { return json.jsonText }
        if T.self == [String: JSONValue].self, let members = value as? [String: JSONValue] {
            return JSONValue.object(members).jsonText
        }
        if T.self == [JSONValue].self, let elements = value as? [JSONValue] { return JSONValue.array(elements).jsonText }
        return nil
    }

    /// ``JSONValue``s read by ``JSONValue/init(parsing:)-(String)``, in linear time and with exact
    /// numbers, instead of through `JSONDecoder` (see ``JSONValue/init(from:)``).
    private static func jsonValue<T: Decodable>(_ type: T.Type, from text: String) throws -> T? {
        guard isJSONValue(type) else { return nil }
        let value = try JSONValue(parsing: text)
        guard let converted = value.converted(to: type) else {
            throw DecodingError.typeMismatch(type, .init(
                codingPath: [], debugDescription: "Expected to decode \(type) but found \(value.jsonText.prefix(40)) instead."))
        }
        return converted
    }

    /// Whether `type` is ``JSONValue``, `[String: JSONValue]` or `[JSONValue]`, which are read
    /// with ``JSONValue``'s own parser.
    static func isJSONValue<T>(_ type: T.Type) -> Bool {
        T.self == JSONValue.self || T.self == [String: JSONValue].self || T.self == [JSONValue].self
    }
}

extension JSONValue {
    /// The value as `type` if that is ``JSONValue``, or `[String: JSONValue]` for an object, or
    /// `[JSONValue]` for an array; otherwise `nil`.
    func converted<T>(to type: T.Type) -> T? {
        if T.self == JSONValue.self { return self as? T }
        switch self {
        case .object(let members) where T.self == [String: JSONValue].self: return members as? T
        case .array(let elements) where T.self == [JSONValue].self: return elements as? T
        default: return nil
        }
    }
}

/// A `Codable` stand-in for "no value", for workflows and activities that take no input or
/// return nothing. It is stored as JSON `null` (or `{}` as a workflow input).
public struct NoValue: Codable, Sendable, Hashable {
    /// The empty value.
    public init() {}

    public init(from decoder: any Decoder) throws {}

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encodeNil()
    }
}

/// Reads a member of a JSON object as the exact text it was written with, so that a value can be
/// decoded from history exactly as it was from the original message (no number or key-order
/// changes from a round trip through ``JSONValue``).
package enum RawJSON {
    /// The text of the top-level member `key` of the object `text`, or `nil` if `text` is not an
    /// object or has no such member.
    package static func member(_ key: String, in text: String) -> String? {
        let bytes = Array(text.utf8)
        return find(key, in: bytes).map { String(decoding: bytes[$0.value], as: UTF8.self) }
    }

    /// The object `text` without its top-level member `key` (the rest as written); `nil` if
    /// `text` is not an object or has no such member.
    package static func removingMember(_ key: String, from text: String) -> String? {
        var bytes = Array(text.utf8)
        guard let found = find(key, in: bytes) else { return nil }
        // With its following comma, or else the comma before it.
        let removed = found.next.map { found.keyStart..<$0 }
            ?? found.previousValueEnd.map { $0..<found.value.upperBound }
            ?? found.keyStart..<found.value.upperBound
        bytes.removeSubrange(removed)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Where the top-level member `key` of the object in `bytes` is: its key's start, its
    /// value, where the next member starts (if a comma follows), and where the previous
    /// member's value ended (if there is one).
    private static func find(_ key: String, in bytes: [UInt8])
        -> (keyStart: Int, value: Range<Int>, next: Int?, previousValueEnd: Int?)?
    {
        var index = 0
        skipSpace(bytes, &index)
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return nil }
        index += 1
        var previousValueEnd: Int?
        while true {
            skipSpace(bytes, &index)
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
            let keyStart = index
            guard skipValue(bytes, &index) else { return nil }
            let name = try? JSON.decode(String.self, from: String(decoding: bytes[keyStart..<index], as: UTF8.self))
            skipSpace(bytes, &index)
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
            index += 1
            skipSpace(bytes, &index)
            let valueStart = index
            guard skipValue(bytes, &index) else { return nil }
            let value = valueStart..<index
            skipSpace(bytes, &index)
            var next: Int?
            if index < bytes.count, bytes[index] == UInt8(ascii: ",") {
                index += 1
                skipSpace(bytes, &index)
                next = index
            }
            if name == key { return (keyStart, value, next, previousValueEnd) }
            guard next != nil else { return nil }
            previousValueEnd = value.upperBound
        }
    }

    /// The texts of the elements of the array `text`, or `nil` if `text` is not an array.
    package static func elements(of text: String) -> [String]? {
        let bytes = Array(text.utf8)
        var index = 0
        skipSpace(bytes, &index)
        guard index < bytes.count, bytes[index] == UInt8(ascii: "[") else { return nil }
        index += 1
        var elements: [String] = []
        skipSpace(bytes, &index)
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") { return trailingSpaceOnly(bytes, index + 1) ? [] : nil }
        while true {
            skipSpace(bytes, &index)
            let start = index
            guard skipValue(bytes, &index) else { return nil }
            elements.append(String(decoding: bytes[start..<index], as: UTF8.self))
            skipSpace(bytes, &index)
            guard index < bytes.count else { return nil }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "]") else { return nil }
            return trailingSpaceOnly(bytes, index + 1) ? elements : nil
        }
    }

    private static func trailingSpaceOnly(_ bytes: [UInt8], _ from: Int) -> Bool {
        var index = from
        skipSpace(bytes, &index)
        return index == bytes.count
    }

    private static func skipSpace(_ bytes: [UInt8], _ index: inout Int) {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    /// Moves past one JSON value (string, number, literal, array or object).
    private static func skipValue(_ bytes: [UInt8], _ index: inout Int) -> Bool {
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            return skipString(bytes, &index)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard skipString(bytes, &index) else { return false }
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 {
                        index += 1
                        return true
                    }
                default:
                    break
                }
                index += 1
            }
            return false
        default:
            let start = index
            while index < bytes.count, !",}] \t\n\r".utf8.contains(bytes[index]) { index += 1 }
            return index > start
        }
    }

    private static func skipString(_ bytes: [UInt8], _ index: inout Int) -> Bool {
        index += 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\\"):
                index += 2
            case UInt8(ascii: "\""):
                index += 1
                return true
            default:
                index += 1
            }
        }
        return false
    }
}
