import Foundation

/// Activity IDs the engine writes for its own history rows.
package enum ReservedActivityID {
    /// The `WorkflowFailed` row.
    package static let workflowFailed = "workflow_failed"
    /// The `WorkflowCancelled` row.
    package static let workflowCancelled = "workflow_cancelled"
    /// The row recording that the compensation stored as `workflow_compensations.id = rowID` ran.
    package static func compensation(_ rowID: Int64) -> String { "compensation_\(rowID)" }
}

/// The cancellation details stored in the `WorkflowCancelled` history row and, once the instance
/// is cancelled, in `output_data`: `{"cancelled_by", "cancelled_at", "previous_status"}` in that
/// order, as the reference writes them.
package struct CancellationDetails: Codable, Sendable, Equatable {
    package var cancelledBy: String
    package var cancelledAt: String
    package var previousStatus: String

    package init(cancelledBy: String, cancelledAt: String, previousStatus: String) {
        self.cancelledBy = cancelledBy
        self.cancelledAt = cancelledAt
        self.previousStatus = previousStatus
    }

    enum CodingKeys: String, CodingKey {
        case cancelledBy = "cancelled_by"
        case cancelledAt = "cancelled_at"
        case previousStatus = "previous_status"
    }

    /// The JSON text, keys in the reference's order.
    package var jsonText: String {
        var writer = JSONObjectWriter()
        writer.add("cancelled_by", string: cancelledBy)
        writer.add("cancelled_at", string: cancelledAt)
        writer.add("previous_status", string: previousStatus)
        return writer.finish()
    }
}

/// What the store read about an instance before cancelling it (in the cancelling transaction).
package struct CancellationCandidate: Sendable {
    package var status: WorkflowStatus
    package var framework: String
    package var lockedBy: String?
    package var lockExpiresAt: Date?

    package init(status: WorkflowStatus, framework: String, lockedBy: String?, lockExpiresAt: Date?) {
        self.status = status
        self.framework = framework
        self.lockedBy = lockedBy
        self.lockExpiresAt = lockExpiresAt
    }
}

/// How a cancellation request ends: decided here, once, and executed by each store in the one
/// transaction of ``WorkflowStore/requestCancellation(instanceID:cancelledBy:now:)``:
///
/// 1. ``decide(_:framework:cancelledBy:now:)`` refuses an instance that is gone, has ended, belongs to
///    another framework, or is already compensating under a live lock; otherwise it gives the
///    plan.
/// 2. The store inserts ``historyEvent`` unless a row with its activity ID exists (a second
///    request then changes nothing: ``alreadyRequested``).
/// 3. ``ending(pendingCompensations:)`` says whether the instance is cancelled at once (nothing
///    to compensate and no live holder) or marked `compensating` for a worker to finish.
package struct CancellationPlan: Sendable {
    /// The status the instance had.
    package let status: WorkflowStatus
    /// The live lock holder, if a worker holds the instance.
    package let holder: String?
    /// The details written to the history row (and to `output_data` if cancelled at once).
    package let detailsJSON: String
    private let now: Date

    /// The plan for `candidate` (`nil`: no such instance), or the outcome that refuses it.
    package static func decide(
        _ candidate: CancellationCandidate?, framework: String, cancelledBy: String, now: Date
    ) -> Decision {
        guard let candidate else { return .refuse(.notCancellable(nil)) }
        let isHeld = candidate.lockedBy != nil && (candidate.lockExpiresAt.map { $0 > now } ?? true)
        guard candidate.status.isCancellable, candidate.framework == framework,
              !(candidate.status == .compensating && isHeld)
        else { return .refuse(.notCancellable(candidate.status)) }
        let details = CancellationDetails(
            cancelledBy: cancelledBy, cancelledAt: Timestamp.iso8601(now), previousStatus: candidate.status.rawValue)
        return .proceed(CancellationPlan(
            status: candidate.status, holder: isHeld ? candidate.lockedBy : nil, detailsJSON: details.jsonText, now: now))
    }

    /// The result of ``decide(_:framework:cancelledBy:now:)``.
    package enum Decision: Sendable {
        /// Change nothing and return this outcome.
        case refuse(CancellationOutcome)
        /// Go on with this plan.
        case proceed(CancellationPlan)
    }

    /// The `WorkflowCancelled` history row; insert it only if the instance has none yet.
    package var historyEvent: NewHistoryEvent {
        NewHistoryEvent(
            activityID: ReservedActivityID.workflowCancelled, eventType: HistoryEventType.workflowCancelled,
            payload: .json(detailsJSON))
    }

    /// The outcome when the history row already existed: another request got there first.
    package var alreadyRequested: CancellationOutcome { .notCancellable(status) }

    /// What the store does after recording the request.
    package enum Ending: Sendable, Equatable {
        /// Set status `cancelled` with this `output_data`, clear the lock, and delete the
        /// instance's channel and timer subscriptions.
        case cancelNow(outputJSON: String)
        /// Set status `compensating` with this `output_data`, delete its timer subscriptions
        /// and detach its channel subscriptions from any wait (`activity_id`, `timeout_at`
        /// cleared). Without a holder, wake a worker to resume it.
        case compensate(outputJSON: String, holder: String?)

        /// The outcome the store returns.
        package var outcome: CancellationOutcome {
            switch self {
            case .cancelNow: .cancelled
            case .compensate(_, let holder): .pendingCompensation(heldBy: holder)
            }
        }
    }

    /// The ending, given how many registered compensations have not run yet.
    package func ending(pendingCompensations: Int) -> Ending {
        if pendingCompensations == 0 && holder == nil { return .cancelNow(outputJSON: detailsJSON) }
        let started = JSONValue.object(["started_at": .string(Timestamp.iso8601(now))]).jsonText
        return .compensate(outputJSON: started, holder: holder)
    }
}
