import Foundation

/// A workflow instance as stored: the columns of `workflow_instances` a caller may need.
public struct WorkflowInstance: Sendable {
    /// The instance's ID.
    public var instanceID: String
    /// The workflow's durable name.
    public var workflowName: String
    /// The definition's `source_hash`.
    public var sourceHash: String
    /// The service that created it (`owner_service`).
    public var ownerService: String
    /// The implementation that owns it: `swift`, `python`, `go`, …
    public var framework: String
    /// Its status.
    public var status: WorkflowStatus
    /// The last step it recorded or waits on.
    public var currentActivityID: String?
    /// The instance it continues after `recur`, if any.
    public var continuedFrom: String?
    /// When it was created.
    public var startedAt: Date
    /// When it last changed.
    public var updatedAt: Date
    /// The stored input (`input_data`), a JSON object.
    public var inputData: JSONValue
    /// The stored outcome (`output_data`): `{"result": …}` when completed, the error when failed,
    /// the cancellation details when cancelled.
    public var outputData: JSONValue?
    /// The worker executing it now, if any.
    public var lockedBy: String?
    /// When that worker took the lock.
    public var lockedAt: Date?
    /// When the lock lapses unless renewed.
    public var lockExpiresAt: Date?
    /// Its own lock timeout in seconds, or `nil` for the default.
    public var lockTimeoutSeconds: Int?
    /// The workflow definition's source text (`workflow_definitions.source_code`), when loaded.
    public var sourceCode: String?

    /// Creates a value with every field given.
    public init(
        instanceID: String, workflowName: String, sourceHash: String, ownerService: String,
        framework: String, status: WorkflowStatus, currentActivityID: String?, continuedFrom: String?,
        startedAt: Date, updatedAt: Date, inputData: JSONValue, outputData: JSONValue?,
        lockedBy: String?, lockedAt: Date?, lockExpiresAt: Date?, lockTimeoutSeconds: Int?,
        sourceCode: String? = nil
    ) {
        self.instanceID = instanceID
        self.workflowName = workflowName
        self.sourceHash = sourceHash
        self.ownerService = ownerService
        self.framework = framework
        self.status = status
        self.currentActivityID = currentActivityID
        self.continuedFrom = continuedFrom
        self.startedAt = startedAt
        self.updatedAt = updatedAt
        self.inputData = inputData
        self.outputData = outputData
        self.lockedBy = lockedBy
        self.lockedAt = lockedAt
        self.lockExpiresAt = lockExpiresAt
        self.lockTimeoutSeconds = lockTimeoutSeconds
        self.sourceCode = sourceCode
    }
}

/// The payload of a history row: JSON text (`data_type = 'json'`) or bytes (`'binary'`).
public enum HistoryPayload: Sendable, Hashable {
    case json(String)
    case binary([UInt8])
}

/// One row of `workflow_history`.
public struct HistoryEvent: Sendable {
    /// The row's database ID; history is ordered by `(createdAt, id)`.
    public var id: Int64
    /// The instance's ID.
    public var instanceID: String
    /// The durable step ID the row belongs to.
    public var activityID: String
    /// The event type, e.g. `ActivityCompleted`.
    public var eventType: String
    /// The event's data.
    public var payload: HistoryPayload
    /// When the row was written.
    public var createdAt: Date

    /// Creates a value with every field given.
    public init(id: Int64, instanceID: String, activityID: String, eventType: String, payload: HistoryPayload, createdAt: Date) {
        self.id = id
        self.instanceID = instanceID
        self.activityID = activityID
        self.eventType = eventType
        self.payload = payload
        self.createdAt = createdAt
    }

    /// The JSON payload parsed, or `nil` for binary rows.
    public var data: JSONValue? {
        if case .json(let text) = payload { return JSONValue(jsonText: text) }
        return nil
    }
}

/// A history row to insert.
public struct NewHistoryEvent: Sendable, Hashable {
    /// The durable step ID the row belongs to.
    public var activityID: String
    /// The event type, e.g. `ActivityCompleted`.
    public var eventType: String
    /// The event's data.
    public var payload: HistoryPayload

    /// Creates a value with every field given.
    public init(activityID: String, eventType: String, payload: HistoryPayload) {
        self.activityID = activityID
        self.eventType = eventType
        self.payload = payload
    }
}

/// A row of `workflow_compensations`: one registered compensation.
public struct CompensationRecord: Sendable, Hashable {
    /// The row's database ID (`nil` before insertion).
    public var id: Int64?
    /// The durable ID of the step that registered it.
    public var activityID: String
    /// The compensation's durable name.
    public var name: String
    /// `{"name": …, "args": […], "kwargs": {…}}`, the reference's shape.
    public var argsJSON: String

    /// Creates a value with every field given.
    public init(id: Int64? = nil, activityID: String, name: String, argsJSON: String) {
        self.id = id
        self.activityID = activityID
        self.name = name
        self.argsJSON = argsJSON
    }
}

/// What a new instance looks like when it is created.
public struct NewInstance: Sendable {
    /// The `created_at` of the `workflow_definitions` rows this library writes: the Unix epoch,
    /// so that they are never the newest row of a workflow name.
    ///
    /// Python Edda 0.16.2 resumes a crashed instance only if its `source_hash` is that of the
    /// newest definition row of its workflow name (by `created_at`). A Swift workflow that shares
    /// a name with a Python one would otherwise make every Python worker skip its own crashed
    /// instances. The shared schema has no framework column here; this rule needs none.
    public static let definitionCreatedAt = Date(timeIntervalSince1970: 0)

    /// The instance's ID.
    public var instanceID: String
    /// The workflow's durable name.
    public var workflowName: String
    /// The definition's `source_hash`.
    public var sourceHash: String
    /// The definition's source text, stored in `workflow_definitions`.
    public var sourceCode: String
    /// The service that created it (`owner_service`).
    public var ownerService: String
    /// The input, a JSON object.
    public var inputJSON: String
    /// The instance it continues after `recur`, if any.
    public var continuedFrom: String?
    /// The per-instance lock timeout (`lock_timeout_seconds`), `nil` for the app default.
    public var lockTimeoutSeconds: Int?
    /// The worker that creates and immediately holds the instance, or `nil` to leave it unlocked
    /// for any worker.
    public var lockedBy: String?
    /// When the lock lapses unless renewed.
    public var lockExpiresAt: Date?

    /// Creates a value with every field given.
    public init(
        instanceID: String, workflowName: String, sourceHash: String, sourceCode: String,
        ownerService: String, inputJSON: String, continuedFrom: String? = nil,
        lockTimeoutSeconds: Int? = nil, lockedBy: String? = nil, lockExpiresAt: Date? = nil
    ) {
        self.instanceID = instanceID
        self.workflowName = workflowName
        self.sourceHash = sourceHash
        self.sourceCode = sourceCode
        self.ownerService = ownerService
        self.inputJSON = inputJSON
        self.continuedFrom = continuedFrom
        self.lockTimeoutSeconds = lockTimeoutSeconds
        self.lockedBy = lockedBy
        self.lockExpiresAt = lockExpiresAt
    }
}

/// The result of ``WorkflowStore/createInstance(_:now:)``.
public enum CreateInstanceOutcome: Sendable {
    /// The instance was created (and is locked by the creator if it asked).
    case created
    /// An instance with that ID already existed; nothing changed.
    case existing(WorkflowInstance)
}

/// An instance claimed for execution, with everything replay needs, read in the claim's
/// transaction.
public struct ClaimedInstance: Sendable {
    /// The instance, now locked by the claiming worker.
    public var instance: WorkflowInstance
    /// Its history in recorded order.
    public var history: [HistoryEvent]
    /// Its registered compensations, newest first.
    public var compensations: [CompensationRecord]
    /// Its channel subscriptions: stored channel name to mode (`broadcast` or `competing`).
    public var subscriptions: [String: String]

    /// Creates a value with every field given.
    public init(
        instance: WorkflowInstance, history: [HistoryEvent], compensations: [CompensationRecord],
        subscriptions: [String: String] = [:]
    ) {
        self.instance = instance
        self.history = history
        self.compensations = compensations
        self.subscriptions = subscriptions
    }
}

/// Database work supplied by user code, run inside a step's commit transaction.
///
/// Each kind belongs to one store type (GRDB closures to `SQLiteStore`, PostgresNIO closures to
/// `PostgresStore`). The engine checks the kind against the app's store before the step commits:
/// work for another database fails the step with an ``EddaUsageError``, which is not retried.
public protocol TransactionalWork: Sendable {
    /// The store that runs this kind of work.
    static var storeType: any WorkflowStore.Type { get }
}

extension TransactionalWork {
    /// `work` as this driver's own kind; for another database's work, the usage error that
    /// names both (the engine refuses such work before any step commits; a driver checks again).
    public static func required(_ work: any TransactionalWork) throws -> Self {
        guard let own = work as? Self else { throw TransactionalWorkMismatch.error(work, storeType: storeType) }
        return own
    }
}

/// The error for transactional work written for another database than the app's.
enum TransactionalWorkMismatch {
    static func error(_ work: any TransactionalWork, storeType: any WorkflowStore.Type) -> EddaUsageError {
        EddaUsageError(
            .invalidConfiguration,
            "An activity added transactional work for \(type(of: work).storeType) (\(type(of: work))), but this app stores its "
                + "state in \(storeType): use that database's form (`transaction` on SQLite, `postgresTransaction` on PostgreSQL, "
                + "`mysqlTransaction` on MySQL).")
    }
}

/// How a transition changes the instance lock.
public enum LockChange: Sendable {
    /// Keep holding it as it is: `locked_by`, `locked_at` and `lock_expires_at` untouched. A
    /// step of a running body writes this: its lease is the lease renewer's to extend (on a
    /// schedule of its own), so a step does not also rewrite `lock_expires_at` and its index.
    case keep
    /// Keep holding it and extend it to the given expiry.
    case renew(until: Date)
    /// Release it (`locked_by`, `locked_at`, `lock_expires_at` cleared).
    case release
}

/// One atomic change to an instance owned by a worker: the heart of every step commit.
///
/// Applied only while `workerID` holds the instance lock and its status is one of
/// `expectedStatuses` (compare-and-set); then the history rows, compensation rows and the user's
/// transactional work are written and the instance columns updated, all in one transaction.
public struct InstanceTransition: Sendable {
    /// The instance's ID.
    public var instanceID: String
    /// The worker that must hold the lock.
    public var workerID: String
    /// The statuses the instance must be in.
    public var expectedStatuses: [WorkflowStatus]
    /// History rows to insert.
    public var history: [NewHistoryEvent] = []
    /// Its registered compensations, newest first.
    public var compensations: [CompensationRecord] = []
    /// The user's transactional work to run.
    public var work: [any TransactionalWork] = []
    /// The new status, or `nil` to keep it.
    public var newStatus: WorkflowStatus?
    /// New `output_data` JSON text, or `nil` to keep it.
    public var outputJSON: String?
    /// New `current_activity_id`, or `nil` to keep it.
    public var currentActivityID: String?
    /// What happens to the lock.
    public var lock: LockChange
    /// Remove the instance's channel and timer subscriptions (done when it ends).
    public var removeSubscriptions = false
    /// A durable timer to register (with `newStatus` `waiting_for_timer` and `lock` `.release`,
    /// this is the suspension of `sleep`). An existing timer with the same ID keeps its expiry.
    public var timer: TimerRegistration?
    /// CloudEvents to publish through the outbox once this commits (`outbox_events`, `pending`).
    public var outboxEvents: [OutboxEvent] = []
    /// Messages to publish after the change, delivered in the same transaction to the
    /// subscribers waiting on their channels.
    public var messages: [OutgoingMessage] = []
    /// Which delivered instances the worker takes over to run at once (with `messages`).
    public var claimPolicy: ClaimPolicy?
    /// History rows that depend on what publishing `messages` did (a step recording whether
    /// its message was delivered), written after the delivery in the same transaction.
    public var historyAfterDelivery: (@Sendable ([DeliveryReport]) -> [NewHistoryEvent])?
    /// `recur`: archive the instance's history, remove its subscriptions, claims and
    /// compensations, and create this successor (with `continued_from` set) in the same
    /// transaction.
    public var successor: NewInstance?

    /// Creates a value with every field given.
    public init(instanceID: String, workerID: String, expectedStatuses: [WorkflowStatus], lock: LockChange) {
        self.instanceID = instanceID
        self.workerID = workerID
        self.expectedStatuses = expectedStatuses
        self.lock = lock
    }
}

/// The result of ``WorkflowStore/apply(_:now:)``.
public enum TransitionOutcome: Sendable {
    /// Everything was written; carries the instance's status afterwards and what publishing the
    /// transition's messages did.
    case applied(status: WorkflowStatus, deliveries: [DeliveryReport] = [])
    /// Nothing was written: the worker no longer holds the lock or the status changed. Carries
    /// the status and holder found, `nil` if the instance is gone.
    case rejected(status: WorkflowStatus?, lockedBy: String?)
}

/// The result of ``WorkflowStore/requestCancellation(instanceID:cancelledBy:now:)``.
public enum CancellationOutcome: Sendable, Equatable {
    /// No such instance, or it has already ended; nothing changed.
    case notCancellable(WorkflowStatus?)
    /// Cancelled and finished in the same transaction (no compensations were pending and no
    /// worker held the instance).
    case cancelled
    /// Marked for cancellation: status `compensating` and a `WorkflowCancelled` history row.
    /// The worker holding the lock (`heldBy`) finishes it; if none does, any worker that has the
    /// workflow registered resumes it, runs the compensations and records it `cancelled`.
    case pendingCompensation(heldBy: String?)
}

/// An instance another worker may pick up: unlocked (or lock expired) and `running` or
/// `compensating`.
public struct ResumableInstance: Sendable, Hashable {
    /// The instance.
    public var instanceID: String
    /// Its workflow's durable name.
    public var workflowName: String
    /// Its own lock timeout (`lock_timeout_seconds`), if it has one.
    public var lockTimeoutSeconds: Int?

    /// Creates a value with every field given.
    public init(instanceID: String, workflowName: String, lockTimeoutSeconds: Int?) {
        self.instanceID = instanceID
        self.workflowName = workflowName
        self.lockTimeoutSeconds = lockTimeoutSeconds
    }
}
