import Foundation

/// What a store found when it checked that a worker holds an instance: the instance is not
/// `running`, or another worker (or none) holds its lock.
public struct HolderMismatch: Sendable, Equatable {
    /// The instance's status (`nil` if it does not exist).
    public var status: WorkflowStatus?
    /// Its lock holder.
    public var lockedBy: String?

    /// Creates a value with every field given.
    public init(status: WorkflowStatus?, lockedBy: String?) {
        self.status = status
        self.lockedBy = lockedBy
    }
}

/// A store operation a ``ReceiveSequence`` asks for; the store answers with the matching
/// ``ReceiveAnswer``.
public enum ReceiveEffect: Sendable, Equatable {
    /// Read the instance under its row lock: `nil` if `workerID` holds it and it is `running`
    /// → ``ReceiveAnswer/holder(_:)``.
    case checkHolder(instanceID: String, workerID: String)
    /// Read the instance's subscription to the channel → ``ReceiveAnswer/subscription(_:)``.
    case findSubscription(instanceID: String, channel: String)
    /// Subscribe unless subscribed; a broadcast cursor starts after the channel's newest
    /// message. Nothing is written if the channel's subscriptions have another mode →
    /// ``ReceiveAnswer/subscribed(conflictingMode:)``.
    case subscribe(instanceID: String, channel: String, mode: SubscriptionMode)
    /// Delete the instance's subscription to the channel → ``ReceiveAnswer/done``.
    case unsubscribe(instanceID: String, channel: String)
    /// Insert compensation registrations → ``ReceiveAnswer/done``.
    case insertCompensations(instanceID: String, [CompensationRecord])
    /// Read the subscription's oldest pending message, as ``WakeUpEffect/findPendingMessage(_:)``
    /// → ``ReceiveAnswer/pendingMessage(_:)``.
    case findPendingMessage(ChannelSubscription)
    /// Insert the history row unless the step has one; only if inserted, consume the message
    /// → ``ReceiveAnswer/recorded(_:)``.
    case record(instanceID: String, NewHistoryEvent, Consumption)
    /// The instance keeps running: set its current step and lease → ``ReceiveAnswer/done``.
    case keepRunning(instanceID: String, activityID: String, leaseUntil: Date)
    /// Register the wait on the subscription (step, timeout) and make the instance
    /// `waiting_for_message`, unlocked, at that step; a store with push wake-ups announces a
    /// timeout → ``ReceiveAnswer/done``.
    case suspend(instanceID: String, subscriptionID: Int64, activityID: String, timeoutAt: Date?)
}

/// A store's answer to a ``ReceiveEffect``.
public enum ReceiveAnswer: Sendable {
    /// `nil` if the worker holds the running instance, else what was found.
    case holder(HolderMismatch?)
    /// The subscription, if the instance has one to the channel.
    case subscription(ChannelSubscription?)
    /// Subscribed (or subscribed already); or the existing mode that conflicts, and nothing was written.
    case subscribed(conflictingMode: String?)
    /// The oldest pending message, if any.
    case pendingMessage(StoredMessage?)
    /// Whether the history row was inserted (and the message consumed).
    case recorded(Bool)
    /// Done; nothing to report.
    case done
}

/// The sequence of a `receive` (``WorkflowStore``'s ``ChannelStore/receive(_:now:)``) and of a
/// subscription change, for every store: the store runs it in one transaction, performs each
/// effect and answers (``run(_:)``), then commits, or rolls back when ``rollsBack`` says so.
///
/// A receive checks that the worker still holds the running instance; finds its subscription
/// (subscribing as broadcast first for `waitEvent`); writes the step's compensation
/// registrations; then consumes the oldest pending message (recorded under the step, the
/// instance keeps its lock) or, with none pending, registers the wait and suspends the
/// instance. A step that has a history row already (an explicit ID used twice) changes
/// nothing.
public struct ReceiveSequence: StoreSequence {
    private enum State: Sendable {
        case initial, checking, finding(afterSubscribing: Bool), subscribing, unsubscribing, compensating(ChannelSubscription)
        case findingPending(ChannelSubscription), recording(StoredMessage), keepingRunning(StoredMessage), suspending, finished
    }

    private enum Request: Sendable {
        case receive(ReceiveRequest)
        case subscription(instanceID: String, workerID: String, channel: String, mode: SubscriptionMode?)
    }

    private let request: Request
    private var state = State.initial
    /// The receive's outcome, once the sequence is over.
    public private(set) var outcome: ReceiveOutcome = .notSubscribed
    /// The subscription change's outcome, once the sequence is over.
    public private(set) var subscriptionOutcome: SubscriptionOutcome = .applied
    /// Whether the store must roll the transaction back instead of committing it.
    public private(set) var rollsBack = false

    /// A receive.
    public init(_ request: ReceiveRequest) {
        self.request = .receive(request)
    }

    /// Subscribes the instance to `channel` in `mode`, or unsubscribes it (`nil`), if
    /// `workerID` holds it.
    public init(updating channel: String, of instanceID: String, to mode: SubscriptionMode?, workerID: String) {
        self.request = .subscription(instanceID: instanceID, workerID: workerID, channel: channel, mode: mode)
    }

    /// The next effect, given the answer to the previous one (`nil` at the start); `nil` once
    /// the sequence is over.
    public mutating func next(after answer: ReceiveAnswer?) -> ReceiveEffect? {
        switch (state, answer, request) {
        case (.initial, nil, .receive(let receive)):
            state = .checking
            return .checkHolder(instanceID: receive.instanceID, workerID: receive.workerID)
        case (.initial, nil, .subscription(let instanceID, let workerID, _, _)):
            state = .checking
            return .checkHolder(instanceID: instanceID, workerID: workerID)

        case (.checking, .holder(let mismatch?)?, _):
            outcome = .rejected(status: mismatch.status, lockedBy: mismatch.lockedBy)
            subscriptionOutcome = .rejected(status: mismatch.status, lockedBy: mismatch.lockedBy)
            return finish()
        case (.checking, .holder(nil)?, .receive(let receive)):
            state = .finding(afterSubscribing: false)
            return .findSubscription(instanceID: receive.instanceID, channel: receive.channel)
        case (.checking, .holder(nil)?, .subscription(let instanceID, _, let channel, let mode)):
            guard let mode else {
                state = .unsubscribing
                return .unsubscribe(instanceID: instanceID, channel: channel)
            }
            state = .subscribing
            return .subscribe(instanceID: instanceID, channel: channel, mode: mode)
        case (.unsubscribing, .done?, _):
            return finish()

        case (.finding(let afterSubscribing), .subscription(let found)?, .receive(let receive)):
            guard let found else {
                guard receive.subscribesIfNeeded, !afterSubscribing else { return finish() }
                state = .subscribing
                return .subscribe(instanceID: receive.instanceID, channel: receive.channel, mode: .broadcast)
            }
            guard receive.compensations.isEmpty else {
                state = .compensating(found)
                return .insertCompensations(instanceID: receive.instanceID, receive.compensations)
            }
            state = .findingPending(found)
            return .findPendingMessage(found)
        case (.subscribing, .subscribed(let conflict)?, _):
            if let conflict {
                outcome = .modeConflict(existingMode: conflict)
                subscriptionOutcome = .modeConflict(existingMode: conflict)
                return finish()
            }
            guard case .receive(let receive) = request else { return finish() }
            state = .finding(afterSubscribing: true)
            return .findSubscription(instanceID: receive.instanceID, channel: receive.channel)
        case (.compensating(let subscription), .done?, _):
            state = .findingPending(subscription)
            return .findPendingMessage(subscription)

        case (.findingPending(let subscription), .pendingMessage(let message?)?, .receive(let receive)):
            state = .recording(message)
            let event = NewHistoryEvent(
                activityID: receive.activityID, eventType: HistoryEventType.channelMessageReceived,
                payload: MessageHistory.payload(message, ownInstance: true))
            return .record(instanceID: receive.instanceID, event, Consumption(message, by: subscription))
        case (.findingPending(let subscription), .pendingMessage(nil)?, .receive(let receive)):
            state = .suspending
            return .suspend(
                instanceID: receive.instanceID, subscriptionID: subscription.id, activityID: receive.activityID, timeoutAt: receive.timeoutAt)
        case (.recording(let message), .recorded(let recorded)?, .receive(let receive)):
            guard recorded else {
                outcome = .alreadyRecorded
                rollsBack = true
                return finish()
            }
            state = .keepingRunning(message)
            return .keepRunning(instanceID: receive.instanceID, activityID: receive.activityID, leaseUntil: receive.leaseUntil)
        case (.keepingRunning(let message), .done?, _):
            outcome = .received(message)
            return finish()
        case (.suspending, .done?, _):
            outcome = .suspended
            return finish()

        default:
            preconditionFailure("ReceiveSequence: \(String(describing: answer)) does not answer the effect asked for in \(state)")
        }
    }

    private mutating func finish() -> ReceiveEffect? {
        state = .finished
        return nil
    }
}

/// Thrown by a store inside the transaction of a sequence that ``ReceiveSequence/rollsBack``, and
/// caught outside it: the transaction rolls back and the store returns ``outcome``.
public struct RolledBack: Error {
    /// What the store returns.
    public var outcome: ReceiveOutcome

    /// Rolls back with `outcome`.
    public init(_ outcome: ReceiveOutcome) {
        self.outcome = outcome
    }
}
