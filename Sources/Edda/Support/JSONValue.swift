/// A JSON value of any shape: what a workflow's stored input, output or history data holds when
/// no Swift type is known for it (queries, the viewer, tools).
///
/// Read JSON text with ``init(parsing:)-(String)`` (or ``init(jsonText:)``), which takes time
/// linear in the text and keeps numbers exact, and write it with ``jsonText``:
///
/// ```swift
/// let value = try JSONValue(parsing: #"{"id": 9223372036854775807, "tags": ["a"]}"#)
/// value["tags"]?[0]?.stringValue  // "a"
/// value.jsonText                  // {"id":9223372036854775807,"tags":["a"]}
/// ```
///
/// `JSONValue` is also `Codable`, for use inside your own types; see ``init(from:)`` for what
/// that costs.
public enum JSONValue: Sendable, Hashable, Codable, CustomStringConvertible {
    case null
    case bool(Bool)
    /// A number, exactly as written (see ``JSONNumber``).
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// A number from a `Double`, or ``null`` if `value` is NaN or infinite (JSON cannot represent
    /// them; JavaScript's `JSON.stringify` writes them as `null` too).
    public static func number(_ value: Double) -> JSONValue {
        JSONNumber(value).map(JSONValue.number) ?? .null
    }

    /// A number from an `Int`, exactly.
    public static func number(_ value: Int) -> JSONValue {
        .number(JSONNumber(value))
    }

    /// Decodes any JSON value through a `Decoder`, for `JSONValue`s inside your own `Codable`
    /// types.
    ///
    /// A `Decoder` cannot say which shape a value has, only fail when asked for the wrong one;
    /// this asks for an object, then an array, a string, a number and a boolean (`null` is
    /// asked for without failing), so objects cost no failed attempt and booleans four.
    /// Foundation's `JSONDecoder` builds each failure's coding path in time quadratic in the
    /// value's depth, which makes deeply nested values decoded this way slower than
    /// ``init(parsing:)-(String)`` by far: parse untrusted JSON text with that instead. Numbers
    /// are exact when they are integers of at most 64 bits or `Double`s in shortest form (see
    /// ``JSONNumber/init(from:)``).
    public init(from decoder: any Decoder) throws {
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
            return
        }
        if (try? decoder.container(keyedBy: MemberName.self)) != nil {
            // Decoded as a dictionary, not through the keyed container: JSONDecoder applies its
            // key decoding strategy to containers but leaves dictionary keys as written.
            self = .object(try single.decode([String: JSONValue].self))
            return
        }
        if var elements = try? decoder.unkeyedContainer() {
            var array: [JSONValue] = []
            if let count = elements.count { array.reserveCapacity(count) }
            while !elements.isAtEnd { array.append(try elements.decode(JSONValue.self)) }
            self = .array(array)
            return
        }
        if let text = try? single.decode(String.self) {
            self = .string(text)
            return
        }
        do {
            self = .number(try JSONNumber.decode(from: single))
        } catch {
            guard let flag = try? single.decode(Bool.self) else { throw error }
            self = .bool(flag)
        }
    }

    private struct MemberName: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Encodes the value through an `Encoder`. Numbers go through ``JSONNumber/encode(to:)``:
    /// exact for integers of at most 64 bits, otherwise the nearest `Double`. ``jsonText``
    /// writes every number exactly.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
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

    /// A number value as the nearest `Double`, or `nil`. For the exact number, match
    /// `case .number(let number)` (see ``JSONNumber``).
    public var numberValue: Double? {
        if case .number(let value) = self { return value.doubleValue }
        return nil
    }

    /// The elements of an array value, or `nil`.
    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(JSONNumber(value)) }
    public init(floatLiteral value: Double) { self = .number(JSONNumber(floatLiteral: value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}
