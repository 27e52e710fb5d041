import Foundation
import Synchronization

/// The app's background tasks, so that shutdown can stop and await every one of them: its
/// services (recovery, the wait scheduler, the relayer, …) first, then executions.
final class TaskTracker: Sendable {
    enum Kind: Sendable {
        /// A loop of the app's own: stopped as soon as shutdown begins.
        case service
        /// An execution of an instance: given the grace period to reach its next step.
        case execution
    }

    private let tasks = Mutex<[UUID: (kind: Kind, task: Task<Void, Never>)]>([:])
    private let closed = Mutex(false)

    /// Runs `body` in a tracked task; does nothing once the tracker is closed.
    ///
    /// - Returns: Whether the task was started.
    @discardableResult
    func spawn(_ kind: Kind = .execution, _ body: @escaping @Sendable () async -> Void) -> Bool {
        let id = UUID()
        return tasks.withLock { tasks -> Bool in
            guard !closed.withLock({ $0 }) else { return false }
            tasks[id] = (kind, Task {
                await body()
                _ = self.tasks.withLock { $0.removeValue(forKey: id) }
            })
            return true
        }
    }

    /// Starts no more tasks, and cancels the services and waits for them to end.
    func stopServices() async {
        closed.withLock { $0 = true }
        let services = tasks.withLock { $0.values.filter { $0.kind == .service }.map(\.task) }
        for task in services { task.cancel() }
        for task in services { await task.value }
    }

    /// Whether any execution task is still running.
    var hasExecutions: Bool {
        tasks.withLock { $0.values.contains { $0.kind == .execution } }
    }

    /// Cancels every task and waits for all of them to end.
    func shutdown() async {
        closed.withLock { $0 = true }
        let running = tasks.withLock { $0.values.map(\.task) }
        for task in running { task.cancel() }
        for task in running { await task.value }
    }
}
