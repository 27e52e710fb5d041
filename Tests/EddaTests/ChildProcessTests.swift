#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// The tests' own child processes: what they inherit, and how they are ended.
@Suite("Test child processes", .timeLimit(.minutes(2)))
struct ChildProcessTests {
    /// Whether a child started by `spawnAndWait` has descriptor `descriptor` of this process open.
    private func childSees(_ descriptor: Int32) throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("edda-fd-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let exit = try spawnAndWait(
            ["/bin/sh", "-c", "if [ -e /proc/$$/fd/\(descriptor) ]; then echo inherited; else echo closed; fi"],
            standardOutput: output, standardError: nil)
        #expect(exit.code == 0)
        return try String(contentsOfFile: output, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("a spawned child (a server pg_ctl leaves running, say) holds none of this process's pipes or sockets open")
    func childrenInheritNoDescriptors() throws {
        // Neither end is close-on-exec, like the socket Foundation's Process shares with its child.
        var ends: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer { for end in ends { close(end) } }
        #expect(try childSees(ends[1]) == "closed")
        // The check itself sees what it should: its own standard output is open.
        #expect(try childSees(1) == "inherited")
    }

    @Test("stop() ends a child that exits on SIGTERM, and one that ignores SIGTERM with SIGKILL after the timeout")
    func stopEndsChildren() throws {
        // Python sets SIGTERM's disposition and unblocks it itself (a shell cannot undo an
        // ignored signal it inherits, and a child inherits the mask of the thread that spawned it). No grandchild: one would hold
        // Foundation's socket open after its parent died (see `closeInheritedDescriptors`).
        func python(_ disposition: String) throws -> Process {
            try Process.run(
                URL(fileURLWithPath: "/usr/bin/env"),
                arguments: [
                    "python3", "-c",
                    "import signal, time; signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM}); "
                        + "signal.signal(signal.SIGTERM, signal.\(disposition)); time.sleep(60)",
                ])
        }
        let polite = try python("SIG_DFL")
        // Until Python has reset it, SIGTERM may be ignored or blocked, as in this process.
        try #require(waitForSIGTERM(ignored: false, by: polite.processIdentifier))
        var start = ContinuousClock.now
        #expect(polite.stop(timeout: .seconds(30)))
        #expect(polite.terminationReason == .uncaughtSignal && polite.terminationStatus == SIGTERM)
        #expect(ContinuousClock.now - start < .seconds(30))

        let stubborn = try python("SIG_IGN")
        // Until Python has ignored it, SIGTERM may end it.
        try #require(waitForSIGTERM(ignored: true, by: stubborn.processIdentifier))
        start = ContinuousClock.now
        #expect(stubborn.stop(timeout: .seconds(1)))
        #expect(stubborn.terminationReason == .uncaughtSignal && stubborn.terminationStatus == SIGKILL)
        #expect(ContinuousClock.now - start >= .seconds(1))
    }

    /// Waits (at most 30 s) until process `pid` ignores SIGTERM, or until it neither ignores nor
    /// blocks it, as `/proc/<pid>/status` says.
    private func waitForSIGTERM(ignored: Bool, by pid: pid_t) -> Bool {
        func has(_ field: String, in status: [Substring]) -> Bool? {
            guard let line = status.first(where: { $0.hasPrefix(field + ":") }),
                  let mask = UInt64(line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces), radix: 16)
            else { return nil }
            return mask & (1 << (UInt64(SIGTERM) - 1)) != 0
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let status = ((try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? "").split(separator: "\n")
            if let ignoring = has("SigIgn", in: status), let blocking = has("SigBlk", in: status),
               ignored ? ignoring : !ignoring && !blocking {
                return true
            }
            usleep(10_000)
        }
        return false
    }
}
