import Synchronization

/// Keyed wake-ups: callers wait on a key (an instance ID, the lease renewer) until it is
/// signalled, a timeout passes, or their task is cancelled.
final class CompletionSignals: Sendable {
    private let waiters = Mutex<[String: [UInt64: CheckedContinuation<Void, Never>]]>([:])
    private let counter = Atomic<UInt64>(0)
    /// Waiters woken (by their timer or cancellation) before they had registered.
    private let woken = Mutex<Set<UInt64>>([])
    /// Remembered signals that found nobody waiting.
    private let pendingSignals = Mutex<Set<String>>([])

    /// Wakes everyone waiting on `key`. With `remembered`, a signal that finds nobody waiting
    /// wakes the next waiter at once (for a single long-lived waiter that must not miss one).
    func signal(_ key: String, remembered: Bool = false) {
        let continuations = waiters.withLock { waiters -> [UInt64: CheckedContinuation<Void, Never>]? in
            let removed = waiters.removeValue(forKey: key)
            if remembered, removed == nil { pendingSignals.withLock { _ = $0.insert(key) } }
            return removed
        }
        for continuation in continuations?.values ?? [:].values { continuation.resume() }
    }

    /// Waits until `key` is signalled, `timeout` passes, or the task is cancelled.
    func wait(for key: String, timeout: Duration) async {
        let id = counter.add(1, ordering: .relaxed).newValue
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.wake(key, id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = waiters.withLock { waiters -> Bool in
                    if Task.isCancelled || woken.withLock({ $0.remove(id) != nil })
                        || pendingSignals.withLock({ $0.remove(key) != nil }) {
                        return true
                    }
                    waiters[key, default: [:]][id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.wake(key, id)
        }
        timer.cancel()
        _ = woken.withLock { $0.remove(id) }
    }

    /// Resumes one waiter, or remembers that it was woken before it started waiting.
    private func wake(_ key: String, _ id: UInt64) {
        let continuation = waiters.withLock { waiters -> CheckedContinuation<Void, Never>? in
            guard let removed = waiters[key]?.removeValue(forKey: id) else {
                woken.withLock { _ = $0.insert(id) }
                return nil
            }
            if waiters[key]?.isEmpty == true { waiters[key] = nil }
            return removed
        }
        continuation?.resume()
    }
}
