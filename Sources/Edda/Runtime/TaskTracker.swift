import Foundation

/// The app's background tasks, so that shutdown can stop and await every one of them.
final class TaskTracker: Sendable {
    private let tasks = LockedBox<[UUID: Task<Void, Never>]>([:])
    private let closed = LockedBox(false)

    /// Runs `body` in a tracked task; does nothing once the tracker is shut down.
    ///
    /// - Returns: Whether the task was started.
    @discardableResult
    func spawn(_ body: @escaping @Sendable () async -> Void) -> Bool {
        let id = UUID()
        return tasks.withValue { tasks -> Bool in
            guard !closed.withValue({ $0 }) else { return false }
            tasks[id] = Task {
                await body()
                _ = self.tasks.withValue { $0.removeValue(forKey: id) }
            }
            return true
        }
    }

    /// Cancels every task and waits for all of them to end.
    func shutdown() async {
        closed.withValue { $0 = true }
        let running = tasks.withValue { Array($0.values) }
        for task in running { task.cancel() }
        for task in running { await task.value }
    }
}
