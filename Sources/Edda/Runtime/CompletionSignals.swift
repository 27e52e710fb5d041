import Synchronization

/// Keyed wake-ups: callers wait on a key (an instance ID, the lease renewer) until it is
/// signalled, a timeout passes, or their task is cancelled.
///
/// To wait for a change without missing a signal that arrives while checking for it, take a
/// ``Ticket`` first (``arm(_:)``), then check, then ``wait(_:timeout:)`` on the ticket: a signal
/// after `arm` ends the wait at once.
final class CompletionSignals: Sendable {
    /// A registered interest in one key.
    struct Ticket: Sendable {
        let key: String
        let id: UInt64
    }

    private enum Slot {
        case armed
        case signalled
        case waiting(CheckedContinuation<Void, Never>)
    }

    private struct State {
        var slots: [String: [UInt64: Slot]] = [:]
        /// Remembered signals that found nobody waiting.
        var pending: Set<String> = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Wakes everyone waiting on `key` (and ends the waits of armed tickets). With
    /// `remembered`, a signal that finds nobody waiting wakes the next waiter at once (for a
    /// single long-lived waiter that must not miss one).
    func signal(_ key: String, remembered: Bool = false) {
        let continuations = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard var slots = state.slots[key], !slots.isEmpty else {
                if remembered { state.pending.insert(key) }
                return []
            }
            var resumed: [CheckedContinuation<Void, Never>] = []
            for (id, slot) in slots {
                switch slot {
                case .waiting(let continuation):
                    resumed.append(continuation)
                    slots[id] = nil
                case .armed, .signalled:
                    slots[id] = .signalled
                }
            }
            state.slots[key] = slots.isEmpty ? nil : slots
            return resumed
        }
        for continuation in continuations { continuation.resume() }
    }

    /// Registers interest in `key`: a signal from now on ends the ticket's wait.
    func arm(_ key: String) -> Ticket {
        state.withLock { state in
            state.nextID += 1
            state.slots[key, default: [:]][state.nextID] = .armed
            return Ticket(key: key, id: state.nextID)
        }
    }

    /// Withdraws a ticket that will not be waited on. Idempotent.
    func disarm(_ ticket: Ticket) {
        state.withLock { Self.remove(ticket, from: &$0) }
    }

    /// Waits until `key` is signalled, `timeout` passes, or the task is cancelled.
    func wait(for key: String, timeout: Duration) async {
        await wait(arm(key), timeout: timeout)
    }

    /// Waits until the ticket's key is signalled (or was, since ``arm(_:)``), `timeout`
    /// passes, or the task is cancelled.
    func wait(_ ticket: Ticket, timeout: Duration) async {
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.end(ticket)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    let signalledBefore = state.pending.remove(ticket.key) != nil
                    guard case .armed? = state.slots[ticket.key]?[ticket.id], !signalledBefore, !Task.isCancelled else {
                        Self.remove(ticket, from: &state)
                        return true
                    }
                    state.slots[ticket.key]?[ticket.id] = .waiting(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.end(ticket)
        }
        timer.cancel()
        state.withLock { Self.remove(ticket, from: &$0) }
    }

    /// Ends one ticket's wait (timer or cancellation), or marks it ended before it started.
    private func end(_ ticket: Ticket) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            switch state.slots[ticket.key]?[ticket.id] {
            case .waiting(let continuation)?:
                Self.remove(ticket, from: &state)
                return continuation
            case .armed?:
                state.slots[ticket.key]?[ticket.id] = .signalled
                return nil
            case .signalled?, nil:
                return nil
            }
        }
        continuation?.resume()
    }

    private static func remove(_ ticket: Ticket, from state: inout State) {
        state.slots[ticket.key]?[ticket.id] = nil
        if state.slots[ticket.key]?.isEmpty == true { state.slots[ticket.key] = nil }
    }
}
