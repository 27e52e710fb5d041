import Crypto
import Foundation

/// CloudEvents: workflows and handlers started by event type, and delivery to waiting workflows.
extension EddaApp {
    /// A closure run for every accepted event of a type.
    public typealias EventHandler = @Sendable (CloudEvent) async throws -> Void

    /// Registers a workflow and starts an instance of it for every CloudEvent of `eventType`,
    /// with the event's data as input (an event-handler workflow).
    ///
    /// The instance ID is derived from the event's `source` and `id`, so an event received
    /// twice starts one instance. Events whose data does not decode to the workflow's input are
    /// refused by ``handle(_:)`` before anything is stored.
    ///
    /// ```swift
    /// app.register(RecordPayment(ledger: ledger), handlingEvents: "payment.received")
    /// ```
    public func register<W: Workflow>(_ workflow: W, handlingEvents eventType: String) {
        register(workflow)
        eventHandlers.withLock { $0.workflows[eventType, default: []].append(W.name) }
    }

    /// Registers a closure-defined workflow as the handler of `eventType` (see
    /// ``register(_:handlingEvents:)``).
    @discardableResult
    public func register<Input: Codable & Sendable, Output: Codable & Sendable>(
        workflow name: String, handlingEvents eventType: String, version: String = "1",
        _ body: @escaping @Sendable (Input, WorkflowContext) async throws -> Output
    ) -> WorkflowReference<Input, Output> {
        let reference = register(workflow: name, version: version, body)
        eventHandlers.withLock { $0.workflows[eventType, default: []].append(name) }
        return reference
    }

    /// Runs `handler` for every accepted CloudEvent of `eventType`, in the background after the
    /// event is stored (errors are logged). For durable reactions, prefer an event-handler
    /// workflow.
    public func onEvent(_ eventType: String, _ handler: @escaping EventHandler) {
        eventHandlers.withLock { $0.closures[eventType, default: []].append(handler) }
    }

    /// The event types that start workflows or run handlers here.
    public var handledEventTypes: [String] {
        eventHandlers.withLock { Array(Set($0.workflows.keys).union($0.closures.keys)).sorted() }
    }

    /// Accepts a CloudEvent: starts its event-handler workflows, stores it on the channel of its
    /// type and delivers it to the instances waiting for it (all of them, or only the one named
    /// by the `eddainstanceid` extension), then runs its closure handlers in the background.
    ///
    /// Everything is stored before this returns. An event with the same `source` and `id` as
    /// one accepted before changes nothing (``EventReceipt/isDuplicate``).
    ///
    /// - Throws: ``EventInputError`` if a handler workflow cannot take the data as input; then
    ///   nothing is stored.
    @discardableResult
    public func handle(_ event: CloudEvent) async throws -> EventReceipt {
        try await handle([event])[0]
    }

    /// Accepts several CloudEvents (a batch): all are checked before any is stored.
    @discardableResult
    public func handle(_ events: [CloudEvent]) async throws -> [EventReceipt] {
        for event in events { try event.attributes.validateIdentifiers() }
        let handlers = eventHandlers.withLock { $0 }
        // Check every event against its handler workflows first: a bad one stores nothing.
        var plans: [(event: CloudEvent, starts: [(workflow: String, inputJSON: String)])] = []
        for event in events {
            var starts: [(String, String)] = []
            for name in handlers.workflows[event.attributes.type] ?? [] {
                guard let workflow = engine.registered(name) else { continue }
                // With the event's trace context, which the input type does not see (see `TraceCarrier`).
                let inputJSON = Self.handlerInput(for: event)
                do {
                    try workflow.validateInput(inputJSON)
                } catch {
                    throw EventInputError(
                        eventType: event.attributes.type, eventID: event.attributes.id, workflowName: name, detail: "\(error)")
                }
                starts.append((name, inputJSON))
            }
            plans.append((event, starts))
        }
        var receipts: [EventReceipt] = []
        for (event, starts) in plans {
            let key = Self.eventKey(event.attributes)
            var started: [String] = []
            for (name, inputJSON) in starts {
                started.append(try await engine.startDetached(
                    workflowName: name, inputJSON: inputJSON, instanceID: "\(name)-\(key.prefix(32))", lockTimeout: nil,
                    tracker: tasks))
            }
            var metadata = event.attributes.metadata
            metadata["published_at"] = .string(Timestamp.iso8601(Date()))
            let message = OutgoingMessage(
                messageID: Self.uuidString(fromHex: key), channel: event.attributes.type,
                payload: event.data ?? .json("null"), metadataJSON: try JSON.encode(metadata),
                targetInstanceID: event.attributes.extensions["eddainstanceid"]?.stringValue)
            let reports = try await engine.channelStore().publish([message], claim: engine.claimPolicy, now: Date())
            let report = reports.first
            await engine.delivered(reports, channel: message.channel, dataJSON: message.payload.jsonDescription)
            let isDuplicate = report?.isDuplicate ?? false
            if !isDuplicate {
                for handler in handlers.closures[event.attributes.type] ?? [] {
                    spawnHandler(handler, for: event)
                }
            }
            receipts.append(EventReceipt(
                eventID: event.attributes.id, startedInstances: started, deliveredTo: report?.deliveredTo ?? [],
                isDuplicate: isDuplicate))
        }
        return receipts
    }

    private func spawnHandler(_ handler: @escaping EventHandler, for event: CloudEvent) {
        let logger = configuration.logger
        runInBackground {
            do {
                try await handler(event)
            } catch {
                logger.error(
                    "Event handler failed",
                    metadata: ["edda.event_type": .string(event.attributes.type), "edda.event_id": .string(event.attributes.id),
                               "edda.error": .string("\(error)")])
            }
        }
    }

    /// The input of a handler workflow: the event data as sent (numbers keep their precision);
    /// JSON object data gains `_trace_context` with the `traceparent`/`tracestate` extensions,
    /// as the reference stores it (see ``TraceCarrier``). Other data is wrapped as `{"input": data}`.
    static func handlerInput(for event: CloudEvent) -> String {
        guard case .json(let raw)? = event.data else { return "{}" }
        let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("{") else { return text == "null" ? "{}" : "{\"input\":\(text)}" }
        let fields = ["traceparent", "tracestate"].reduce(into: [String: String]()) { fields, key in
            fields[key] = event.attributes.extensions[key]?.stringValue
        }
        guard !fields.isEmpty else { return text }
        return TraceCarrier(fields: fields).added(toObject: text)
    }

    /// The SHA-256 of the event's `source` and `id`, which identify it (CloudEvents 1.0).
    static func eventKey(_ attributes: CloudEventAttributes) -> String {
        SHA256.hexDigest("\(attributes.source)\u{0}\(attributes.id)")
    }

    /// The first 32 hex digits of `hex` in UUID form.
    static func uuidString(fromHex hex: String) -> String {
        let digits = Array(hex.prefix(32))
        let groups = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32]
        return groups.map { String(digits[$0]) }.joined(separator: "-")
    }
}

/// The handlers registered with an app, by event type.
struct EventHandlers: Sendable {
    var workflows: [String: [String]] = [:]
    var closures: [String: [EddaApp.EventHandler]] = [:]
}
