// edda-bench: the standard workloads of BENCHMARKS.md, one JSON line per run on stdout.
//
//   swift run -c release edda-bench seq3 --db sqlite:///tmp/bench.db
import ArgumentParser
import Edda
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

struct StepResult: Codable, Sendable {
    var step: String
    var x: Int
}

/// `step(x) -> {"step": name, "x": x}`: trivial, so the figures measure engine and database.
struct Step: Activity {
    static let name = "step"
    func run(_ x: Int, context: ActivityContext) async throws -> StepResult {
        StepResult(step: context.activityID, x: x)
    }
}

struct StepA: Activity {
    static let name = "step_a"
    func run(_ x: Int, context: ActivityContext) async throws -> StepResult { StepResult(step: "a", x: x) }
}

struct StepB: Activity {
    static let name = "step_b"
    func run(_ x: Int, context: ActivityContext) async throws -> StepResult { StepResult(step: "b", x: x) }
}

struct StepC: Activity {
    static let name = "step_c"
    func run(_ x: Int, context: ActivityContext) async throws -> StepResult { StepResult(step: "c", x: x) }
}

/// W1/W2/W7: three activities in sequence.
struct Seq3: Workflow {
    static let name = "seq3_wf"
    func run(_ n: Int, context: WorkflowContext) async throws -> [String: Int] {
        let a = try await context.run(StepA(), input: n)
        let b = try await context.run(StepB(), input: a.x + 1)
        let c = try await context.run(StepC(), input: b.x + 1)
        return ["a": a.x, "b": b.x, "c": c.x]
    }
}

/// W3: N activities in sequence.
struct Steps: Workflow {
    static let name = "steps_wf"
    func run(_ count: Int, context: WorkflowContext) async throws -> Int {
        var x = 0
        for _ in 0..<count { x = try await context.run(Step(), input: x + 1).x }
        return x
    }
}

@main
struct EddaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edda-bench",
        abstract: "Runs a standard Edda workload and prints one JSON line of figures.",
        discussion: "Workloads: seq3 (W1), conc3 (W2), steps100 (W3), memory (W7).")

    @Argument(help: "seq3 | conc3 | steps100 | memory")
    var workload: String

    @Option(help: "sqlite:///absolute/path.db (the file is recreated first)")
    var db: String

    @Option(help: "Number of workflows (or activities for steps100).")
    var n: Int?

    @Option(help: "Workflows in flight at once (conc3, memory).")
    var concurrency: Int = 16

    @Option(help: "A hard bound on the measured phase, in seconds.")
    var timeout: Double = 600

    @Option(help: "SQLite durability: full (default) or normal.")
    var durability: String = "full"

    mutating func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        guard db.hasPrefix("sqlite:///") else {
            throw ValidationError("--db must be sqlite:///absolute/path.db (PostgreSQL arrives with EddaPostgres)")
        }
        let path = String(db.dropFirst("sqlite://".count))
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let store = try SQLiteStore(path: path, durability: durability == "normal" ? .normal : .full)
        var configuration = EddaApp.Configuration(serviceName: "bench", database: .sqlite(path: path))
        configuration.runsBackgroundRecovery = false
        let app = try await EddaApp(configuration: configuration, store: store)
        app.register(Seq3())
        app.register(Steps())

        let wallStart = ContinuousClock.now
        let cpuStart = cpuSeconds()
        var figures: [String: JSONValue] = [:]
        var count = 0
        let deadline = ContinuousClock.now + .seconds(timeout)
        switch workload {
        case "seq3":
            count = n ?? 300
            for warm in 0..<5 { _ = try await app.run(Seq3.self, input: warm) }
            let before = store.writeStatistics
            var latencies: [Double] = []
            let start = ContinuousClock.now
            for index in 0..<count where ContinuousClock.now < deadline {
                let begin = ContinuousClock.now
                _ = try await app.run(Seq3.self, input: index)
                latencies.append((ContinuousClock.now - begin).milliseconds)
            }
            let elapsed = (ContinuousClock.now - start).seconds
            let after = store.writeStatistics
            await app.shutdown()
            let size = fileSize(path) + fileSize(path + "-wal")
            figures = [
                "wf_per_s": .number(Double(latencies.count) / elapsed),
                "lat_p50_ms": .number(percentile(latencies, 0.5)),
                "lat_p99_ms": .number(percentile(latencies, 0.99)),
                "commits_per_wf": .number(Double(after.transactions - before.transactions) / Double(latencies.count)),
                "sqlite_fsync_commits_per_wf": .number(Double(after.commits - before.commits) / Double(latencies.count)),
                "db_bytes_per_instance": .number(Double(size) / Double(latencies.count + 5)),
                "completed": .number(Double(latencies.count)),
            ]
        case "conc3", "memory":
            count = n ?? (workload == "memory" ? 5_000 : 500)
            let before = store.writeStatistics
            let start = ContinuousClock.now
            let (latencies, errors) = await runConcurrently(app: app, count: count, concurrency: concurrency, deadline: deadline)
            let elapsed = (ContinuousClock.now - start).seconds
            let after = store.writeStatistics
            await app.shutdown()
            figures = [
                "wf_per_s": .number(Double(latencies.count) / elapsed),
                "lat_p50_ms": .number(percentile(latencies, 0.5)),
                "lat_p99_ms": .number(percentile(latencies, 0.99)),
                "errors": .number(Double(errors)),
                "commits_per_wf": .number(Double(after.transactions - before.transactions) / Double(max(latencies.count, 1))),
                "sqlite_fsync_commits_per_wf": .number(Double(after.commits - before.commits) / Double(max(latencies.count, 1))),
                "concurrency": .number(Double(concurrency)),
            ]
        case "steps100":
            count = n ?? 100
            _ = try await app.run(Steps.self, input: 5)
            var totals: [Double] = []
            for _ in 0..<3 {
                let begin = ContinuousClock.now
                _ = try await app.run(Steps.self, input: count)
                totals.append((ContinuousClock.now - begin).milliseconds)
            }
            await app.shutdown()
            let median = percentile(totals, 0.5)
            figures = ["total_ms_median": .number(median), "per_activity_ms": .number(median / Double(count))]
        default:
            throw ValidationError("unknown workload '\(workload)'; use seq3, conc3, steps100 or memory")
        }
        let timedOut = ContinuousClock.now >= deadline
        var line: [String: JSONValue] = [
            "workload": .string(workload), "impl": .string("edda-swift"), "db": .string("sqlite"),
            "durability": .string(durability), "n": .number(Double(count)),
            "cpu_s": .number(cpuSeconds() - cpuStart), "wall_s": .number((ContinuousClock.now - wallStart).seconds),
            "peak_rss_mib": .number(peakRSSMiB()),
        ]
        if timedOut { line["timed_out"] = .bool(true) }
        line.merge(figures) { $1 }
        print(JSONValue.object(line).jsonText)
    }

    private func runConcurrently(app: EddaApp, count: Int, concurrency: Int, deadline: ContinuousClock.Instant) async -> ([Double], Int) {
        await withTaskGroup(of: (Double, Bool).self) { group in
            var latencies: [Double] = []
            var errors = 0
            var next = 0
            func add() {
                let index = next
                next += 1
                group.addTask {
                    let begin = ContinuousClock.now
                    do {
                        _ = try await app.run(Seq3.self, input: index)
                        return ((ContinuousClock.now - begin).milliseconds, true)
                    } catch {
                        return ((ContinuousClock.now - begin).milliseconds, false)
                    }
                }
            }
            while next < min(concurrency, count) { add() }
            while let (latency, ok) = await group.next() {
                if ok { latencies.append(latency) } else { errors += 1 }
                if next < count, ContinuousClock.now < deadline { add() }
            }
            return (latencies, errors)
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Double { seconds * 1000 }
}

func percentile(_ values: [Double], _ fraction: Double) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    let index = min(sorted.count - 1, Int((Double(sorted.count - 1) * fraction).rounded()))
    return (sorted[index] * 1000).rounded() / 1000
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

func peakRSSMiB() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
    else { return 0 }
    let kib = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    return (kib / 1024 * 10).rounded() / 10
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
}
