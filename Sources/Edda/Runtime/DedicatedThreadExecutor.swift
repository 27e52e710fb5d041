import Foundation

/// A task executor with one operating-system thread of its own, and its own timer.
///
/// Work that must keep its schedule however busy the process is — lock renewal — runs here
/// (`Task(executorPreference:)`), not on Swift's cooperative pool. That pool has one thread per
/// core; activity code that blocks them (a synchronous `sleep`, a busy loop, a blocking
/// library call) or a long synchronous database wait would otherwise keep the renewer from
/// running until the lease had lapsed and another worker had taken a live instance over.
///
/// A task that prefers this executor runs every non-isolated part of itself on this thread,
/// including what follows each `await` once the awaited work (a database driver's callback on
/// its own thread) resumes it. It must not sleep with `Task.sleep`, whose timer fires on the
/// cooperative pool: ``wait(until:)`` is this thread's own timer.
package final class DedicatedThreadExecutor: TaskExecutor, @unchecked Sendable {
    // Safe: every stored property below is either immutable or read and written only while
    // `condition` is locked.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false
    private var wakeup: (deadline: ContinuousClock.Instant, continuation: CheckedContinuation<Void, Never>)?
    /// A ``wake()`` that came while nobody waited: the next wait ends at once.
    private var wokenEarly = false

    /// Starts the thread, named `name` for debuggers and thread dumps. It runs until
    /// ``shutdown()``.
    package init(name: String) {
        // The thread keeps the executor alive until its loop ends.
        let thread = Thread { self.runLoop() }
        thread.name = name
        thread.start()
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        condition.lock()
        jobs.append(unowned)
        condition.signal()
        condition.unlock()
    }

    /// Suspends the calling task until `deadline`, a ``wake()``, or the task's cancellation,
    /// whichever comes first. One task waits at a time.
    package func wait(until deadline: ContinuousClock.Instant) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                condition.lock()
                if wokenEarly || stopped || Task.isCancelled {
                    wokenEarly = false
                    condition.unlock()
                    continuation.resume()
                    return
                }
                wakeup = (deadline, continuation)
                condition.signal()
                condition.unlock()
            }
        } onCancel: {
            self.wake()
        }
    }

    /// Ends the current ``wait(until:)`` at once, or the next one if nobody waits.
    package func wake() {
        condition.lock()
        let waiting = wakeup?.continuation
        wakeup = nil
        if waiting == nil { wokenEarly = true }
        condition.unlock()
        waiting?.resume()
    }

    /// Lets the thread run the jobs already queued, then end. Call it once the last task that
    /// prefers this executor has finished; it does not wait for the thread.
    package func shutdown() {
        condition.lock()
        stopped = true
        let waiting = wakeup?.continuation
        wakeup = nil
        condition.signal()
        condition.unlock()
        waiting?.resume()
    }

    private func runLoop() {
        let executor = asUnownedTaskExecutor()
        condition.lock()
        while true {
            if !jobs.isEmpty {
                let batch = jobs
                jobs.removeAll(keepingCapacity: true)
                condition.unlock()
                for job in batch { job.runSynchronously(on: executor) }
                condition.lock()
                continue
            }
            if let (deadline, continuation) = wakeup, deadline <= ContinuousClock.now {
                wakeup = nil
                condition.unlock()
                // Resuming enqueues the task on this executor; the loop picks it up next.
                continuation.resume()
                condition.lock()
                continue
            }
            if stopped { break }
            if let deadline = wakeup?.deadline {
                let remaining = ContinuousClock.now.duration(to: deadline)
                _ = condition.wait(until: Date().addingTimeInterval(max(remaining.seconds, 0)))
            } else {
                condition.wait()
            }
        }
        condition.unlock()
    }
}

/// The task executor that work started on behalf of the current task should prefer.
///
/// Set for the lease renewer's task (to ``WorkflowEngine/renewalExecutor``). Task executor
/// preference is inherited by child tasks but not by unstructured ones, so a driver that runs an
/// operation in a `Task` of its own (to bound it with a timeout) starts that task with
/// `Task(executorPreference: PreferredTaskExecutor.current)`: the renewal then stays off the
/// cooperative pool all the way to the database.
package enum PreferredTaskExecutor {
    @TaskLocal package static var current: (any TaskExecutor)?
}
