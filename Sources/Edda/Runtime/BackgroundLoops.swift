import Foundation
import Logging

/// Keeps the locks of executing instances alive, and tells executions when a renewal shows
/// their instance was cancelled or taken over.
struct LeaseRenewer {
    let engine: WorkflowEngine

    func run() async {
        while !Task.isCancelled {
            let running = engine.runningInstanceIDs
            let shortest = running.values.map(\.lease).min() ?? engine.defaultLockTimeout
            try? await Task.sleep(for: max(shortest / 3, .milliseconds(100)))
            guard !Task.isCancelled else { return }
            let current = engine.runningInstanceIDs
            guard !current.isEmpty else { continue }
            let byLease = Dictionary(grouping: current.values, by: \.lease)
            for (lease, controls) in byLease {
                let now = Date()
                do {
                    let held = try await engine.store.renewLocks(
                        instanceIDs: controls.map(\.instanceID), workerID: engine.workerID,
                        leaseUntil: now.addingTimeInterval(lease.seconds), now: now)
                    for control in controls {
                        switch held[control.instanceID] {
                        case nil:
                            // Not held: either not claimed yet, already finished, or lost.
                            if engine.runningInstanceIDs[control.instanceID] === control,
                               try await engine.store.instance(id: control.instanceID)?.lockedBy != engine.workerID {
                                control.raise(.lockLost)
                            }
                        case .compensating?:
                            control.raise(.cancelRequested)
                        default:
                            break
                        }
                    }
                } catch {
                    engine.logger.warning("Lock renewal failed; retrying: \(error)")
                }
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
            let candidates = try await engine.store.resumableInstances(workflowNames: names, limit: batchSize, now: Date())
            for candidate in candidates {
                guard !Task.isCancelled else { return }
                guard engine.runningInstanceIDs[candidate.instanceID] == nil, !engine.isQuarantined(candidate.instanceID),
                      let workflow = engine.registered(candidate.workflowName)
                else { continue }
                let instance = try await engine.store.instance(id: candidate.instanceID)
                tasks.spawn {
                    do {
                        _ = try await engine.resume(
                            instanceID: candidate.instanceID, workflow: workflow, storedLockTimeout: instance?.lockTimeoutSeconds)
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
