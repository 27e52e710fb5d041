import Foundation

/// The delivery status of an `outbox_events` row.
public struct OutboxStatus: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    /// The stored string.
    public let rawValue: String

    /// A status from its stored string.
    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// Waiting to be sent.
    public static let pending = OutboxStatus(rawValue: "pending")
    /// Taken by a relayer, being sent.
    public static let processing = OutboxStatus(rawValue: "processing")
    /// Accepted by the broker.
    public static let published = OutboxStatus(rawValue: "published")
    /// Sending failed; retried until its retries are used up, then left for good.
    public static let failed = OutboxStatus(rawValue: "failed")
    /// Refused by the broker (HTTP 4xx); never retried.
    public static let invalid = OutboxStatus(rawValue: "invalid")
    /// Older than the relayer's maximum age; never sent.
    public static let expired = OutboxStatus(rawValue: "expired")

    public var description: String { rawValue }
}

/// How this library tells its own `outbox_events` rows from those of Python Edda and its
/// siblings, whose relayers would otherwise share the table (it has no framework column).
///
/// Every event ID written here is a version-8 UUID (RFC 9562) whose last group begins with
/// `edda5f`, such as `3f2b8c1e-94d0-8a41-b2c7-edda5f03a9d2` (98 random bits). Python Edda 0.16.2
/// writes version-4 UUIDs, which never have an `8` in the version position, so a relayer of
/// this library claims exactly the rows this library wrote: it never sends, and never takes
/// back from `processing`, another framework's row. Python's relayer does not filter, so it may
/// send rows written here; the event ID stays the consumer's deduplication key either way.
package enum OutboxEventID {
    /// The SQL `LIKE` pattern of the IDs written here (`_` is any one character).
    package static let likePattern = "________-____-8___-____-edda5f______"

    /// A new event ID.
    package static func make() -> String {
        var bytes = UUID().uuid
        bytes.6 = (bytes.6 & 0x0F) | 0x80  // version 8
        bytes.8 = (bytes.8 & 0x3F) | 0x80  // variant 10
        (bytes.10, bytes.11, bytes.12) = (0xED, 0xDA, 0x5F)
        return UUID(uuid: bytes).uuidString.lowercased()
    }

    /// Whether `eventID` has the form of an ID written here.
    package static func isWrittenHere(_ eventID: String) -> Bool {
        let characters = Array(eventID.utf8)
        guard characters.count == 36 else { return false }
        for (index, pattern) in likePattern.utf8.enumerated() where pattern != UInt8(ascii: "_") {
            if characters[index] != pattern { return false }
        }
        return true
    }
}

/// A row of `outbox_events`: a CloudEvent to publish once the step that wrote it has committed.
public struct OutboxEvent: Sendable, Hashable {
    /// The event ID (a UUID string).
    public var eventID: String
    /// The event type.
    public var eventType: String
    /// The event source.
    public var eventSource: String
    /// The data.
    public var payload: MessagePayload
    /// The data's media type, sent as the event's `datacontenttype`.
    public var contentType: String
    /// When it was written.
    public var createdAt: Date
    /// Its status.
    public var status: OutboxStatus
    /// Failed sending attempts so far.
    public var retryCount: Int
    /// The last sending error.
    public var lastError: String?
    /// The propagation fields of the trace the event was written in (`traceparent` and
    /// `tracestate` with a W3C propagator), for a publisher to send as the event's extension
    /// attributes. Known only to the process that wrote the event, until it sends it (the
    /// shared schema keeps no trace context with an outbox row); empty otherwise.
    public var traceContext: [String: String] = [:]

    /// Creates a value with every field given.
    public init(
        eventID: String, eventType: String, eventSource: String, payload: MessagePayload, contentType: String,
        createdAt: Date, status: OutboxStatus = .pending, retryCount: Int = 0, lastError: String? = nil
    ) {
        self.eventID = eventID
        self.eventType = eventType
        self.eventSource = eventSource
        self.payload = payload
        self.contentType = contentType
        self.createdAt = createdAt
        self.status = status
        self.retryCount = retryCount
        self.lastError = lastError
    }
}

/// How a relayer finished with an outbox event (see ``WorkflowStore/finishOutboxEvent(eventID:outcome:now:)``).
public enum OutboxOutcome: Sendable, Hashable {
    /// The broker accepted it.
    case published
    /// Sending failed and may succeed later. From a publisher, this is all it says; the relayer
    /// then records ``retrying(_:)`` while attempts are left and `failed` (given up) after the
    /// last one. Recorded as is, the row is `failed` for good, with the retry count up by one.
    case failed(String)
    /// Sending failed and will be tried again: the row goes back to `pending` with the retry
    /// count up by one and the error in `last_error`. (The shared schema has no separate status
    /// for this: `pending` with a `last_error` is a row that will be retried.) The relayer
    /// records it; a publisher returns ``failed(_:)``.
    case retrying(String)
    /// The broker refused it; it is never retried.
    case invalid(String)
    /// It is too old to send.
    case expired(String)
    /// It was not sent (the app is shutting down): back to `pending`, no attempt counted.
    case postponed
}

/// Which outbox rows a relayer takes, and for how long (see
/// ``OutboxStore/claimOutboxEvents(_:now:)``).
///
/// A taken row is `processing` with a lease: its `published_at` holds when the lease ends (the
/// shared schema has no lease column; `published_at` is otherwise set only once the row is
/// `published`). The relayer renews the leases of the rows it is still sending
/// (``OutboxStore/renewOutboxEvents(eventIDs:until:)``); a row whose lease ended belongs to a
/// relayer that stopped and is taken again.
public struct OutboxClaim: Sendable {
    /// At most this many rows.
    public var limit: Int
    /// When the leases of the rows taken end unless renewed.
    public var leaseUntil: Date

    /// Creates a value with every field given.
    public init(limit: Int, leaseUntil: Date) {
        self.limit = limit
        self.leaseUntil = leaseUntil
    }
}
