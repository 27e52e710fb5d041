import Foundation
import Synchronization

/// The app's background tasks, so that shutdown can stop and await every one of them.
final class TaskTracker: Sendable {
    private let tasks = Mutex<[UUID: Task<Void, Never>]>([:])
    private let closed = Mutex(false)

    /// Runs `body` in a tracked task; does nothing once the tracker is shut down.
    ///
    /// - Returns: Whether the task was started.
    @discardableResult
    func spawn(_ body: @escaping @Sendable () async -> Void) -> Bool {
        let id = UUID()
        return tasks.withLock { tasks -> Bool in
            guard !closed.withLock({ $0 }) else { return false }
            tasks[id] = Task {
                await body()
                _ = self.tasks.withLock { $0.removeValue(forKey: id) }
            }
            return true
        }
    }

    /// Cancels every task and waits for all of them to end.
    func shutdown() async {
        closed.withLock { $0 = true }
        let running = tasks.withLock { Array($0.values) }
        for task in running { task.cancel() }
        for task in running { await task.value }
    }
}
