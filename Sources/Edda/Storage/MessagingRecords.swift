import Foundation

/// A row of `channel_messages`.
public struct StoredMessage: Sendable, Hashable {
    /// The row's database ID: the order of messages on a channel, and the broadcast cursor.
    public var rowID: Int64
    /// The message ID (a UUID string).
    public var messageID: String
    /// The channel it was published on.
    public var channel: String
    /// Its data.
    public var payload: MessagePayload
    /// Its metadata, a JSON object, if any.
    public var metadataJSON: String?
    /// When it was published.
    public var publishedAt: Date

    /// Creates a value with every field given.
    public init(rowID: Int64, messageID: String, channel: String, payload: MessagePayload, metadataJSON: String?, publishedAt: Date) {
        self.rowID = rowID
        self.messageID = messageID
        self.channel = channel
        self.payload = payload
        self.metadataJSON = metadataJSON
        self.publishedAt = publishedAt
    }
}

/// A message to publish: stored on its channel, then delivered to the subscribers waiting on it.
public struct OutgoingMessage: Sendable, Hashable {
    /// The message ID (a UUID string), chosen by the publisher.
    public var messageID: String
    /// The channel.
    public var channel: String
    /// The data.
    public var payload: MessagePayload
    /// The metadata, a JSON object.
    public var metadataJSON: String
    /// Point-to-point: deliver only to this instance (it is recorded in the metadata as
    /// `target_instance_id`, and other subscribers never receive the message).
    public var targetInstanceID: String?

    /// Creates a value with every field given.
    public init(messageID: String, channel: String, payload: MessagePayload, metadataJSON: String, targetInstanceID: String?) {
        self.messageID = messageID
        self.channel = channel
        self.payload = payload
        self.metadataJSON = metadataJSON
        self.targetInstanceID = targetInstanceID
    }
}

/// Which instances a store operation may hand straight to the calling worker for execution:
/// those of this framework whose workflow the worker has registered. They are returned locked
/// by the worker, so it can run them without another claim.
public struct ClaimPolicy: Sendable {
    /// The worker that takes the lock.
    public var workerID: String
    /// The registered workflow names with the lease each instance gets (an instance's own
    /// `lock_timeout_seconds` wins).
    public var leases: [String: Duration]

    /// Creates a policy.
    public init(workerID: String, leases: [String: Duration]) {
        self.workerID = workerID
        self.leases = leases
    }

    /// The lock expiry for an instance of `workflowName`, or `nil` if this worker does not run it.
    public func leaseUntil(workflowName: String, storedSeconds: Int?, now: Date) -> Date? {
        guard let lease = leases[workflowName] else { return nil }
        if let storedSeconds, storedSeconds > 0 { return now.addingTimeInterval(TimeInterval(storedSeconds)) }
        return now.addingTimeInterval(lease.seconds)
    }

    /// Workflow names, for `IN (…)` filters.
    public var workflowNames: [String] { Array(leases.keys) }
}

extension ClaimPolicy {
    /// How a waiting instance is made `running` when its wait ends (a delivery, an expired
    /// timer or receive timeout), decided here for every store: this worker claims it if it is
    /// of this framework and runs its workflow; otherwise it is left unlocked for any worker of
    /// its framework (announced to them where the store can).
    package func wake(framework: String?, workflowName: String, storedSeconds: Int?, now: Date) -> Waking {
        guard (framework ?? StoredFramework.name) == StoredFramework.name,
              let leaseUntil = leaseUntil(workflowName: workflowName, storedSeconds: storedSeconds, now: now)
        else { return .release }
        return .claim(workerID: workerID, leaseUntil: leaseUntil)
    }
}

/// The store's part of a wake-up: ``ClaimPolicy/wake(framework:workflowName:storedSeconds:now:)``.
public enum Waking: Sendable, Equatable {
    /// Set `running`, locked by `workerID` (the policy's worker) until `leaseUntil`.
    case claim(workerID: String, leaseUntil: Date)
    /// Set `running`, unlocked.
    case release

    /// How the instance is left if the wake-up matches.
    public var outcome: WakeOutcome {
        if case .claim = self { return .claimed }
        return .unlocked
    }
}

/// How a store's wake-up left an instance. Either way the wake-up changes the instance only if
/// it still waits and no live lock holds it, read under its row lock; a store ends the wait
/// (consumes the message, deletes the timer) only after it woke the instance.
public enum WakeOutcome: Sendable, Equatable {
    /// It was not waiting any more, or another worker holds it: nothing changed.
    case notWaiting
    /// `running` and unlocked, for any worker of its framework.
    case unlocked
    /// `running` and locked by the claiming worker.
    case claimed
}

/// What publishing one message did.
public struct DeliveryReport: Sendable {
    /// The message.
    public var messageID: String
    /// The instances it was delivered to (they were waiting on its channel).
    public var deliveredTo: [String]
    /// Those of them handed to the calling worker, locked, to run now.
    public var claimed: [ClaimedInstance]
    /// Whether a message with this ID was stored already; nothing was stored or delivered.
    public var isDuplicate: Bool

    /// Creates a value with every field given.
    public init(messageID: String, deliveredTo: [String], claimed: [ClaimedInstance], isDuplicate: Bool = false) {
        self.messageID = messageID
        self.deliveredTo = deliveredTo
        self.claimed = claimed
        self.isDuplicate = isDuplicate
    }
}

/// A durable timer to register when an instance suspends (`workflow_timer_subscriptions`).
public struct TimerRegistration: Sendable, Hashable {
    /// The timer's ID (the step ID unless the workflow gave one).
    public var timerID: String
    /// The step ID its `TimerExpired` row is recorded under.
    public var activityID: String
    /// When it fires.
    public var expiresAt: Date

    /// Creates a value with every field given.
    public init(timerID: String, activityID: String, expiresAt: Date) {
        self.timerID = timerID
        self.activityID = activityID
        self.expiresAt = expiresAt
    }
}

/// A `receive` of an executing instance: consume a pending message now, or suspend until one
/// arrives (see ``WorkflowStore/receive(_:now:)``).
public struct ReceiveRequest: Sendable {
    /// The instance.
    public var instanceID: String
    /// The worker holding its lock.
    public var workerID: String
    /// The channel as stored (`"<channel>:<instance>"` for direct subscriptions).
    public var channel: String
    /// The step ID the message (or timeout) is recorded under.
    public var activityID: String
    /// When the wait times out, if it does.
    public var timeoutAt: Date?
    /// Subscribe (broadcast) first if the instance is not subscribed, as `waitEvent` does.
    public var subscribesIfNeeded: Bool
    /// Compensation registrations to write with this commit.
    public var compensations: [CompensationRecord]
    /// The lock expiry to set when a message is consumed and the instance keeps running.
    public var leaseUntil: Date

    /// Creates a value with every field given.
    public init(
        instanceID: String, workerID: String, channel: String, activityID: String, timeoutAt: Date?,
        subscribesIfNeeded: Bool, compensations: [CompensationRecord], leaseUntil: Date
    ) {
        self.instanceID = instanceID
        self.workerID = workerID
        self.channel = channel
        self.activityID = activityID
        self.timeoutAt = timeoutAt
        self.subscribesIfNeeded = subscribesIfNeeded
        self.compensations = compensations
        self.leaseUntil = leaseUntil
    }
}

/// The result of ``WorkflowStore/receive(_:now:)``.
public enum ReceiveOutcome: Sendable {
    /// A pending message was consumed and recorded under the step ID; the instance keeps its lock.
    case received(StoredMessage)
    /// No message was pending: the instance is `waiting_for_message` and unlocked.
    case suspended
    /// The step ID already has a history row (an explicit ID used twice); nothing changed.
    case alreadyRecorded
    /// The instance is not subscribed to the channel; nothing changed.
    case notSubscribed
    /// Subscribing (for `waitEvent`) conflicts with the channel's mode; nothing changed.
    case modeConflict(existingMode: String)
    /// Nothing changed: the worker no longer holds the lock or the status changed.
    case rejected(status: WorkflowStatus?, lockedBy: String?)
}

/// The result of ``WorkflowStore/updateSubscription(instanceID:workerID:channel:mode:now:)``.
public enum SubscriptionOutcome: Sendable, Equatable {
    /// Subscribed (or already subscribed), or unsubscribed.
    case applied
    /// The channel's existing subscriptions have another mode; nothing changed.
    case modeConflict(existingMode: String)
    /// Nothing changed: the worker no longer holds the lock or the status changed.
    case rejected(status: WorkflowStatus?, lockedBy: String?)
}

/// How a publish walks the subscribers waiting on the message's channel: one rule for every
/// store.
///
/// Each waiting subscriber is offered its oldest pending message (usually the one just
/// published; an older one it missed comes first, so that nothing is skipped). On a broadcast
/// channel every waiting subscriber can receive something, so all of them are offered, in
/// pages of ``broadcastPageSize``. On a competing channel the new message goes to one of them
/// (they are read ``firstPageSize`` at a time):
/// the walk stops once it is taken, or once a subscriber finds nothing pending (the others would
/// find nothing either, as pending messages are shared). A publish therefore costs a few
/// statements however many consumers wait, instead of one query per waiting consumer. A
/// message addressed to one waiting instance that a race left undelivered is found by the
/// store's sweep of waiting subscribers (``WorkflowStore/fireDueWaits(claim:deadline:now:limit:)``).
package struct DeliverySweep: Sendable {
    /// What offering one waiting subscriber its oldest pending message did.
    package enum Offer: Sendable {
        /// Nothing was pending for it.
        case nothingPending
        /// Its step had a history row already: nothing was consumed.
        case alreadyRecorded
        /// It consumed the message with this ID.
        case consumed(messageID: String)
    }

    /// Waiting subscribers read per query on a broadcast channel (each is locked for the rest of
    /// the transaction).
    package static let broadcastPageSize = 500

    /// Waiting subscribers read per query until the channel is known to broadcast, and on a
    /// competing channel: a few, so that a message for one waiting instance (an event, a direct
    /// message) or for a small broadcast audience takes one query, while a competing channel
    /// with hundreds of waiting consumers locks only a handful of them.
    package static let firstPageSize = 8

    /// The message being published.
    package let messageID: String
    /// The channel's mode, once the first waiting subscriber has been read.
    private var mode: String?
    /// Whether the walk is over.
    package private(set) var isFinished = false

    package init(publishing messageID: String) {
        self.messageID = messageID
    }

    /// How many waiting subscribers to read next.
    package var pageSize: Int { mode == "broadcast" ? Self.broadcastPageSize : Self.firstPageSize }

    /// Records the offer made to a subscriber of `mode`; afterwards ``isFinished`` says whether
    /// to go on to the next.
    package mutating func record(_ offer: Offer, mode: String) {
        self.mode = mode
        guard mode == "competing" else { return }
        switch offer {
        case .nothingPending: isFinished = true
        case .alreadyRecorded: break
        case .consumed(let consumed): if consumed == messageID { isFinished = true }
        }
    }

    /// Records that a page of `count` rows was read: a short page ends the walk.
    package mutating func read(page count: Int, of size: Int) {
        if count < size { isFinished = true }
    }
}
