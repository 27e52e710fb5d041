import Foundation
import Logging
import Tracing

/// A value produced by user code, with its JSON encoding.
struct EncodedValue: Sendable {
    let json: String
    let value: any Sendable
}

/// One activity call, erased to what the runner needs.
struct ActivityInvocation: Sendable {
    let activityID: String
    let activityName: String
    let inputJSON: String
    let policy: RetryPolicy
    /// Runs the user's code and encodes its output.
    let perform: @Sendable (ActivityContext) async throws -> EncodedValue
    /// The compensation to register with a successful result, for a ``CompensatableActivity``.
    let compensationName: String?
}

/// What an execution needs outside its ``WorkflowContext``: safe to hand to handle tasks.
struct ExecutionScope: Sendable {
    let engine: WorkflowEngine
    let control: ExecutionControl
    let instanceID: String
    let workflowName: String
    /// The execution's span (see ``EddaSpanAttribute``).
    let executionSpan: any Span

    var workerID: String { engine.workerID }

    /// Runs an activity live: attempts with retry, each attempt's result committed in one
    /// transaction with its compensation, the user's transactional work and `carrying`.
    func runActivity(_ invocation: ActivityInvocation, carrying buffered: [CompensationRecord]) async throws -> EncodedValue {
        let hooks = engine.hooks
        let started = Date()
        var retry = RetryMetadata()
        var attempt = 0
        var backOff: Duration?
        while true {
            // The back-off before a retry, outside the failed attempt's span.
            if let delay = backOff { await control.sleep(for: delay) }
            attempt += 1
            try Task.checkCancellation()
            try control.check()
            let context = ActivityContext(
                instanceID: instanceID, workflowName: workflowName, activityID: invocation.activityID, attempt: attempt)
            let failure: any Error
            let attemptStarted = ContinuousClock.now
            let span = engine.tracer.startSpan("activity \(invocation.activityName)", context: ServiceContext.current ?? .topLevel)
            if span.isRecording {  // (a no-op tracer's span would still build each attribute)
                span.attributes[EddaSpanAttribute.activity] = invocation.activityName
                span.attributes[EddaSpanAttribute.activityID] = invocation.activityID
                span.attributes[EddaSpanAttribute.attempt] = attempt
                span.attributes[EddaSpanAttribute.instance] = instanceID
            }
            defer { span.end() }
            do {
                let output = try await ServiceContext.withValue(span.context) { try await invocation.perform(context) }
                let ran = ContinuousClock.now - attemptStarted
                var transition = stepTransition(currentActivityID: invocation.activityID)
                transition.history = [NewHistoryEvent(
                    activityID: invocation.activityID, eventType: HistoryEventType.activityCompleted,
                    payload: .json(StepPayloads.activityCompleted(
                        name: invocation.activityName, resultJSON: output.json, inputJSON: invocation.inputJSON,
                        retry: attempt > 1 ? retry.succeeded(attempt: attempt, since: started) : nil)))]
                transition.compensations = buffered
                if let compensationName = invocation.compensationName {
                    transition.compensations.append(CompensationRecord(
                        activityID: invocation.activityID, name: compensationName,
                        argsJSON: StepPayloads.compensationArgs(
                            name: compensationName, inputJSON: invocation.inputJSON, outputJSON: output.json)))
                }
                transition.work = context.transactionalWork
                try Self.checkWork(transition.work, for: engine.store)
                // What the attempt sends carries its trace (see `TraceCarrier`).
                let sends = !context.messages.isEmpty || !context.outboxEvents.isEmpty
                let carrier = engine.propagatesTraces && sends ? TraceCarrier(injecting: span.context, with: engine.tracer) : nil
                transition.messages = context.messages.map { $0.tracing(carrier) }
                transition.outboxEvents = context.outboxEvents
                if let carrier { engine.outboxTraceContexts.record(carrier, for: transition.outboxEvents.map(\.eventID)) }
                try engine.checkCapabilities(messages: transition.messages, outboxEvents: transition.outboxEvents)
                if !transition.messages.isEmpty { transition.claimPolicy = engine.claimPolicy }
                let outcome = try await applyStep(transition)
                if case .applied(_, let deliveries) = outcome {
                    engine.metrics.activityAttempt(invocation.activityName, outcome: .success, duration: ran)
                    if !transition.outboxEvents.isEmpty { engine.outboxWritten() }
                    if !deliveries.isEmpty { await engine.runClaimed(deliveries.flatMap(\.claimed)) }
                    await hooks.activityCompleted(
                        instanceID: instanceID, activityID: invocation.activityID, activityName: invocation.activityName,
                        resultJSON: output.json, cacheHit: false)
                    for (message, report) in zip(transition.messages, deliveries) {
                        await engine.reportDelivered([report], channel: message.channel, dataJSON: message.payload.jsonDescription)
                    }
                }
                try accept(outcome)
                return output
            } catch let error where WorkflowEngine.isControl(error) {
                throw error
            } catch {
                failure = (error as? TransactionalWorkError)?.underlying ?? error
            }

            retry.record(attempt: attempt, error: failure, at: Date())
            let ran = ContinuousClock.now - attemptStarted
            span.recordError(failure)
            span.setStatus(SpanStatus(code: .error))
            if failure is TerminalError || failure is EddaUsageError {
                engine.metrics.activityAttempt(invocation.activityName, outcome: .failure, duration: ran)
                try await recordFailure(invocation, error: failure, retry: nil, reason: nil, carrying: buffered)
                await hooks.activityFailed(
                    instanceID: instanceID, activityID: invocation.activityID, activityName: invocation.activityName, error: failure)
                throw failure
            }
            if let reason = stopReason(invocation.policy, error: failure, attempt: attempt, started: started) {
                engine.metrics.activityAttempt(invocation.activityName, outcome: .failure, duration: ran)
                retry.exhausted = true
                retry.totalDurationMs = Int64(Date().timeIntervalSince(started) * 1000)
                let exhausted = RetryExhaustedError(
                    activityName: invocation.activityName, attempts: attempt, reason: reason, cause: failure)
                try await recordFailure(invocation, error: failure, retry: retry, reason: reason, carrying: buffered)
                await hooks.activityFailed(
                    instanceID: instanceID, activityID: invocation.activityID, activityName: invocation.activityName, error: exhausted)
                throw exhausted
            }
            engine.metrics.activityAttempt(invocation.activityName, outcome: .retry, duration: ran)
            let delay = invocation.policy.delay(afterAttempt: attempt)
            engine.logger.debug(
                "Activity attempt failed; retrying",
                metadata: [
                    "edda.instance_id": .string(instanceID), "edda.activity_id": .string(invocation.activityID),
                    "edda.attempt": .stringConvertible(attempt), "edda.error": .string(ErrorDescription.message(failure)),
                ])
            await hooks.activityRetrying(
                instanceID: instanceID, activityID: invocation.activityID, activityName: invocation.activityName,
                error: failure, attempt: attempt, delay: delay)
            backOff = delay
        }
    }

    /// Commits a step's transition. An error of the user's transactional work (or a misuse of
    /// it) fails the attempt; any other store error stops the execution, because retrying the
    /// activity's side effect cannot fix the database and the result must not be recorded as a
    /// failure of the activity.
    private func applyStep(_ transition: InstanceTransition) async throws -> TransitionOutcome {
        do {
            return try await engine.apply(transition)
        } catch let error as TransactionalWorkError {
            throw error
        } catch let error as EddaUsageError {
            throw error
        } catch {
            throw EngineStoreError(underlying: error)
        }
    }

    /// Refuses transactional work written for another database than the app's: it could never
    /// commit, so the step fails at once (an ``EddaUsageError`` is not retried).
    static func checkWork(_ work: [any TransactionalWork], for store: any WorkflowStore) throws {
        let storeType = type(of: store)
        for item in work where ObjectIdentifier(type(of: item).storeType) != ObjectIdentifier(storeType) {
            throw TransactionalWorkMismatch.error(item, storeType: storeType)
        }
    }

    /// Why retrying stops after `attempt` failed with `error`, or `nil` to retry.
    private func stopReason(_ policy: RetryPolicy, error: any Error, attempt: Int, started: Date) -> String? {
        if !policy.isRetryable(error) {
            return "Error type \(ErrorDescription.typeName(error)) is not retryable"
        }
        if let maxAttempts = policy.maxAttempts, attempt >= maxAttempts {
            return "Max attempts (\(maxAttempts)) reached"
        }
        let elapsed = Date().timeIntervalSince(started)
        if let maxDuration = policy.maxDuration, elapsed >= maxDuration.seconds {
            return "Max duration (\(String(format: "%.1f", maxDuration.seconds))s) exceeded (elapsed: \(String(format: "%.1f", elapsed))s)"
        }
        return nil
    }

    private func recordFailure(
        _ invocation: ActivityInvocation, error: any Error, retry: RetryMetadata?, reason: String?,
        carrying buffered: [CompensationRecord]
    ) async throws {
        var transition = stepTransition(currentActivityID: invocation.activityID)
        transition.history = [NewHistoryEvent(
            activityID: invocation.activityID, eventType: HistoryEventType.activityFailed,
            payload: .json(StepPayloads.activityFailed(
                name: invocation.activityName, error: error, inputJSON: invocation.inputJSON, retry: retry, reason: reason)))]
        transition.compensations = buffered
        try await commit(transition)
    }

    /// A transition of a step that keeps the lock, accepted while the instance runs or is
    /// being cancelled (so a step finishing during a cancellation is recorded and compensated).
    func stepTransition(currentActivityID: String?) -> InstanceTransition {
        .step(instanceID: instanceID, workerID: workerID, currentActivityID: currentActivityID)
    }

    /// When a lease taken or renewed now ends.
    var leaseUntil: Date { Date().addingTimeInterval(control.lease.seconds) }

    /// Applies an engine-written transition; store failures stop the execution.
    ///
    /// - Parameter isStep: Whether this records a step of the body, in which case finding the
    ///   instance `compensating` means a cancellation arrived and the body must stop.
    /// - Returns: What publishing the transition's messages did.
    @discardableResult
    func commit(_ transition: InstanceTransition, isStep: Bool = true) async throws -> [DeliveryReport] {
        let outcome: TransitionOutcome
        do {
            outcome = try await engine.apply(transition)
        } catch {
            throw EngineStoreError(underlying: error)
        }
        // Instances the transition's messages woke are run even if this execution stops here.
        var deliveries: [DeliveryReport] = []
        if case .applied(_, let reports) = outcome, !reports.isEmpty {
            deliveries = reports
            await engine.runClaimed(reports.flatMap(\.claimed))
        }
        try accept(outcome, isStep: isStep)
        return deliveries
    }

    /// Interprets a transition's outcome. For a step, a status of `compensating` afterwards
    /// means a cancellation arrived: the step is recorded (and its compensation registered), and
    /// the body stops here. A rejection means the lock was lost or the instance was cancelled.
    func accept(_ outcome: TransitionOutcome, isStep: Bool = true) throws {
        switch outcome {
        case .applied(let status, _):
            if isStep, status == .compensating {
                control.raise(.cancelRequested)
                throw WorkflowCancelledError(instanceID: instanceID)
            }
        case .rejected(let status, let lockedBy):
            if lockedBy == workerID, status == .compensating || status == .cancelled {
                control.raise(.cancelRequested)
                throw WorkflowCancelledError(instanceID: instanceID)
            }
            control.raise(.lockLost)
            throw LockLostError(instanceID: instanceID)
        }
    }
}

/// The database failed while the engine recorded its own state; the execution stops and the
/// instance is resumed later.
struct EngineStoreError: Error, Sendable, CustomStringConvertible {
    let underlying: any Error
    var description: String { "Workflow store failure: \(underlying)" }
}

extension RetryMetadata {
    /// The metadata recorded with a result that succeeded on `attempt` after earlier failures.
    func succeeded(attempt: Int, since started: Date) -> RetryMetadata {
        var copy = self
        copy.totalAttempts = attempt
        copy.exhausted = false
        copy.totalDurationMs = Int64(Date().timeIntervalSince(started) * 1000)
        return copy
    }
}
