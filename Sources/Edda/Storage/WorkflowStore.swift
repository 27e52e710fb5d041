import Foundation

/// The database behind an ``EddaApp``: every durable change the engine makes goes through it.
///
/// A driver persists; the engine decides. Each operation is one transaction (one statement
/// where the database allows it), and every claim is a compare-and-set inside the transaction
/// that reads it. The decisions (which instance to wake or claim, what a cancellation does,
/// every stored payload's shape) come from the core: ``ClaimPolicy``, ``CancellationPlan``,
/// ``StepPayloads``, ``InstanceTransition``'s named constructors. So do the sequences of the
/// operations that take several steps: a driver runs ``WakeUpSweep`` for
/// ``fireDueWaits(claim:deadline:now:limit:)`` and ``ChannelStore/publish(_:claim:now:)``, and
/// ``ReceiveSequence`` for ``ChannelStore/receive(_:now:)`` and
/// ``ChannelStore/updateSubscription(instanceID:workerID:channel:mode:now:)``, inside its
/// transaction, performing each typed effect they ask for (read these rows, persist this
/// wake-up) and answering with the result. Drivers write `framework = 'swift'` and act only
/// on instances of that framework, while they read any.
///
/// This protocol is what every driver provides: instances, steps, locks, timers, cancellation
/// and queries. Further capabilities are separate protocols, and the app uses only those a
/// driver adopts:
///
/// - ``ChannelStore``: channels and events (`subscribe`, `receive`, `publish`, `sendTo`,
///   `waitEvent`, CloudEvents delivery). Without it those calls throw an ``EddaUsageError``
///   (`.unsupportedByStore`).
/// - ``OutboxStore``: the transactional outbox and its relayer.
/// - ``SystemLockStore``: one leader among the workers for housekeeping (without it, every
///   worker does the housekeeping).
/// - ``WakeUpSource``: announcements of work made claimable by other processes (without it,
///   other processes' work is found by polling).
///
/// EddaSQLite's `SQLiteStore`, EddaPostgres's `PostgresStore` and EddaMySQL's `MySQLStore`
/// adopt all of them. A driver in
/// its own module proves itself with the `EddaConformance` kit, which runs each capability's
/// checks when the driver adopts it.
public protocol WorkflowStore: Sendable {
    /// Creates or upgrades the shared schema (idempotent), recording versions in
    /// `schema_migrations`.
    func migrate() async throws

    /// Whether the database holds the shared schema at the version this store writes, checked
    /// without changing anything (tools that must not create tables in a foreign database ask
    /// this instead of migrating).
    func hasCurrentSchema() async throws -> Bool

    /// Inserts the definition (if new) and the instance, `running`; with an ID that exists
    /// already, changes nothing and returns the existing instance.
    func createInstance(_ instance: NewInstance, now: Date) async throws -> CreateInstanceOutcome

    /// Takes the instance lock if it is free or expired and the instance is `running` or
    /// `compensating`, and returns the instance with its history and compensations; `nil` if it
    /// cannot be claimed.
    func claim(instanceID: String, workerID: String, leaseUntil: Date, now: Date) async throws -> ClaimedInstance?

    /// Applies one compare-and-set transition (see ``InstanceTransition``).
    func apply(_ transition: InstanceTransition, now: Date) async throws -> TransitionOutcome

    /// Releases the lock if `workerID` holds it.
    func releaseLock(instanceID: String, workerID: String, now: Date) async throws

    /// Extends the locks `workerID` holds on `instanceIDs`; returns those it still holds, with
    /// their current status.
    func renewLocks(instanceIDs: [String], workerID: String, leaseUntil: Date, now: Date) async throws -> [String: WorkflowStatus]

    /// Requests cancellation of an instance (see ``CancellationOutcome``).
    func requestCancellation(instanceID: String, cancelledBy: String, now: Date) async throws -> CancellationOutcome

    /// Instances of `workflowNames` that any worker may pick up now, oldest first.
    func resumableInstances(workflowNames: [String], limit: Int, now: Date) async throws -> [ResumableInstance]

    /// One instance, with its definition's source text.
    func instance(id: String) async throws -> WorkflowInstance?

    /// An instance's history in recorded order, `(created_at, id)`.
    func history(instanceID: String) async throws -> [HistoryEvent]

    /// An instance's registered compensations, newest first.
    func compensations(instanceID: String) async throws -> [CompensationRecord]

    /// A filtered page of instances, newest first (see ``InstanceQuery``).
    func findInstances(_ query: InstanceQuery) async throws -> InstancePage

    /// An instance's direct successor after `recur` (the instance whose `continued_from` is it).
    func successor(of instanceID: String) async throws -> String?

    // MARK: Waits

    /// Ends the waits that are due: timers that expired by `deadline` (recorded as
    /// `TimerExpired`) and, for a ``ChannelStore``, receives whose timeout passed
    /// (`MessageTimeout`) and waiting subscribers that missed a pending message. Only
    /// instances `claim` allows are touched; they are returned locked by its worker. Run
    /// ``WakeUpSweep/dueWaits(claim:deadline:now:limit:)`` in one transaction (a store without
    /// channels answers its subscription queries with no waiters).
    func fireDueWaits(claim: ClaimPolicy, deadline: Date, now: Date, limit: Int) async throws -> [ClaimedInstance]

    /// The earliest timer expiry or receive timeout among waiting instances of `workflowNames`.
    func nextWaitDeadline(workflowNames: [String]) async throws -> Date?

    /// Closes connections. The store is unusable afterwards.
    func close() async throws
}

/// Channels and events: subscriptions, receives, publishing and delivery.
public protocol ChannelStore: WorkflowStore {
    /// Subscribes an executing instance to a channel (`mode` non-`nil`; idempotent, and a
    /// broadcast subscription's cursor starts after the channel's newest message) or
    /// unsubscribes it (`mode` `nil`). `mode` is `broadcast` or `competing`. Run
    /// ``ReceiveSequence/init(updating:of:to:workerID:)``.
    func updateSubscription(
        instanceID: String, workerID: String, channel: String, mode: SubscriptionMode?, now: Date
    ) async throws -> SubscriptionOutcome

    /// In one transaction: consumes the oldest pending message for the instance's subscription
    /// and records it, or registers the wait (`waiting_for_message`, lock released). Run
    /// ``ReceiveSequence/init(_:)``; roll back when it ``ReceiveSequence/rollsBack``.
    func receive(_ request: ReceiveRequest, now: Date) async throws -> ReceiveOutcome

    /// Stores messages and delivers each, in the same transaction, to the subscribers waiting
    /// on its channel (all broadcast subscribers; one competing subscriber). Delivered instances
    /// become `running`; those `claim` allows are returned locked by its worker. Run
    /// ``WakeUpSweep/delivery(of:claim:now:)`` for each message, in one transaction.
    func publish(_ messages: [OutgoingMessage], claim: ClaimPolicy, now: Date) async throws -> [DeliveryReport]

    /// Deletes channel messages published before `cutoff`; returns how many.
    func deleteChannelMessages(publishedBefore cutoff: Date) async throws -> Int
}

/// The transactional outbox: rows written with a step (``InstanceTransition/outboxEvents``) and
/// taken by the relayer.
public protocol OutboxStore: WorkflowStore {
    /// Takes outbox rows this library wrote (``OutboxEventID``) to send, oldest first, marking
    /// them `processing` with a lease until ``OutboxClaim/leaseUntil``: `pending` rows, and
    /// `processing` rows whose lease ended before `now` (their relayer stopped). Concurrent
    /// relayers never take the same row.
    func claimOutboxEvents(_ claim: OutboxClaim, now: Date) async throws -> [OutboxEvent]

    /// Extends the leases of `processing` rows the relayer is still sending.
    func renewOutboxEvents(eventIDs: [String], until: Date) async throws

    /// Records how sending a `processing` row ended.
    func finishOutboxEvent(eventID: String, outcome: OutboxOutcome, now: Date) async throws

    /// One outbox row.
    func outboxEvent(id: String) async throws -> OutboxEvent?
}

/// Named locks in `system_locks`, with which the workers elect one leader for housekeeping.
public protocol SystemLockStore: WorkflowStore {
    /// Takes or renews the named lock in `system_locks` until `until`, if it is free, expired
    /// or already held by `workerID`. Returns whether `workerID` holds it.
    func acquireSystemLock(name: String, workerID: String, until: Date, now: Date) async throws -> Bool

    /// Releases the named lock if `workerID` holds it.
    func releaseSystemLock(name: String, workerID: String) async throws
}

/// A store that announces work other processes made claimable (PostgreSQL `LISTEN`).
public protocol WakeUpSource: WorkflowStore {
    /// The announcements. Called once, by the app, which stops listening when it shuts down.
    func wakeUps() -> AsyncStream<StoreWakeUp>
}

/// Work another process made claimable, announced by the store.
public enum StoreWakeUp: Sendable, Hashable {
    /// An instance became resumable (delivered to, released, cancelled).
    case resumable
    /// A timer or receive timeout was registered.
    case waitRegistered
    /// Outbox events were written.
    case outbox
    /// The store reconnected and may have missed announcements: look at everything.
    case all
}
