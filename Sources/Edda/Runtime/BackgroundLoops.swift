import Foundation
import Logging

/// Keeps the locks of executing instances alive: each is renewed a third of its lease after
/// its last renewal. Tells executions when a renewal shows their instance was cancelled or taken
/// over.
///
/// It runs on a thread of its own (``WorkflowEngine/renewalExecutor``), never on Swift's
/// cooperative pool: activity code that blocks every cooperative thread (synchronous sleeps,
/// busy loops, blocking calls) cannot delay a renewal, so a lease lapses only when the whole
/// process stops (a freeze, a debugger, SIGSTOP) — and then every step's commit is a
/// compare-and-set on the lock, so a worker that lost it writes nothing.
struct LeaseRenewer {
    let engine: WorkflowEngine

    func run() async {
        while !Task.isCancelled {
            let claimed = engine.runningInstanceIDs.values.filter(\.isClaimed)
            let soon = ContinuousClock.now + .milliseconds(50)
            let due = claimed.filter { $0.renewalDue <= soon }
            if !due.isEmpty {
                await renew(due)
            } else if claimed.isEmpty {
                // Nothing to renew: a failure of an earlier renewal no longer matters.
                engine.background.succeeded(.leaseRenewal)
            }
            let next = engine.runningInstanceIDs.values.map(\.renewalDue).min()
            let wait = next.map { max($0 - ContinuousClock.now, .milliseconds(20)) } ?? engine.defaultLockTimeout / 3
            engine.renewerPlannedWake.withLock { $0 = ContinuousClock.now + wait }
            await engine.renewalExecutor.wait(until: ContinuousClock.now + wait)
        }
    }

    private func renew(_ controls: [ExecutionControl]) async {
        var healthy = true
        defer { if healthy { engine.background.succeeded(.leaseRenewal) } }
        for (lease, group) in Dictionary(grouping: controls, by: \.lease) {
            let started = ContinuousClock.now
            let now = Date()
            do {
                let held = try await engine.store.renewLocks(
                    instanceIDs: group.map(\.instanceID), workerID: engine.workerID,
                    leaseUntil: now.addingTimeInterval(lease.seconds), now: now)
                var lost = 0
                for control in group {
                    switch held[control.instanceID] {
                    case nil:
                        // No longer held by this worker: lost, unless the execution just ended.
                        if engine.runningInstanceIDs[control.instanceID] === control {
                            // Counted once: the execution may take a while to notice.
                            if control.signal != .lockLost { lost += 1 }
                            control.raise(.lockLost)
                        }
                    case .compensating?:
                        control.markRenewed(at: started)
                        control.raise(.cancelRequested)
                    default:
                        control.markRenewed(at: started)
                    }
                }
                engine.metrics.leasesRenewed(group.count - lost, lost: lost)
            } catch where !Task.isCancelled {
                healthy = false
                engine.background.failed(.leaseRenewal, "Lock renewal failed", error)
            } catch {
                return  // shutting down
            }
        }
    }
}

/// Resumes instances that are free to run: left by a crashed worker (lock expired), unlocked
/// after a wait, or waiting to finish a cancellation.
struct RecoveryLoop {
    /// The key ``WorkflowEngine/recoveryWakeup`` is signalled with.
    static let wakeupKey = "recovery"
    let engine: WorkflowEngine
    let tasks: TaskTracker
    let interval: Duration
    let batchSize: Int
    /// This host's worker markers, or `nil` if takeover on restart is off.
    let liveness: WorkerLiveness?

    func run() async {
        var reportedHolders = false
        while !Task.isCancelled {
            var healthy = true
            if let liveness { healthy = await takeOverEndedWorkers(liveness) }
            if !reportedHolders, !engine.registeredNames.isEmpty {
                reportedHolders = true
                healthy = await reportHeldInstances() && healthy
            }
            healthy = await pass() && healthy
            if healthy, !Task.isCancelled { engine.background.succeeded(.recovery) }
            let jitter = Duration.milliseconds(Int.random(in: 0...max(Int(interval.seconds * 100), 1)))
            await engine.recoveryWakeup.wait(for: Self.wakeupKey, timeout: interval + jitter)
        }
    }

    /// Resumes a batch of free instances; returns whether reading them succeeded.
    private func pass() async -> Bool {
        let names = engine.registeredNames
        guard !names.isEmpty else { return true }
        do {
            // Fetch past the instances this process must skip, so they cannot crowd out the rest.
            let skipped = engine.quarantinedCount + engine.runningInstanceIDs.count
            let candidates = try await engine.store.resumableInstances(
                workflowNames: names, limit: batchSize + skipped, now: Date())
            var started = 0
            for candidate in candidates where started < batchSize {
                guard !Task.isCancelled else { return true }
                guard engine.runningInstanceIDs[candidate.instanceID] == nil, !engine.isQuarantined(candidate.instanceID),
                      let workflow = engine.registered(candidate.workflowName)
                else { continue }
                started += 1
                tasks.spawn {
                    do {
                        _ = try await engine.resume(
                            instanceID: candidate.instanceID, workflow: workflow, storedLockTimeout: candidate.lockTimeoutSeconds)
                    } catch {
                        engine.logger.warning("Resuming \(candidate.instanceID) failed: \(error)")
                    }
                }
            }
            return true
        } catch where !Task.isCancelled {
            engine.background.failed(.recovery, "Recovery pass failed", error)
            return false
        } catch {
            // The app is shutting down: nothing went wrong.
            return true
        }
    }
}

extension RecoveryLoop {
    /// Releases the locks of workers on this host whose process has ended, so that their
    /// instances resume now rather than when their leases lapse. Returns whether all of it
    /// succeeded.
    @discardableResult
    func takeOverEndedWorkers(_ liveness: WorkerLiveness) async -> Bool {
        var healthy = true
        for worker in liveness.endedWorkers() {
            do {
                let held = try await instancesLocked { $0.lockedBy == worker.workerID }
                for instance in held {
                    try await engine.store.releaseLock(instanceID: instance.instanceID, workerID: worker.workerID, now: Date())
                }
                if !held.isEmpty {
                    engine.logger.info(
                        "Worker \(worker.workerID) on this host is no longer running; resuming the \(held.count) instances it held now")
                }
                liveness.forget(worker)
            } catch {
                // The marker stays, and stays ended: the next pass tries again.
                liveness.letGo(worker)
                if Task.isCancelled { return true }
                healthy = false
                engine.background.failed(.recovery, "Taking over the instances of ended worker \(worker.workerID) failed", error)
            }
        }
        return healthy
    }

    /// Says once, at start, which instances other workers hold and when they resume if those
    /// workers have ended where this one cannot tell (another host, or no marker). Returns
    /// whether reading them succeeded.
    @discardableResult
    func reportHeldInstances() async -> Bool {
        let now = Date()
        let held: [WorkflowInstance]
        do {
            held = try await instancesLocked { ($0.lockExpiresAt ?? .distantPast) > now && $0.lockedBy != engine.workerID }
        } catch {
            if Task.isCancelled { return true }
            engine.background.failed(.recovery, "Reading the instances other workers hold failed", error, retrying: "not reported")
            return false
        }
        for (holder, instances) in Dictionary(grouping: held, by: { $0.lockedBy ?? "" }).sorted(by: { $0.key < $1.key }) {
            let until = instances.compactMap(\.lockExpiresAt).max() ?? now
            engine.logger.info(
                "\(instances.count) instances held by worker \(holder) resume when its lease ends at \(Timestamp.iso8601(until)), unless it is still running")
        }
        return true
    }

    /// This implementation's running and compensating instances whose lock passes `filter`.
    private func instancesLocked(_ filter: (WorkflowInstance) -> Bool) async throws -> [WorkflowInstance] {
        var found: [WorkflowInstance] = []
        for status in [WorkflowStatus.running, .compensating] {
            var query = InstanceQuery()
            query.status = status
            query.limit = 1_000
            while true {
                let page = try await engine.store.findInstances(query)
                found += page.instances.filter { $0.lockedBy != nil && filter($0) }
                guard page.hasMore, let token = page.nextPageToken else { break }
                query.pageToken = token
            }
        }
        return found
    }
}

/// Ends due waits: fires expired timers, times out receives, and hands pending messages to
/// waiting subscribers that missed them. Sleeps until the next deadline (on the workflow
/// clock), woken early when this process registers an earlier one, and re-reads the database
/// every `pollInterval` for waits registered by other processes.
struct WaitScheduler {
    /// The key ``WorkflowEngine/schedulerWakeup`` is signalled with.
    static let wakeupKey = "wait-scheduler"
    let engine: WorkflowEngine
    let pollInterval: Duration
    let batchSize: Int

    func run() async {
        while !Task.isCancelled {
            // Awake: any wait registered from now on wakes the next sleep at once.
            engine.schedulerPlannedWake.withLock { $0 = .distantFuture }
            let (fired, firedAll) = await fireDue()
            let names = engine.registeredNames
            var next: Date?
            do {
                next = names.isEmpty ? nil : try await engine.store.nextWaitDeadline(workflowNames: names)
                if firedAll { engine.background.succeeded(.waitScheduler) }
            } catch {
                if Task.isCancelled { break }
                engine.background.failed(.waitScheduler, "Reading the next wait deadline failed", error, retrying: "polling")
            }
            engine.schedulerPlannedWake.withLock { $0 = next ?? .distantFuture }
            if let next, next <= engine.clock.now() {
                // Due but not taken (its instance is locked elsewhere): look again shortly.
                if fired == 0 { await sleep(until: nil, poll: .milliseconds(50)) }
                continue
            }
            await sleep(until: next, poll: pollInterval)
        }
    }

    /// Ends the due waits in batches; returns how many instances it took over, and whether
    /// none of its reads failed.
    private func fireDue() async -> (fired: Int, succeeded: Bool) {
        var fired = 0
        while !Task.isCancelled, fired < batchSize * 100 {
            do {
                let claimed = try await engine.store.fireDueWaits(
                    claim: engine.claimPolicy, deadline: engine.clock.now(), now: Date(), limit: batchSize)
                await engine.runClaimed(claimed)
                fired += claimed.count
                if claimed.count < batchSize { break }
            } catch {
                // Cancelled: the app is shutting down, nothing went wrong.
                if Task.isCancelled { break }
                engine.background.failed(.waitScheduler, "Ending due waits failed", error)
                return (fired, false)
            }
        }
        return (fired, true)
    }

    /// Sleeps until `deadline` on the workflow clock, a wake-up, or `pollInterval`.
    private func sleep(until deadline: Date?, poll pollInterval: Duration) async {
        let engine = self.engine
        await withTaskGroup(of: Void.self) { group in
            if let deadline {
                group.addTask { try? await engine.clock.sleep(until: deadline) }
            }
            group.addTask { await engine.schedulerWakeup.wait(for: Self.wakeupKey, timeout: pollInterval) }
            await group.next()
            group.cancelAll()
        }
    }
}

/// Holds the leader lease (a row of `system_locks`) when it can, renewing it every heartbeat, and
/// runs the work one worker of the cluster should do: deleting channel messages past their
/// retention. Releases the lease at shutdown, so another worker takes over at its next heartbeat.
struct LeaderElection {
    let engine: WorkflowEngine
    /// The store's named locks, or `nil` if it has none (then every worker leads).
    let locks: (any SystemLockStore)?
    let lockName: String
    let heartbeat: Duration
    let lease: Duration
    let messageRetention: Duration?
    let instanceRetention: Duration?
    let cleanupInterval: Duration

    /// Deletes channel messages past their retention and, with ``instanceRetention``, finished
    /// instances past theirs. Returns whether all of it succeeded.
    @discardableResult
    func cleanUp() async -> Bool {
        var succeeded = true
        if let retention = messageRetention, let channels = engine.store as? any ChannelStore {
            do {
                let deleted = try await channels.deleteChannelMessages(publishedBefore: Date().addingTimeInterval(-retention.seconds))
                if deleted > 0 { engine.logger.info("Deleted \(deleted) channel messages past their retention") }
            } catch where !Task.isCancelled {
                engine.background.failed(.leader, "Channel message cleanup failed", error, retrying: "retrying at the next cleanup")
                succeeded = false
            } catch {
                return true  // shutting down
            }
        }
        if let retention = instanceRetention, let store = engine.store as? any RetentionStore {
            do {
                let purged = try await Retention.purge(
                    store, try PurgeFilter(endedBefore: Date().addingTimeInterval(-retention.seconds)), dryRun: false)
                engine.metrics.purged(purged)
                if purged > 0 { engine.logger.info("Deleted \(purged) finished instances past their retention") }
            } catch where !Task.isCancelled {
                engine.background.failed(.leader, "Retention of finished instances failed", error, retrying: "retrying at the next cleanup")
                succeeded = false
            } catch {
                return true  // shutting down
            }
        }
        return succeeded
    }

    /// Records what waits in the database (``EddaMetricName/waitingInstances``,
    /// ``EddaMetricName/outboxBacklog``): one worker measures it, every heartbeat. Returns whether
    /// it succeeded.
    @discardableResult
    func measure() async -> Bool {
        guard let store = engine.store as? any StatisticsStore else { return true }
        do {
            let statistics = try await store.statistics()
            engine.metrics.waiting(statistics.waitingForTimer, kind: "timer")
            engine.metrics.waiting(statistics.waitingForMessage, kind: "message")
            engine.metrics.waiting(statistics.waitingForEvent, kind: "event")
            engine.metrics.outboxBacklog(statistics.outboxBacklog)
            return true
        } catch {
            if !Task.isCancelled { engine.background.failed(.leader, "Measuring the waiting instances failed", error, retrying: "at the next heartbeat") }
            return false
        }
    }

    func run() async {
        var lastCleanup: ContinuousClock.Instant?
        // A failed cleanup counts until a later one succeeds (cleanups run less often than heartbeats).
        var cleanupHealthy = true
        while !Task.isCancelled {
            let now = Date()
            let isLeader: Bool
            var healthy = true
            do {
                // Without named locks no worker is the leader, and every one does the housekeeping
                // (it is idempotent).
                isLeader = try await locks?.acquireSystemLock(
                    name: lockName, workerID: engine.workerID, until: now.addingTimeInterval(lease.seconds), now: now) ?? false
            } catch {
                if Task.isCancelled { break }
                engine.background.failed(.leader, "Leader election failed", error)
                isLeader = false
                healthy = false
            }
            let was = engine.leadership.withLock { leader -> Bool in
                defer { leader = isLeader }
                return leader
            }
            if isLeader != was {
                engine.logger.debug(isLeader ? "This worker is now the leader" : "This worker is no longer the leader")
            }
            if isLeader || locks == nil, lastCleanup.map({ ContinuousClock.now - $0 >= cleanupInterval }) ?? true {
                lastCleanup = .now
                cleanupHealthy = await cleanUp()
            }
            if healthy, !isLeader, locks != nil { cleanupHealthy = true }  // another worker does it now
            healthy = healthy && cleanupHealthy
            if isLeader || locks == nil { healthy = await measure() && healthy }
            if healthy { engine.background.succeeded(.leader) }
            try? await Task.sleep(for: heartbeat)
        }
        if engine.leadership.withLock({ $0 }) {
            try? await locks?.releaseSystemLock(name: lockName, workerID: engine.workerID)
            engine.leadership.withLock { $0 = false }
        }
    }
}
