import Foundation

/// A JSON-schema-like description of a workflow's input: what the viewer's start form asks for.
///
/// The app derives it from the input type's `Decodable` conformance
/// (``InputSchema/describing(_:)``): structs become objects with their coding keys, optionals
/// become optional fields, `CaseIterable` string enums become choices, arrays keep their element
/// type, and `Date`, `URL` and `UUID` are strings. Where the derivation cannot see the shape (a
/// custom `init(from:)` that validates, a dictionary), the schema is ``json``: the form asks
/// for JSON text. A workflow can declare its schema instead:
///
/// ```swift
/// struct Refund: Workflow {
///     static let name = "refund"
///     static var inputSchema: InputSchema {
///         .object([.init("order_id", .string), .init("amount", .integer), .init("reason", .optional(.string))])
///     }
///     …
/// }
/// ```
public indirect enum InputSchema: Sendable, Hashable {
    /// A JSON string.
    case string
    /// A JSON number without a fraction.
    case integer
    /// Any JSON number.
    case number
    /// `true` or `false`.
    case boolean
    /// One of these strings.
    case choice([String])
    /// A JSON array of elements of one schema.
    case array(InputSchema)
    /// A JSON object with these fields, in declaration order.
    case object([InputField])
    /// The schema, or absent/null.
    case optional(InputSchema)
    /// Any JSON value (entered as JSON text).
    case json

    /// The schema of a wrapped optional, or the schema itself.
    public var unwrapped: InputSchema {
        if case .optional(let wrapped) = self { return wrapped.unwrapped }
        return self
    }

    /// Whether the value may be absent.
    public var isOptional: Bool {
        if case .optional = self { return true }
        return false
    }

    /// The description in JSON Schema form (`type`, `properties`, `required`, `items`, `enum`).
    public var jsonSchema: JSONValue {
        switch self {
        case .string: return ["type": "string"]
        case .integer: return ["type": "integer"]
        case .number: return ["type": "number"]
        case .boolean: return ["type": "boolean"]
        case .choice(let values): return ["type": "string", "enum": .array(values.map { .string($0) })]
        case .array(let element): return ["type": "array", "items": element.jsonSchema]
        case .optional(let wrapped): return wrapped.jsonSchema
        case .json: return [:]
        case .object(let fields):
            var properties: [String: JSONValue] = [:]
            for field in fields { properties[field.name] = field.schema.jsonSchema }
            return [
                "type": "object", "properties": .object(properties),
                "required": .array(fields.filter { !$0.schema.isOptional }.map { .string($0.name) }),
            ]
        }
    }

    /// The schema of `type` as its `Decodable` conformance reads it, or ``json`` when that
    /// cannot be observed.
    public static func describing<T: Decodable>(_ type: T.Type) -> InputSchema {
        let slot = Probe.Slot()
        do {
            _ = try Probe.placeholder(type, slot: slot, depth: 0, budget: Probe.Budget())
            return slot.schema ?? .json
        } catch {
            return .json
        }
    }
}

/// A field of an object input.
public struct InputField: Sendable, Hashable {
    /// The JSON key.
    public var name: String
    /// The value's schema; ``InputSchema/optional(_:)`` when the key may be absent.
    public var schema: InputSchema

    /// Creates a field.
    public init(_ name: String, _ schema: InputSchema) {
        self.name = name
        self.schema = schema
    }
}

/// A `Decoder` that answers every request with a placeholder and writes down what was asked.
private enum Probe {
    struct Failure: Error {}

    /// Where one value's schema is written.
    final class Slot {
        var schema: InputSchema?
        var fields: [InputField] = []
        var sawAllKeys = false
    }

    static let maximumDepth = 8

    /// How many values one description may probe: recursive types with several self-references
    /// grow exponentially with depth, so a large description gives up and becomes JSON.
    final class Budget {
        var remaining = 5_000
    }

    static func knownSchema<T>(of type: T.Type) -> InputSchema? {
        switch type {
        case is String.Type, is Character.Type, is URL.Type, is UUID.Type, is Date.Type: return .string
        case is Bool.Type: return .boolean
        case is Double.Type, is Float.Type, is Decimal.Type: return .number
        case is Int.Type, is Int8.Type, is Int16.Type, is Int32.Type, is Int64.Type,
            is UInt.Type, is UInt8.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type:
            return .integer
        case is Data.Type: return .string
        case is JSONValue.Type: return .json
        case is NoValue.Type: return .object([])
        default: break
        }
        if let choices = caseNames(of: type) { return .choice(choices) }
        return nil
    }

    /// The raw values of a `CaseIterable` enum with string raw values.
    static func caseNames<T>(of type: T.Type) -> [String]? {
        guard let iterable = type as? any CaseIterable.Type else { return nil }
        let names = allCases(iterable).compactMap { ($0 as? any RawRepresentable)?.rawValue as? String }
        return names.isEmpty ? nil : names
    }

    private static func allCases<C: CaseIterable>(_ type: C.Type) -> [Any] { Array(type.allCases) }

    /// A placeholder value of `T`, recording its schema in `slot`.
    static func placeholder<T: Decodable>(_ type: T.Type, slot: Slot, depth: Int, budget: Budget) throws -> T {
        budget.remaining -= 1
        guard budget.remaining > 0 else { throw Failure() }
        if let iterable = type as? any CaseIterable.Type, let names = caseNames(of: type),
           let first = allCases(iterable).first as? T {
            slot.schema = .choice(names)
            return first
        }
        let known = knownSchema(of: type)
        switch type {
        case is String.Type: slot.schema = known; return "" as! T
        case is Bool.Type: slot.schema = known; return false as! T
        case is Int.Type: slot.schema = known; return 0 as! T
        case is Double.Type: slot.schema = known; return 0.0 as! T
        case is Date.Type: slot.schema = known; return Date(timeIntervalSince1970: 0) as! T
        case is UUID.Type: slot.schema = known; return UUID() as! T
        case is URL.Type: slot.schema = known; return URL(string: "https://example.com")! as! T
        case is Decimal.Type: slot.schema = known; return Decimal(0) as! T
        case is Float.Type: slot.schema = known; return Float(0) as! T
        case is Int8.Type: slot.schema = known; return Int8(0) as! T
        case is Int16.Type: slot.schema = known; return Int16(0) as! T
        case is Int32.Type: slot.schema = known; return Int32(0) as! T
        case is Int64.Type: slot.schema = known; return Int64(0) as! T
        case is UInt.Type: slot.schema = known; return UInt(0) as! T
        case is UInt8.Type: slot.schema = known; return UInt8(0) as! T
        case is UInt16.Type: slot.schema = known; return UInt16(0) as! T
        case is UInt32.Type: slot.schema = known; return UInt32(0) as! T
        case is UInt64.Type: slot.schema = known; return UInt64(0) as! T
        case is Data.Type: slot.schema = known; return Data() as! T
        default: break
        }
        if type is NoValue.Type { slot.schema = .object([]); return NoValue() as! T }
        if type is JSONValue.Type { slot.schema = .json; return JSONValue.null as! T }
        guard depth < maximumDepth else { throw Failure() }
        let value = try T(from: Decoder(slot: slot, depth: depth + 1, budget: budget))
        // `Optional` decodes through `decodeNil`, which the probe answers with "present".
        if type is any ExpressibleByNilLiteral.Type { slot.schema = .optional(slot.schema ?? .json) }
        return value
    }

    struct Decoder: Swift.Decoder {
        let slot: Slot
        let depth: Int
        let budget: Budget
        var codingPath: [any CodingKey] = []
        var userInfo: [CodingUserInfoKey: Any] = [:]

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            KeyedDecodingContainer(Keyed<Key>(slot: slot, depth: depth, budget: budget))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer { Unkeyed(slot: slot, depth: depth, budget: budget) }

        func singleValueContainer() throws -> any SingleValueDecodingContainer {
            Single(slot: slot, depth: depth, budget: budget)
        }
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let slot: Slot
        let depth: Int
        let budget: Budget
        var codingPath: [any CodingKey] = []

        init(slot: Slot, depth: Int, budget: Budget) {
            self.slot = slot
            self.depth = depth
            self.budget = budget
            slot.schema = .object([])
        }

        var allKeys: [Key] {
            // A dictionary asks which keys exist: its shape is open, so describe it as JSON.
            slot.sawAllKeys = true
            slot.schema = .json
            return []
        }

        func contains(_ key: Key) -> Bool { true }

        private func record(_ key: Key, _ schema: InputSchema) {
            guard !slot.sawAllKeys else { return }
            slot.fields.removeAll { $0.name == key.stringValue }
            slot.fields.append(InputField(key.stringValue, schema))
            slot.schema = .object(slot.fields)
        }

        func decodeNil(forKey key: Key) throws -> Bool { false }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            let inner = Slot()
            let value = try placeholder(type, slot: inner, depth: depth, budget: budget)
            record(key, inner.schema ?? .json)
            return value
        }

        // The standard library's overloads for these types would otherwise call `decode` and
        // lose the optionality.
        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try optional(type, key) }
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try optional(type, key) }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try optional(type, key) }
        func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try optional(type, key) }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try optional(type, key) }
        func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try optional(type, key) }
        func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try optional(type, key) }
        func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try optional(type, key) }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try optional(type, key) }
        func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try optional(type, key) }
        func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try optional(type, key) }
        func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try optional(type, key) }
        func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try optional(type, key) }
        func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try optional(type, key) }

        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            try optional(type, key)
        }

        private func optional<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T? {
            let inner = Slot()
            do {
                _ = try placeholder(type, slot: inner, depth: depth, budget: budget)
                record(key, .optional(inner.schema ?? .json))
            } catch {
                record(key, .optional(.json))
            }
            return nil
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            record(key, .json)
            return KeyedDecodingContainer(Keyed<NestedKey>(slot: Slot(), depth: depth + 1, budget: budget))
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            record(key, .json)
            return Unkeyed(slot: Slot(), depth: depth + 1, budget: budget)
        }

        func superDecoder() throws -> any Swift.Decoder { Decoder(slot: Slot(), depth: depth + 1, budget: budget) }
        func superDecoder(forKey key: Key) throws -> any Swift.Decoder { Decoder(slot: Slot(), depth: depth + 1, budget: budget) }
    }

    /// Reports one element, then the end: enough to learn the element type.
    struct Unkeyed: UnkeyedDecodingContainer {
        let slot: Slot
        let depth: Int
        let budget: Budget
        var codingPath: [any CodingKey] = []
        var count: Int? { nil }
        var currentIndex = 0
        var isAtEnd: Bool { currentIndex > 0 }

        init(slot: Slot, depth: Int, budget: Budget) {
            self.slot = slot
            self.depth = depth
            self.budget = budget
            slot.schema = .array(.json)
        }

        mutating func decodeNil() throws -> Bool { false }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let inner = Slot()
            let value = try placeholder(type, slot: inner, depth: depth, budget: budget)
            slot.schema = .array(inner.schema ?? .json)
            currentIndex += 1
            return value
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            currentIndex += 1
            return KeyedDecodingContainer(Keyed<NestedKey>(slot: Slot(), depth: depth + 1, budget: budget))
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            currentIndex += 1
            return Unkeyed(slot: Slot(), depth: depth + 1, budget: budget)
        }

        mutating func superDecoder() throws -> any Swift.Decoder { Decoder(slot: Slot(), depth: depth + 1, budget: budget) }
    }

    struct Single: SingleValueDecodingContainer {
        let slot: Slot
        let depth: Int
        let budget: Budget
        var codingPath: [any CodingKey] = []

        func decodeNil() -> Bool { false }

        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try placeholder(type, slot: slot, depth: depth, budget: budget)
        }
    }
}
