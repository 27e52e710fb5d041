import Foundation

// Durable waiting and messaging: timers, channels, events, recur.
extension WorkflowContext {
    // MARK: - Timers

    /// Sleeps durably for `duration`: the instance suspends (holding no worker, lock or task)
    /// and resumes when the timer fires, on whichever worker is alive, even after a restart.
    ///
    /// The timer's ID is `"sleep:<n>"` unless `id` is given. Resuming replays to here and
    /// returns at once; the deadline is fixed when the timer is first registered.
    ///
    /// - Throws: ``WorkflowCancelledError`` if the instance is cancelled.
    public func sleep(for duration: Duration, id: String? = nil) async throws {
        try await timer(named: "sleep", id: id) { $0.addingTimeInterval(duration.seconds) }
    }

    /// Sleeps durably until `date` (see ``sleep(for:id:)``). A date in the past returns at once
    /// (still recorded). The timer's ID is `"sleep_until:<n>"` unless `id` is given.
    public func sleep(until date: Date, id: String? = nil) async throws {
        try await timer(named: "sleep_until", id: id) { _ in date }
    }

    private func timer(named name: String, id: String?, deadline: (Date) -> Date) async throws {
        try checkPoison()
        let activityID = try nextID(for: name, explicit: id)
        if let entry = log.take(activityID) {
            guard entry.eventType == HistoryEventType.timerExpired else {
                throw poisoned(NondeterminismError(
                    instanceID: instanceID, activityID: activityID,
                    detail: "history holds a \(entry.eventType) event where the code now sleeps"))
            }
            return
        }
        try goLive(at: activityID)
        await awaitOutstanding()
        let clock = scope.engine.clock
        let expiresAt = deadline(clock.now())
        if expiresAt <= clock.now() {
            // Already due: record it and carry on, without suspending.
            var transition = scope.stepTransition(currentActivityID: activityID)
            transition.history = [NewHistoryEvent(
                activityID: activityID, eventType: HistoryEventType.timerExpired,
                payload: .json(StepPayloads.timerExpired(timerID: activityID, expiresAt: expiresAt)))]
            transition.compensations = bufferedCompensations
            try await guarded { _ = try await scope.commit(transition) }
            bufferedCompensationsWritten()
            return
        }
        var transition = InstanceTransition.suspend(
            instanceID: instanceID, workerID: scope.workerID,
            onTimer: TimerRegistration(timerID: activityID, activityID: activityID, expiresAt: expiresAt))
        transition.compensations = bufferedCompensations
        try await guarded { _ = try await scope.commit(transition) }
        bufferedCompensationsWritten()
        scope.engine.waitRegistered(deadline: expiresAt)
        throw poisoned(WorkflowSuspended(instanceID: instanceID))
    }

    // MARK: - Channels

    /// Subscribes this instance to a channel, so that ``receive(_:as:timeout:id:)`` can take
    /// its messages.
    ///
    /// - ``SubscriptionMode/broadcast``: every subscriber receives every message published
    ///   after it subscribed.
    /// - ``SubscriptionMode/competing``: each message goes to one subscriber, including
    ///   messages published before it subscribed.
    /// - ``SubscriptionMode/direct``: messages sent to this instance with
    ///   ``sendTo(_:data:channel:metadata:id:)``.
    ///
    /// Idempotent. Subscriptions end when the instance ends.
    ///
    /// - Throws: ``ChannelModeConflictError`` if the channel's subscribers use the other mode.
    public func subscribe(_ channel: String, mode: SubscriptionMode = .broadcast) async throws {
        try Identifier.validate(channel, field: "channel")
        try checkPoison()
        var stored = channel
        if mode == .direct {
            directChannels.insert(channel)
            stored = directChannel(channel)
        }
        let storedMode = mode == .competing ? "competing" : "broadcast"
        if subscriptions[stored] == storedMode || self.mode != .normal { return }
        if log.hasUnconsumedSteps {
            // Replaying: this subscription was made before a later recorded step, and its effect
            // is in the database already (perhaps undone by a later, also replayed, unsubscribe).
            subscriptions[stored] = storedMode
            return
        }
        try guarded { try scope.control.check() }
        let outcome = try await storeCall {
            try await scope.engine.changeSubscription(
                instanceID: instanceID, workerID: scope.workerID, channel: stored, mode: mode == .direct ? .broadcast : mode)
        }
        switch outcome {
        case .applied:
            subscriptions[stored] = storedMode
        case .modeConflict(let existing):
            throw ChannelModeConflictError(channel: channel, existingMode: existing, requestedMode: mode.rawValue)
        case .rejected(let status, let lockedBy):
            try guarded { try scope.accept(.rejected(status: status, lockedBy: lockedBy)) }
        }
    }

    /// Ends this instance's subscription to a channel (by the name it subscribed with).
    public func unsubscribe(_ channel: String) async throws {
        try Identifier.validate(channel, field: "channel")
        try checkPoison()
        let stored = directChannels.contains(channel) ? directChannel(channel) : channel
        guard subscriptions[stored] != nil, self.mode == .normal else { return }
        if log.hasUnconsumedSteps {
            // Replaying: done before a later recorded step already.
            subscriptions[stored] = nil
            directChannels.remove(channel)
            return
        }
        try guarded { try scope.control.check() }
        let outcome = try await storeCall {
            try await scope.engine.changeSubscription(instanceID: instanceID, workerID: scope.workerID, channel: stored, mode: nil)
        }
        if case .rejected(let status, let lockedBy) = outcome {
            try guarded { try scope.accept(.rejected(status: status, lockedBy: lockedBy)) }
        }
        subscriptions[stored] = nil
        directChannels.remove(channel)
    }

    /// Receives the next message on a subscribed channel, suspending the instance until one
    /// arrives if none is pending.
    ///
    /// A pending message is consumed atomically with its record in history; a suspended
    /// instance holds no worker and resumes within milliseconds of a delivery in this process.
    /// The step's ID is `"receive_<channel>:<n>"` unless `id` is given.
    ///
    /// - Parameters:
    ///   - channel: The channel, as subscribed (for direct mode, the name without the instance).
    ///   - type: What the message's data decodes to; `Data` receives binary data (or the raw
    ///     JSON bytes).
    ///   - timeout: How long to wait at most.
    /// - Throws: ``ReceiveTimeoutError`` when the timeout passes; ``MessageDecodingError`` if
    ///   the data does not decode; ``EddaUsageError`` (`.notSubscribed`) without a subscription.
    public func receive<Payload: Decodable & Sendable>(
        _ channel: String, as type: Payload.Type = Payload.self, timeout: Duration? = nil, id: String? = nil
    ) async throws -> ChannelMessage<Payload> {
        try Identifier.validate(channel, field: "channel")
        let stored = directChannels.contains(channel) ? directChannel(channel) : channel
        switch try await receiveStep(
            stepName: "receive_\(channel)", storedChannel: stored, id: id, timeout: timeout, subscribesIfNeeded: false) {
        case .message(let record):
            return try record.decoded(as: Payload.self, channel: channel)
        case .timedOut:
            throw ReceiveTimeoutError(channel: channel, timeout: timeout)
        }
    }

    /// Waits for a CloudEvent of `eventType`, delivered by ``EddaApp/sendEvent(_:data:to:)`` or
    /// the CloudEvents HTTP endpoint, and returns its data and attributes.
    ///
    /// The instance subscribes to the event type (broadcast) if it has not already, so events
    /// sent before that are not seen: call ``subscribe(_:mode:)`` earlier in the workflow to
    /// catch events that may arrive while it is still busy. The step's ID is
    /// `"receive_<eventType>:<n>"` unless `id` is given.
    ///
    /// - Throws: ``EventTimeoutError`` (naming the event) when the timeout passes;
    ///   ``MessageDecodingError`` if the data does not decode.
    public func waitEvent<Payload: Decodable & Sendable>(
        _ eventType: String, as type: Payload.Type = Payload.self, timeout: Duration? = nil, id: String? = nil
    ) async throws -> ReceivedEvent<Payload> {
        try Identifier.validate(eventType, field: "type")
        switch try await receiveStep(
            stepName: "receive_\(eventType)", storedChannel: eventType, id: id, timeout: timeout, subscribesIfNeeded: true) {
        case .message(let record):
            return ReceivedEvent(message: try record.decoded(as: Payload.self, channel: eventType), type: eventType)
        case .timedOut:
            throw EventTimeoutError(eventType: eventType, timeout: timeout)
        }
    }

    /// A recorded or live receive.
    enum ReceiveResult {
        case message(ReceivedRecord)
        case timedOut
    }

    private func receiveStep(
        stepName: String, storedChannel: String, id: String?, timeout: Duration?, subscribesIfNeeded: Bool
    ) async throws -> ReceiveResult {
        try checkPoison()
        let activityID = try nextID(for: stepName, explicit: id)
        if let entry = log.take(activityID) {
            switch entry.eventType {
            case HistoryEventType.channelMessageReceived, HistoryEventType.eventReceived:
                let record = ReceivedRecord(entry.payload, fallbackChannel: storedChannel)
                // The last step recorded: the message that resumed this execution, which is
                // linked to its sender's trace (once, not on later replays).
                if !log.hasUnconsumedSteps { scope.engine.link(scope.executionSpan, toMessageWith: record.metadata) }
                return .message(record)
            case HistoryEventType.messageTimeout:
                return .timedOut
            default:
                throw poisoned(NondeterminismError(
                    instanceID: instanceID, activityID: activityID,
                    detail: "history holds a \(entry.eventType) event where the code now receives on '\(storedChannel)'"))
            }
        }
        try goLive(at: activityID)
        await awaitOutstanding()
        let engine = scope.engine
        let timeoutAt = timeout.map { engine.clock.now().addingTimeInterval($0.seconds) }
        let request = ReceiveRequest(
            instanceID: instanceID, workerID: scope.workerID, channel: storedChannel, activityID: activityID,
            timeoutAt: timeoutAt, subscribesIfNeeded: subscribesIfNeeded, compensations: bufferedCompensations,
            leaseUntil: Date().addingTimeInterval(scope.control.lease.seconds))
        let outcome = try await storeCall { try await engine.receive(request) }
        switch outcome {
        case .received(let message):
            bufferedCompensationsWritten()
            if subscribesIfNeeded { subscriptions[storedChannel] = subscriptions[storedChannel] ?? "broadcast" }
            // Read back exactly as a replay will read the recorded row.
            let record = ReceivedRecord(MessageHistory.payload(message, ownInstance: true), fallbackChannel: storedChannel)
            scope.engine.link(scope.executionSpan, toMessageWith: record.metadata)
            await hooks.eventReceived(instanceID: instanceID, eventType: storedChannel, dataJSON: record.payload.jsonDescription)
            return .message(record)
        case .suspended:
            bufferedCompensationsWritten()
            if let timeoutAt { engine.waitRegistered(deadline: timeoutAt) }
            throw poisoned(WorkflowSuspended(instanceID: instanceID))
        case .alreadyRecorded:
            throw poisoned(NondeterminismError(
                instanceID: instanceID, activityID: activityID,
                detail: "the step ID is already recorded for another event; give this receive its own ID"))
        case .notSubscribed:
            throw EddaUsageError(
                .notSubscribed,
                "Instance \(instanceID) receives on channel '\(storedChannel)' without subscribing to it; "
                    + "call context.subscribe(\"\(storedChannel)\") first.")
        case .modeConflict(let existing):
            throw ChannelModeConflictError(channel: storedChannel, existingMode: existing, requestedMode: "broadcast")
        case .rejected(let status, let lockedBy):
            try guarded { try scope.accept(.rejected(status: status, lockedBy: lockedBy)) }
            throw LockLostError(instanceID: instanceID)
        }
    }

    /// Publishes a message on a channel: delivered at once to the subscribers waiting on it,
    /// kept for those that receive later. Exactly once: recorded as a step (`"publish:<n>"`),
    /// committed together with the message, and not published again on replay.
    ///
    /// - Parameters:
    ///   - data: The message data (JSON; `Data` publishes binary data).
    ///   - metadata: Extra metadata; `source_instance_id` and `published_at` are added.
    ///   - targetInstanceID: Point-to-point: only that instance receives the message.
    /// - Returns: The message ID.
    @discardableResult
    public func publish<Payload: Encodable & Sendable>(
        _ channel: String, data: Payload, metadata: [String: JSONValue] = [:], targetInstanceID: String? = nil,
        id: String? = nil
    ) async throws -> String {
        var metadata = metadata
        metadata["source_instance_id"] = metadata["source_instance_id"] ?? .string(instanceID)
        return try await recordedPublish(
            name: "publish", id: id, channel: channel, data: data, metadata: metadata, target: targetInstanceID
        ) { report in report.messageID }
    }

    /// Sends a message to one instance, on its direct channel `"<channel>:<instanceID>"`, which
    /// it receives after ``subscribe(_:mode:)`` with ``SubscriptionMode/direct``.
    ///
    /// Recorded as a step (`"send_to:<n>"`), exactly once.
    ///
    /// - Returns: Whether the target was waiting and received it at once (otherwise the message
    ///   waits for its next `receive`).
    @discardableResult
    public func sendTo<Payload: Encodable & Sendable>(
        _ targetInstanceID: String, data: Payload, channel: String = "__direct__", metadata: [String: JSONValue] = [:],
        id: String? = nil
    ) async throws -> Bool {
        var metadata = metadata
        metadata["source_instance_id"] = metadata["source_instance_id"] ?? .string(instanceID)
        metadata["sent_at"] = metadata["sent_at"] ?? .string(Timestamp.iso8601(Date()))
        return try await recordedPublish(
            name: "send_to", id: id, channel: "\(channel):\(targetInstanceID)", data: data, metadata: metadata,
            target: targetInstanceID
        ) { report in report.deliveredTo.contains(targetInstanceID) }
    }

    /// Publishes one message as a recorded step whose result is `result(report)`.
    private func recordedPublish<Payload: Encodable & Sendable, Result: Codable & Sendable>(
        name: String, id: String?, channel: String, data: Payload, metadata: [String: JSONValue], target: String?,
        result: @escaping @Sendable (DeliveryReport) -> Result
    ) async throws -> Result {
        try checkPoison()
        let activityID = try nextID(for: name, explicit: id)
        if let entry = log.take(activityID) {
            return try await replayed(entry, id: activityID, name: name, as: Result.self)
        }
        try goLive(at: activityID)
        var metadata = metadata
        metadata["published_at"] = metadata["published_at"] ?? .string(Timestamp.iso8601(Date()))
        let message = try guarded {
            try OutgoingMessage.make(channel: channel, data: data, metadata: metadata, target: target)
                .tracing(scope.engine.currentTraceCarrier())
        }
        _ = try guarded { try scope.engine.channelStore() }
        var transition = scope.stepTransition(currentActivityID: activityID)
        transition.compensations = bufferedCompensations
        transition.messages = [message]
        transition.claimPolicy = scope.engine.claimPolicy
        // The recorded result (the message ID, or whether it was delivered) is known only after
        // the delivery, in the same transaction.
        let messageID = message.messageID
        let inputJSON = StepPayloads.publishInput(channel: channel, target: target)
        transition.historyAfterDelivery = { reports in
            let value = result(reports.first ?? DeliveryReport(messageID: messageID, deliveredTo: [], claimed: []))
            return [NewHistoryEvent(
                activityID: activityID, eventType: HistoryEventType.activityCompleted,
                payload: .json(StepPayloads.activityCompleted(
                    name: name, resultJSON: (try? JSON.encode(value)) ?? "null", inputJSON: inputJSON, retry: nil)))]
        }
        let deliveries = try await guarded { try await scope.commit(transition) }
        bufferedCompensationsWritten()
        let report = deliveries.first ?? DeliveryReport(messageID: message.messageID, deliveredTo: [], claimed: [])
        await scope.engine.reportDelivered(deliveries, channel: channel, dataJSON: message.payload.jsonDescription)
        return result(report)
    }

    // MARK: - Recur

    /// Ends this instance as `recurred` and continues the workflow in a new instance with
    /// `input` (continue-as-new): the history is archived, subscriptions and compensations end,
    /// and the successor (with `continued_from` set to this instance) starts at once.
    ///
    /// Use it to keep long-running loops' histories short. Code after it never runs.
    public func recur<Input: Encodable>(with input: Input) async throws -> Never {
        try checkPoison()
        try goLive(at: "recur")
        let inputJSON = try guarded { try WorkflowInput.encode(input) }
        throw poisoned(RecurRequested(inputJSON: inputJSON))
    }

    private func directChannel(_ channel: String) -> String { "\(channel):\(instanceID)" }

    /// Runs a store call of the body; store failures stop the execution.
    /// Runs an engine operation; its failure (an ``EngineStoreError``) poisons the context, so
    /// that the body cannot go on past it.
    private func storeCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw poisoned(error)
        }
    }
}

/// The body suspended on a wait, which is recorded; the execution ends and the instance
/// resumes when the wait ends.
struct WorkflowSuspended: Error, Sendable, CustomStringConvertible {
    let instanceID: String
    var description: String { "Workflow instance \(instanceID) suspended until its wait ends" }
}

/// The body called `recur`.
struct RecurRequested: Error, Sendable, CustomStringConvertible {
    let inputJSON: String
    var description: String { "The workflow continues as a new instance (recur)" }
}

/// A received message as recorded in history.
struct ReceivedRecord {
    var id: String
    var channel: String
    var payload: MessagePayload
    var metadata: [String: JSONValue]
    var publishedAt: Date

    /// Reads a `ChannelMessageReceived` row in any implementation's shape.
    init(_ payload: HistoryPayload, fallbackChannel: String) {
        switch payload {
        case .binary(let bytes):
            // The reference records binary messages as the bare bytes.
            self.id = ""
            self.channel = fallbackChannel
            self.payload = .binary(bytes)
            self.metadata = [:]
            self.publishedAt = Date(timeIntervalSince1970: 0)
        case .json(let text):
            let object = JSONValue(jsonText: text)
            self.id = object?["id"]?.stringValue ?? ""
            self.channel = object?["channel"]?.stringValue ?? fallbackChannel
            if let base64 = object?["data_base64"]?.stringValue, let data = Data(base64Encoded: base64) {
                self.payload = .binary(Array(data))
            } else {
                // The data exactly as written, not re-encoded (numbers and key order intact).
                self.payload = .json(RawJSON.member("data", in: text) ?? RawJSON.member("payload", in: text) ?? "null")
            }
            if case .object(let members)? = object?["metadata"] {
                self.metadata = members
            } else {
                self.metadata = [:]
            }
            self.publishedAt = object?["published_at"]?.stringValue.flatMap(Timestamp.parse) ?? Date(timeIntervalSince1970: 0)
        }
    }

    func decoded<Payload: Decodable & Sendable>(as type: Payload.Type, channel: String) throws -> ChannelMessage<Payload> {
        ChannelMessage(
            id: id, channel: channel, data: try MessageCoding.decode(payload, as: type, channel: channel, messageID: id),
            metadata: metadata, publishedAt: publishedAt)
    }
}

/// Encoding and decoding of message data.
enum MessageCoding {
    static func encode<Payload: Encodable>(_ data: Payload) throws -> MessagePayload {
        if let bytes = data as? Data { return .binary(Array(bytes)) }
        if let bytes = data as? [UInt8] { return .binary(bytes) }
        return .json(try JSON.encode(data))
    }

    static func decode<Payload: Decodable>(_ payload: MessagePayload, as type: Payload.Type, channel: String, messageID: String) throws -> Payload {
        if type == Data.self {
            switch payload {
            case .binary(let bytes): return Data(bytes) as! Payload
            case .json(let text): return Data(text.utf8) as! Payload
            }
        }
        guard case .json(let text) = payload else {
            throw MessageDecodingError(
                channel: channel, messageID: messageID, detail: "it holds binary data; receive it as Data")
        }
        do {
            return try JSON.decode(type, from: text)
        } catch {
            throw MessageDecodingError(channel: channel, messageID: messageID, detail: "\(error)")
        }
    }
}

extension OutgoingMessage {
    /// A message with a new ID; the target is recorded in the metadata.
    static func make<Payload: Encodable>(
        channel: String, data: Payload, metadata: [String: JSONValue], target: String?
    ) throws -> OutgoingMessage {
        try Identifier.validate(channel, field: "channel")
        try Identifier.validate(target, field: "target_instance_id")
        var metadata = metadata
        if let target { metadata["target_instance_id"] = .string(target) }
        return OutgoingMessage(
            messageID: UUID().uuidString.lowercased(), channel: channel, payload: try MessageCoding.encode(data),
            metadataJSON: try JSON.encode(metadata), targetInstanceID: target)
    }

}
