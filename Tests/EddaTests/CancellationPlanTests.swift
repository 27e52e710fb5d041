@testable import Edda
import Foundation
import Testing

/// The cancellation rule both stores execute, checked without a database.
@Suite("Cancellation plan")
struct CancellationPlanTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func decide(_ candidate: CancellationCandidate?) -> CancellationPlan.Decision {
        CancellationPlan.decide(candidate, framework: "swift", cancelledBy: "ops", now: now)
    }

    func candidate(_ status: WorkflowStatus, framework: String = "swift", lockedBy: String? = nil, expiresIn seconds: Double? = nil)
        -> CancellationCandidate {
        CancellationCandidate(
            status: status, framework: framework, lockedBy: lockedBy, lockExpiresAt: seconds.map { now.addingTimeInterval($0) })
    }

    func refusal(_ decision: CancellationPlan.Decision) -> CancellationOutcome? {
        if case .refuse(let outcome) = decision { return outcome }
        return nil
    }

    func plan(_ decision: CancellationPlan.Decision, sourceLocation: SourceLocation = #_sourceLocation) throws -> CancellationPlan {
        guard case .proceed(let plan) = decision else {
            Issue.record("expected a plan, got \(decision)", sourceLocation: sourceLocation)
            throw CancellationTestFailure()
        }
        return plan
    }

    @Test("a missing, ended or foreign instance, or one compensating under a live lock, is refused")
    func refusals() throws {
        #expect(refusal(decide(nil)) == .notCancellable(nil))
        for status in [WorkflowStatus.completed, .failed, .cancelled, .recurred] {
            #expect(refusal(decide(candidate(status))) == .notCancellable(status))
        }
        #expect(refusal(decide(candidate(.running, framework: "python"))) == .notCancellable(.running))
        #expect(refusal(decide(candidate(.compensating, lockedBy: "w1", expiresIn: 10))) == .notCancellable(.compensating))
        // A compensating instance whose holder died can be cancelled (and resumed by another worker).
        #expect(refusal(decide(candidate(.compensating, lockedBy: "w1", expiresIn: -1))) == nil)
    }

    @Test("nothing to compensate and no live holder: cancelled at once, with the reference's details in its key order")
    func cancelNow() throws {
        let plan = try plan(decide(candidate(.waitingForTimer, lockedBy: "dead", expiresIn: -5)))
        let details = #"{"cancelled_by":"ops","cancelled_at":"2027-01-15T08:00:00.000000+00:00","previous_status":"waiting_for_timer"}"#
        #expect(plan.detailsJSON == details)
        #expect(plan.historyEvent.activityID == "workflow_cancelled")
        #expect(plan.historyEvent.eventType == "WorkflowCancelled")
        let ending = plan.ending(pendingCompensations: 0)
        #expect(ending == .cancelNow(outputJSON: details))
        #expect(ending.outcome == .cancelled)
        #expect(plan.alreadyRequested == .notCancellable(.waitingForTimer))
    }

    @Test("pending compensations or a live holder: marked compensating for a worker to finish")
    func compensate() throws {
        let started = #"{"started_at":"2027-01-15T08:00:00.000000+00:00"}"#
        let waiting = try plan(decide(candidate(.waitingForMessage)))
        #expect(waiting.ending(pendingCompensations: 2) == .compensate(outputJSON: started, holder: nil))
        #expect(waiting.ending(pendingCompensations: 2).outcome == .pendingCompensation(heldBy: nil))

        let held = try plan(decide(candidate(.running, lockedBy: "w1", expiresIn: 30)))
        #expect(held.ending(pendingCompensations: 0) == .compensate(outputJSON: started, holder: "w1"))
        #expect(held.ending(pendingCompensations: 0).outcome == .pendingCompensation(heldBy: "w1"))
        // A lock with no expiry counts as held.
        let noExpiry = try plan(decide(candidate(.running, lockedBy: "w2")))
        #expect(noExpiry.holder == "w2")
    }

    @Test("a receive timeout's history payload has the reference's keys in its order")
    func messageTimeoutPayload() {
        #expect(StepPayloads.messageTimeout(channel: "jobs", timeoutAt: now) == #"{"_error":true,"error_type":"TimeoutError","error_message":"Message on channel 'jobs' did not arrive within timeout","channel":"jobs","timeout_at":"2027-01-15T08:00:00.000000+00:00"}"#)
    }
}

struct CancellationTestFailure: Error {}

/// Which woken instances a worker claims, checked without a database.
@Suite("Wake-ups")
struct WakeDecisionTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let policy = ClaimPolicy(workerID: "w1", leases: ["orders": .seconds(30)])

    @Test("this worker claims its own framework's instances of the workflows it runs, with the instance's own lease first")
    func claims() {
        #expect(policy.wake(framework: "swift", workflowName: "orders", storedSeconds: nil, now: now)
            == .claim(workerID: "w1", leaseUntil: now.addingTimeInterval(30)))
        #expect(policy.wake(framework: "swift", workflowName: "orders", storedSeconds: 5, now: now)
            == .claim(workerID: "w1", leaseUntil: now.addingTimeInterval(5)))
        #expect(policy.wake(framework: nil, workflowName: "orders", storedSeconds: 0, now: now)
            == .claim(workerID: "w1", leaseUntil: now.addingTimeInterval(30)))
    }

    @Test("another framework's instance, or a workflow this worker does not run, is left unlocked")
    func releases() {
        #expect(policy.wake(framework: "python", workflowName: "orders", storedSeconds: nil, now: now) == .release)
        #expect(policy.wake(framework: "swift", workflowName: "billing", storedSeconds: nil, now: now) == .release)
    }
}

/// The transitions the engine makes, each kind's rules checked without a database.
@Suite("Transition kinds")
struct TransitionKindTests {
    let until = Date(timeIntervalSince1970: 1_000)

    @Test("A step keeps the lock as it is (the renewer extends it) and is accepted while running or being cancelled")
    func step() {
        let step = InstanceTransition.step(instanceID: "i", workerID: "w", currentActivityID: "a:1")
        #expect(step.expectedStatuses == [.running, .compensating])
        guard case .keep = step.lock else { Issue.record("the lock is not kept as it is"); return }
        #expect(step.newStatus == nil && !step.removeSubscriptions && step.currentActivityID == "a:1")
    }

    @Test("Suspending on a timer releases the lock, registers the timer, and only from running")
    func suspend() {
        let timer = TimerRegistration(timerID: "t", activityID: "sleep:1", expiresAt: until)
        let suspend = InstanceTransition.suspend(instanceID: "i", workerID: "w", onTimer: timer)
        #expect(suspend.expectedStatuses == [.running])
        #expect(suspend.newStatus == .waitingForTimer && suspend.currentActivityID == "sleep:1" && suspend.timer?.timerID == "t")
        guard case .release = suspend.lock else { Issue.record("the lock is kept"); return }
    }

    @Test("Finishing releases the lock and removes subscriptions; completing only from running")
    func finish() {
        for status in [WorkflowStatus.completed, .failed, .cancelled] {
            let finish = InstanceTransition.finish(instanceID: "i", workerID: "w", as: status, outputJSON: "{}")
            #expect(finish.newStatus == status && finish.removeSubscriptions && finish.outputJSON == "{}")
            #expect(finish.expectedStatuses == (status == .completed ? [.running] : [.running, .compensating]))
            guard case .release = finish.lock else { Issue.record("the lock is kept"); return }
        }
    }

    @Test("Recur and compensation bookkeeping have the reference's shapes")
    func recurAndCompensation() {
        let successor = NewInstance(
            instanceID: "s", workflowName: "wf", sourceHash: "h", sourceCode: "", ownerService: "svc", inputJSON: #"{"n":2}"#)
        let recur = InstanceTransition.recur(instanceID: "i", workerID: "w", inputJSON: #"{"n":2}"#, successor: successor)
        #expect(recur.newStatus == .recurred && recur.outputJSON == #"{"recur_kwargs":{"n":2}}"# && recur.successor?.instanceID == "s")
        #expect(recur.expectedStatuses == [.running] && recur.removeSubscriptions)
        let begin = InstanceTransition.beginCompensating(instanceID: "i", workerID: "w", leaseUntil: until, startedAt: until)
        #expect(begin.newStatus == .compensating && begin.outputJSON == #"{"started_at":"\#(Timestamp.iso8601(until))"}"#)
        guard case .renew(let renewed) = begin.lock else { Issue.record("entering compensation does not renew the lock"); return }
        #expect(renewed == until)
        let recorded = InstanceTransition.compensationRecorded(
            instanceID: "i", workerID: "w", leaseUntil: until,
            event: NewHistoryEvent(activityID: "compensation_1", eventType: "CompensationExecuted", payload: .json("{}")))
        #expect(recorded.expectedStatuses == [.compensating] && recorded.history.count == 1)
    }
}
