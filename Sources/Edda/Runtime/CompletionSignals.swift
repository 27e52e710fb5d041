import Synchronization

/// Wakes callers waiting for an instance when an execution of it ends in this process.
final class CompletionSignals: Sendable {
    private let waiters = Mutex<[String: [UInt64: CheckedContinuation<Void, Never>]]>([:])
    private let counter = Atomic<UInt64>(0)

    /// Wakes everyone waiting on `instanceID`.
    func signal(_ instanceID: String) {
        let continuations = waiters.withLock { $0.removeValue(forKey: instanceID) }
        for continuation in continuations?.values ?? [:].values { continuation.resume() }
    }

    /// Waits until `instanceID` is signalled or `timeout` passes.
    func wait(for instanceID: String, timeout: Duration) async {
        let key = counter.add(1, ordering: .relaxed).newValue
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            waiters.withLock { $0[instanceID, default: [:]][key] = continuation }
            Task {
                try? await Task.sleep(for: timeout)
                let continuation = self.waiters.withLock { waiters -> CheckedContinuation<Void, Never>? in
                    let removed = waiters[instanceID]?.removeValue(forKey: key)
                    if waiters[instanceID]?.isEmpty == true { waiters[instanceID] = nil }
                    return removed
                }
                continuation?.resume()
            }
        }
    }
}
