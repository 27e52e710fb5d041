import Foundation
import Logging

/// Keeps the locks of executing instances alive: each is renewed a third of its lease after
/// its last renewal. Tells executions when a renewal shows their instance was cancelled or taken
/// over.
struct LeaseRenewer {
    /// The key ``WorkflowEngine/renewerWakeup`` is signalled with when an execution begins.
    static let wakeupKey = "lease-renewer"
    let engine: WorkflowEngine

    func run() async {
        while !Task.isCancelled {
            let claimed = engine.runningInstanceIDs.values.filter(\.isClaimed)
            let soon = ContinuousClock.now + .milliseconds(50)
            let due = claimed.filter { $0.renewalDue <= soon }
            if !due.isEmpty { await renew(due) }
            let next = engine.runningInstanceIDs.values.map(\.renewalDue).min()
            let wait = next.map { max($0 - ContinuousClock.now, .milliseconds(20)) } ?? engine.defaultLockTimeout / 3
            engine.renewerPlannedWake.withValue { $0 = ContinuousClock.now + wait }
            await engine.renewerWakeup.wait(for: Self.wakeupKey, timeout: wait)
        }
    }

    private func renew(_ controls: [ExecutionControl]) async {
        for (lease, group) in Dictionary(grouping: controls, by: \.lease) {
            let started = ContinuousClock.now
            let now = Date()
            do {
                let held = try await engine.store.renewLocks(
                    instanceIDs: group.map(\.instanceID), workerID: engine.workerID,
                    leaseUntil: now.addingTimeInterval(lease.seconds), now: now)
                for control in group {
                    switch held[control.instanceID] {
                    case nil:
                        // No longer held by this worker: lost, unless the execution just ended.
                        if engine.runningInstanceIDs[control.instanceID] === control { control.raise(.lockLost) }
                    case .compensating?:
                        control.markRenewed(at: started)
                        control.raise(.cancelRequested)
                    default:
                        control.markRenewed(at: started)
                    }
                }
            } catch {
                engine.logger.warning("Lock renewal failed; retrying: \(error)")
            }
        }
    }
}

/// Resumes instances that are free to run: left by a crashed worker (lock expired), unlocked
/// after a wait, or waiting to finish a cancellation.
struct RecoveryLoop {
    let engine: WorkflowEngine
    let tasks: TaskTracker
    let interval: Duration
    let batchSize: Int

    func run() async {
        while !Task.isCancelled {
            await pass()
            let jitter = Duration.milliseconds(Int.random(in: 0...max(Int(interval.seconds * 100), 1)))
            try? await Task.sleep(for: interval + jitter)
        }
    }

    private func pass() async {
        let names = engine.registeredNames
        guard !names.isEmpty else { return }
        do {
            // Fetch past the instances this process must skip, so they cannot crowd out the rest.
            let skipped = engine.quarantinedCount + engine.runningInstanceIDs.count
            let candidates = try await engine.store.resumableInstances(
                workflowNames: names, limit: batchSize + skipped, now: Date())
            var started = 0
            for candidate in candidates where started < batchSize {
                guard !Task.isCancelled else { return }
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
        } catch {
            engine.logger.warning("Recovery pass failed: \(error)")
        }
    }
}
