import Edda
import Foundation

/// Decodes CloudEvents from HTTP requests: structured mode (`application/cloudevents+json`),
/// binary mode (`ce-*` headers and the data as the body) and batch mode
/// (`application/cloudevents-batch+json`).
///
/// JSON data is kept as the exact text sent, so large numbers and key order survive. Text must be
/// valid UTF-8 — structured and batch bodies, JSON data in binary mode, and `ce-` header values
/// after percent-decoding — or the request is refused (``CloudEventFormatError/Kind/invalidEncoding``)
/// rather than stored with replacement characters.
public struct CloudEventDecoder: Sendable {
    /// The attributes that are not extensions.
    static let contextAttributes: Set<String> = [
        "specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time",
    ]

    /// Creates a decoder.
    public init() {}

    /// The events in a request.
    ///
    /// - Parameters:
    ///   - headers: The request headers as (name, value) pairs; names are matched case-insensitively.
    ///   - body: The request body.
    /// - Throws: ``CloudEventFormatError``.
    public func decode(headers: [(name: String, value: String)], body: [UInt8]) throws -> [CloudEvent] {
        let contentType = headers.first { $0.name.lowercased() == "content-type" }?.value
        let mediaType = contentType.map(Self.mediaType) ?? ""
        switch mediaType {
        case "application/cloudevents+json":
            return [try structured(try Self.text(body, what: "The structured CloudEvent"))]
        case "application/cloudevents-batch+json":
            guard let elements = RawJSON.elements(of: try Self.text(body, what: "The batch")) else {
                throw CloudEventFormatError(.invalidStructuredJSON, "A batch must be a JSON array of structured CloudEvents.")
            }
            return try elements.enumerated().map { index, element in
                do {
                    return try structured(element)
                } catch let error as CloudEventFormatError {
                    throw CloudEventFormatError(error.kind, "Event \(index) of the batch: \(error.message)")
                }
            }
        default:
            return [try binary(headers: headers, contentType: contentType, body: body)]
        }
    }

    /// `application/json; charset=utf-8` → `application/json`.
    static func mediaType(_ contentType: String) -> String {
        String(contentType.split(separator: ";").first ?? "").trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// Whether data of this media type is JSON.
    static func isJSON(_ mediaType: String) -> Bool {
        mediaType == "application/json" || mediaType == "text/json" || mediaType.hasSuffix("+json")
    }

    func structured(_ text: String) throws -> CloudEvent {
        guard let object = JSONValue(jsonText: text), case .object(let allMembers) = object else {
            throw CloudEventFormatError(
                .invalidStructuredJSON, "A structured CloudEvent must be a JSON object with specversion, id, source and type.")
        }
        var strings: [String: String] = [:]
        var extensions: [String: JSONValue] = [:]
        // A null attribute is an unset one (JSON event format §2.2).
        let members = allMembers.filter { $0.value != .null }
        for (name, value) in members where name != "data" && name != "data_base64" {
            try Self.checkName(name)
            if Self.contextAttributes.contains(name) {
                guard case .string(let string) = value else {
                    throw CloudEventFormatError(.invalidAttribute, "The attribute '\(name)' must be a string.")
                }
                strings[name] = string
            } else {
                extensions[name] = value
            }
        }
        let data: MessagePayload?
        switch (members["data"], members["data_base64"]) {
        case (.some, .some):
            throw CloudEventFormatError(.invalidStructuredJSON, "An event has either data or data_base64, not both.")
        case (.some, nil):
            data = .json(RawJSON.member("data", in: text) ?? "null")
        case (nil, .some(.string(let base64))):
            guard let bytes = Data(base64Encoded: base64) else {
                throw CloudEventFormatError(.invalidStructuredJSON, "data_base64 is not valid base64.")
            }
            data = .binary(Array(bytes))
        case (nil, .some):
            throw CloudEventFormatError(.invalidStructuredJSON, "data_base64 must be a base64 string.")
        case (nil, nil):
            // Present but null is JSON null data, not an absent member.
            data = RawJSON.member("data", in: text) == nil ? nil : .json("null")
        }
        return try event(strings, extensions: extensions, data: data)
    }

    func binary(headers: [(name: String, value: String)], contentType: String?, body: [UInt8]) throws -> CloudEvent {
        var strings: [String: String] = [:]
        var extensions: [String: JSONValue] = [:]
        for header in headers {
            let name = header.name.lowercased()
            guard name.hasPrefix("ce-") else { continue }
            let attribute = String(name.dropFirst(3))
            try Self.checkName(attribute)
            let value = try Self.headerValue(header.value, name: header.name)
            if Self.contextAttributes.contains(attribute) {
                strings[attribute] = value
            } else {
                extensions[attribute] = .string(value)
            }
        }
        guard !strings.isEmpty else {
            throw CloudEventFormatError(
                .missingRequiredFields,
                "The request is not a CloudEvent: send Content-Type application/cloudevents+json (structured mode), "
                    + "application/cloudevents-batch+json (batch), or ce-specversion, ce-id, ce-source and ce-type headers (binary mode).")
        }
        if let contentType { strings["datacontenttype"] = contentType }
        let data: MessagePayload?
        if body.isEmpty {
            data = nil
        } else if Self.isJSON(contentType.map(Self.mediaType) ?? "application/json") {
            let text = try Self.text(body, what: "The JSON data")
            guard JSONValue(jsonText: text) != nil else {
                throw CloudEventFormatError(.invalidData, "The body is declared as JSON (\(contentType ?? "no Content-Type")) but does not parse as JSON.")
            }
            data = .json(text)
        } else {
            data = .binary(body)
        }
        return try event(strings, extensions: extensions, data: data)
    }

    private func event(_ strings: [String: String], extensions: [String: JSONValue], data: MessagePayload?) throws -> CloudEvent {
        let missing = ["specversion", "id", "source", "type"].filter { (strings[$0] ?? "").isEmpty }
        guard missing.isEmpty else {
            throw CloudEventFormatError(
                .missingRequiredFields, "Missing required attributes: \(missing.joined(separator: ", ")).")
        }
        guard strings["specversion"] == "1.0" else {
            throw CloudEventFormatError(
                .invalidRequiredFields, "Unsupported specversion '\(strings["specversion"] ?? "")'; this endpoint accepts CloudEvents 1.0.")
        }
        if let time = strings["time"], Self.rfc3339(time) == nil {
            throw CloudEventFormatError(.invalidAttribute, "The time '\(time)' is not an RFC 3339 timestamp.")
        }
        if let target = extensions["eddainstanceid"], target.stringValue == nil {
            throw CloudEventFormatError(.invalidAttribute, "The eddainstanceid extension must be a string (an instance ID).")
        }
        var attributes = CloudEventAttributes(
            type: strings["type"] ?? "", source: strings["source"] ?? "", id: strings["id"] ?? "", time: strings["time"],
            dataContentType: strings["datacontenttype"], subject: strings["subject"], extensions: extensions)
        if let schema = strings["dataschema"] { attributes.extensions["dataschema"] = .string(schema) }
        return CloudEvent(attributes: attributes, data: data)
    }

    /// `bytes` as text; refused unless they are valid UTF-8 (never repaired with U+FFFD).
    static func text(_ bytes: [UInt8], what: String) throws -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CloudEventFormatError(.invalidEncoding, "\(what) is not valid UTF-8; send text encoded as UTF-8.")
        }
        return text
    }

    /// A `ce-` header value, percent-decoded (HTTP binding §3.1.3.2). A `%` not followed by two
    /// hex digits is kept as sent. The decoded bytes must be valid UTF-8.
    ///
    /// The HTTP server turns raw bytes that are not UTF-8 into U+FFFD before the value gets
    /// here; a raw U+FFFD is refused too, since a sender must percent-encode every non-ASCII
    /// character and one sent raw most likely stands for such bytes.
    static func headerValue(_ raw: String, name: String) throws -> String {
        let invalid = CloudEventFormatError(
            .invalidEncoding, "The header \(name) is not valid UTF-8 once percent-decoded; percent-encode UTF-8 text.")
        if raw.unicodeScalars.contains("\u{FFFD}") { throw invalid }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.utf8.count)
        let utf8 = Array(raw.utf8)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "%"), index + 2 < utf8.count,
               let high = hexValue(utf8[index + 1]), let low = hexValue(utf8[index + 2]) {
                bytes.append(high << 4 | low)
                index += 3
            } else {
                bytes.append(utf8[index])
                index += 1
            }
        }
        guard let value = String(validating: bytes, as: UTF8.self) else { throw invalid }
        return value
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Parses an RFC 3339 timestamp (`2026-11-21T10:00:00Z`, with optional fraction and offset).
    static func rfc3339(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    /// CloudEvents attribute names are lower-case letters and digits.
    static func checkName(_ name: String) throws {
        guard !name.isEmpty, name.utf8.allSatisfy({ (97...122).contains($0) || (48...57).contains($0) }) else {
            throw CloudEventFormatError(
                .invalidAttribute, "Invalid attribute name '\(name)': CloudEvents attribute names are lower-case letters and digits.")
        }
    }
}
