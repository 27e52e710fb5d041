import Foundation

/// A sequence of store operations decided by the core and performed by a driver (see
/// ``WorkflowStore``): the driver asks for the next effect with the answer to the previous one,
/// performs it, and so on until there is none; ``run(_:)`` does exactly that, with a synchronous
/// or an asynchronous driver.
public protocol StoreSequence: Sendable {
    /// An operation the sequence asks the store for.
    associatedtype Effect: Sendable
    /// The store's result of an ``Effect``.
    associatedtype Answer: Sendable

    /// The next effect, given the answer to the previous one (`nil` at the start); `nil` once
    /// the sequence is over. An answer that does not match the effect asked for is a driver
    /// bug and stops the process.
    mutating func next(after answer: Answer?) -> Effect?
}

extension StoreSequence {
    /// Runs the sequence with a synchronous store: `perform` carries out each effect and answers.
    public mutating func run(_ perform: (Effect) throws -> Answer) rethrows {
        var answer: Answer?
        while let effect = next(after: answer) { answer = try perform(effect) }
    }

    /// Runs the sequence with an asynchronous store: `perform` carries out each effect and answers.
    public mutating func run(_ perform: (Effect) async throws -> Answer) async rethrows {
        var answer: Answer?
        while let effect = next(after: answer) { answer = try await perform(effect) }
    }
}

/// A waiting instance a store found for a wake-up, with the wait that may end.
public struct Waiter: Sendable, Equatable {
    /// The wait a wake-up ends.
    public enum Wait: Sendable, Equatable {
        /// A durable timer (a `workflow_timer_subscriptions` row) that expired.
        case timer(rowID: Int64, timerID: String, activityID: String, expiresAt: Date)
        /// A receive whose timeout is due (the `channel_subscriptions` row's `timeout_at`).
        case receiveTimeout(subscriptionID: Int64, channel: String, activityID: String, timeoutAt: Date)
        /// A subscriber waiting on its channel: its oldest pending message ends the wait.
        case message(ChannelSubscription)
    }

    /// The instance.
    public var instanceID: String
    /// The framework that owns it (`workflow_instances.framework`).
    public var framework: String
    /// Its workflow's name.
    public var workflowName: String
    /// Its own lease in seconds (`lock_timeout_seconds`), if it has one.
    public var lockTimeoutSeconds: Int?
    /// What it waits for.
    public var wait: Wait

    /// Creates a value with every field given.
    public init(instanceID: String, framework: String, workflowName: String, lockTimeoutSeconds: Int?, wait: Wait) {
        self.instanceID = instanceID
        self.framework = framework
        self.workflowName = workflowName
        self.lockTimeoutSeconds = lockTimeoutSeconds
        self.wait = wait
    }
}

/// A row of `channel_subscriptions`.
public struct ChannelSubscription: Sendable, Equatable {
    /// The row's ID.
    public var id: Int64
    /// The subscribed instance.
    public var instanceID: String
    /// The channel as stored.
    public var channel: String
    /// `"broadcast"` or `"competing"`.
    public var mode: String
    /// The step the next message is recorded under while the instance waits on the channel.
    public var activityID: String?
    /// A broadcast subscriber's cursor: the last message row it received.
    public var cursor: Int64

    /// Creates a value with every field given.
    public init(id: Int64, instanceID: String, channel: String, mode: String, activityID: String?, cursor: Int64) {
        self.id = id
        self.instanceID = instanceID
        self.channel = channel
        self.mode = mode
        self.activityID = activityID
        self.cursor = cursor
    }

    /// Whether the channel's messages go to one subscriber each.
    public var isCompeting: Bool { mode == "competing" }
}

/// The waiting instances a store reads for a wake-up. Each query reads only instances no live
/// lock holds (unlocked, or with a lock that expired before the sweep's `now`); rows come in
/// the order given, at most `limit` of them.
public enum WaiterQuery: Sendable, Equatable {
    /// Timers expired by `deadline` of this framework's instances of `workflowNames`
    /// (`waiting_for_timer`), oldest expiry first.
    case dueTimers(deadline: Date, workflowNames: [String], limit: Int)
    /// Receives timed out by `deadline` of this framework's instances of `workflowNames`
    /// (`waiting_for_message`), oldest first.
    case dueReceiveTimeouts(deadline: Date, workflowNames: [String], limit: Int)
    /// Waiting subscribers of this framework's instances of `workflowNames`
    /// (`waiting_for_message`) that have a message pending: published while the instance was
    /// locked, or by a process that did not deliver it. By subscription ID.
    case subscribersWithPendingMessages(workflowNames: [String], limit: Int)
    /// The subscribers waiting on `channel` (`waiting_for_message` or `waiting_for_event`, any
    /// framework) with a subscription ID above `after`, only `target`'s if given. By
    /// subscription ID.
    case subscribers(channel: String, target: String?, after: Int64, limit: Int)
}

/// How a wake-up ends a wait.
public enum WaitEnd: Sendable, Equatable {
    /// Delete the timer row.
    case deleteTimer(rowID: Int64)
    /// Clear the subscription's wait (`activity_id` and `timeout_at`); the subscription stays.
    case clearSubscriptionWait(subscriptionID: Int64)
}

/// How a received message is consumed once its history row is written.
public enum Consumption: Sendable, Equatable {
    /// A competing channel's message is taken by one subscriber: delete it.
    case deleteMessage(messageID: String)
    /// A broadcast subscriber's cursor moves past the message.
    case advanceCursor(subscriptionID: Int64, to: Int64)

    /// How `subscription` consumes `message`.
    public init(_ message: StoredMessage, by subscription: ChannelSubscription) {
        self = subscription.isCompeting
            ? .deleteMessage(messageID: message.messageID)
            : .advanceCursor(subscriptionID: subscription.id, to: message.rowID)
    }
}

/// One wake-up for a store to persist, in the transaction it runs the sweep in:
///
/// 1. the compare-and-set: set the instance `running` (locked or not, as ``waking`` says) if it
///    still waits and no live lock holds it, read under its row lock; if it does not match,
///    nothing else is written;
/// 2. end the wait (``end``);
/// 3. insert ``record`` into `workflow_history` unless the step has a row already;
/// 4. only if that row was inserted, ``consume`` the message.
///
/// A store that announces resumable instances announces an unlocked one (``Waking/release``).
public struct Resumption: Sendable, Equatable {
    /// The waiting instance.
    public var instanceID: String
    /// Its workflow's name (for the announcement).
    public var workflowName: String
    /// Whether the worker takes its lock.
    public var waking: Waking
    /// The wait that ends.
    public var end: WaitEnd
    /// Its history row (`TimerExpired`, `MessageTimeout` or `ChannelMessageReceived`).
    public var record: NewHistoryEvent
    /// The message consumed with the row, if one ends the wait.
    public var consume: Consumption?

    /// Creates a value with every field given.
    public init(instanceID: String, workflowName: String, waking: Waking, end: WaitEnd, record: NewHistoryEvent, consume: Consumption?) {
        self.instanceID = instanceID
        self.workflowName = workflowName
        self.waking = waking
        self.end = end
        self.record = record
        self.consume = consume
    }
}

/// What a store's ``Resumption`` did.
public struct ResumptionOutcome: Sendable, Equatable {
    /// How the compare-and-set left the instance.
    public var woken: WakeOutcome
    /// Whether the history row was inserted (`false` when not woken).
    public var recorded: Bool

    /// Creates a value with every field given.
    public init(woken: WakeOutcome, recorded: Bool) {
        self.woken = woken
        self.recorded = recorded
    }

    /// Nothing changed: the instance no longer waits, or a live lock holds it.
    public static let notWaiting = ResumptionOutcome(woken: .notWaiting, recorded: false)
}

/// A store operation the sweep asks for; the store answers with the matching ``WakeUpAnswer``.
public enum WakeUpEffect: Sendable, Equatable {
    /// Insert the message into `channel_messages` unless its ID exists → ``WakeUpAnswer/stored(isNew:)``.
    case storeMessage(OutgoingMessage)
    /// Read waiting instances → ``WakeUpAnswer/waiters(_:)``.
    case findWaiters(WaiterQuery)
    /// Read the subscription's oldest pending message (messages addressed to another instance
    /// excepted), locked against other consumers where the store can → ``WakeUpAnswer/pendingMessage(_:)``.
    case findPendingMessage(ChannelSubscription)
    /// Persist a wake-up → ``WakeUpAnswer/resumed(_:)``.
    case resume(Resumption)
    /// Read the instance just claimed, with what replay needs → ``WakeUpAnswer/loaded(_:)``.
    case loadClaimed(instanceID: String)
}

/// A store's answer to a ``WakeUpEffect``.
public enum WakeUpAnswer: Sendable {
    /// The message was inserted (`false`: a message with its ID exists).
    case stored(isNew: Bool)
    /// The waiters found, in the query's order.
    case waiters([Waiter])
    /// The oldest pending message, if any.
    case pendingMessage(StoredMessage?)
    /// What the wake-up did.
    case resumed(ResumptionOutcome)
    /// The claimed instance (`nil` if it vanished).
    case loaded(ClaimedInstance?)
}

/// The sequence of a wake-up sweep, for every store: which waits end, in what order, what is
/// recorded for each and which instances the calling worker takes. The store only persists:
/// it runs the sweep inside one transaction, performs each ``WakeUpEffect`` it is given and
/// answers with its result (``run(_:)``), so the same rules hold on every database, whether its
/// driver is synchronous or not.
///
/// Two sweeps exist:
/// - **due waits** (``dueWaits(claim:deadline:now:limit:)``): expired timers, timed-out receives,
///   and waiting subscribers a message reached without being delivered;
/// - **delivery** (``delivery(of:claim:now:)``): a message is stored, then the subscribers
///   waiting on its channel are offered their oldest pending message: every one on a broadcast
///   channel (read in pages), on a competing channel until one has taken the message or one
///   finds nothing pending.
///
/// For each waiter: a subscriber's pending message is read first (none: nothing to do); then
/// the instance is woken by compare-and-set *before* its wait ends, so that if another writer
/// took it meanwhile nothing is consumed and the wait stays registered; then the history row
/// is written and the message consumed; an instance the worker claimed is read back to run.
public struct WakeUpSweep: StoreSequence {
    private enum State: Sendable {
        case initial
        case storing
        case querying(pageSize: Int)
        case findingPending(Waiter, ChannelSubscription)
        case resuming(Waiter, message: StoredMessage?)
        case loading
        case finished
    }

    private let claim: ClaimPolicy
    private let now: Date
    private var state = State.initial
    /// Due waits: the queries still to run.
    private var queries: [WaiterQuery] = []
    /// Delivery: the message and the walk over its channel's subscribers.
    private let message: OutgoingMessage?
    private var delivery: DeliverySweep?
    private var after: Int64 = 0
    /// The page of waiters being worked through, and how many rows the page query returned.
    private var page: ArraySlice<Waiter> = []
    /// Delivery: the size of the page just read, and what was asked for, until the walk is told.
    private var pageRead: (count: Int, size: Int)?

    /// The instances handed to the calling worker, locked, to run now.
    public private(set) var claimed: [ClaimedInstance] = []
    /// Delivery: the instances the published message itself was delivered to.
    public private(set) var deliveredTo: [String] = []
    /// Delivery: the message ID existed already; nothing was stored or delivered.
    public private(set) var isDuplicate = false

    private init(claim: ClaimPolicy, now: Date, queries: [WaiterQuery], message: OutgoingMessage?) {
        self.claim = claim
        self.now = now
        self.queries = queries
        self.message = message
        self.delivery = message.map { DeliverySweep(publishing: $0.messageID) }
    }

    /// Ends the waits that are due: timers expired by `deadline`, receives timed out by then,
    /// and waiting subscribers with a message pending; at most `limit` of each kind. Only this
    /// framework's instances of the workflows `claim` runs.
    public static func dueWaits(claim: ClaimPolicy, deadline: Date, now: Date, limit: Int) -> WakeUpSweep {
        let names = claim.workflowNames
        let queries: [WaiterQuery] = names.isEmpty ? [] : [
            .dueTimers(deadline: deadline, workflowNames: names, limit: limit),
            .dueReceiveTimeouts(deadline: deadline, workflowNames: names, limit: limit),
            .subscribersWithPendingMessages(workflowNames: names, limit: limit),
        ]
        return WakeUpSweep(claim: claim, now: now, queries: queries, message: nil)
    }

    /// Stores `message` and delivers it (or an older message they missed) to the subscribers
    /// waiting on its channel.
    public static func delivery(of message: OutgoingMessage, claim: ClaimPolicy, now: Date) -> WakeUpSweep {
        WakeUpSweep(claim: claim, now: now, queries: [], message: message)
    }

    /// Delivery: what publishing the message did.
    public var report: DeliveryReport {
        DeliveryReport(messageID: message?.messageID ?? "", deliveredTo: deliveredTo, claimed: claimed, isDuplicate: isDuplicate)
    }

    /// The next effect, given the answer to the previous one (`nil` at the start); `nil` once
    /// the sweep is over.
    public mutating func next(after answer: WakeUpAnswer?) -> WakeUpEffect? {
        switch (state, answer) {
        case (.initial, nil):
            if let message {
                state = .storing
                return .storeMessage(message)
            }
            return nextWaiter()
        case (.storing, .stored(let isNew)?):
            guard isNew else {
                isDuplicate = true
                state = .finished
                return nil
            }
            return nextWaiter()
        case (.querying(let size), .waiters(let waiters)?):
            page = waiters[...]
            if delivery != nil { pageRead = (waiters.count, size) }
            return nextWaiter()
        case (.findingPending(let waiter, let subscription), .pendingMessage(let pending)?):
            guard let pending else {
                delivery?.record(.nothingPending, mode: subscription.mode)
                return nextWaiter()
            }
            return resume(waiter, message: pending)
        case (.resuming(let waiter, let consumed), .resumed(let outcome)?):
            guard outcome.woken != .notWaiting else { return nextWaiter() }
            if let consumed, case .message(let subscription) = waiter.wait {
                delivery?.record(outcome.recorded ? .consumed(messageID: consumed.messageID) : .alreadyRecorded, mode: subscription.mode)
                if outcome.recorded, consumed.messageID == message?.messageID { deliveredTo.append(waiter.instanceID) }
            }
            guard outcome.woken == .claimed else { return nextWaiter() }
            state = .loading
            return .loadClaimed(instanceID: waiter.instanceID)
        case (.loading, .loaded(let instance)?):
            if let instance { claimed.append(instance) }
            return nextWaiter()
        default:
            preconditionFailure("WakeUpSweep: \(String(describing: answer)) does not answer the effect asked for in \(state)")
        }
    }

    /// The effect for the next waiter, reading the next page or query when this one is done.
    private mutating func nextWaiter() -> WakeUpEffect? {
        while true {
            if delivery?.isFinished == true { break }
            if let waiter = page.popFirst() {
                guard case .message(let subscription) = waiter.wait else { return resume(waiter, message: nil) }
                after = subscription.id
                guard subscription.activityID != nil else { continue }
                state = .findingPending(waiter, subscription)
                return .findPendingMessage(subscription)
            }
            if var walk = delivery, let message {
                if let read = pageRead {
                    walk.read(page: read.count, of: read.size)
                    delivery = walk
                    pageRead = nil
                    if walk.isFinished { break }
                }
                let size = walk.pageSize
                state = .querying(pageSize: size)
                return .findWaiters(.subscribers(channel: message.channel, target: message.targetInstanceID, after: after, limit: size))
            }
            guard !queries.isEmpty else { break }
            state = .querying(pageSize: 0)
            return .findWaiters(queries.removeFirst())
        }
        state = .finished
        return nil
    }

    /// The wake-up of `waiter`, which ends its wait with `message` if it waits for one.
    private mutating func resume(_ waiter: Waiter, message: StoredMessage?) -> WakeUpEffect {
        let end: WaitEnd
        let record: NewHistoryEvent
        var consume: Consumption?
        switch waiter.wait {
        case .timer(let rowID, let timerID, let activityID, let expiresAt):
            end = .deleteTimer(rowID: rowID)
            record = NewHistoryEvent(
                activityID: activityID, eventType: HistoryEventType.timerExpired,
                payload: .json(StepPayloads.timerExpired(timerID: timerID, expiresAt: expiresAt)))
        case .receiveTimeout(let subscriptionID, let channel, let activityID, let timeoutAt):
            end = .clearSubscriptionWait(subscriptionID: subscriptionID)
            record = NewHistoryEvent(
                activityID: activityID, eventType: HistoryEventType.messageTimeout,
                payload: .json(StepPayloads.messageTimeout(channel: channel, timeoutAt: timeoutAt)))
        case .message(let subscription):
            guard let message, let activityID = subscription.activityID else {
                preconditionFailure("WakeUpSweep: a subscriber is resumed with its pending message")
            }
            end = .clearSubscriptionWait(subscriptionID: subscription.id)
            record = NewHistoryEvent(
                activityID: activityID, eventType: HistoryEventType.channelMessageReceived,
                payload: MessageHistory.payload(message, ownInstance: waiter.framework == StoredFramework.name))
            consume = Consumption(message, by: subscription)
        }
        state = .resuming(waiter, message: message)
        return .resume(Resumption(
            instanceID: waiter.instanceID, workflowName: waiter.workflowName,
            waking: claim.wake(framework: waiter.framework, workflowName: waiter.workflowName, storedSeconds: waiter.lockTimeoutSeconds, now: now),
            end: end, record: record, consume: consume))
    }
}
