extension JSONValue {
    /// The deepest nesting of arrays and objects ``init(parsing:)-(String)`` reads: 512 levels,
    /// as Foundation's `JSONDecoder` and `JSONSerialization`.
    public static let maximumNestingDepth = 512

    /// Parses JSON text (RFC 8259), in time linear in its length.
    ///
    /// Any JSON value may stand at the top level. Numbers are kept exactly as written (see
    /// ``JSONNumber``); when an object repeats a member name, the first value is kept (as
    /// Foundation's `JSONDecoder` does). A leading byte order mark is ignored.
    ///
    /// ```swift
    /// let order = try JSONValue(parsing: #"{"id": "o-1", "amount": 9007199254740993}"#)
    /// order["amount"]?.jsonText  // "9007199254740993"
    /// ```
    ///
    /// - Throws: ``InvalidJSONError`` for text that is not one JSON value (trailing text,
    ///   trailing commas, leading zeros, unescaped control characters, lone UTF-16 surrogates in
    ///   `\u` escapes), or that nests arrays and objects more than ``maximumNestingDepth`` deep.
    public init(parsing text: String) throws(InvalidJSONError) {
        var text = text
        let result = text.withUTF8 { bytes in
            Result { () throws(InvalidJSONError) in
                var parser = JSONParser(bytes: bytes)
                return try parser.parse()
            }
        }
        self = try result.get()
    }

    /// Parses JSON text given as UTF-8 bytes (for example a request body), in time linear in its
    /// length.
    ///
    /// - Throws: ``InvalidJSONError`` as ``init(parsing:)-(String)`` does, and for bytes that
    ///   are not valid UTF-8.
    public init(parsing bytes: some Collection<UInt8>) throws(InvalidJSONError) {
        let parse = { (buffer: UnsafeBufferPointer<UInt8>) in
            Result { () throws(InvalidJSONError) in
                var parser = JSONParser(bytes: buffer)
                return try parser.parse()
            }
        }
        let result = bytes.withContiguousStorageIfAvailable(parse) ?? Array(bytes).withUnsafeBufferPointer(parse)
        self = try result.get()
    }

    /// Parses JSON text; `nil` if it is not valid JSON (see ``init(parsing:)-(String)``).
    public init?(jsonText: String) {
        guard let value = try? JSONValue(parsing: jsonText) else { return nil }
        self = value
    }
}

/// A JSON parser over UTF-8 bytes: one pass, no backtracking, nesting tracked on explicit
/// stacks (so neither the time nor the call stack grows with anything but the input's size and
/// the 512-level depth limit).
///
/// Finished values wait on a stack (and object member names on another) until their container
/// closes; then the container's values move into one array or dictionary. Each value is moved
/// once, so the work is linear in the input.
///
/// The stacks are arrays with a separate count, overwritten rather than shrunk: debug builds run
/// this code too, and there Array's generic `removeLast(_:)` and range operations cost far more
/// than the parsing itself. (Slots above the count hold values already moved into a container
/// until they are overwritten or the parse ends.)
struct JSONParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    private var values: [JSONValue] = []
    private var valueCount = 0
    private var keys: [String] = []
    private var keyCount = 0
    private var open: [OpenContainer] = []
    private var depth = 0

    private struct OpenContainer {
        var isObject: Bool
        var firstValue: Int
        var firstKey: Int
    }

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    private mutating func push(_ value: JSONValue) {
        if valueCount < values.count {
            values[valueCount] = value
        } else {
            values.append(value)
        }
        valueCount += 1
    }

    private mutating func pushKey(_ key: String) {
        if keyCount < keys.count {
            keys[keyCount] = key
        } else {
            keys.append(key)
        }
        keyCount += 1
    }

    private mutating func openContainer(isObject: Bool) throws(InvalidJSONError) {
        guard depth < JSONValue.maximumNestingDepth else { throw InvalidJSONError.tooDeep(at: index) }
        let container = OpenContainer(isObject: isObject, firstValue: valueCount, firstKey: keyCount)
        if depth < open.count {
            open[depth] = container
        } else {
            open.append(container)
        }
        depth += 1
    }

    /// Moves the values (and names) of the innermost container into it, and puts it in their place.
    private mutating func closeContainer() {
        depth -= 1
        let container = open[depth]
        let count = valueCount - container.firstValue
        let closed: JSONValue
        if container.isObject {
            var members: [String: JSONValue] = Dictionary(minimumCapacity: count)
            var member = 0
            while member < count {
                // The first of repeated names wins, as with JSONDecoder and RawJSON.
                let key = keys[container.firstKey + member]
                if members.index(forKey: key) == nil { members[key] = values[container.firstValue + member] }
                member += 1
            }
            keyCount = container.firstKey
            closed = .object(members)
        } else {
            var elements: [JSONValue] = []
            elements.reserveCapacity(count)
            var element = 0
            while element < count {
                elements.append(values[container.firstValue + element])
                element += 1
            }
            closed = .array(elements)
        }
        valueCount = container.firstValue
        push(closed)
    }

    mutating func parse() throws(InvalidJSONError) -> JSONValue {
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { index = 3 }
        skipWhitespace()
        parsing: while true {
            // A value is expected here.
            guard index < bytes.count else { throw failure("the text ends where a value was expected") }
            switch bytes[index] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let isObject = bytes[index] == UInt8(ascii: "{")
                try openContainer(isObject: isObject)
                index += 1
                skipWhitespace()
                if index < bytes.count, bytes[index] == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    index += 1
                    closeContainer()
                } else {
                    if isObject { pushKey(try memberName()) }
                    continue parsing
                }
            case UInt8(ascii: "\""):
                push(.string(try string()))
            case UInt8(ascii: "t"):
                try literal("true")
                push(.bool(true))
            case UInt8(ascii: "f"):
                try literal("false")
                push(.bool(false))
            case UInt8(ascii: "n"):
                try literal("null")
                push(.null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                push(.number(try number()))
            default:
                throw failure("expected a value (an object, array, string, number, true, false or null)")
            }

            // A value ended: continue its container, or close containers that end here.
            while true {
                skipWhitespace()
                guard depth > 0 else {
                    guard index == bytes.count else { throw failure("unexpected text after the JSON value") }
                    return values[0]
                }
                let isObject = open[depth - 1].isObject
                guard index < bytes.count else {
                    throw failure(isObject ? "the text ends inside an object" : "the text ends inside an array")
                }
                let byte = bytes[index]
                if byte == UInt8(ascii: ",") {
                    index += 1
                    skipWhitespace()
                    if isObject { pushKey(try memberName()) }
                    continue parsing
                }
                guard byte == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else {
                    throw failure(isObject ? "expected ',' or '}' after an object member" : "expected ',' or ']' after an array element")
                }
                index += 1
                closeContainer()
            }
        }
    }

    private func failure(_ reason: String) -> InvalidJSONError {
        InvalidJSONError(offset: index, reason: reason)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    /// An object member's name and the `:` after it.
    private mutating func memberName() throws(InvalidJSONError) -> String {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
            throw failure("expected a member name in double quotes")
        }
        let name = try string()
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw failure("expected ':' after a member name") }
        index += 1
        skipWhitespace()
        return name
    }

    private mutating func literal(_ word: StaticString) throws(InvalidJSONError) {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count else { throw failure("expected \(word)") }
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: count)
        for offset in 0..<count where bytes[index + offset] != expected[offset] {
            throw failure("expected \(word)")
        }
        index += count
    }

    private mutating func number() throws(InvalidJSONError) -> JSONNumber {
        let start = index
        guard let end = JSONNumber.literalEnd(in: bytes, from: start) else {
            var at = start
            if bytes[at] == UInt8(ascii: "-") { at += 1 }
            index = at
            throw failure(at < bytes.count && bytes[at] >= UInt8(ascii: "0") && bytes[at] <= UInt8(ascii: "9")
                ? "a number needs digits after its '.' and after its exponent" : "expected a digit")
        }
        if end < bytes.count, bytes[end] >= UInt8(ascii: "0"), bytes[end] <= UInt8(ascii: "9") {
            index = end
            throw failure("a number must not have leading zeros")
        }
        index = end
        return JSONNumber(validatedJSONText: String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self))
    }

    /// A string; `index` is at its opening quote.
    private mutating func string() throws(InvalidJSONError) -> String {
        index += 1
        let start = index
        var escaped = false
        // Bytes below 0x80 never occur inside a multi-byte UTF-8 sequence, so scanning bytes for
        // the quote, backslashes and control characters is safe before validating the UTF-8.
        while true {
            guard index < bytes.count else {
                index = start - 1
                throw failure("a string is not closed")
            }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                index += 2
                continue
            }
            guard byte >= 0x20 else { throw failure("a control character in a string must be escaped") }
            index += 1
        }
        let end = index
        index += 1
        if !escaped {
            guard let text = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self) else {
                throw InvalidJSONError(offset: start, reason: "a string is not valid UTF-8")
            }
            return text
        }
        return try unescaped(start..<end)
    }

    /// The contents of a string with escapes.
    private func unescaped(_ range: Range<Int>) throws(InvalidJSONError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        var at = range.lowerBound
        while at < range.upperBound {
            let byte = bytes[at]
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                at += 1
                continue
            }
            let escapeStart = at
            at += 1
            switch bytes[at] {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                let unit = try hexUnit(at: at + 1, end: range.upperBound)
                at += 4
                var scalarValue = UInt32(unit)
                if UTF16.isTrailSurrogate(unit) {
                    throw InvalidJSONError(offset: escapeStart, reason: "a \\u escape is a low surrogate without a high surrogate before it")
                }
                if UTF16.isLeadSurrogate(unit) {
                    guard at + 2 < range.upperBound, bytes[at + 1] == UInt8(ascii: "\\"), bytes[at + 2] == UInt8(ascii: "u"),
                          case let low = try hexUnit(at: at + 3, end: range.upperBound), UTF16.isTrailSurrogate(low)
                    else {
                        throw InvalidJSONError(offset: escapeStart, reason: "a \\u escape is a high surrogate without a low surrogate after it")
                    }
                    at += 6
                    scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                }
                // Not a surrogate, so a valid scalar.
                Self.appendUTF8(scalarValue, to: &out)
            default:
                throw InvalidJSONError(offset: escapeStart, reason: "\\\(Unicode.Scalar(bytes[at])) is not a JSON escape")
            }
            at += 1
        }
        guard let text = String(validating: out, as: UTF8.self) else {
            throw InvalidJSONError(offset: range.lowerBound, reason: "a string is not valid UTF-8")
        }
        return text
    }

    /// The four hex digits at `at` (inside a string that ends at `end`).
    private func hexUnit(at start: Int, end: Int) throws(InvalidJSONError) -> UInt16 {
        guard end - start >= 4 else { throw InvalidJSONError(offset: start, reason: "\\u must be followed by four hex digits") }
        var unit: UInt16 = 0
        for offset in 0..<4 {
            let byte = bytes[start + offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw InvalidJSONError(offset: start, reason: "\\u must be followed by four hex digits")
            }
            unit = unit << 4 | UInt16(digit)
        }
        return unit
    }

    private static func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case ..<0x80:
            out.append(UInt8(scalar))
        case ..<0x800:
            out.append(UInt8(0xC0 | scalar >> 6))
            out.append(UInt8(0x80 | scalar & 0x3F))
        case ..<0x10000:
            out.append(UInt8(0xE0 | scalar >> 12))
            out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        default:
            out.append(UInt8(0xF0 | scalar >> 18))
            out.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        }
    }
}
