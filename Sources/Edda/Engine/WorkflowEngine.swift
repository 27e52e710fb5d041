import Crypto
import Foundation
import Logging
import Synchronization
import Tracing

/// A workflow registered with the app, erased to what the engine needs.
struct RegisteredWorkflow: Sendable {
    let name: String
    let sourceHash: String
    let sourceCode: String
    let lockTimeout: Duration?
    /// The input's shape, for start forms.
    let inputSchema: InputSchema
    /// Checks that stored input decodes to the workflow's input type.
    let validateInput: @Sendable (String) throws -> Void
    /// Decodes the input and runs the body.
    let run: @Sendable (_ inputJSON: String, _ context: WorkflowContext) async throws -> EncodedValue

    init<Input: Codable & Sendable, Output: Codable & Sendable>(
        name: String, version: String, lockTimeout: Duration?, inputSchema: InputSchema? = nil,
        body: @escaping @Sendable (Input, WorkflowContext) async throws -> Output
    ) {
        self.name = name
        let source = "// Swift workflow '\(name)', version \(version)\n"
        self.sourceCode = source
        self.sourceHash = SHA256.hexDigest(source)
        self.lockTimeout = lockTimeout
        self.inputSchema = inputSchema ?? .describing(Input.self)
        self.validateInput = { json in _ = try WorkflowInput.decode(Input.self, from: json) }
        self.run = { json, context in
            let input: Input
            do {
                input = try WorkflowInput.decode(Input.self, from: json)
            } catch {
                throw context.poisoned(StoredInputError(instanceID: context.instanceID, underlying: error))
            }
            let output = try await body(input, context)
            return EncodedValue(json: try encode(output), value: output)
        }
    }
}

/// How a workflow input is stored in `input_data`, which the shared schema requires to be a JSON
/// object: an input that encodes to an object is stored as is (the shape Python Edda writes
/// for keyword arguments); any other value is stored as `{"input": value}`.
enum WorkflowInput {
    static func encode<T: Encodable>(_ input: T) throws -> String {
        let json = try JSON.encode(input)
        if json.utf8.first == UInt8(ascii: "{") { return json }
        if json == "null" { return "{}" }
        return "{\"input\":\(json)}"
    }

    /// Decodes an input as stored; its trace context (see ``TraceCarrier``) is not part of it.
    static func decode<T: Decodable>(_ type: T.Type, from stored: String) throws -> T {
        let json = TraceCarrier.removed(from: stored)
        do {
            return try JSON.decode(type, from: json)
        } catch let whole {
            guard let object = JSONValue(jsonText: json), case .object(let members) = object,
                  members.count == 1, let wrapped = members["input"]
            else { throw whole }
            return try JSON.decode(type, from: wrapped.jsonText)
        }
    }
}

/// How one execution of an instance ended.
enum ExecutionResult: Sendable {
    case completed(EncodedValue)
    case failed(any Error)
    case cancelled
    /// Suspended on a durable wait (timer, message, event); it resumes when the wait ends.
    case suspended
    /// Stopped without an outcome (lost lock, nondeterminism, store failure, shutdown); the
    /// instance is left for a later execution.
    case abandoned(any Error)

    /// For a caller that started the execution and waits for the instance's result: whether
    /// another worker carries the instance on (its outcome will be stored), or else the error
    /// to give the caller (a store failure as the store reported it).
    var abandonment: Abandonment? {
        guard case .abandoned(let error) = self else { return nil }
        if error is LockLostError { return .takenOver }
        if let failure = error as? EngineStoreError { return .stopped(failure.underlying) }
        if error is ShuttingDownError { return .stopped(CancellationError()) }
        return .stopped(error)
    }

    enum Abandonment {
        /// Another worker took the instance over.
        case takenOver
        /// Nothing carries it on now (diverged replay, undecodable input, store failure, shutdown).
        case stopped(any Error)
    }
}

/// The replay engine: runs executions of instances and records their outcomes.
final class WorkflowEngine: Sendable {
    let store: any WorkflowStore
    let workerID: String
    let serviceName: String
    let hooks: any WorkflowHooks
    let metrics: EddaMetrics
    let tracer: any Tracer
    /// Whether the tracer records anything (it is not a no-op): only then are trace contexts
    /// carried through the database.
    let propagatesTraces: Bool
    /// The trace contexts of outbox events written here and not yet sent (see ``OutboxTraceContexts``).
    let outboxTraceContexts = OutboxTraceContexts()
    let defaultRetryPolicy: RetryPolicy
    let defaultLockTimeout: Duration
    let logger: Logger
    /// The time of durable timers and receive timeouts.
    let clock: any WorkflowClock
    /// Executions started in the background (detached starts, resumes, woken instances).
    let tasks: TaskTracker
    private let registry = Mutex<[String: RegisteredWorkflow]>([:])
    private let claimPolicyBox: Mutex<ClaimPolicy>
    /// Executions running in this process, by instance ID: at most one per instance.
    private let executions = Mutex<[String: ExecutionControl]>([:])
    /// Instances whose replay diverged; the recovery loop leaves them alone.
    private let quarantined = Mutex<Set<String>>([])
    let completions = CompletionSignals()
    /// The lease renewer's own thread: renewals keep their schedule however busy Swift's
    /// cooperative pool is (see ``LeaseRenewer``). Woken when an execution's renewal falls due
    /// before the renewer's planned wake-up.
    let renewalExecutor = DedicatedThreadExecutor(name: "edda-lease-renewer")
    /// When the lease renewer next wakes by itself.
    let renewerPlannedWake = Mutex(ContinuousClock.now)
    /// Wakes the wait scheduler when a wait ends before its planned wake-up.
    let schedulerWakeup = CompletionSignals()
    /// The wait deadline the scheduler sleeps until (`distantFuture` while it is awake).
    let schedulerPlannedWake = Mutex(Date.distantFuture)
    /// Wakes the outbox relayer when a commit wrote outbox events.
    let outboxWakeup = CompletionSignals()
    /// Wakes the recovery loop before its next poll.
    let recoveryWakeup = CompletionSignals()
    /// Whether this worker holds the leader lease.
    let leadership = Mutex(false)
    /// The background loops' failures and successes.
    let background: BackgroundHealth
    /// Whether the app is shutting down: executions stop before their next step.
    private let isDraining = Mutex(false)

    /// Makes every execution, running or starting from now on, stop before its next step and
    /// release its instance.
    func drain() {
        isDraining.withLock { $0 = true }
        for control in runningInstanceIDs.values { control.raise(.shuttingDown) }
    }

    init(
        store: any WorkflowStore, workerID: String, serviceName: String, hooks: any WorkflowHooks, metrics: EddaMetrics,
        tracer: any Tracer,
        defaultRetryPolicy: RetryPolicy, defaultLockTimeout: Duration, clock: any WorkflowClock, tasks: TaskTracker,
        logger: Logger
    ) {
        self.metrics = metrics
        self.tracer = tracer
        self.propagatesTraces = !(tracer is NoOpTracer)
        self.clock = clock
        self.tasks = tasks
        self.claimPolicyBox = Mutex(ClaimPolicy(workerID: workerID, leases: [:]))
        self.store = store
        self.workerID = workerID
        self.serviceName = serviceName
        self.hooks = hooks
        self.defaultRetryPolicy = defaultRetryPolicy
        self.defaultLockTimeout = defaultLockTimeout
        self.logger = logger
        self.background = BackgroundHealth(logger: logger, metrics: metrics)
    }

    /// Errors that end an execution rather than fail the workflow. A `CancellationError` counts
    /// only when this task really is cancelled (shutdown); one thrown by an activity on its own
    /// is an ordinary, retryable failure.
    static func isControl(_ error: any Error) -> Bool {
        error is WorkflowCancelledError || error is LockLostError || error is NondeterminismError || error is ShuttingDownError
            || error is EngineStoreError || error is StoredInputError || error is WorkflowSuspended || error is RecurRequested
            || (error is CancellationError && Task.isCancelled)
    }

    /// Commits a transition, timing it.
    func apply(_ transition: InstanceTransition) async throws -> TransitionOutcome {
        let started = ContinuousClock.now
        let outcome = try await store.apply(transition, now: Date())
        metrics.committed(Self.metricLabel(transition), duration: ContinuousClock.now - started)
        return outcome
    }

    /// A transition's kind, as the commit-duration metric names it.
    static func metricLabel(_ transition: InstanceTransition) -> String {
        if transition.successor != nil { return "recur" }
        switch transition.newStatus {
        case .completed?, .failed?, .cancelled?: return "finish"
        case .compensating?: return "compensate"
        case .waitingForTimer?, .waitingForMessage?: return "suspend"
        default:
            let compensation = [HistoryEventType.compensationExecuted, HistoryEventType.compensationFailed]
            return transition.history.contains { compensation.contains($0.eventType) } ? "compensation" : "step"
        }
    }

    // MARK: - Registry

    func register(_ workflow: RegisteredWorkflow) {
        registry.withLock { $0[workflow.name] = workflow }
        claimPolicyBox.withLock { $0.leases[workflow.name] = workflow.lockTimeout ?? defaultLockTimeout }
        // Instances of this workflow may be waiting to resume or have due timers: look now.
        schedulerWakeup.signal(WaitScheduler.wakeupKey, remembered: true)
        recoveryWakeup.signal(RecoveryLoop.wakeupKey, remembered: true)
    }

    /// Which woken instances this worker takes over: those of its registered workflows.
    var claimPolicy: ClaimPolicy {
        claimPolicyBox.withLock { $0 }
    }

    func registered(_ name: String) -> RegisteredWorkflow? {
        registry.withLock { $0[name] }
    }

    var registeredNames: [String] {
        registry.withLock { Array($0.keys) }
    }

    var runningInstanceIDs: [String: ExecutionControl] {
        executions.withLock { $0 }
    }

    func isQuarantined(_ instanceID: String) -> Bool {
        quarantined.withLock { $0.contains(instanceID) }
    }

    var quarantinedCount: Int {
        quarantined.withLock { $0.count }
    }

    private func reserve(_ instanceID: String, lease: Duration) -> ExecutionControl? {
        executions.withLock { executions -> ExecutionControl? in
            guard executions[instanceID] == nil else { return nil }
            let control = ExecutionControl(instanceID: instanceID, lease: lease)
            // Started while the app shuts down: it stops before its first step.
            if isDraining.withLock({ $0 }) { control.raise(.shuttingDown) }
            executions[instanceID] = control
            return control
        }.map { control in
            // A lease due before the renewer's planned wake-up must not wait for it. (Most
            // executions share the default lease and are due later: no wake-up, no extra thread.)
            if control.renewalDue < renewerPlannedWake.withLock({ $0 }) {
                renewalExecutor.wake()
            }
            return control
        }
    }

    private func unreserve(_ instanceID: String) {
        _ = executions.withLock { $0.removeValue(forKey: instanceID) }
        completions.signal(instanceID)
    }

    /// The lease of an instance: its stored lock timeout, the workflow's, or the app's.
    func lease(for workflow: RegisteredWorkflow, storedSeconds: Int?) -> Duration {
        if let storedSeconds, storedSeconds > 0 { return .seconds(storedSeconds) }
        return workflow.lockTimeout ?? defaultLockTimeout
    }

    // MARK: - Start and resume

    /// Creates an instance and, unless it existed already, runs it here until it ends or
    /// suspends. Returns the instance ID and, if it ran, how the execution ended.
    func start(
        workflowName: String, inputJSON: String, instanceID requestedID: String?, lockTimeout: Duration?
    ) async throws -> (String, ExecutionResult?) {
        let (workflow, instanceID, control, storedInput) = try await create(
            workflowName: workflowName, inputJSON: inputJSON, instanceID: requestedID, lockTimeout: lockTimeout)
        guard let control else { return (instanceID, nil) }
        let result = await execute(ExecutionStart(
            workflow: workflow, control: control, inputJSON: storedInput, lockTimeoutSeconds: lockTimeout.map(Self.seconds)))
        return (instanceID, result)
    }

    /// Creates an instance and runs it in the background; returns its ID at once.
    func startDetached(
        workflowName: String, inputJSON: String, instanceID requestedID: String?, lockTimeout: Duration?,
        tracker: TaskTracker
    ) async throws -> String {
        let (workflow, instanceID, control, storedInput) = try await create(
            workflowName: workflowName, inputJSON: inputJSON, instanceID: requestedID, lockTimeout: lockTimeout)
        guard let control else { return instanceID }
        let start = ExecutionStart(
            workflow: workflow, control: control, inputJSON: storedInput, lockTimeoutSeconds: lockTimeout.map(Self.seconds))
        tracker.spawn { _ = await self.execute(start) }
        return instanceID
    }

    /// Creates the instance; returns the input as stored (with the caller's trace context, see
    /// ``TraceCarrier``) and, unless it existed or runs here already, the control of its first
    /// execution.
    private func create(
        workflowName: String, inputJSON requestedInput: String, instanceID requestedID: String?, lockTimeout: Duration?
    ) async throws -> (RegisteredWorkflow, String, ExecutionControl?, String) {
        try Identifier.validate(workflowName, field: "workflow_name")
        guard let workflow = registered(workflowName) else {
            throw EddaUsageError(
                .unknownWorkflow,
                "No workflow named '\(workflowName)' is registered; register it with app.register(_:) before starting it.")
        }
        do {
            try workflow.validateInput(requestedInput)
        } catch {
            throw EddaUsageError(
                .undecodableInput,
                "The input does not decode to the input type of workflow '\(workflowName)': \(readableDecodingFailure(error)).")
        }
        let inputJSON = currentTraceCarrier()?.added(toObject: requestedInput) ?? requestedInput
        let instanceID = requestedID ?? "\(workflowName)-\(Self.randomHex32())"
        try Identifier.validate(instanceID, field: "instance_id")
        let lockTimeoutSeconds = lockTimeout.map(Self.seconds)
        let lease = lease(for: workflow, storedSeconds: lockTimeoutSeconds)
        guard let control = reserve(instanceID, lease: lease) else {
            // Already executing here: starting the same ID again is idempotent, for the same workflow.
            if let existing = try await store.instance(id: instanceID) {
                try Self.checkSameWorkflow(existing, workflow: workflow)
            }
            return (workflow, instanceID, nil, inputJSON)
        }
        let now = Date()
        let outcome: CreateInstanceOutcome
        do {
            outcome = try await store.createInstance(
                NewInstance(
                    instanceID: instanceID, workflowName: workflow.name, sourceHash: workflow.sourceHash,
                    sourceCode: workflow.sourceCode, ownerService: serviceName, inputJSON: inputJSON,
                    lockTimeoutSeconds: lockTimeoutSeconds, lockedBy: workerID,
                    lockExpiresAt: now.addingTimeInterval(lease.seconds)),
                now: now)
        } catch {
            unreserve(instanceID)
            throw error
        }
        switch outcome {
        case .created:
            control.markClaimed(lockExpiresAt: now.addingTimeInterval(lease.seconds))
            return (workflow, instanceID, control, inputJSON)
        case .existing(let existing):
            unreserve(instanceID)
            try Self.checkSameWorkflow(existing, workflow: workflow)
            return (workflow, instanceID, nil, inputJSON)
        }
    }

    private static func checkSameWorkflow(_ existing: WorkflowInstance, workflow: RegisteredWorkflow) throws {
        guard existing.workflowName == workflow.name else {
            throw EddaUsageError(
                .instanceIDConflict,
                "Instance ID '\(existing.instanceID)' already belongs to an instance of workflow '\(existing.workflowName)'; "
                    + "choose another ID for '\(workflow.name)'.")
        }
    }

    /// Claims an instance that is free to run and executes it here. `nil` if it is running
    /// elsewhere, has ended, or belongs to an unregistered workflow.
    func resume(instanceID: String) async throws -> ExecutionResult? {
        guard let instance = try await store.instance(id: instanceID) else {
            throw EddaUsageError(.unknownInstance, "No workflow instance has the ID '\(instanceID)'.")
        }
        guard let workflow = registered(instance.workflowName) else {
            throw EddaUsageError(
                .unknownWorkflow,
                "Instance '\(instanceID)' runs workflow '\(instance.workflowName)', which is not registered in this app.")
        }
        return try await resume(instanceID: instanceID, workflow: workflow, storedLockTimeout: instance.lockTimeoutSeconds)
    }

    func resume(instanceID: String, workflow: RegisteredWorkflow, storedLockTimeout: Int?) async throws -> ExecutionResult? {
        let lease = lease(for: workflow, storedSeconds: storedLockTimeout)
        guard let control = reserve(instanceID, lease: lease) else { return nil }
        let now = Date()
        let claimed: ClaimedInstance?
        do {
            claimed = try await store.claim(
                instanceID: instanceID, workerID: workerID, leaseUntil: now.addingTimeInterval(lease.seconds), now: now)
        } catch {
            unreserve(instanceID)
            throw error
        }
        metrics.claimed(won: claimed != nil)
        guard let claimed else {
            unreserve(instanceID)
            return nil
        }
        control.markClaimed(lockExpiresAt: now.addingTimeInterval(lease.seconds))
        _ = quarantined.withLock { $0.remove(instanceID) }
        return await execute(ExecutionStart(claimed, workflow: workflow, control: control))
    }

    /// Runs instances a store operation handed to this worker, locked (woken by a delivery, a
    /// timer, a timeout), each in a background task. While the app shuts down, releases them
    /// for the next worker instead.
    func runClaimed(_ claimed: [ClaimedInstance]) async {
        for instance in claimed where !tasks.spawn(.execution, { await self.runClaimed(instance) }) {
            try? await store.releaseLock(instanceID: instance.instance.instanceID, workerID: workerID, now: Date())
        }
    }

    private func runClaimed(_ claimed: ClaimedInstance) async {
        let instanceID = claimed.instance.instanceID
        guard let workflow = registered(claimed.instance.workflowName) else {
            try? await store.releaseLock(instanceID: instanceID, workerID: workerID, now: Date())
            return
        }
        let lease = lease(for: workflow, storedSeconds: claimed.instance.lockTimeoutSeconds)
        // The execution that suspended this instance may still be unwinding here.
        var control: ExecutionControl?
        for _ in 0..<100 where !Task.isCancelled {
            let ticket = completions.arm(instanceID)
            control = reserve(instanceID, lease: lease)
            if control != nil {
                completions.disarm(ticket)
                break
            }
            await completions.wait(ticket, timeout: .milliseconds(50))
        }
        guard let control else {
            try? await store.releaseLock(instanceID: instanceID, workerID: workerID, now: Date())
            return
        }
        control.markClaimed(lockExpiresAt: claimed.instance.lockExpiresAt)
        _ = await execute(ExecutionStart(claimed, workflow: workflow, control: control))
    }

    /// Another process announced work: wake the loop that takes it.
    func wake(for wakeUp: StoreWakeUp) {
        if wakeUp == .resumable || wakeUp == .all { recoveryWakeup.signal(RecoveryLoop.wakeupKey, remembered: true) }
        if wakeUp == .waitRegistered || wakeUp == .resumable || wakeUp == .all {
            // A resumable instance may also be a waiting subscriber's pending message.
            schedulerWakeup.signal(WaitScheduler.wakeupKey, remembered: true)
        }
        if wakeUp == .outbox || wakeUp == .all { outboxWritten() }
    }

    /// A commit wrote outbox events: wake the relayer.
    func outboxWritten() {
        outboxWakeup.signal(OutboxRelayer.wakeupKey, remembered: true)
    }

    /// A wait with this deadline was registered: wake the scheduler if it sleeps past it.
    func waitRegistered(deadline: Date) {
        if deadline < schedulerPlannedWake.withLock({ $0 }) {
            schedulerWakeup.signal(WaitScheduler.wakeupKey, remembered: true)
        }
    }

    /// Messages were published: run the instances handed to this worker and report deliveries.
    func delivered(_ reports: [DeliveryReport], channel: String, dataJSON: String) async {
        await runClaimed(reports.flatMap(\.claimed))
        await reportDelivered(reports, channel: channel, dataJSON: dataJSON)
    }

    /// Fires the `eventReceived` hook for each delivery.
    func reportDelivered(_ reports: [DeliveryReport], channel: String, dataJSON: String) async {
        for report in reports {
            for instanceID in report.deliveredTo {
                await hooks.eventReceived(instanceID: instanceID, eventType: channel, dataJSON: dataJSON)
            }
        }
    }

    static func seconds(_ duration: Duration) -> Int {
        Int(duration.seconds.rounded(.up))
    }

    // MARK: - Execution

    /// Everything one execution starts from.
    struct ExecutionStart {
        let workflow: RegisteredWorkflow
        let control: ExecutionControl
        let inputJSON: String
        var status: WorkflowStatus = .running
        var history: [HistoryEvent] = []
        var compensations: [CompensationRecord] = []
        var subscriptions: [String: String] = [:]
        let lockTimeoutSeconds: Int?
        var isNew = true

        init(workflow: RegisteredWorkflow, control: ExecutionControl, inputJSON: String, lockTimeoutSeconds: Int?) {
            self.workflow = workflow
            self.control = control
            self.inputJSON = inputJSON
            self.lockTimeoutSeconds = lockTimeoutSeconds
        }

        init(_ claimed: ClaimedInstance, workflow: RegisteredWorkflow, control: ExecutionControl) {
            self.workflow = workflow
            self.control = control
            self.inputJSON = claimed.instance.inputData.jsonText
            self.status = claimed.instance.status
            self.history = claimed.history
            self.compensations = claimed.compensations
            self.subscriptions = claimed.subscriptions
            self.lockTimeoutSeconds = claimed.instance.lockTimeoutSeconds
            self.isNew = false
        }
    }

    /// Runs an execution and, while it continues as a new instance (`recur`), the next one.
    private func execute(_ start: ExecutionStart) async -> ExecutionResult {
        var next = start
        while true {
            switch await executeOnce(next) {
            case .finished(let result):
                return result
            case .continued(let successor):
                next = successor
            }
        }
    }

    private enum ExecutionStep {
        case finished(ExecutionResult)
        case continued(ExecutionStart)
    }

    /// Runs one execution in a span of its own (see ``EddaSpanAttribute``): its parent is the
    /// trace the instance was started in (kept in its input), else the caller's context, and it
    /// is the current context of the workflow body.
    private func executeOnce(_ start: ExecutionStart) async -> ExecutionStep {
        // The trace the instance was started in, wherever this execution runs.
        let stored = propagatesTraces ? TraceCarrier(inObject: start.inputJSON)?.context(with: tracer) : nil
        let span = tracer.startSpan("workflow \(start.workflow.name)", context: stored ?? ServiceContext.current ?? .topLevel)
        if span.isRecording {  // (a no-op tracer's span would still build each attribute)
            span.attributes[EddaSpanAttribute.workflow] = start.workflow.name
            span.attributes[EddaSpanAttribute.instance] = start.control.instanceID
            span.attributes[EddaSpanAttribute.execution] = start.isNew ? "start" : "resume"
        }
        if !start.isNew, let (kind, lag) = Self.resumeLag(after: start.history.last) { metrics.resumed(after: kind, lag: lag) }
        let step = await ServiceContext.withValue(span.context) { await execute(once: start, span: span) }
        switch step {
        case .finished(let result):
            span.attributes[EddaSpanAttribute.outcome] = result.spanOutcome
            switch result {
            case .failed(let error), .abandoned(let error):
                span.recordError(error)
                span.setStatus(SpanStatus(code: .error))
            default:
                break
            }
        case .continued:
            span.attributes[EddaSpanAttribute.outcome] = "recurred"
        }
        span.end()
        return step
    }

    /// How long an instance woken by `wakeUp` (its last history row) waited for this execution,
    /// and for what kind of wait: from a timer's expiry, a receive's timeout, or a message's
    /// delivery (when the row was written). `nil` if the row ended no wait.
    static func resumeLag(after wakeUp: HistoryEvent?, now: Date = Date()) -> (String, Duration)? {
        guard let wakeUp else { return nil }
        let kind: String
        var ended = wakeUp.createdAt
        switch wakeUp.eventType {
        case HistoryEventType.timerExpired:
            kind = "timer"
            if case .json(let text) = wakeUp.payload, let due = Self.date("expires_at", in: text) { ended = due }
        case HistoryEventType.messageTimeout:
            kind = "message"
            if case .json(let text) = wakeUp.payload, let due = Self.date("timeout_at", in: text) { ended = due }
        case HistoryEventType.channelMessageReceived:
            kind = "message"
        case HistoryEventType.eventReceived:
            kind = "event"
        default:
            return nil
        }
        return (kind, .seconds(max(0, now.timeIntervalSince(ended))))
    }

    private static func date(_ key: String, in object: String) -> Date? {
        RawJSON.member(key, in: object).flatMap { try? JSON.decode(String.self, from: $0) }.flatMap(Timestamp.parse)
    }

    private func execute(once start: ExecutionStart, span: any Span) async -> ExecutionStep {
        let workflow = start.workflow
        let control = start.control
        defer { unreserve(control.instanceID) }
        let scope = ExecutionScope(
            engine: self, control: control, instanceID: control.instanceID, workflowName: workflow.name, executionSpan: span)
        let log = ReplayLog(history: start.history)
        let mode: WorkflowContext.Mode =
            start.status == .compensating ? (log.cancellation != nil ? .cancelling : .recoveringFailure) : .normal
        let context = WorkflowContext(
            scope: scope, mode: mode, log: log, compensations: start.compensations, subscriptions: start.subscriptions,
            logger: logger)
        if start.isNew {
            metrics.workflowStarted(workflow.name)
            await hooks.workflowStarted(instanceID: scope.instanceID, workflowName: workflow.name, inputJSON: start.inputJSON)
        }
        context.logger.debug(start.isNew ? "Workflow started" : "Workflow resumed")

        let outcome: Result<EncodedValue, any Error>
        do {
            outcome = .success(try await workflow.run(start.inputJSON, context))
        } catch {
            outcome = .failure(error)
        }
        await context.awaitOutstanding()

        switch context.poison {
        case is WorkflowSuspended:
            context.logger.debug("Workflow suspended")
            return .finished(.suspended)
        case let recur as RecurRequested:
            return await continueAsNew(context, start, inputJSON: recur.inputJSON)
        case let poison?:
            return .finished(await stop(context, because: poison))
        case nil:
            break
        }
        let unconsumed = context.log.unconsumedSteps
        if !unconsumed.isEmpty {
            return .finished(await stop(context, because: NondeterminismError(
                instanceID: scope.instanceID, activityID: unconsumed[0],
                detail: "recorded steps \(unconsumed.joined(separator: ", ")) were not reached by the code")))
        }
        switch (outcome, mode) {
        case (_, .cancelling):
            return .finished(await finishCancellation(context))
        case (.success, .recoveringFailure):
            return .finished(await stop(context, because: NondeterminismError(
                instanceID: scope.instanceID, activityID: ReservedActivityID.workflowFailed,
                detail: "the instance failed, but replay now completes it")))
        case (.success(let output), .normal):
            return .finished(await complete(context, output: output))
        case (.failure(let error), _):
            return .finished(await fail(context, error: error))
        }
    }

    /// Ends the instance as `recurred` and creates its successor, locked by this worker, in one
    /// transaction; the successor then runs in the same task.
    private func continueAsNew(_ context: WorkflowContext, _ start: ExecutionStart, inputJSON: String) async -> ExecutionStep {
        let scope = context.scope
        let workflow = start.workflow
        do {
            try workflow.validateInput(inputJSON)
        } catch {
            return .finished(await fail(context, error: EddaUsageError(
                .undecodableInput,
                "recur(with:) was given input that does not decode to the input type of workflow '\(workflow.name)': \(error)")))
        }
        let successorID = "\(workflow.name)-\(Self.randomHex32())"
        let lease = lease(for: workflow, storedSeconds: start.lockTimeoutSeconds)
        guard let control = reserve(successorID, lease: lease) else {
            return .finished(await stop(context, because: EngineStoreError(underlying: EddaUsageError(
                .instanceIDConflict, "recur: the generated successor ID \(successorID) is in use"))))
        }
        let transition = InstanceTransition.recur(
            instanceID: scope.instanceID, workerID: workerID, inputJSON: inputJSON,
            successor: NewInstance(
                instanceID: successorID, workflowName: workflow.name, sourceHash: workflow.sourceHash,
                sourceCode: workflow.sourceCode, ownerService: serviceName, inputJSON: inputJSON,
                continuedFrom: scope.instanceID, lockTimeoutSeconds: start.lockTimeoutSeconds, lockedBy: workerID,
                lockExpiresAt: Date().addingTimeInterval(lease.seconds)))
        do {
            try await scope.commit(transition, isStep: false)
        } catch {
            unreserve(successorID)
            if error is WorkflowCancelledError { return .finished(await finishCancellation(context)) }
            return .finished(await stop(context, because: error))
        }
        control.markClaimed(lockExpiresAt: transition.successor?.lockExpiresAt)
        context.logger.debug("Workflow recurred", metadata: ["edda.successor": .string(successorID)])
        metrics.workflowEnded(workflow.name, status: .recurred)
        return .continued(ExecutionStart(
            workflow: workflow, control: control, inputJSON: inputJSON, lockTimeoutSeconds: start.lockTimeoutSeconds))
    }

    private func complete(_ context: WorkflowContext, output: EncodedValue) async -> ExecutionResult {
        let scope = context.scope
        var transition = InstanceTransition.finish(
            instanceID: scope.instanceID, workerID: workerID, as: .completed,
            outputJSON: StepPayloads.completedOutput(resultJSON: output.json))
        transition.compensations = context.bufferedCompensations
        do {
            switch try await apply(transition) {
            case .applied:
                context.bufferedCompensationsWritten()
                context.logger.debug("Workflow completed")
                metrics.workflowEnded(scope.workflowName, status: .completed)
                await hooks.workflowCompleted(instanceID: scope.instanceID, workflowName: scope.workflowName, resultJSON: output.json)
                return .completed(output)
            case .rejected(let status, let lockedBy) where lockedBy == workerID && status == .compensating:
                return await finishCancellation(context)
            case .rejected:
                return .abandoned(LockLostError(instanceID: scope.instanceID))
            }
        } catch {
            return await stop(context, because: EngineStoreError(underlying: error))
        }
    }

    private func fail(_ context: WorkflowContext, error: any Error) async -> ExecutionResult {
        let scope = context.scope
        do {
            if context.hasCompensations || context.mode == .recoveringFailure {
                var begin = InstanceTransition.beginCompensating(
                    instanceID: scope.instanceID, workerID: workerID, leaseUntil: scope.leaseUntil, startedAt: Date())
                begin.compensations = context.bufferedCompensations
                try await scope.commit(begin, isStep: false)
                context.bufferedCompensationsWritten()
                try await runCompensations(context, isCancellation: false)
            }
            let failureJSON = StepPayloads.workflowFailed(error)
            var finish = InstanceTransition.finish(
                instanceID: scope.instanceID, workerID: workerID, as: .failed, outputJSON: failureJSON)
            finish.history = [NewHistoryEvent(
                activityID: ReservedActivityID.workflowFailed, eventType: HistoryEventType.workflowFailed,
                payload: .json(failureJSON))]
            finish.compensations = context.bufferedCompensations
            try await scope.commit(finish, isStep: false)
        } catch let control where control is WorkflowCancelledError {
            return await finishCancellation(context)
        } catch let control {
            return await stop(context, because: control)
        }
        context.logger.info("Workflow failed", metadata: ["edda.error": .string(ErrorDescription.message(error))])
        metrics.workflowEnded(scope.workflowName, status: .failed)
        await hooks.workflowFailed(instanceID: scope.instanceID, workflowName: scope.workflowName, error: error)
        return .failed(error)
    }

    private func finishCancellation(_ context: WorkflowContext) async -> ExecutionResult {
        let scope = context.scope
        do {
            if !context.bufferedCompensations.isEmpty {
                // Registrations made before the cancellation stopped the body must run too.
                var flush = scope.stepTransition(currentActivityID: nil)
                flush.compensations = context.bufferedCompensations
                try await scope.commit(flush, isStep: false)
                context.bufferedCompensationsWritten()
            }
            try await runCompensations(context, isCancellation: true)
            let details: CancellationDetails
            if let recorded = context.log.cancellation {
                details = recorded
            } else {
                let history = try await store.history(instanceID: scope.instanceID)
                details = ReplayLog(history: history).cancellation
                    ?? CancellationDetails(cancelledBy: "user", cancelledAt: Timestamp.iso8601(Date()), previousStatus: "running")
            }
            let finish = InstanceTransition.finish(
                instanceID: scope.instanceID, workerID: workerID, as: .cancelled, outputJSON: try JSON.encode(details))
            try await scope.commit(finish, isStep: false)
        } catch {
            return await stop(context, because: error, cancelling: true)
        }
        context.logger.info("Workflow cancelled")
        metrics.workflowEnded(scope.workflowName, status: .cancelled)
        await hooks.workflowCancelled(instanceID: scope.instanceID, workflowName: scope.workflowName)
        return .cancelled
    }

    /// Runs the instance's compensations not yet recorded, newest first, recording each.
    private func runCompensations(_ context: WorkflowContext, isCancellation: Bool) async throws {
        let scope = context.scope
        let records: [CompensationRecord]
        let executed: Set<String>
        do {
            records = try await store.compensations(instanceID: scope.instanceID)
            executed = ReplayLog(history: try await store.history(instanceID: scope.instanceID)).executedCompensationIDs
        } catch {
            throw EngineStoreError(underlying: error)
        }
        for record in records {
            guard let rowID = record.id, !executed.contains(ReservedActivityID.compensation(rowID)) else { continue }
            let activityID = ReservedActivityID.compensation(rowID)
            let payload: String
            let succeeded: Bool
            do {
                guard let runner = context.compensationRunners[record.name] else {
                    throw CompensationUnavailableError(name: record.name)
                }
                try await tracer.withSpan("compensation \(record.name)") { span in
                    span.attributes[EddaSpanAttribute.activity] = record.name
                    span.attributes[EddaSpanAttribute.instance] = scope.instanceID
                    try await runner(record.argsJSON, CompensationContext(
                        instanceID: scope.instanceID, name: record.name, activityID: record.activityID,
                        isCancellation: isCancellation))
                }
                payload = StepPayloads.compensationExecuted(name: record.name, id: rowID, argsJSON: record.argsJSON)
                succeeded = true
                context.logger.debug("Compensation executed", metadata: ["edda.compensation": .string(record.name)])
            } catch let error where Self.isControl(error) {
                // The app is shutting down: this compensation did not finish and runs again on resume.
                throw error
            } catch {
                context.logger.warning(
                    "Compensation failed", metadata: ["edda.compensation": .string(record.name), "edda.error": "\(error)"])
                payload = StepPayloads.compensationFailed(name: record.name, id: rowID, error: error)
                succeeded = false
            }
            metrics.compensationRan(record.name, succeeded: succeeded)
            let transition = InstanceTransition.compensationRecorded(
                instanceID: scope.instanceID, workerID: workerID, leaseUntil: scope.leaseUntil,
                event: NewHistoryEvent(
                    activityID: activityID,
                    eventType: succeeded ? HistoryEventType.compensationExecuted : HistoryEventType.compensationFailed,
                    payload: .json(payload)))
            let outcome: TransitionOutcome
            do {
                outcome = try await apply(transition)
            } catch {
                throw EngineStoreError(underlying: error)
            }
            if case .rejected = outcome { throw LockLostError(instanceID: scope.instanceID) }
        }
    }

    /// Ends an execution without an outcome and leaves the instance for a later one.
    private func stop(_ context: WorkflowContext, because error: any Error, cancelling: Bool = false) async -> ExecutionResult {
        let scope = context.scope
        if error is WorkflowCancelledError, !cancelling {
            return await finishCancellation(context)
        }
        switch error {
        case is LockLostError:
            context.logger.warning("Workflow execution stopped: \(error)")
            return .abandoned(error)
        case is NondeterminismError, is StoredInputError:
            _ = quarantined.withLock { $0.insert(scope.instanceID) }
            context.logger.error("Workflow execution stopped: \(error)")
        case is ShuttingDownError:
            context.logger.info("Workflow execution paused for shutdown; the instance is released for another worker")
        default:
            context.logger.warning("Workflow execution stopped; the instance will be resumed: \(error)")
        }
        try? await store.releaseLock(instanceID: scope.instanceID, workerID: workerID, now: Date())
        return .abandoned(error)
    }

    static func randomHex32() -> String {
        let uuid = UUID().uuid
        let bytes = [uuid.0, uuid.1, uuid.2, uuid.3, uuid.4, uuid.5, uuid.6, uuid.7,
                     uuid.8, uuid.9, uuid.10, uuid.11, uuid.12, uuid.13, uuid.14, uuid.15]
        let digits = Array("0123456789abcdef")
        var out = ""
        out.reserveCapacity(32)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xf)])
        }
        return out
    }
}

/// A registered compensation's code is not known to this execution.
struct CompensationUnavailableError: Error, CustomStringConvertible {
    let name: String
    var description: String {
        "No code for compensation '\(name)' was registered in this execution; it was registered by code the workflow no longer runs"
    }
}
