import Foundation
import Logging
import ServiceLifecycle
import Tracing
import Synchronization

/// A durable execution runtime inside your process: register workflows, start them, read their
/// results; it resumes unfinished instances after a crash.
///
/// ```swift
/// let app = try await EddaApp(configuration: .init(serviceName: "orders", database: .sqlite(path: "orders.db")))
/// app.register(PlaceOrder(inventory: inventory))
/// let receipt = try await app.run(PlaceOrder.self, input: order)
/// ```
///
/// Creating the app opens the database, applies the schema and starts the background work
/// (lock renewal, recovery). Call ``shutdown(gracePeriod:)`` when done, or run the app as a
/// `ServiceLifecycle` service, which shuts it down on graceful shutdown.
public final class EddaApp: Service, Sendable {
    /// The `framework` value this implementation writes and processes.
    public static let frameworkName = StoredFramework.name

    /// The configuration the app was created with.
    public let configuration: Configuration
    /// This process's worker identity: `<service>-<pid>-<8 hex>`, stored in `locked_by`.
    public let workerID: String
    /// The store behind the app.
    public let store: any WorkflowStore

    let engine: WorkflowEngine
    let tasks: TaskTracker
    /// Renews locks until every execution has stopped; stopped last at shutdown.
    private let renewer: Task<Void, Never>
    /// This worker's liveness marker, if takeover on restart is on.
    private let liveness: WorkerLiveness?
    private let isShutDown = Mutex(false)
    let eventHandlers = Mutex(EventHandlers())
    /// The background loops this app runs.
    private let loops: [BackgroundLoop]

    /// Opens the configured database, migrates it, and starts the background work.
    ///
    /// - Throws: ``EddaUsageError`` for an invalid configuration; the database's error if it
    ///   cannot be opened or migrated.
    public convenience init(configuration: Configuration) async throws {
        try configuration.validate()
        let store = try await configuration.database.makeStore()
        try await self.init(configuration: configuration, store: store)
    }

    /// Runs on a store you created (for example, one shared by several apps in tests).
    public init(configuration: Configuration, store: any WorkflowStore) async throws {
        try configuration.validate()
        if configuration.outboxPublisher != nil, !(store is any OutboxStore) {
            try? await store.close()
            throw EddaUsageError(
                .unsupportedByStore,
                "An outbox publisher is configured, but \(type(of: store)) has no transactional outbox (it is not an OutboxStore).")
        }
        if configuration.migratesSchema {
            try await store.migrate()
        } else if try await !store.hasCurrentSchema() {
            try? await store.close()
            throw EddaUsageError(
                .schemaMissing,
                "The database has no Edda schema (or an older one) and migratesSchema is off, so nothing was created. "
                    + "Create the schema first: run `edda migrate --db <url>`, or open an app with migratesSchema = true.")
        }
        self.configuration = configuration
        self.store = store
        let workerID = "\(configuration.serviceName)-\(ProcessInfo.processInfo.processIdentifier)-\(WorkflowEngine.randomHex32().prefix(8))"
        self.workerID = workerID
        var logger = configuration.logger
        logger[metadataKey: "edda.worker"] = .string(workerID)
        var liveness: WorkerLiveness?
        if configuration.runsBackgroundRecovery, let directory = configuration.workerLivenessDirectory {
            do {
                liveness = try WorkerLiveness(
                    directory: WorkerLiveness.directory(base: directory, database: configuration.database.description),
                    workerID: workerID)
            } catch {
                logger.warning("Takeover on restart is off: \(error)")
            }
        }
        self.liveness = liveness
        let tasks = TaskTracker()
        self.tasks = tasks
        let metrics = EddaMetrics(factory: configuration.metricsFactory)
        (store as? any InstrumentedStore)?.report(to: StoreInstruments(factory: metrics.factory))
        self.engine = WorkflowEngine(
            store: store, workerID: workerID, serviceName: configuration.serviceName, hooks: configuration.hooks,
            metrics: metrics, tracer: configuration.tracer ?? InstrumentationSystem.tracer,
            defaultRetryPolicy: configuration.defaultRetryPolicy, defaultLockTimeout: configuration.lockTimeout,
            clock: configuration.clock, tasks: tasks, logger: logger)
        var loops: [BackgroundLoop] = [.leaseRenewal]
        renewer = Task(executorPreference: engine.renewalExecutor) { [engine] in
            await PreferredTaskExecutor.$current.withValue(engine.renewalExecutor) {
                await LeaseRenewer(engine: engine).run()
            }
        }
        if configuration.runsBackgroundRecovery {
            loops += [.recovery, .waitScheduler, .leader]
            tasks.spawn(.service) { [engine, tasks, configuration, liveness] in
                await RecoveryLoop(
                    engine: engine, tasks: tasks, interval: configuration.recoveryInterval,
                    batchSize: configuration.resumeBatchSize, liveness: liveness
                ).run()
            }
            tasks.spawn(.service) { [engine, configuration] in
                await WaitScheduler(
                    engine: engine, pollInterval: configuration.recoveryInterval, batchSize: configuration.resumeBatchSize
                ).run()
            }
            if let publisher = configuration.outboxPublisher, let outbox = store as? any OutboxStore {
                loops.append(.outboxRelayer)
                tasks.spawn(.service) { [engine, configuration] in
                    await OutboxRelayer(
                        engine: engine, store: outbox, publisher: publisher, configuration: configuration.outboxRelayer
                    ).run()
                }
            }
            if let source = store as? any WakeUpSource {
                loops.append(.wakeUps)
                let wakeUps = source.wakeUps()
                tasks.spawn(.service) { [engine] in
                    for await wakeUp in wakeUps {
                        engine.wake(for: wakeUp)
                    }
                    // The store ended its notifications: the loops' polls still find everything.
                    if !Task.isCancelled {
                        engine.background.failed(
                            .wakeUps, "The store's wake-up notifications ended", StoreNotificationsEnded(),
                            retrying: "waits end and instances resume at each poll (recoveryInterval) from now on")
                    }
                }
            }
            tasks.spawn(.service) { [engine, configuration] in
                await LeaderElection(
                    engine: engine, locks: store as? any SystemLockStore, lockName: configuration.leaderLockName, heartbeat: configuration.leaderHeartbeatInterval,
                    lease: configuration.leaderLeaseDuration, messageRetention: configuration.messageRetention,
                    instanceRetention: configuration.instanceRetention,
                    cleanupInterval: configuration.messageCleanupInterval
                ).run()
            }
        }
        self.loops = loops
    }

    // MARK: - Registration

    /// Registers a workflow. Its stored properties (clients, settings) are used by every
    /// execution in this app, including resumes after a restart. Registering a name again
    /// replaces the earlier registration.
    public func register<W: Workflow>(_ workflow: W) {
        engine.register(RegisteredWorkflow(
            name: W.name, version: W.version, lockTimeout: W.lockTimeout, inputSchema: W.inputSchema
        ) { input, context in
            try await workflow.run(input, context: context)
        })
    }

    /// Registers a workflow defined by a closure, and returns a reference to start it with.
    ///
    /// ```swift
    /// let greet = app.register(workflow: "greet") { (name: String, context) in
    ///     try await context.run(sayHello, input: name)
    /// }
    /// let text = try await app.run(greet, input: "Ada")
    /// ```
    ///
    /// `inputSchema` describes the input for start forms; by default it is derived from `Input`.
    @discardableResult
    public func register<Input: Codable & Sendable, Output: Codable & Sendable>(
        workflow name: String, version: String = "1", lockTimeout: Duration? = nil, inputSchema: InputSchema? = nil,
        _ body: @escaping @Sendable (Input, WorkflowContext) async throws -> Output
    ) -> WorkflowReference<Input, Output> {
        engine.register(RegisteredWorkflow(
            name: name, version: version, lockTimeout: lockTimeout, inputSchema: inputSchema, body: body))
        return WorkflowReference(name: name)
    }

    /// Creates an app with `configuration`, runs `body` with it, and shuts it down afterwards,
    /// also when `body` throws: for tools and tests that use an app for one job.
    public static func running<T>(_ configuration: Configuration, _ body: (EddaApp) async throws -> T) async throws -> T {
        let app = try await EddaApp(configuration: configuration)
        do {
            let result = try await body(app)
            await app.shutdown()
            return result
        } catch {
            await app.shutdown()
            throw error
        }
    }

    /// The names of the registered workflows.
    public var registeredWorkflowNames: [String] { engine.registeredNames.sorted() }

    /// The input schema of a registered workflow (see ``Workflow/inputSchema``), or `nil` if no
    /// workflow is registered under `name`.
    public func inputSchema(ofWorkflow name: String) -> InputSchema? {
        engine.registered(name)?.inputSchema
    }

    // MARK: - Starting

    /// Starts an instance and runs it in this task until it completes, fails or suspends.
    ///
    /// Starting with an `instanceID` that exists already is idempotent: nothing runs and the
    /// existing instance's ID is returned.
    ///
    /// - Parameters:
    ///   - instanceID: The instance's ID; default `"<workflow name>-<32 hex digits>"`.
    ///   - lockTimeout: This instance's lock timeout (`lock_timeout_seconds`), overriding the
    ///     workflow's and the app's.
    /// - Returns: The instance ID.
    /// - Throws: ``EddaUsageError`` if the workflow is not registered, the input cannot be
    ///   encoded, or the ID belongs to another workflow's instance. A failure of the workflow
    ///   itself is recorded, not thrown: read it with ``result(of:as:)``.
    @discardableResult
    public func start<Input, Output>(
        _ workflow: WorkflowReference<Input, Output>, input: Input, instanceID: String? = nil, lockTimeout: Duration? = nil
    ) async throws -> String {
        try await engine.start(
            workflowName: workflow.name, inputJSON: try encodeInput(input), instanceID: instanceID, lockTimeout: lockTimeout
        ).0
    }

    /// Starts an instance of a registered ``Workflow`` type (see ``start(_:input:instanceID:lockTimeout:)-(WorkflowReference<Input,Output>,_,_,_)``).
    @discardableResult
    public func start<W: Workflow>(
        _ workflow: W.Type, input: W.Input, instanceID: String? = nil, lockTimeout: Duration? = nil
    ) async throws -> String {
        try await start(W.reference, input: input, instanceID: instanceID, lockTimeout: lockTimeout)
    }

    /// Starts an instance by workflow name with JSON input, as tools and HTTP endpoints do.
    ///
    /// - Throws: ``EddaUsageError`` (`.unknownWorkflow`, `.undecodableInput`) before anything is
    ///   stored.
    @discardableResult
    public func start(workflowNamed name: String, inputJSON: String, instanceID: String? = nil) async throws -> String {
        try await engine.start(
            workflowName: name, inputJSON: try Self.storedInput(of: name, json: inputJSON), instanceID: instanceID,
            lockTimeout: nil
        ).0
    }

    /// Starts an instance by workflow name with JSON input and returns its ID at once; the
    /// workflow runs in the background (see ``start(workflowNamed:inputJSON:instanceID:)``).
    @discardableResult
    public func startDetached(workflowNamed name: String, inputJSON: String, instanceID: String? = nil) async throws -> String {
        try await engine.startDetached(
            workflowName: name, inputJSON: try Self.storedInput(of: name, json: inputJSON), instanceID: instanceID,
            lockTimeout: nil, tracker: tasks)
    }

    private static func storedInput(of name: String, json: String) throws -> String {
        guard let value = JSONValue(jsonText: json) else {
            throw EddaUsageError(
                .undecodableInput, "The input of workflow '\(name)' is not valid JSON; pass a JSON object such as {\"id\": 1}.")
        }
        return try WorkflowInput.encode(value)
    }

    /// Starts an instance and returns its ID at once; the workflow runs in the background.
    @discardableResult
    public func startDetached<Input, Output>(
        _ workflow: WorkflowReference<Input, Output>, input: Input, instanceID: String? = nil, lockTimeout: Duration? = nil
    ) async throws -> String {
        try await engine.startDetached(
            workflowName: workflow.name, inputJSON: try encodeInput(input), instanceID: instanceID,
            lockTimeout: lockTimeout, tracker: tasks)
    }

    /// Starts an instance of a registered ``Workflow`` type in the background.
    @discardableResult
    public func startDetached<W: Workflow>(
        _ workflow: W.Type, input: W.Input, instanceID: String? = nil, lockTimeout: Duration? = nil
    ) async throws -> String {
        try await startDetached(W.reference, input: input, instanceID: instanceID, lockTimeout: lockTimeout)
    }

    /// Starts an instance, runs it, and returns its result.
    ///
    /// If an instance with `instanceID` exists already, its result is awaited instead.
    ///
    /// - Throws: ``WorkflowFailedError`` if the workflow failed, ``WorkflowNotCompletedError``
    ///   if it was cancelled, and the errors of ``start(_:input:instanceID:lockTimeout:)-(WorkflowReference<Input,Output>,_,_,_)``.
    public func run<Input, Output>(
        _ workflow: WorkflowReference<Input, Output>, input: Input, instanceID: String? = nil, lockTimeout: Duration? = nil
    ) async throws -> Output {
        let (id, execution) = try await engine.start(
            workflowName: workflow.name, inputJSON: try encodeInput(input), instanceID: instanceID, lockTimeout: lockTimeout)
        switch execution {
        case .completed(let output)?:
            if let value = output.value as? Output { return value }
            return try decodeResult(output.json, as: Output.self)
        case .failed(let error)?:
            throw WorkflowFailedError(
                instanceID: id, errorType: ErrorDescription.typeName(error), message: ErrorDescription.message(error),
                underlyingError: error)
        case .abandoned?:
            // Diverged replay, undecodable stored input, store failure, shutdown: waiting would
            // not end. Taken over by another worker: its outcome will be stored.
            if case .stopped(let error)? = execution?.abandonment { throw error }
            return try await result(of: id, as: Output.self)
        case .cancelled?, .suspended?, nil:
            return try await result(of: id, as: Output.self)
        }
    }

    /// Starts an instance of a registered ``Workflow`` type, runs it, and returns its result.
    public func run<W: Workflow>(
        _ workflow: W.Type, input: W.Input, instanceID: String? = nil, lockTimeout: Duration? = nil
    ) async throws -> W.Output {
        try await run(W.reference, input: input, instanceID: instanceID, lockTimeout: lockTimeout)
    }

    private func encodeInput<T: Encodable>(_ input: T) throws -> String {
        do {
            return try WorkflowInput.encode(input)
        } catch {
            throw EddaUsageError(.unencodableValue, "The workflow input could not be encoded to JSON: \(error)")
        }
    }

    // MARK: - Results and control

    /// Waits until the instance has ended and returns its result.
    ///
    /// Waiting is cheap: an execution ending in this process wakes the caller at once; one
    /// ending in another process is noticed within `pollInterval`. An instance that continued
    /// as a new one (`recur`) is followed to the end of its chain.
    ///
    /// - Throws: ``WorkflowFailedError``, ``WorkflowNotCompletedError`` (cancelled),
    ///   ``EddaUsageError`` (`.unknownInstance`), or a decoding error if the stored result does
    ///   not decode as `Output`.
    public func result<Output: Decodable & Sendable>(
        of instanceID: String, as type: Output.Type = Output.self, pollInterval: Duration = .milliseconds(500)
    ) async throws -> Output {
        try Identifier.validateLookup(instanceID, field: "instance_id")
        var instanceID = instanceID
        while true {
            try Task.checkCancellation()
            // Armed before reading, so an execution that ends meanwhile is not missed.
            let ticket = engine.completions.arm(instanceID)
            defer { engine.completions.disarm(ticket) }
            guard let instance = try await store.instance(id: instanceID) else {
                throw EddaUsageError(.unknownInstance, "No workflow instance has the ID '\(instanceID)'.")
            }
            switch instance.status {
            case .completed:
                return try decodeResult(instance.outputData?["result"]?.jsonText ?? "null", as: Output.self)
            case .failed:
                throw WorkflowFailedError(
                    instanceID: instanceID,
                    errorType: instance.outputData?["error_type"]?.stringValue ?? "Error",
                    message: instance.outputData?["error_message"]?.stringValue
                        ?? instance.outputData?["error"]?.stringValue ?? "")
            case .recurred:
                if let successor = try await store.successor(of: instanceID) {
                    instanceID = successor
                } else {
                    throw WorkflowNotCompletedError(instanceID: instanceID, status: instance.status)
                }
            case .cancelled:
                throw WorkflowNotCompletedError(instanceID: instanceID, status: instance.status)
            default:
                await engine.completions.wait(ticket, timeout: pollInterval)
            }
        }
    }

    /// Resumes an instance now, in this task, if it is free to run (unlocked or its lock
    /// expired, and `running` or `compensating`). Also lifts the hold on an instance whose
    /// replay diverged, once the code is fixed.
    ///
    /// - Returns: Whether this call ran it.
    /// - Throws: ``EddaUsageError`` for an unknown instance or an unregistered workflow.
    @discardableResult
    public func resume(instanceID: String) async throws -> Bool {
        try Identifier.validateLookup(instanceID, field: "instance_id")
        return try await engine.resume(instanceID: instanceID) != nil
    }

    /// Cancels an instance: its compensations run, newest first, and it ends `cancelled` with
    /// `output_data` `{"cancelled_by", "cancelled_at", "previous_status"}`.
    ///
    /// Cancels `running`, `waiting_*` and crashed `compensating` instances. A waiting instance
    /// with no compensations is cancelled at once; otherwise the worker running it (this app, or
    /// whichever worker holds or next claims it) runs the compensations and finishes the
    /// cancellation. Cancelling an instance that has ended returns `false` and changes nothing.
    ///
    /// - Returns: Whether the cancellation was accepted.
    @discardableResult
    public func cancel(instanceID: String, cancelledBy: String = "user") async throws -> Bool {
        try Identifier.validateLookup(instanceID, field: "instance_id")
        let outcome = try await store.requestCancellation(instanceID: instanceID, cancelledBy: cancelledBy, now: Date())
        switch outcome {
        case .notCancellable:
            return false
        case .cancelled:
            if let instance = try await store.instance(id: instanceID) {
                engine.metrics.workflowEnded(instance.workflowName, status: .cancelled)
                await configuration.hooks.workflowCancelled(instanceID: instanceID, workflowName: instance.workflowName)
            }
            engine.completions.signal(instanceID)
            return true
        case .pendingCompensation(let heldBy):
            if let control = engine.runningInstanceIDs[instanceID] {
                control.raise(.cancelRequested)
            } else if heldBy == nil, let instance = try await store.instance(id: instanceID),
                      engine.registered(instance.workflowName) != nil {
                tasks.spawn { [engine] in _ = try? await engine.resume(instanceID: instanceID) }
            }
            return true
        }
    }

    // MARK: - Messages and events

    /// Publishes a message on a channel from outside any workflow.
    ///
    /// The message is stored and, in the same transaction, delivered to the instances waiting on
    /// the channel (every broadcast subscriber, or one competing subscriber); those this app
    /// runs resume here at once. Otherwise it stays on the channel for the next `receive`.
    ///
    /// - Parameters:
    ///   - data: The message data (JSON; `Data` publishes binary data). Workflows of other Edda
    ///     implementations read JSON objects.
    ///   - metadata: Extra metadata; `published_at` is added.
    ///   - targetInstanceID: Point-to-point: only that instance receives the message.
    @discardableResult
    public func publish<Payload: Encodable & Sendable>(
        to channel: String, data: Payload, metadata: [String: JSONValue] = [:], targetInstanceID: String? = nil
    ) async throws -> PublishReceipt {
        var metadata = metadata
        metadata["published_at"] = metadata["published_at"] ?? .string(Timestamp.iso8601(Date()))
        let message: OutgoingMessage
        do {
            message = try OutgoingMessage.make(channel: channel, data: data, metadata: metadata, target: targetInstanceID)
                .tracing(engine.currentTraceCarrier())
        } catch let error as InvalidIdentifierError {
            throw error
        } catch {
            throw EddaUsageError(.unencodableValue, "The message for channel '\(channel)' could not be encoded to JSON: \(error)")
        }
        let reports = try await engine.channelStore().publish([message], claim: engine.claimPolicy, now: Date())
        await engine.delivered(reports, channel: channel, dataJSON: message.payload.jsonDescription)
        return PublishReceipt(messageID: message.messageID, deliveredTo: reports.first?.deliveredTo ?? [])
    }

    /// Delivers a CloudEvent to the workflows waiting for its type with
    /// ``WorkflowContext/waitEvent(_:as:timeout:id:)``: all of them, or only `instanceID` (also
    /// taken from the `eddainstanceid` extension). The attributes are kept in the message
    /// metadata (`ce_type`, `ce_source`, …), as the reference stores them.
    @discardableResult
    public func sendEvent<Payload: Encodable & Sendable>(
        _ attributes: CloudEventAttributes, data: Payload, to instanceID: String? = nil
    ) async throws -> PublishReceipt {
        try attributes.validateIdentifiers()
        let target = instanceID ?? attributes.extensions["eddainstanceid"]?.stringValue
        return try await publish(to: attributes.type, data: data, metadata: attributes.metadata, targetInstanceID: target)
    }

    /// Deletes the finished instances `filter` selects, with everything recorded for them
    /// (history, archived history, compensations, subscriptions, timers, message claims), in
    /// batches of 500, each its own transaction; never a running, waiting or compensating
    /// instance. With `dryRun`, deletes nothing.
    ///
    /// ```swift
    /// let filter = try PurgeFilter(endedBefore: Date().addingTimeInterval(-30 * 86_400))
    /// let deleted = try await app.purgeInstances(filter)
    /// ```
    ///
    /// - Returns: How many instances were deleted (with `dryRun`: would be).
    /// - Throws: ``EddaUsageError`` (`.unsupportedByStore`) if the database driver cannot
    ///   delete instances (it is not a ``RetentionStore``).
    @discardableResult
    public func purgeInstances(_ filter: PurgeFilter, dryRun: Bool = false) async throws -> Int {
        guard let retention = store as? any RetentionStore else {
            throw EddaUsageError(
                .unsupportedByStore, "\(type(of: store)) cannot delete finished instances (it is not a RetentionStore). "
                    + "SQLiteStore, PostgresStore and MySQLStore can; a driver of your own adopts RetentionStore and runs the conformance kit's retention check.")
        }
        let purged = try await Retention.purge(retention, filter, dryRun: dryRun)
        if !dryRun { engine.metrics.purged(purged) }
        return purged
    }

    /// Whether this app currently holds the leader lease (``Configuration/leaderLockName``).
    public var isLeader: Bool { engine.leadership.withLock { $0 } }

    // MARK: - Queries

    /// One instance, or `nil`.
    public func instance(_ instanceID: String) async throws -> WorkflowInstance? {
        try Identifier.validateLookup(instanceID, field: "instance_id")
        return try await store.instance(id: instanceID)
    }

    /// An instance's history in recorded order.
    public func history(of instanceID: String) async throws -> [HistoryEvent] {
        try Identifier.validateLookup(instanceID, field: "instance_id")
        return try await store.history(instanceID: instanceID)
    }

    /// A filtered page of instances, newest first.
    ///
    /// - Throws: ``EddaUsageError`` (`.invalidQuery`) for an invalid input-filter path, limit
    ///   or page token.
    public func findInstances(_ query: InstanceQuery) async throws -> InstancePage {
        try await store.findInstances(query)
    }

    /// Whether the app can serve: it is not shut down and its database answers a read.
    public func isReady() async -> Bool {
        guard !isShutDown.withLock({ $0 }) else { return false }
        do {
            _ = try await store.instance(id: "")
            return true
        } catch {
            return false
        }
    }

    /// The app's background loops and how each is doing: its failures since its last success
    /// (zero while healthy), the newest failure and the last success. Every failure is also
    /// logged and counted (``EddaMetricName/backgroundFailures``); each loop retries on its own.
    ///
    /// ```swift
    /// for loop in app.backgroundStatus where !loop.isHealthy {
    ///     print(loop.loop, loop.consecutiveFailures, loop.lastFailure?.message ?? "")
    /// }
    /// ```
    public var backgroundStatus: [BackgroundLoopStatus] {
        engine.background.status(of: loops)
    }

    /// Runs `body` as a background task of the app (stopped and awaited at shutdown).
    func runInBackground(_ body: @escaping @Sendable () async -> Void) {
        tasks.spawn(.execution, body)
    }

    // MARK: - Lifecycle

    /// Runs until graceful shutdown (`ServiceLifecycle`, e.g. on SIGTERM), then shuts the app
    /// down with ``Configuration/shutdownGracePeriod``: steps in progress get that long to
    /// finish and commit.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown(gracePeriod: configuration.shutdownGracePeriod)
    }

    /// Shuts the app down. Idempotent.
    ///
    /// Background work stops at once and no execution starts. Executions in progress stop
    /// before their next step and release their instances, so that another worker resumes them
    /// at once; a step in progress gets `gracePeriod` to finish and commit. What is still running
    /// then is cancelled (its step runs again on the next worker). Last, the database is closed.
    /// A caller waiting in ``run(_:input:instanceID:lockTimeout:)`` for an instance that stopped
    /// so gets a `CancellationError`.
    ///
    /// - Parameter gracePeriod: How long steps in progress may take to finish. Default zero:
    ///   they are cancelled at once.
    public func shutdown(gracePeriod: Duration = .zero) async {
        let first = isShutDown.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return }
        await tasks.stopServices()
        engine.drain()
        if gracePeriod > .zero {
            let deadline = ContinuousClock.now + gracePeriod
            while !engine.runningInstanceIDs.isEmpty || tasks.hasExecutions, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        // Executions stop first, while their locks are still renewed; then the renewer.
        await tasks.shutdown()
        renewer.cancel()
        await renewer.value
        engine.renewalExecutor.shutdown()
        try? await store.close()
        // Last: until here, this worker's instances were its own.
        liveness?.remove()
    }
}
