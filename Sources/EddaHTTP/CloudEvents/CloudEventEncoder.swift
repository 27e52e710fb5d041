import Edda
import Foundation

/// Encodes CloudEvents as structured-mode JSON (`application/cloudevents+json`).
public struct CloudEventEncoder: Sendable {
    /// The media type of a structured-mode CloudEvent.
    public static let structuredContentType = "application/cloudevents+json"

    /// Creates an encoder.
    public init() {}

    /// The event as one JSON object: its attributes, its extensions, and `data` (JSON data as
    /// written) or `data_base64` (bytes).
    public func structured(_ event: CloudEvent) throws -> String {
        var members: [String: JSONValue] = event.attributes.extensions
        members["specversion"] = "1.0"
        members["id"] = .string(event.attributes.id)
        members["source"] = .string(event.attributes.source)
        members["type"] = .string(event.attributes.type)
        if let time = event.attributes.time { members["time"] = .string(time) }
        if let subject = event.attributes.subject { members["subject"] = .string(subject) }
        if let contentType = event.attributes.dataContentType { members["datacontenttype"] = .string(contentType) }
        var text = JSONValue.object(members).jsonText
        switch event.data {
        case .json(let json)?:
            // Spliced in as written, so the data is sent exactly as stored.
            text.removeLast()
            text += (members.isEmpty ? "" : ",") + "\"data\":" + json + "}"
        case .binary(let bytes)?:
            members["data_base64"] = .string(Data(bytes).base64EncodedString())
            text = JSONValue.object(members).jsonText
        case nil:
            break
        }
        return text
    }
}

extension CloudEvent {
    /// The CloudEvent an outbox row stands for: its type, source and ID, `time` when it was
    /// written, and its stored content type as `datacontenttype`.
    public init(outboxEvent event: OutboxEvent) {
        self.init(
            attributes: CloudEventAttributes(
                type: event.eventType, source: event.eventSource, id: event.eventID,
                time: ISO8601DateFormatter().string(from: event.createdAt), dataContentType: event.contentType,
                extensions: event.traceContext.mapValues(JSONValue.string)),
            data: event.payload)
    }
}
