import Foundation

/// A CloudEvent as Edda receives it: its attributes and its data.
///
/// The CloudEvents HTTP endpoint (`EddaHTTP`) decodes requests into these;
/// ``EddaApp/handle(_:)`` starts the workflows that handle the event type and delivers the
/// event to waiting workflows.
public struct CloudEvent: Sendable, Hashable {
    /// The event's attributes (`type`, `source`, `id`, `time`, `datacontenttype`, `subject`,
    /// extensions).
    public var attributes: CloudEventAttributes
    /// The event's data: JSON, bytes, or `nil` for an event without data.
    public var data: MessagePayload?

    /// Creates an event.
    public init(attributes: CloudEventAttributes, data: MessagePayload?) {
        self.attributes = attributes
        self.data = data
    }

    /// Creates an event whose data is `value` encoded as JSON (`Data` is sent as bytes).
    public init<Payload: Encodable>(attributes: CloudEventAttributes, encoding value: Payload) throws {
        self.attributes = attributes
        self.data = try MessageCoding.encode(value)
    }

    /// The event's data as JSON text, if it has JSON data.
    public var jsonData: String? {
        if case .json(let text)? = data { return text }
        return nil
    }
}

/// What ``EddaApp/handle(_:)`` did with one event.
public struct EventReceipt: Sendable, Hashable {
    /// The event's ID.
    public let eventID: String
    /// Instances of event-handler workflows started for it (or found started already, for an
    /// event received twice).
    public let startedInstances: [String]
    /// Instances it was delivered to at once (they were waiting for its type).
    public let deliveredTo: [String]
    /// Whether this event (same `source` and `id`) had been received before; nothing was
    /// stored again.
    public let isDuplicate: Bool
}

/// An event whose data a handler workflow cannot take as input; nothing was stored.
public struct EventInputError: Error, Sendable, CustomStringConvertible {
    /// The event type.
    public let eventType: String
    /// The event ID.
    public let eventID: String
    /// The handler workflow.
    public let workflowName: String
    /// What is wrong.
    public let detail: String

    public var description: String {
        "The data of event '\(eventID)' (type '\(eventType)') does not decode to the input of workflow '\(workflowName)': \(detail)"
    }
}
