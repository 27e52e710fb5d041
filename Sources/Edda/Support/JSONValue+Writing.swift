extension JSONValue {
    /// The value as compact JSON text: numbers exactly as held, object members sorted by the
    /// UTF-8 bytes of their names, `/` not escaped (the text `JSONEncoder` writes with
    /// `.sortedKeys` and `.withoutEscapingSlashes`, but with exact numbers).
    public var jsonText: String {
        var writer = JSONTextWriter()
        writer.write(self)
        return String(decoding: writer.bytes, as: UTF8.self)
    }
}

/// Writes a ``JSONValue`` as JSON text, keeping the containers still being written on an
/// explicit stack (so any depth of value can be written without deep recursion).
struct JSONTextWriter {
    private(set) var bytes: [UInt8] = []

    private enum OpenContainer {
        case array([JSONValue], next: Int)
        case object([(key: String, value: JSONValue)], next: Int)
    }

    mutating func write(_ root: JSONValue) {
        var open: [OpenContainer] = []
        var pending: JSONValue? = root
        while true {
            if let value = pending {
                pending = nil
                switch value {
                case .null: append("null")
                case .bool(let flag): append(flag ? "true" : "false")
                case .number(let number): bytes.append(contentsOf: number.jsonText.utf8)
                case .string(let text): writeString(text)
                case .array(let elements):
                    bytes.append(UInt8(ascii: "["))
                    open.append(.array(elements, next: 0))
                case .object(let members):
                    bytes.append(UInt8(ascii: "{"))
                    let sorted = members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                    open.append(.object(sorted, next: 0))
                }
            }
            guard let container = open.popLast() else { return }
            switch container {
            case .array(let elements, let next):
                guard next < elements.count else {
                    bytes.append(UInt8(ascii: "]"))
                    continue
                }
                if next > 0 { bytes.append(UInt8(ascii: ",")) }
                open.append(.array(elements, next: next + 1))
                pending = elements[next]
            case .object(let members, let next):
                guard next < members.count else {
                    bytes.append(UInt8(ascii: "}"))
                    continue
                }
                if next > 0 { bytes.append(UInt8(ascii: ",")) }
                writeString(members[next].key)
                bytes.append(UInt8(ascii: ":"))
                open.append(.object(members, next: next + 1))
                pending = members[next].value
            }
        }
    }

    private mutating func append(_ word: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount))
    }

    /// A string literal with the escapes JSONEncoder writes: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`,
    /// `\t`, and `\u00XX` for other control characters.
    private mutating func writeString(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            var runStart = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                runStart = index + 1
                bytes.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(byte)
                case 0x08: bytes.append(UInt8(ascii: "b"))
                case 0x0C: bytes.append(UInt8(ascii: "f"))
                case 0x0A: bytes.append(UInt8(ascii: "n"))
                case 0x0D: bytes.append(UInt8(ascii: "r"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                default:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<utf8.count]))
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
