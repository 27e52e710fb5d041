import Foundation
import Logging

/// The workflow body's handle on durable execution.
///
/// Every operation here is durable: its result is recorded, and when the instance resumes the
/// recorded result is returned without running anything again. Operations get IDs in program
/// order (`"<name>:<n>"` per name), so the body must issue them in the same order on every run.
///
/// `WorkflowContext` is deliberately not `Sendable`: it cannot be captured by a task group or an
/// unstructured task, where the order of operations would depend on scheduling. For concurrent
/// activities, use ``start(_:input:id:)``, which takes its ID when called and returns a handle
/// to await.
public final class WorkflowContext {
    /// The workflow instance.
    public let instanceID: String
    /// The workflow's durable name.
    public let workflowName: String
    /// A logger with the instance's metadata attached.
    public var logger: Logger
    /// Whether the execution is still replaying recorded history (no step has run live yet).
    public private(set) var isReplaying: Bool

    enum Mode {
        /// Running or resuming normally.
        case normal
        /// A cancellation was requested: replay up to the first step not in history, then stop.
        case cancelling
        /// Recovering the compensation of a failed instance: replay must fail again, as recorded.
        case recoveringFailure
    }

    let scope: ExecutionScope
    let mode: Mode
    var log: ReplayLog
    private var counters: [String: Int] = [:]
    private var usedIDs: Set<String> = []
    /// Compensations registered with ``registerCompensation(_:input:id:)`` but not yet written:
    /// they ride along with the next commit.
    private(set) var bufferedCompensations: [CompensationRecord] = []
    /// Activity IDs that already have a compensation row.
    private let recordedCompensationIDs: Set<String>
    /// How to run each compensation this execution has seen, by durable name.
    private(set) var compensationRunners: [String: CompensationRunner] = [:]
    /// Whether this instance may have compensations to run on failure.
    private(set) var hasCompensations: Bool
    /// The control error that ended this execution, if any: every later operation rethrows it,
    /// so a body that catches it cannot carry on.
    private(set) var poison: (any Error)?
    private var outstanding: [() async -> Void] = []
    /// The instance's channel subscriptions (stored channel to mode), as loaded with the claim
    /// and changed by this execution: a subscription that exists is not written again on replay.
    var subscriptions: [String: String]
    /// Channels subscribed in `direct` mode (by the name the workflow uses).
    var directChannels: Set<String> = []

    init(
        scope: ExecutionScope, mode: Mode, log: ReplayLog, compensations: [CompensationRecord],
        subscriptions: [String: String] = [:], logger: Logger
    ) {
        self.subscriptions = subscriptions
        self.scope = scope
        self.instanceID = scope.instanceID
        self.workflowName = scope.workflowName
        self.mode = mode
        self.log = log
        self.isReplaying = !log.isEmpty
        self.recordedCompensationIDs = Set(compensations.map(\.activityID))
        self.hasCompensations = !compensations.isEmpty
        var logger = logger
        logger[metadataKey: "edda.instance_id"] = .string(scope.instanceID)
        logger[metadataKey: "edda.workflow"] = .string(scope.workflowName)
        self.logger = logger
    }

    var hooks: any WorkflowHooks { scope.engine.hooks }

    // MARK: - Activities

    /// Runs an activity and returns its result: recorded on the first run, replayed after that.
    ///
    /// - Parameters:
    ///   - activity: The activity; its stored properties are available to its `run`.
    ///   - input: The activity's input, recorded with its result.
    ///   - id: An explicit durable ID instead of `"<name>:<n>"` (it does not advance the counter).
    /// - Throws: ``RetryExhaustedError`` or ``TerminalError`` when the activity failed for good
    ///   (the same types on replay), ``WorkflowCancelledError`` when the instance was cancelled.
    public func run<A: Activity>(_ activity: A, input: A.Input, id: String? = nil) async throws -> A.Output {
        let invocation = try prepare(activity, input: input, id: id)
        return try await complete(invocation, as: A.Output.self)
    }

    /// Runs a closure-defined activity (see ``ActivityDefinition``).
    public func run<Input, Output>(_ activity: ActivityDefinition<Input, Output>, input: Input, id: String? = nil) async throws -> Output {
        let invocation = try prepare(activity, input: input, id: id)
        return try await complete(invocation, as: Output.self)
    }

    /// Starts an activity without waiting for it, for running several at once.
    ///
    /// The ID is taken now, in program order, so concurrent activities replay deterministically
    /// without hand-written IDs. Errors surface when the handle's ``ActivityHandle/value`` is
    /// awaited. Handles not awaited are still waited for before the workflow ends.
    ///
    /// ```swift
    /// let flight = context.start(BookFlight(), input: trip)
    /// let hotel = context.start(BookHotel(), input: trip)
    /// let itinerary = Itinerary(flight: try await flight.value, hotel: try await hotel.value)
    /// ```
    public func start<A: Activity>(_ activity: A, input: A.Input, id: String? = nil) -> ActivityHandle<A.Output> {
        launch(Result { try prepare(activity, input: input, id: id, sequential: false) }, as: A.Output.self)
    }

    /// Starts a closure-defined activity without waiting for it.
    public func start<Input, Output>(_ activity: ActivityDefinition<Input, Output>, input: Input, id: String? = nil) -> ActivityHandle<Output> {
        launch(Result { try prepare(activity, input: input, id: id, sequential: false) }, as: Output.self)
    }

    /// A prepared call: either recorded in history, or to run live.
    enum PreparedCall {
        case recorded(id: String, name: String, ReplayLog.Entry)
        case live(ActivityInvocation)
    }

    private func prepare<A: Activity>(_ activity: A, input: A.Input, id: String?, sequential: Bool = true) throws -> PreparedCall {
        var compensationName: String?
        if let compensatable = activity as? any CompensatableActivity {
            compensationName = registerRunner(for: compensatable)
        }
        return try prepareCall(
            name: A.name, explicitID: id, input: input, policy: activity.retryPolicy,
            compensationName: compensationName, sequential: sequential
        ) { input, context in try await activity.run(input, context: context) }
    }

    private func prepare<Input, Output>(
        _ activity: ActivityDefinition<Input, Output>, input: Input, id: String?, sequential: Bool = true
    ) throws -> PreparedCall {
        try prepareCall(
            name: activity.name, explicitID: id, input: input, policy: activity.retryPolicy, compensationName: nil,
            sequential: sequential, body: activity.body)
    }

    private func prepareCall<Input: Encodable & Sendable, Output: Encodable & Sendable>(
        name: String, explicitID: String?, input: Input, policy: RetryPolicy?, compensationName: String?,
        sequential: Bool = true, body: @escaping @Sendable (Input, ActivityContext) async throws -> Output
    ) throws -> PreparedCall {
        try checkPoison()
        let id = try nextID(for: name, explicit: explicitID)
        if let entry = log.take(id) {
            return .recorded(id: id, name: name, entry)
        }
        try goLive(at: id, sequential: sequential)
        let inputJSON = try guarded { try encode(input) }
        if compensationName != nil { hasCompensations = true }
        return .live(ActivityInvocation(
            activityID: id, activityName: name, inputJSON: inputJSON,
            policy: policy ?? scope.engine.defaultRetryPolicy,
            perform: { context in
                let output = try await body(input, context)
                return EncodedValue(json: try encode(output), value: output)
            },
            compensationName: compensationName))
    }

    private func complete<Output: Codable & Sendable>(_ call: PreparedCall, as type: Output.Type) async throws -> Output {
        switch call {
        case .recorded(let id, let name, let entry):
            scope.engine.metrics.stepReplayed(scope.workflowName)
            await hooks.activityStarted(instanceID: instanceID, activityID: id, activityName: name, isReplaying: true)
            return try await replayed(entry, id: id, name: name, as: type)
        case .live(let invocation):
            await hooks.activityStarted(
                instanceID: instanceID, activityID: invocation.activityID, activityName: invocation.activityName, isReplaying: false)
            let output: EncodedValue
            do {
                output = try await guarded { try await scope.runActivity(invocation, carrying: bufferedCompensations) }
            } catch where !WorkflowEngine.isControl(error) {
                // The failure was recorded together with the buffered registrations.
                bufferedCompensationsWritten()
                throw error
            }
            bufferedCompensationsWritten()
            return try value(of: output, as: type)
        }
    }

    private func launch<Output: Codable & Sendable>(_ prepared: Result<PreparedCall, any Error>, as type: Output.Type) -> ActivityHandle<Output> {
        switch prepared {
        case .failure(let error):
            return ActivityHandle(context: self, state: .failed(error))
        case .success(.recorded(let id, let name, let entry)):
            return ActivityHandle(context: self, state: .recorded { [self] in
                scope.engine.metrics.stepReplayed(scope.workflowName)
                await hooks.activityStarted(instanceID: instanceID, activityID: id, activityName: name, isReplaying: true)
                return try await replayed(entry, id: id, name: name, as: type)
            })
        case .success(.live(let invocation)):
            let scope = self.scope
            let task = Task {
                await scope.engine.hooks.activityStarted(
                    instanceID: scope.instanceID, activityID: invocation.activityID,
                    activityName: invocation.activityName, isReplaying: false)
                return try await scope.runActivity(invocation, carrying: [])
            }
            outstanding.append { _ = await task.result }
            return ActivityHandle(context: self, state: .live(task))
        }
    }

    func value<Output: Codable & Sendable>(of output: EncodedValue, as type: Output.Type) throws -> Output {
        if let value = output.value as? Output { return value }
        return try guarded { try decodeResult(output.json, as: type) }
    }

    /// The recorded outcome of a step, checked against what the code asks for.
    func replayed<Output: Codable & Sendable>(
        _ entry: ReplayLog.Entry, id: String, name: String, as type: Output.Type
    ) async throws -> Output {
        guard case .json(let text) = entry.payload else {
            throw poisoned(NondeterminismError(
                instanceID: instanceID, activityID: id, detail: "history holds a binary \(entry.eventType) row where the code runs activity '\(name)'"))
        }
        switch entry.eventType {
        case HistoryEventType.activityCompleted:
            let envelope: CompletedEnvelope<Output>
            do {
                envelope = try CompletedEnvelope<Output>.decode(from: text)
            } catch {
                throw poisoned(NondeterminismError(
                    instanceID: instanceID, activityID: id,
                    detail: "the recorded result does not decode as \(Output.self) (\(error))"))
            }
            try checkName(envelope.activityName, expected: name, at: id)
            if !(hooks is NoHooks) {
                // The result alone, as a live step reports it (the row holds the whole envelope).
                let resultJSON = JSONValue(jsonText: text)?["result"]?.jsonText ?? "null"
                await hooks.activityCompleted(
                    instanceID: instanceID, activityID: id, activityName: name, resultJSON: resultJSON, cacheHit: true)
            }
            return envelope.result
        case HistoryEventType.activityFailed:
            let envelope = (try? JSON.decode(FailedEnvelope.self, from: text))
                ?? FailedEnvelope(activityName: nil, errorType: nil, errorMessage: nil, retryMetadata: nil, exhaustedReason: nil)
            try checkName(envelope.activityName, expected: name, at: id)
            let error = envelope.rebuiltError(activityName: name)
            await hooks.activityFailed(instanceID: instanceID, activityID: id, activityName: name, error: error)
            throw error
        default:
            throw poisoned(NondeterminismError(
                instanceID: instanceID, activityID: id,
                detail: "history holds a \(entry.eventType) event where the code runs activity '\(name)'"))
        }
    }

    private func checkName(_ recorded: String?, expected: String, at id: String) throws {
        if let recorded, recorded != expected {
            throw poisoned(NondeterminismError(
                instanceID: instanceID, activityID: id,
                detail: "history recorded activity '\(recorded)' where the code now runs '\(expected)'"))
        }
    }

    // MARK: - Compensation

    /// Registers a compensation to run if the workflow later fails or is cancelled.
    ///
    /// Call it after the step it undoes has succeeded. Registration is durable (written with the
    /// next commit) and replay-safe: on resume, a registration that is already recorded is not
    /// written again.
    ///
    /// - Parameters:
    ///   - compensation: The compensation; its stored properties are available when it runs.
    ///   - input: What it needs to undo the step, recorded with the registration.
    ///   - id: An explicit durable ID instead of `"<name>:<n>"`.
    public func registerCompensation<C: Compensation>(_ compensation: C, input: C.Input, id: String? = nil) throws {
        try checkPoison()
        let activityID = try nextID(for: C.name, explicit: id)
        compensationRunners[C.name] = { argsJSON, context in
            let args = try JSON.decode(CompensationArguments<C.Input, NoValue>.self, from: argsJSON)
            try await compensation.run(args.kwargs.input, context: context)
        }
        hasCompensations = true
        guard !recordedCompensationIDs.contains(activityID) else { return }
        let inputJSON = try guarded { try encode(input) }
        bufferedCompensations.append(CompensationRecord(
            activityID: activityID, name: C.name,
            argsJSON: StepPayloads.compensationArgs(name: C.name, inputJSON: inputJSON, outputJSON: nil)))
    }

    private func registerRunner<A: CompensatableActivity>(for activity: A) -> String {
        compensationRunners[A.compensationName] = { argsJSON, context in
            let args = try JSON.decode(CompensationArguments<A.Input, A.Output>.self, from: argsJSON)
            guard let output = args.kwargs.output else {
                throw DecodingError.valueNotFound(
                    A.Output.self, .init(codingPath: [], debugDescription: "compensation args hold no output"))
            }
            try await activity.compensate(args.kwargs.input, output: output, context: context)
        }
        return A.compensationName
    }

    /// Marks the buffered registrations as written. Called only after a commit that carried
    /// them succeeded; until then they stay buffered, so a stopped commit cannot lose them.
    /// (Nothing registers while such a commit is in flight: the body is suspended awaiting it.)
    func bufferedCompensationsWritten() {
        bufferedCompensations.removeAll()
    }

    // MARK: - Deterministic values

    /// The current time, recorded on first execution and replayed after that.
    public func now() async throws -> Date {
        let text = try await recordedValue(named: "now") { Timestamp.iso8601(Date()) }
        guard let date = Timestamp.parse(text) else {
            throw poisoned(NondeterminismError(instanceID: instanceID, activityID: "now", detail: "recorded time '\(text)' is not a timestamp"))
        }
        return date
    }

    /// A random UUID, recorded on first execution and replayed after that.
    public func uuid() async throws -> UUID {
        let text = try await recordedValue(named: "uuid") { UUID().uuidString.lowercased() }
        guard let uuid = UUID(uuidString: text) else {
            throw poisoned(NondeterminismError(instanceID: instanceID, activityID: "uuid", detail: "recorded UUID '\(text)' is invalid"))
        }
        return uuid
    }

    /// A random integer in `range`, recorded on first execution and replayed after that.
    public func random(in range: ClosedRange<Int>) async throws -> Int {
        try await recordedValue(named: "random") { Int.random(in: range) }
    }

    /// A random number in `0..<1`, recorded on first execution and replayed after that.
    public func random() async throws -> Double {
        try await recordedValue(named: "random") { Double.random(in: 0..<1) }
    }

    private func recordedValue<T: Codable & Sendable>(named name: String, make: () -> T) async throws -> T {
        try checkPoison()
        let id = try nextID(for: name, explicit: nil)
        if let entry = log.take(id) {
            return try await replayed(entry, id: id, name: name, as: T.self)
        }
        try goLive(at: id)
        let value = make()
        let json = try guarded { try encode(value) }
        var transition = scope.stepTransition(currentActivityID: id)
        transition.history = [NewHistoryEvent(
            activityID: id, eventType: HistoryEventType.activityCompleted,
            payload: .json(StepPayloads.activityCompleted(name: name, resultJSON: json, inputJSON: nil, retry: nil)))]
        transition.compensations = bufferedCompensations
        try await guarded { _ = try await scope.commit(transition) }
        bufferedCompensationsWritten()
        return value
    }

    // MARK: - Execution bookkeeping

    func nextID(for name: String, explicit: String?) throws -> String {
        let id: String
        if let explicit {
            id = explicit
        } else {
            let next = (counters[name] ?? 0) + 1
            counters[name] = next
            id = "\(name):\(next)"
        }
        try Identifier.validate(id, field: "activity_id")
        guard usedIDs.insert(id).inserted else {
            throw poisoned(NondeterminismError(
                instanceID: instanceID, activityID: id,
                detail: "the ID is used by two operations in one execution; give each explicit ID once"))
        }
        return id
    }

    /// The first step not found in history: from here on, steps run for real.
    ///
    /// A sequential step cannot legitimately go live while recorded steps remain unconsumed:
    /// every operation issued before it has taken its record (``start(_:input:id:)`` takes it at
    /// call time), and none issued after it can have been recorded while it blocked. So an
    /// unconsumed record here means the code skipped or renamed a recorded step, and the step is
    /// refused before it runs. Concurrent handles are exempt: a later handle may have finished
    /// first.
    func goLive(at id: String, sequential: Bool = true) throws {
        if sequential, log.hasUnconsumedSteps {
            throw poisoned(NondeterminismError(
                instanceID: instanceID, activityID: id,
                detail: "the code runs this new step while recorded steps \(log.unconsumedSteps.joined(separator: ", ")) were never reached"))
        }
        isReplaying = false
        switch mode {
        case .normal:
            break
        case .cancelling:
            throw poisoned(WorkflowCancelledError(instanceID: instanceID))
        case .recoveringFailure:
            throw poisoned(NondeterminismError(
                instanceID: instanceID, activityID: id,
                detail: "the instance failed before this step, but replay now reaches it"))
        }
        try guarded { try scope.control.check() }
    }

    func checkPoison() throws {
        if let poison { throw poison }
    }

    @discardableResult
    func poisoned(_ error: any Error) -> any Error {
        if poison == nil { poison = error }
        return error
    }

    /// Runs `body`; a control error it throws ends the execution.
    func guarded<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as EncodingError {
            throw EddaUsageError(
                .unencodableValue,
                "A value of workflow '\(workflowName)' (instance \(instanceID)) could not be encoded to JSON: \(error). "
                    + "Make its Encodable conformance produce JSON-compatible values (no NaN or infinite numbers).")
        } catch {
            if WorkflowEngine.isControl(error) { poisoned(error) }
            throw error
        }
    }

    func guarded<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            if WorkflowEngine.isControl(error) { poisoned(error) }
            throw error
        }
    }

    /// Waits for activities started with ``start(_:input:id:)`` that the body did not await.
    func awaitOutstanding() async {
        let pending = outstanding
        outstanding.removeAll()
        for wait in pending { await wait() }
    }
}

/// How the engine runs a compensation: its stored args and context.
typealias CompensationRunner = @Sendable (_ argsJSON: String, _ context: CompensationContext) async throws -> Void

/// A compensation row's `args` as this implementation writes them.
struct CompensationArguments<Input: Decodable, Output: Decodable>: Decodable {
    struct Keywords: Decodable {
        let input: Input
        let output: Output?
    }
    let kwargs: Keywords
}

func encode<T: Encodable>(_ value: T) throws -> String {
    try JSON.encode(value)
}

func decodeResult<T: Decodable>(_ json: String, as type: T.Type) throws -> T {
    try CompletedEnvelope<T>.decode(from: "{\"result\":\(json)}").result
}

/// An activity started with ``WorkflowContext/start(_:input:id:)``; await ``value`` for its result.
public struct ActivityHandle<Output: Codable & Sendable> {
    enum State {
        case failed(any Error)
        case recorded(() async throws -> Output)
        case live(Task<EncodedValue, any Error>)
    }

    let context: WorkflowContext
    let state: State

    /// The activity's result, or the error it failed with (the same as
    /// ``WorkflowContext/run(_:input:id:)`` would have thrown).
    public var value: Output {
        get async throws {
            switch state {
            case .failed(let error):
                throw error
            case .recorded(let replay):
                return try await replay()
            case .live(let task):
                do {
                    return try context.value(of: try await task.value, as: Output.self)
                } catch {
                    if WorkflowEngine.isControl(error) { context.poisoned(error) }
                    throw error
                }
            }
        }
    }
}
