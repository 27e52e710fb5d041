// Child processes of the tests: descriptors they must not inherit, and ending them with a bound.
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Makes a `posix_spawn` child close every descriptor from `lowest` up (add it after the actions
/// that put descriptors in place), so that no child — above all a server that outlives the
/// test, such as PostgreSQL started by `pg_ctl` — holds a pipe or socket of this process open.
///
/// Foundation's `Process` learns that its child ended when a socket it shares with that child
/// reaches its end. A PostgreSQL server started at the same moment inherited that socket, kept
/// it open, and the worker's exit was never seen: it stayed a zombie, `isRunning` stayed `true`
/// and `waitUntilExit()` never returned (a crash test held until its time limit, beside three CPU
/// burners).
public func closeInheritedDescriptors(from lowest: Int32, in actions: inout posix_spawn_file_actions_t) {
    if let closeFrom = spawnAddCloseFrom {
        // glibc 2.34 and later: every one of them, when the child starts.
        _ = closeFrom(&actions, lowest)
        return
    }
    // Those open now (one closed meanwhile is skipped by posix_spawn).
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
        if let descriptor = Int32(name), descriptor >= lowest { posix_spawn_file_actions_addclose(&actions, descriptor) }
    }
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np`, which Swift's Glibc module does not import.
private let spawnAddCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
    guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
    return unsafeBitCast(
        symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
}()

extension Process {
    /// Sends `signal` (unless the process has ended) and waits until the process has ended: at
    /// most `timeout`, then it sends SIGKILL and waits as long again. Returns whether it ended.
    ///
    /// It polls `isRunning`, which Foundation's own thread updates, instead of `waitUntilExit()`,
    /// which spins the calling thread's run loop and never returns if the exit is missed.
    @discardableResult
    public func stop(with signal: Int32 = SIGTERM, timeout: Duration = .seconds(60)) -> Bool {
        guard isRunning else { return true }
        kill(processIdentifier, signal)
        if waitForExit(timeout: timeout) { return true }
        guard signal != SIGKILL else { return false }
        kill(processIdentifier, SIGKILL)
        return waitForExit(timeout: timeout)
    }

    /// Waits until the process has ended, at most `timeout`; whether it did.
    public func waitForExit(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isRunning {
            if ContinuousClock.now >= deadline { return false }
            usleep(5_000)
        }
        return true
    }
}
