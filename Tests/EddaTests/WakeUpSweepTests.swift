@testable import Edda
import Foundation
import Testing

/// The wake-up sequence every store runs (``WakeUpSweep``), checked without a database: the
/// store is a script that answers each effect and records what it was asked.
@Suite("Wake-up sweep")
struct WakeUpSweepTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let policy = ClaimPolicy(workerID: "w1", leases: ["orders": .seconds(30)])

    /// A store answering from fixed data: waiters per query, a pending message per subscription
    /// ID, a wake-up outcome per instance.
    struct ScriptedStore {
        var waiters: (WaiterQuery) -> [Waiter] = { _ in [] }
        var pending: [Int64: StoredMessage] = [:]
        var woken: [String: WakeOutcome] = [:]
        var recorded: Set<String> = []
        var isNewMessage = true
        private(set) var effects: [WakeUpEffect] = []

        mutating func perform(_ effect: WakeUpEffect) -> WakeUpAnswer {
            effects.append(effect)
            switch effect {
            case .storeMessage: return .stored(isNew: isNewMessage)
            case .findWaiters(let query): return .waiters(waiters(query))
            case .findPendingMessage(let subscription): return .pendingMessage(pending[subscription.id])
            case .resume(let resumption):
                let woken = woken[resumption.instanceID] ?? .notWaiting
                return .resumed(ResumptionOutcome(woken: woken, recorded: woken != .notWaiting && recorded.contains(resumption.instanceID)))
            case .loadClaimed: return .loaded(nil)
            }
        }

        var resumptions: [Resumption] {
            effects.compactMap { if case .resume(let resumption) = $0 { resumption } else { nil } }
        }

        var queries: [WaiterQuery] {
            effects.compactMap { if case .findWaiters(let query) = $0 { query } else { nil } }
        }
    }

    func subscriber(_ id: Int64, instance: String, mode: String = "broadcast", framework: String = "swift", activityID: String? = "receive:1") -> Waiter {
        Waiter(
            instanceID: instance, framework: framework, workflowName: "orders", lockTimeoutSeconds: nil,
            wait: .message(ChannelSubscription(id: id, instanceID: instance, channel: "jobs", mode: mode, activityID: activityID, cursor: 0)))
    }

    func message(_ id: String, row: Int64, channel: String = "jobs") -> StoredMessage {
        StoredMessage(rowID: row, messageID: id, channel: channel, payload: .json(#"{"n":1}"#), metadataJSON: nil, publishedAt: now)
    }

    func outgoing(_ id: String, channel: String = "jobs", target: String? = nil) -> OutgoingMessage {
        OutgoingMessage(messageID: id, channel: channel, payload: .json(#"{"n":1}"#), metadataJSON: "{}", targetInstanceID: target)
    }

    @Test("a due timer wakes its instance first, then ends the wait with a TimerExpired row; a claimed instance is read back")
    func dueTimer() {
        var store = ScriptedStore()
        let expiresAt = now.addingTimeInterval(-1)
        store.waiters = { query in
            guard case .dueTimers = query else { return [] }
            return [Waiter(
                instanceID: "i1", framework: "swift", workflowName: "orders", lockTimeoutSeconds: 5,
                wait: .timer(rowID: 7, timerID: "t", activityID: "sleep:1", expiresAt: expiresAt))]
        }
        store.woken = ["i1": .claimed]
        var sweep = WakeUpSweep.dueWaits(claim: policy, deadline: now, now: now, limit: 10)
        sweep.run { store.perform($0) }

        #expect(store.queries == [
            .dueTimers(deadline: now, workflowNames: ["orders"], limit: 10),
            .dueReceiveTimeouts(deadline: now, workflowNames: ["orders"], limit: 10),
            .subscribersWithPendingMessages(workflowNames: ["orders"], limit: 10),
        ])
        #expect(store.resumptions == [Resumption(
            instanceID: "i1", workflowName: "orders", waking: .claim(workerID: "w1", leaseUntil: now.addingTimeInterval(5)),
            end: .deleteTimer(rowID: 7),
            record: NewHistoryEvent(
                activityID: "sleep:1", eventType: HistoryEventType.timerExpired,
                payload: .json(StepPayloads.timerExpired(timerID: "t", expiresAt: expiresAt))),
            consume: nil)])
        // Read back right after its wake-up.
        let resumed = store.effects.firstIndex { if case .resume = $0 { true } else { false } }
        #expect(resumed.map { store.effects[$0 + 1] } == .loadClaimed(instanceID: "i1"))
    }

    @Test("a worker that runs no workflow sweeps nothing")
    func noWorkflows() {
        var store = ScriptedStore()
        var sweep = WakeUpSweep.dueWaits(claim: ClaimPolicy(workerID: "w1", leases: [:]), deadline: now, now: now, limit: 10)
        sweep.run { store.perform($0) }
        #expect(store.effects.isEmpty)
    }

    @Test("a timed-out receive clears the subscription's wait and records MessageTimeout; an unlocked wake-up is not read back")
    func receiveTimeout() {
        var store = ScriptedStore()
        store.waiters = { query in
            guard case .dueReceiveTimeouts = query else { return [] }
            return [Waiter(
                instanceID: "i2", framework: "swift", workflowName: "billing", lockTimeoutSeconds: nil,
                wait: .receiveTimeout(subscriptionID: 3, channel: "jobs", activityID: "receive:2", timeoutAt: now))]
        }
        store.woken = ["i2": .unlocked]
        var sweep = WakeUpSweep.dueWaits(claim: policy, deadline: now, now: now, limit: 10)
        sweep.run { store.perform($0) }
        #expect(store.resumptions.map(\.waking) == [.release])
        #expect(store.resumptions.map(\.end) == [.clearSubscriptionWait(subscriptionID: 3)])
        #expect(store.resumptions.map(\.record.eventType) == [HistoryEventType.messageTimeout])
        #expect(!store.effects.contains(.loadClaimed(instanceID: "i2")))
        #expect(sweep.claimed.isEmpty)
    }

    @Test("a message ID stored before is a duplicate: nothing is delivered")
    func duplicate() {
        var store = ScriptedStore()
        store.isNewMessage = false
        var sweep = WakeUpSweep.delivery(of: outgoing("m1"), claim: policy, now: now)
        sweep.run { store.perform($0) }
        #expect(store.effects == [.storeMessage(outgoing("m1"))])
        #expect(sweep.report.isDuplicate)
    }

    @Test("on a competing channel the walk stops once the new message is taken")
    func competing() {
        var store = ScriptedStore()
        store.waiters = { _ in [subscriber(1, instance: "a", mode: "competing"), subscriber(2, instance: "b", mode: "competing")] }
        store.pending = [1: message("m1", row: 10), 2: message("m1", row: 10)]
        store.woken = ["a": .claimed, "b": .claimed]
        store.recorded = ["a", "b"]
        var sweep = WakeUpSweep.delivery(of: outgoing("m1"), claim: policy, now: now)
        sweep.run { store.perform($0) }
        #expect(store.resumptions.map(\.instanceID) == ["a"])
        #expect(store.resumptions.first?.consume == .deleteMessage(messageID: "m1"))
        #expect(sweep.report.deliveredTo == ["a"])
        #expect(store.queries == [.subscribers(channel: "jobs", target: nil, after: 0, limit: DeliverySweep.firstPageSize)])
    }

    @Test("on a competing channel a subscriber that finds nothing pending ends the walk")
    func competingNothingPending() {
        var store = ScriptedStore()
        store.waiters = { _ in [subscriber(1, instance: "a", mode: "competing"), subscriber(2, instance: "b", mode: "competing")] }
        var sweep = WakeUpSweep.delivery(of: outgoing("m1"), claim: policy, now: now)
        sweep.run { store.perform($0) }
        #expect(store.effects.filter { if case .findPendingMessage = $0 { true } else { false } }.count == 1)
        #expect(store.resumptions.isEmpty)
    }

    @Test("broadcast subscribers each get their oldest pending message; an older one is consumed but the new one is not reported delivered")
    func broadcast() {
        var store = ScriptedStore()
        store.waiters = { query in
            guard case .subscribers(_, _, let after, _) = query, after == 0 else { return [] }
            return [subscriber(1, instance: "a"), subscriber(2, instance: "b"), subscriber(3, instance: "c", activityID: nil)]
        }
        store.pending = [1: message("m1", row: 10), 2: message("m0", row: 9)]
        store.woken = ["a": .unlocked, "b": .claimed]
        store.recorded = ["a", "b"]
        var sweep = WakeUpSweep.delivery(of: outgoing("m1"), claim: policy, now: now)
        sweep.run { store.perform($0) }
        #expect(store.resumptions.map(\.instanceID) == ["a", "b"])
        #expect(store.resumptions.map(\.consume) == [
            .advanceCursor(subscriptionID: 1, to: 10), .advanceCursor(subscriptionID: 2, to: 9),
        ])
        #expect(sweep.report.deliveredTo == ["a"])
        #expect(store.effects.contains(.loadClaimed(instanceID: "b")))
        // The page was short: no second query.
        #expect(store.queries.count == 1)
    }

    @Test("a full first page of a broadcast channel is followed by larger pages after the last subscription read")
    func paging() {
        var store = ScriptedStore()
        let first = (1...Int64(DeliverySweep.firstPageSize)).map { subscriber($0, instance: "i\($0)") }
        store.waiters = { query in
            guard case .subscribers(_, _, let after, _) = query, after == 0 else { return [] }
            return first
        }
        store.pending = Dictionary(uniqueKeysWithValues: first.indices.map { (Int64($0 + 1), message("m1", row: 10)) })
        store.woken = Dictionary(uniqueKeysWithValues: first.map { ($0.instanceID, WakeOutcome.unlocked) })
        store.recorded = Set(first.map(\.instanceID))
        var sweep = WakeUpSweep.delivery(of: outgoing("m1", target: "i1"), claim: policy, now: now)
        sweep.run { store.perform($0) }
        #expect(store.queries == [
            .subscribers(channel: "jobs", target: "i1", after: 0, limit: DeliverySweep.firstPageSize),
            .subscribers(
                channel: "jobs", target: "i1", after: Int64(DeliverySweep.firstPageSize), limit: DeliverySweep.broadcastPageSize),
        ])
        #expect(sweep.report.deliveredTo.count == DeliverySweep.firstPageSize)
    }

    @Test("an instance no longer waiting is passed over: nothing recorded, the walk goes on")
    func notWaiting() {
        var store = ScriptedStore()
        store.waiters = { query in
            guard case .subscribers(_, _, let after, _) = query, after == 0 else { return [] }
            return [subscriber(1, instance: "a", mode: "competing"), subscriber(2, instance: "b", mode: "competing")]
        }
        store.pending = [1: message("m1", row: 10), 2: message("m1", row: 10)]
        store.woken = ["b": .claimed]
        store.recorded = ["b"]
        var sweep = WakeUpSweep.delivery(of: outgoing("m1"), claim: policy, now: now)
        sweep.run { store.perform($0) }
        #expect(store.resumptions.map(\.instanceID) == ["a", "b"])
        #expect(sweep.report.deliveredTo == ["b"])
    }

    @Test("another framework's subscriber is woken unlocked and its binary message recorded in the shape it can load")
    func otherFramework() {
        var store = ScriptedStore()
        store.waiters = { query in
            guard case .subscribers(_, _, let after, _) = query, after == 0 else { return [] }
            return [subscriber(1, instance: "py", framework: "python")]
        }
        let binary = StoredMessage(rowID: 4, messageID: "m1", channel: "jobs", payload: .binary([1, 2]), metadataJSON: nil, publishedAt: now)
        store.pending = [1: binary]
        store.woken = ["py": .unlocked]
        var sweep = WakeUpSweep.delivery(of: outgoing("m1"), claim: policy, now: now)
        sweep.run { store.perform($0) }
        #expect(store.resumptions.first?.waking == .release)
        #expect(store.resumptions.first?.record.payload == MessageHistory.payload(binary, ownInstance: false))
    }
}

/// The receive sequence every store runs (``ReceiveSequence``), checked without a database.
@Suite("Receive sequence")
struct ReceiveSequenceTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    struct ScriptedStore {
        var mismatch: HolderMismatch?
        var subscriptions: [ChannelSubscription?] = []
        var conflict: String?
        var pending: StoredMessage?
        var recordsNew = true
        private(set) var effects: [ReceiveEffect] = []

        mutating func perform(_ effect: ReceiveEffect) -> ReceiveAnswer {
            effects.append(effect)
            switch effect {
            case .checkHolder: return .holder(mismatch)
            case .findSubscription: return .subscription(subscriptions.isEmpty ? nil : subscriptions.removeFirst())
            case .subscribe: return .subscribed(conflictingMode: conflict)
            case .findPendingMessage: return .pendingMessage(pending)
            case .record: return .recorded(recordsNew)
            case .unsubscribe, .insertCompensations, .keepRunning, .suspend: return .done
            }
        }
    }

    let subscription = ChannelSubscription(id: 4, instanceID: "i1", channel: "jobs", mode: "competing", activityID: nil, cursor: 0)
    let compensation = CompensationRecord(activityID: "charge:1", name: "refund", argsJSON: "{}")

    func request(subscribes: Bool = false, compensations: [CompensationRecord] = [], timeout: Date? = nil) -> ReceiveRequest {
        ReceiveRequest(
            instanceID: "i1", workerID: "w1", channel: "jobs", activityID: "receive:1", timeoutAt: timeout,
            subscribesIfNeeded: subscribes, compensations: compensations, leaseUntil: now.addingTimeInterval(30))
    }

    @Test("a pending message is recorded with the step's compensations, consumed, and the instance keeps running")
    func received() {
        var store = ScriptedStore()
        store.subscriptions = [subscription]
        let message = StoredMessage(rowID: 9, messageID: "m1", channel: "jobs", payload: .json("1"), metadataJSON: nil, publishedAt: now)
        store.pending = message
        var sequence = ReceiveSequence(request(compensations: [compensation]))
        sequence.run { store.perform($0) }
        #expect(store.effects == [
            .checkHolder(instanceID: "i1", workerID: "w1"),
            .findSubscription(instanceID: "i1", channel: "jobs"),
            .insertCompensations(instanceID: "i1", [compensation]),
            .findPendingMessage(subscription),
            .record(
                instanceID: "i1",
                NewHistoryEvent(
                    activityID: "receive:1", eventType: HistoryEventType.channelMessageReceived,
                    payload: MessageHistory.payload(message, ownInstance: true)),
                .deleteMessage(messageID: "m1")),
            .keepRunning(instanceID: "i1", activityID: "receive:1", leaseUntil: now.addingTimeInterval(30)),
        ])
        guard case .received(let got) = sequence.outcome else { Issue.record("\(sequence.outcome)"); return }
        #expect(got == message)
        #expect(!sequence.rollsBack)
    }

    @Test("with nothing pending the wait is registered and the instance suspends")
    func suspended() {
        var store = ScriptedStore()
        store.subscriptions = [subscription]
        var sequence = ReceiveSequence(request(timeout: now))
        sequence.run { store.perform($0) }
        #expect(store.effects.last == .suspend(instanceID: "i1", subscriptionID: 4, activityID: "receive:1", timeoutAt: now))
        guard case .suspended = sequence.outcome else { Issue.record("\(sequence.outcome)"); return }
    }

    @Test("a step recorded already rolls everything back")
    func alreadyRecorded() {
        var store = ScriptedStore()
        store.subscriptions = [subscription]
        store.pending = StoredMessage(rowID: 9, messageID: "m1", channel: "jobs", payload: .json("1"), metadataJSON: nil, publishedAt: now)
        store.recordsNew = false
        var sequence = ReceiveSequence(request())
        sequence.run { store.perform($0) }
        guard case .alreadyRecorded = sequence.outcome else { Issue.record("\(sequence.outcome)"); return }
        #expect(sequence.rollsBack)
        #expect(!store.effects.contains { if case .keepRunning = $0 { true } else { false } })
    }

    @Test("a worker that lost the instance changes nothing")
    func rejected() {
        var store = ScriptedStore()
        store.mismatch = HolderMismatch(status: .cancelled, lockedBy: nil)
        var sequence = ReceiveSequence(request())
        sequence.run { store.perform($0) }
        #expect(store.effects.count == 1)
        guard case .rejected(let status, nil) = sequence.outcome else { Issue.record("\(sequence.outcome)"); return }
        #expect(status == .cancelled)
    }

    @Test("waitEvent subscribes as broadcast first; without it an unsubscribed instance gets notSubscribed; a mode conflict is reported")
    func subscribing() {
        var store = ScriptedStore()
        store.subscriptions = [nil, subscription]
        var sequence = ReceiveSequence(request(subscribes: true))
        sequence.run { store.perform($0) }
        #expect(store.effects.contains(.subscribe(instanceID: "i1", channel: "jobs", mode: .broadcast)))
        guard case .suspended = sequence.outcome else { Issue.record("\(sequence.outcome)"); return }

        var plain = ScriptedStore()
        var notSubscribed = ReceiveSequence(request())
        notSubscribed.run { plain.perform($0) }
        guard case .notSubscribed = notSubscribed.outcome else { Issue.record("\(notSubscribed.outcome)"); return }

        var conflicting = ScriptedStore()
        conflicting.conflict = "competing"
        var conflict = ReceiveSequence(request(subscribes: true))
        conflict.run { conflicting.perform($0) }
        guard case .modeConflict("competing") = conflict.outcome else { Issue.record("\(conflict.outcome)"); return }
    }

    @Test("a subscription change checks the holder, then subscribes or unsubscribes")
    func subscriptionChange() {
        var store = ScriptedStore()
        var subscribe = ReceiveSequence(updating: "jobs", of: "i1", to: .competing, workerID: "w1")
        subscribe.run { store.perform($0) }
        #expect(store.effects.last == .subscribe(instanceID: "i1", channel: "jobs", mode: .competing))
        #expect(subscribe.subscriptionOutcome == .applied)

        var unsubscribeStore = ScriptedStore()
        var unsubscribe = ReceiveSequence(updating: "jobs", of: "i1", to: nil, workerID: "w1")
        unsubscribe.run { unsubscribeStore.perform($0) }
        #expect(unsubscribeStore.effects.last == .unsubscribe(instanceID: "i1", channel: "jobs"))

        var lost = ScriptedStore()
        lost.mismatch = HolderMismatch(status: .running, lockedBy: "w2")
        var rejected = ReceiveSequence(updating: "jobs", of: "i1", to: .broadcast, workerID: "w1")
        rejected.run { lost.perform($0) }
        #expect(rejected.subscriptionOutcome == .rejected(status: .running, lockedBy: "w2"))
        #expect(lost.effects.count == 1)
    }
}
