import Foundation

/// The kinds of transition the engine makes, each with its rules in one place: which statuses
/// it is accepted from, what it does to the lock, and what it cleans up. A driver applies any
/// ``InstanceTransition``; the engine builds them only through these.
extension InstanceTransition {
    /// A step of the body, recorded while the worker goes on executing: the lock is kept as it
    /// is (the lease renewer extends it). Accepted while `running` or `compensating`, so a step
    /// that finishes while a cancellation arrives is recorded (and then compensated).
    public static func step(instanceID: String, workerID: String, currentActivityID: String?) -> Self {
        var transition = InstanceTransition(
            instanceID: instanceID, workerID: workerID, expectedStatuses: [.running, .compensating], lock: .keep)
        transition.currentActivityID = currentActivityID
        return transition
    }

    /// Suspends the body on a durable timer: `waiting_for_timer` at `timer`'s step, the lock
    /// released, the timer registered (an existing timer with its ID keeps its expiry). Only
    /// from `running`: a cancelled instance does not go to sleep.
    public static func suspend(instanceID: String, workerID: String, onTimer timer: TimerRegistration) -> Self {
        var transition = InstanceTransition(instanceID: instanceID, workerID: workerID, expectedStatuses: [.running], lock: .release)
        transition.newStatus = .waitingForTimer
        transition.currentActivityID = timer.activityID
        transition.timer = timer
        return transition
    }

    /// Enters compensation after the body failed: `compensating`, the lock kept and renewed,
    /// `output_data` the reference's `{"started_at": …}`.
    public static func beginCompensating(instanceID: String, workerID: String, leaseUntil: Date, startedAt: Date) -> Self {
        var transition = step(instanceID: instanceID, workerID: workerID, currentActivityID: nil)
        transition.lock = .renew(until: leaseUntil)
        transition.newStatus = .compensating
        var output = JSONObjectWriter()
        output.add("started_at", string: Timestamp.iso8601(startedAt))
        transition.outputJSON = output.finish()
        return transition
    }

    /// Records how one compensation ended, while `compensating`; the lock is renewed.
    public static func compensationRecorded(instanceID: String, workerID: String, leaseUntil: Date, event: NewHistoryEvent) -> Self {
        var transition = InstanceTransition(
            instanceID: instanceID, workerID: workerID, expectedStatuses: [.compensating], lock: .renew(until: leaseUntil))
        transition.history = [event]
        return transition
    }

    /// Ends the instance as `completed`, `failed` or `cancelled` with `outputJSON`: the lock
    /// released and its channel and timer subscriptions removed. Completion is accepted only
    /// from `running` (an instance being cancelled is not completed); failure and cancellation
    /// from `running` or `compensating`.
    public static func finish(instanceID: String, workerID: String, as status: WorkflowStatus, outputJSON: String) -> Self {
        precondition([.completed, .failed, .cancelled].contains(status), "an instance finishes as completed, failed or cancelled")
        var transition = InstanceTransition(
            instanceID: instanceID, workerID: workerID,
            expectedStatuses: status == .completed ? [.running] : [.running, .compensating], lock: .release)
        transition.newStatus = status
        transition.outputJSON = outputJSON
        transition.removeSubscriptions = true
        return transition
    }

    /// Ends the instance by `recur`: `recurred` with `{"recur_kwargs": input}`, the lock
    /// released, its history archived and its subscriptions, message claims and compensations
    /// removed, and `successor` created (`continued_from` set), all at once. Only from `running`.
    public static func recur(instanceID: String, workerID: String, inputJSON: String, successor: NewInstance) -> Self {
        var transition = InstanceTransition(instanceID: instanceID, workerID: workerID, expectedStatuses: [.running], lock: .release)
        transition.newStatus = .recurred
        var output = JSONObjectWriter()
        output.add("recur_kwargs", raw: inputJSON)
        transition.outputJSON = output.finish()
        transition.removeSubscriptions = true
        transition.successor = successor
        return transition
    }
}
