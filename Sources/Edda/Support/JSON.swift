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

    /// For values without a declared key order (dictionaries): sorted keys, so the same value
    /// always gives the same text.
    private static let sortedEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return encoder
    }()

    private static let sharedDecoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    static func encode<T: Encodable>(_ value: T) throws -> String {
        let data = try sharedEncoder.encode(value)
        return String(decoding: data, as: UTF8.self)
    }

    static func encodeSorted<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try sortedEncoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try sharedDecoder.decode(type, from: Data(text.utf8))
    }
}

/// A JSON value of any shape: what a workflow's stored input, output or history data holds when
/// no Swift type is known for it (queries, the viewer, tools).
public enum JSONValue: Sendable, Hashable, Codable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            if value.rounded() == value, abs(value) < 1e15 {
                try container.encode(Int64(value))
            } else {
                try container.encode(value)
            }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Parses JSON text; `nil` if it is not valid JSON.
    public init?(jsonText: String) {
        guard let value = try? JSON.decode(JSONValue.self, from: jsonText) else { return nil }
        self = value
    }

    /// The value as compact JSON text, object keys sorted.
    public var jsonText: String {
        (try? JSON.encodeSorted(self)) ?? "null"
    }

    public var description: String { jsonText }

    /// The member named `key` of an object, or `nil`.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// The element at `index` of an array, or `nil`.
    public subscript(index: Int) -> JSONValue? {
        if case .array(let elements) = self, elements.indices.contains(index) { return elements[index] }
        return nil
    }

    /// The text of a string value, or `nil`.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// A number value, or `nil`.
    public var numberValue: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The elements of an array value, or `nil`.
    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
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

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}

/// Reads a member of a JSON object as the exact text it was written with, so that a value can be
/// decoded from history exactly as it was from the original message (no number or key-order
/// changes from a round trip through ``JSONValue``).
package enum RawJSON {
    /// The text of the top-level member `key` of the object `text`, or `nil` if `text` is not an
    /// object or has no such member.
    package static func member(_ key: String, in text: String) -> String? {
        let bytes = Array(text.utf8)
        var index = 0
        skipSpace(bytes, &index)
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return nil }
        index += 1
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
            if name == key { return String(decoding: bytes[valueStart..<index], as: UTF8.self) }
            skipSpace(bytes, &index)
            guard index < bytes.count else { return nil }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            return nil
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
