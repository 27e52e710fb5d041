import Foundation

/// How a workflow instance subscribes to a channel.
public enum SubscriptionMode: String, Sendable, Hashable, CaseIterable {
    /// Fan-out: every broadcast subscriber receives every message published after it subscribed.
    case broadcast
    /// Work queue: each message goes to exactly one competing subscriber, including messages
    /// published before it subscribed.
    case competing
    /// Messages sent to this instance with ``WorkflowContext/sendTo(_:data:channel:metadata:)``
    /// or ``EddaApp/publish(to:data:metadata:targetInstanceID:)``: a broadcast subscription to
    /// the instance's own channel `"<channel>:<instance ID>"`.
    case direct
}

/// The payload of a channel message as stored: JSON text (`data_type = 'json'`) or bytes
/// (`'binary'`).
public enum MessagePayload: Sendable, Hashable {
    /// JSON text.
    case json(String)
    /// Raw bytes.
    case binary([UInt8])

    /// The data as JSON text (binary data as a base64 string), for hooks and logs.
    var jsonDescription: String {
        switch self {
        case .json(let text): return text
        case .binary(let bytes): return JSONObjectWriter.quoted(Data(bytes).base64EncodedString())
        }
    }
}

/// A message received from a channel.
///
/// `Payload` is the type the message's JSON data decodes to; use `Data` to receive binary
/// messages (or any message as its raw JSON bytes).
public struct ChannelMessage<Payload: Sendable>: Sendable {
    /// The message's ID (`channel_messages.message_id`), unique across channels.
    public let id: String
    /// The channel it was received on, as the workflow named it.
    public let channel: String
    /// The decoded data.
    public let data: Payload
    /// The publisher's metadata: `published_at`, `source_instance_id` for messages from
    /// workflows, `ce_*` CloudEvents attributes for events.
    public let metadata: [String: JSONValue]
    /// When the message was published.
    public let publishedAt: Date

    /// Creates a message with every field given.
    public init(id: String, channel: String, data: Payload, metadata: [String: JSONValue], publishedAt: Date) {
        self.id = id
        self.channel = channel
        self.data = data
        self.metadata = metadata
        self.publishedAt = publishedAt
    }
}

/// A CloudEvent received by ``WorkflowContext/waitEvent(_:as:timeout:id:)``: its data and
/// its CloudEvents attributes.
public struct ReceivedEvent<Payload: Sendable>: Sendable {
    /// The event's data, decoded.
    public let data: Payload
    /// The event type (`type`), which is also the channel the workflow waited on.
    public let type: String
    /// The event's `source`, `"unknown"` if it was published without one.
    public let source: String
    /// The event's `id` (the message ID if it was published without one).
    public let id: String
    /// The event's `time`, as sent.
    public let time: String?
    /// The event's `datacontenttype`.
    public let dataContentType: String?
    /// The event's `subject`.
    public let subject: String?
    /// Extension attributes (for example `eddainstanceid`, `traceparent`).
    public let extensions: [String: JSONValue]

    init(message: ChannelMessage<Payload>, type: String) {
        let metadata = message.metadata
        self.data = message.data
        self.type = type
        self.source = metadata["ce_source"]?.stringValue ?? "unknown"
        self.id = metadata["ce_id"]?.stringValue ?? message.id
        self.time = metadata["ce_time"]?.stringValue
        self.dataContentType = metadata["ce_datacontenttype"]?.stringValue
        self.subject = metadata["ce_subject"]?.stringValue
        if case .object(let extensions)? = metadata["ce_extensions"] {
            self.extensions = extensions
        } else {
            self.extensions = [:]
        }
    }
}

/// The CloudEvents attributes of an event delivered with ``EddaApp/sendEvent(type:source:data:id:time:dataContentType:subject:extensions:to:)``.
///
/// They are stored in the message's metadata with the reference's `ce_` keys, so workflows of
/// any Edda implementation read them back.
public struct CloudEventAttributes: Sendable, Hashable {
    /// The event type; also the channel it is delivered on.
    public var type: String
    /// The event source.
    public var source: String
    /// The event ID.
    public var id: String
    /// The event time (RFC 3339), if any.
    public var time: String?
    /// The data's media type, if any.
    public var dataContentType: String?
    /// The event subject, if any.
    public var subject: String?
    /// Extension attributes.
    public var extensions: [String: JSONValue]

    /// Creates attributes; `id` defaults to a random UUID.
    public init(
        type: String, source: String, id: String = UUID().uuidString.lowercased(), time: String? = nil,
        dataContentType: String? = nil, subject: String? = nil, extensions: [String: JSONValue] = [:]
    ) {
        self.type = type
        self.source = source
        self.id = id
        self.time = time
        self.dataContentType = dataContentType
        self.subject = subject
        self.extensions = extensions
    }

    /// The message metadata holding these attributes (`ce_type`, `ce_source`, …).
    var metadata: [String: JSONValue] {
        var metadata: [String: JSONValue] = [
            "ce_type": .string(type), "ce_source": .string(source), "ce_id": .string(id),
            "ce_time": time.map(JSONValue.string) ?? .null,
            "ce_datacontenttype": dataContentType.map(JSONValue.string) ?? .null,
            "ce_subject": subject.map(JSONValue.string) ?? .null,
        ]
        if !extensions.isEmpty { metadata["ce_extensions"] = .object(extensions) }
        return metadata
    }
}


extension CloudEventAttributes {
    /// Checks the attributes that become database keys (`type` is the channel, `source`, `id`,
    /// and the `eddainstanceid` target) against the ``Identifier`` rules.
    ///
    /// - Throws: ``InvalidIdentifierError`` naming the attribute.
    public func validateIdentifiers() throws(InvalidIdentifierError) {
        try Identifier.validate(type, field: "type")
        try Identifier.validate(source, field: "source")
        try Identifier.validate(id, field: "id")
        if let target = extensions["eddainstanceid"]?.stringValue {
            try Identifier.validate(target, field: "eddainstanceid")
        }
    }
}

/// The outcome of ``EddaApp/publish(to:data:metadata:targetInstanceID:)``.
public struct PublishReceipt: Sendable, Hashable {
    /// The stored message's ID.
    public let messageID: String
    /// The instances it was delivered to at once (they were waiting on the channel). A message
    /// that no subscriber was waiting for stays on the channel for a later `receive`.
    public let deliveredTo: [String]
}

/// A subscription's mode conflicts with the mode the channel already has.
///
/// A channel is either broadcast or competing for all its subscribers.
public struct ChannelModeConflictError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The channel.
    public let channel: String
    /// The mode its existing subscriptions have.
    public let existingMode: String
    /// The mode requested.
    public let requestedMode: String

    public var description: String {
        "Channel '\(channel)' is already configured as '\(existingMode)' mode. Cannot subscribe with '\(requestedMode)' mode."
    }
}

/// A ``WorkflowContext/receive(_:as:timeout:id:)`` ended without a message: its timeout passed.
///
/// Thrown inside the workflow, where it can be caught; the same error is thrown again on replay.
public struct ReceiveTimeoutError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The channel waited on.
    public let channel: String
    /// The timeout that passed.
    public let timeout: Duration?

    public var description: String { "Message on channel '\(channel)' did not arrive within timeout" }
}

/// A ``WorkflowContext/waitEvent(_:as:timeout:id:)`` ended without an event: its timeout passed.
///
/// Thrown inside the workflow, where it can be caught; the same error is thrown again on replay.
public struct EventTimeoutError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The event type waited for.
    public let eventType: String
    /// The timeout that passed.
    public let timeout: Duration?

    public var description: String {
        if let timeout {
            return "No '\(eventType)' event arrived within \(timeout)"
        }
        return "No '\(eventType)' event arrived before the wait timed out"
    }
}

/// A received message's data could not be decoded to the type the workflow asked for.
///
/// The message is consumed (recorded in history), so the same error is thrown on replay.
public struct MessageDecodingError: Error, Sendable, CustomStringConvertible {
    /// The channel.
    public let channel: String
    /// The message ID.
    public let messageID: String
    /// What went wrong.
    public let detail: String

    public var description: String {
        "Message \(messageID) on channel '\(channel)' could not be decoded: \(detail)"
    }
}
