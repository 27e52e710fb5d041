import Foundation
import Synchronization

/// A durable side effect: a unit of work whose result is recorded once and replayed after that.
///
/// Each attempt runs and then commits its result in one transaction, together with any work
/// the activity added to that transaction (`context.transaction { db in … }` with EddaSQLite,
/// `context.postgresTransaction { connection in … }` with EddaPostgres) and any compensation it
/// registers. A failed attempt is retried by the activity's ``retryPolicy`` (or the app's).
///
/// ```swift
/// struct ChargeCard: Activity {
///     static let name = "charge_card"
///     let gateway: PaymentGateway
///
///     func run(_ payment: Payment, context: ActivityContext) async throws -> Charge {
///         try await gateway.charge(payment, idempotencyKey: context.idempotencyKey)
///     }
/// }
/// ```
public protocol Activity: Sendable {
    associatedtype Input: Codable & Sendable
    associatedtype Output: Codable & Sendable

    /// The durable name: activity IDs are `"<name>:<n>"`.
    static var name: String { get }

    /// This activity's retry policy; `nil` uses the app's default. Default `nil`.
    var retryPolicy: RetryPolicy? { get }

    /// Performs the work. Runs at least once per successful result; make external calls
    /// idempotent with ``ActivityContext/idempotencyKey``.
    func run(_ input: Input, context: ActivityContext) async throws -> Output
}

extension Activity {
    public var retryPolicy: RetryPolicy? { nil }
}

/// What an activity attempt knows about itself, and its way into the step's transaction.
public final class ActivityContext: Sendable {
    /// The workflow instance.
    public let instanceID: String
    /// The workflow's durable name.
    public let workflowName: String
    /// This step's durable ID, e.g. `charge_card:1`.
    public let activityID: String
    /// The attempt number, from 1.
    public let attempt: Int

    private let pendingWork = PendingWork()

    init(instanceID: String, workflowName: String, activityID: String, attempt: Int) {
        self.instanceID = instanceID
        self.workflowName = workflowName
        self.activityID = activityID
        self.attempt = attempt
    }

    /// A key that is the same for every attempt of this step and unique across steps:
    /// `"<instance ID>/<activity ID>"`. Pass it to external services that deduplicate requests.
    public var idempotencyKey: String { "\(instanceID)/\(activityID)" }

    /// Adds database work to this attempt's commit transaction.
    ///
    /// The work runs after ``Activity/run(_:context:)`` returns, inside the same transaction that
    /// records the result, so it commits exactly when the step does: never twice, never without
    /// the step. The store runs work of its own kind: each database module adds its own form
    /// (`transaction { db in … }` in EddaSQLite, `postgresTransaction { connection in … }` in
    /// EddaPostgres). Work for another database than the app's fails the step before it commits,
    /// with an ``EddaUsageError`` that is not retried.
    public func addTransactionalWork(_ work: any TransactionalWork) {
        pendingWork.append(work)
    }

    var transactionalWork: [any TransactionalWork] { pendingWork.all }

    /// Publishes a message on a channel as part of this attempt's commit: it is stored and
    /// delivered to the waiting subscribers if and only if the step commits (a failed attempt
    /// publishes nothing).
    ///
    /// - Parameters:
    ///   - data: The message data (JSON; `Data` publishes binary data).
    ///   - metadata: Extra metadata; `source_instance_id` and `published_at` are added.
    ///   - targetInstanceID: Point-to-point: only that instance receives the message.
    /// - Returns: The message ID.
    @discardableResult
    public func publish<Payload: Encodable & Sendable>(
        _ channel: String, data: Payload, metadata: [String: JSONValue] = [:], targetInstanceID: String? = nil
    ) throws -> String {
        var metadata = metadata
        metadata["source_instance_id"] = metadata["source_instance_id"] ?? .string(instanceID)
        metadata["published_at"] = metadata["published_at"] ?? .string(Timestamp.iso8601(Date()))
        let message = try OutgoingMessage.make(channel: channel, data: data, metadata: metadata, target: targetInstanceID)
        pendingWork.append(message)
        return message.messageID
    }

    var messages: [OutgoingMessage] { pendingWork.messages }

    /// Writes a CloudEvent to the transactional outbox as part of this attempt's commit: the
    /// event exists if and only if the step commits, and the app's outbox relayer then sends it
    /// to the broker (see ``EddaApp/Configuration/outboxPublisher``).
    ///
    /// ```swift
    /// try context.sendEventTransactional(type: "order.shipped", source: "/orders", data: shipment)
    /// ```
    ///
    /// - Parameters:
    ///   - data: The event data (JSON; `Data` is stored as bytes).
    ///   - contentType: The data's media type, sent as `datacontenttype`. Default
    ///     `application/json`.
    /// - Returns: The event ID: a UUID string, the consumer's deduplication key (a version-8 UUID
    ///   that marks the row as this library's, so that only this library's relayer sends it).
    @discardableResult
    public func sendEventTransactional<Payload: Encodable & Sendable>(
        type: String, source: String, data: Payload, contentType: String = "application/json"
    ) throws -> String {
        try Identifier.validate(type, field: "event_type")
        try Identifier.validate(source, field: "event_source")
        let event = OutboxEvent(
            eventID: OutboxEventID.make(), eventType: type, eventSource: source,
            payload: try MessageCoding.encode(data), contentType: contentType, createdAt: Date())
        pendingWork.append(event)
        return event.eventID
    }

    var outboxEvents: [OutboxEvent] { pendingWork.outboxEvents }
}

/// The transactional work and messages an attempt collected; appended from the attempt's task only.
final class PendingWork: Sendable {
    private struct Contents {
        var work: [any TransactionalWork] = []
        var messages: [OutgoingMessage] = []
        var outboxEvents: [OutboxEvent] = []
    }
    private let storage = Mutex(Contents())
    func append(_ work: any TransactionalWork) { storage.withLock { $0.work.append(work) } }
    func append(_ message: OutgoingMessage) { storage.withLock { $0.messages.append(message) } }
    func append(_ event: OutboxEvent) { storage.withLock { $0.outboxEvents.append(event) } }
    var outboxEvents: [OutboxEvent] { storage.withLock { $0.outboxEvents } }
    var all: [any TransactionalWork] { storage.withLock { $0.work } }
    var messages: [OutgoingMessage] { storage.withLock { $0.messages } }
}
