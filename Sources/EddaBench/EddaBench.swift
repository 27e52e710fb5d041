// edda-bench: the standard workloads of BENCHMARKS.md, one JSON line per run on stdout.
//
//   swift run -c release edda-bench seq3 --db sqlite:////tmp/bench.db
import ArgumentParser
import Edda
import EddaSQLite
import EddaPostgres
import Foundation
import InMemoryTracing
import Logging
import MetricsTestKit
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct StepResult: Codable, Sendable {
    var step: String
    var x: Int
}

/// Busy CPU time each activity spends (`--activity-cpu-us`; none by default).
let activityCPU = Atomic<Int>(0)

/// Spends ``activityCPU`` microseconds of busy CPU time, if any.
func spendActivityCPU() {
    let microseconds = activityCPU.load(ordering: .relaxed)
    if microseconds > 0 { busyWait(.microseconds(microseconds)) }
}

/// Keeps this thread busy for `duration` (a sleep would let the CPU idle, which costs a wake-up).
func busyWait(_ duration: Duration) {
    let until = ContinuousClock.now + duration
    while ContinuousClock.now < until {}
}

/// `step(x) -> {"step": name, "x": x}`: trivial, so the figures measure engine and database.
struct Step: Activity {
    static let name = "step"
    func run(_ x: Int, context: ActivityContext) async throws -> StepResult {
        spendActivityCPU()
        return StepResult(step: context.activityID, x: x)
    }
}

struct StepA: Activity {
    static let name = "step_a"
    func run(_ x: Int, context: ActivityContext) async throws -> StepResult {
        spendActivityCPU()
        return StepResult(step: "a", x: x)
    }
}

struct StepB: Activity {
    static let name = "step_b"
    func run(_ x: Int, context: ActivityContext) async throws -> StepResult {
        spendActivityCPU()
        return StepResult(step: "b", x: x)
    }
}

struct StepC: Activity {
    static let name = "step_c"
    func run(_ x: Int, context: ActivityContext) async throws -> StepResult {
        spendActivityCPU()
        return StepResult(step: "c", x: x)
    }
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

/// Wall-clock instants recorded by activities and hooks, by key.
final class Marks: Sendable {
    private let box = LockedMarks()
    func mark(_ key: String) { box.set(key, ContinuousClock.now) }
    func instant(_ key: String) -> ContinuousClock.Instant? { box.get(key) }
}

final class LockedMarks: @unchecked Sendable {
    private let lock = NSLock()
    private var marks: [String: ContinuousClock.Instant] = [:]
    func set(_ key: String, _ instant: ContinuousClock.Instant) { lock.withLock { marks[key] = instant } }
    func get(_ key: String) -> ContinuousClock.Instant? { lock.withLock { marks[key] } }
}

/// Marks `"<instance>/<label>"` when it runs.
struct Mark: Activity {
    static let name = "mark"
    let marks: Marks
    func run(_ label: String, context: ActivityContext) async throws -> String {
        marks.mark("\(context.instanceID)/\(label)")
        return label
    }
}

/// W4: 100 activities, then a wait for an event, then one more step.
struct Replay100: Workflow {
    static let name = "replay100_wf"
    let marks: Marks
    func run(_ count: Int, context: WorkflowContext) async throws -> Int {
        var x = 0
        for _ in 0..<count { x = try await context.run(Step(), input: x + 1).x }
        let event = try await context.waitEvent("replay.go", as: [String: Int].self)
        _ = try await context.run(Mark(marks: marks), input: "resumed")
        return x + (event.data["n"] ?? 0)
    }
}

/// W5: waits for one event.
struct EventWaiter: Workflow {
    static let name = "event_wait_wf"
    func run(_ n: Int, context: WorkflowContext) async throws -> Int {
        let event = try await context.waitEvent("latency.go", as: [String: Int].self)
        return n + (event.data["n"] ?? 0)
    }
}

/// W6: marks, sleeps one second, marks.
struct TimerWorkflow: Workflow {
    static let name = "timer_wf"
    let marks: Marks
    func run(_ n: Int, context: WorkflowContext) async throws -> Int {
        _ = try await context.run(Mark(marks: marks), input: "before")
        try await context.sleep(for: .seconds(1))
        _ = try await context.run(Mark(marks: marks), input: "after")
        return n
    }
}

@main
struct EddaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edda-bench",
        abstract: "Runs a standard Edda workload and prints one JSON line of figures.",
        discussion: """
            Workloads: seq3 (W1), conc3 (W2), steps100 (W3), replay100 (W4), event_latency (W5), timer (W6), memory (W7), \
            and floor: the raw commit floor (N=1,000 single-row INSERT transactions on the same kind of database; \
            SQLite: a scratch file in the same folder with the same durability; on SQLite also the step floor, N raw \
            step commits on the shared schema — an instance row's compare-and-set UPDATE and one history INSERT; \
            on SQLite and PostgreSQL the workflow floor, the five raw commits of a three-activity workflow: start, \
            three steps, finish, with no engine; PostgreSQL: in a scratch database <name>_floor on the same server). \
            --floor adds them to any workload's line.
            """)

    @Argument(help: "seq3 | conc3 | steps100 | replay100 | event_latency | timer | memory | floor")
    var workload: String

    @Option(help: "sqlite:////absolute/path.db or sqlite:///relative.db (the file is recreated first), or postgresql://…/edda_bench… or mysql://…/edda_bench… (dropped and recreated first)")
    var db: String

    @Option(help: "event_latency: where the events come from, process (another process; the default on PostgreSQL and MySQL) or in-process (the default on SQLite).")
    var sender: String?

    @Option(help: "Number of workflows (or activities for steps100).")
    var n: Int?

    @Option(help: "Workflows in flight at once (conc3, memory).")
    var concurrency: Int = 16

    @Option(help: "A hard bound on the measured phase, in seconds.")
    var timeout: Double = 600

    @Option(help: "SQLite durability: full (default) or normal.")
    var durability: String = "full"

    @Flag(help: "Also measure the raw commit floor first, in the same run: floor_commits_per_s and floor_commit_ms.")
    var floor = false

    @Option(help: "Busy CPU time before each of the floors' commits, in microseconds (default 0: back to back); only the commits are timed. A workload's engine spends CPU between its commits, and a disk may commit back-to-back commits faster than spaced ones.")
    var floorSpacingUs: Int = 0

    @Option(help: "Busy CPU time each activity spends, in microseconds (default 0: trivial activities). Shows what CPU between a workload's commits costs on this disk, next to --floor-spacing-us.")
    var activityCpuUs: Int = 0

    @Option(help: "Where the app's metrics go: default (the process's MetricsSystem, not bootstrapped here: discarded) or memory (an in-memory backend that keeps every value, swift-metrics' TestMetrics), to measure the instrumentation's cost.")
    var metrics: String = "default"

    @Option(help: "Where the app's spans go: default (the process's InstrumentationSystem tracer, not bootstrapped here: a no-op) or memory (swift-distributed-tracing's in-memory tracer, which keeps every span), to measure the tracing's cost.")
    var tracing: String = "default"

    mutating func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        if let sender, !["process", "in-process"].contains(sender) {
            throw ValidationError("--sender must be process or in-process; got '\(sender)'")
        }
        if workload == "sender" {
            try await runSender()
            return
        }
        guard ["default", "memory"].contains(metrics) else {
            throw ValidationError("--metrics must be default or memory; got '\(metrics)'")
        }
        guard ["default", "memory"].contains(tracing) else {
            throw ValidationError("--tracing must be default or memory; got '\(tracing)'")
        }
        guard (0...1_000_000).contains(floorSpacingUs) else {
            throw ValidationError("--floor-spacing-us must be between 0 and 1000000; got \(floorSpacingUs)")
        }
        guard (0...1_000_000).contains(activityCpuUs) else {
            throw ValidationError("--activity-cpu-us must be between 0 and 1000000; got \(activityCpuUs)")
        }
        activityCPU.store(activityCpuUs, ordering: .relaxed)
        let database = try await BenchDatabase.open(db, durability: durability)
        var floorFigures: [String: JSONValue] = [:]
        if floor || workload == "floor" {
            let commits = workload == "floor" ? n ?? 1_000 : 1_000
            let spacing = Duration.microseconds(floorSpacingUs)
            let rate = try await database.commitFloor(count: commits, durability: durability, spacing: spacing)
            floorFigures = ["floor_commits_per_s": .number(rate), "floor_commit_ms": .number(1_000 / rate)]
            if floorSpacingUs > 0 { floorFigures["floor_spacing_us"] = .number(Double(floorSpacingUs)) }
            if let stepRate = try database.stepCommitFloor(count: commits, durability: durability, spacing: spacing) {
                floorFigures["step_floor_commits_per_s"] = .number(stepRate)
                floorFigures["step_floor_commit_ms"] = .number(1_000 / stepRate)
            }
            if let workflowRate = try await database.workflowCommitFloor(count: commits, durability: durability, spacing: spacing) {
                floorFigures["workflow_floor_commits_per_s"] = .number(workflowRate)
                floorFigures["workflow_floor_ms"] = .number(5_000 / workflowRate)
            }
            if workload == "floor" {
                try await database.store.close()
                let line: [String: JSONValue] = [
                    "workload": .string(workload), "impl": .string("edda-swift"), "db": .string(database.kind),
                    "durability": .string(durability), "n": .number(Double(commits)),
                    "commits_per_s": .number(rate), "commit_ms": .number(1_000 / rate),
                ].merging(floorFigures.filter { $0.key.hasPrefix("step_") || $0.key.hasPrefix("workflow_") || $0.key.hasSuffix("_us") }) { $1 }
                print(JSONValue.object(line).jsonText)
                return
            }
        }
        let path = database.sqlitePath ?? ""
        var configuration = EddaApp.Configuration(serviceName: "bench", database: .sqlite(path: path))
        // Timers need the wait scheduler, and events from another process need the wake-ups; the
        // other workloads run without background services.
        let crossProcess = (sender ?? (database.isServer ? "process" : "in-process")) == "process"
        configuration.runsBackgroundRecovery = workload == "timer" || (workload == "event_latency" && crossProcess)
        if metrics == "memory" { configuration.metricsFactory = TestMetrics() }
        if tracing == "memory" { configuration.tracer = InMemoryTracer() }
        let store = database.store
        let app = try await EddaApp(configuration: configuration, store: store)
        let marks = Marks()
        app.register(Seq3())
        app.register(Steps())
        app.register(Replay100(marks: marks))
        app.register(EventWaiter())
        app.register(TimerWorkflow(marks: marks))

        let wallStart = ContinuousClock.now
        let cpuStart = cpuSeconds()
        var figures: [String: JSONValue] = [:]
        var count = 0
        let deadline = ContinuousClock.now + .seconds(timeout)
        switch workload {
        case "seq3":
            count = n ?? 300
            for warm in 0..<5 { _ = try await app.run(Seq3.self, input: warm) }
            let before = await database.statistics()
            var latencies: [Double] = []
            let start = ContinuousClock.now
            for index in 0..<count where ContinuousClock.now < deadline {
                let begin = ContinuousClock.now
                _ = try await app.run(Seq3.self, input: index)
                latencies.append((ContinuousClock.now - begin).milliseconds)
            }
            let elapsed = (ContinuousClock.now - start).seconds
            let after = await database.statistics()
            await app.shutdown()
            let size = database.isServer ? 0 : fileSize(path) + fileSize(path + "-wal")
            figures = [
                "wf_per_s": .number(Double(latencies.count) / elapsed),
                "lat_p50_ms": .number(percentile(latencies, 0.5)),
                "lat_p99_ms": .number(percentile(latencies, 0.99)),
                "commits_per_wf": perWorkflow(before, after, \.transactions, latencies.count),
                "sqlite_fsync_commits_per_wf": perWorkflow(before, after, \.commits, latencies.count),
                "db_bytes_per_instance": .number(Double(size) / Double(latencies.count + 5)),
                "completed": .number(Double(latencies.count)),
            ]
        case "conc3", "memory":
            count = n ?? (workload == "memory" ? 5_000 : 500)
            let before = await database.statistics()
            let start = ContinuousClock.now
            let (latencies, errors) = await runConcurrently(app: app, count: count, concurrency: concurrency, deadline: deadline)
            let elapsed = (ContinuousClock.now - start).seconds
            let after = await database.statistics()
            await app.shutdown()
            figures = [
                "wf_per_s": .number(Double(latencies.count) / elapsed),
                "lat_p50_ms": .number(percentile(latencies, 0.5)),
                "lat_p99_ms": .number(percentile(latencies, 0.99)),
                "errors": .number(Double(errors)),
                "commits_per_wf": perWorkflow(before, after, \.transactions, latencies.count),
                "sqlite_fsync_commits_per_wf": perWorkflow(before, after, \.commits, latencies.count),
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
        case "replay100":
            count = n ?? 20
            let steps = 100
            var endToEnd: [Double] = []
            var resumes: [Double] = []
            for run in 0..<(count + 2) where ContinuousClock.now < deadline {
                let id = try await app.start(Replay100.self, input: steps)
                let begin = ContinuousClock.now
                try await app.sendEvent(CloudEventAttributes(type: "replay.go", source: "/bench"), data: ["n": 1], to: id)
                let delivered = ContinuousClock.now
                _ = try await app.result(of: id, as: Int.self)
                let done = ContinuousClock.now
                guard run >= 2 else { continue }  // warm-up
                endToEnd.append((done - begin).milliseconds)
                if let resumed = marks.instant("\(id)/resumed") { resumes.append((resumed - delivered).milliseconds) }
            }
            await app.shutdown()
            let resume = percentile(resumes, 0.5)
            figures = [
                "e2e_ms_median": .number(percentile(endToEnd, 0.5)),
                "resume_ms_median": .number(resume),
                "resume_us_per_cached_step": .number((resume * 1000 / Double(steps) * 1000).rounded() / 1000),
                "e2e_ms_max": .number(endToEnd.max() ?? 0),
                "cached_steps": .number(Double(steps)),
            ]
        case "event_latency":
            count = n ?? 50
            // Two untimed deliveries first, as the other latency workloads warm up: the first
            // delivery in a process compiles its statements. Its latency is reported separately.
            let warmups = 2
            var ids: [String] = []
            for index in 0..<(count + warmups) { ids.append(try await app.start(EventWaiter.self, input: index)) }
            var latencies: [Double] = []
            // From another process (PostgreSQL's LISTEN/NOTIFY or MySQL's poll wakes this one), or
            // from this one.
            let sender = crossProcess ? try SenderProcess(db: db) : nil
            defer { sender?.stop() }
            for id in ids where ContinuousClock.now < deadline {
                let begin = ContinuousClock.now
                if let sender {
                    try sender.send(to: id)
                } else {
                    try await app.sendEvent(CloudEventAttributes(type: "latency.go", source: "/bench"), data: ["n": 1], to: id)
                }
                _ = try await app.result(of: id, as: Int.self, pollInterval: .seconds(5))
                latencies.append((ContinuousClock.now - begin).milliseconds)
            }
            await app.shutdown()
            let first = latencies.first ?? 0
            latencies.removeFirst(min(warmups, latencies.count))
            figures = [
                "lat_p50_ms": .number(percentile(latencies, 0.5)),
                "lat_p99_ms": .number(percentile(latencies, 0.99)),
                "lat_max_ms": .number(latencies.max() ?? 0),
                "first_delivery_ms": .number(first),
                "warmups": .number(Double(warmups)),
                "delivered": .number(Double(latencies.count)),
            ]
        case "timer":
            count = n ?? 20
            let spread = 10.0
            var ids: [String] = []
            for index in 0..<count where ContinuousClock.now < deadline {
                ids.append(try await app.startDetached(TimerWorkflow.self, input: index))
                try await Task.sleep(for: .seconds(spread / Double(count)))
            }
            var delays: [Double] = []
            for id in ids {
                _ = try await app.result(of: id, as: Int.self, pollInterval: .milliseconds(50))
                if let before = marks.instant("\(id)/before"), let after = marks.instant("\(id)/after") {
                    delays.append(max(0, (after - before).milliseconds - 1000))
                }
            }
            await app.shutdown()
            figures = [
                "delay_p50_ms": .number(percentile(delays, 0.5)),
                "delay_p99_ms": .number(percentile(delays, 0.99)),
                "delay_max_ms": .number(delays.max() ?? 0),
                "timers": .number(Double(delays.count)),
            ]
        default:
            throw ValidationError(
                "unknown workload '\(workload)'; use seq3, conc3, steps100, replay100, event_latency, timer, memory or floor")
        }
        let timedOut = ContinuousClock.now >= deadline
        var line: [String: JSONValue] = [
            "workload": .string(workload), "impl": .string("edda-swift"), "db": .string(database.kind),
            "durability": .string(durability), "n": .number(Double(count)), "metrics": .string(metrics), "tracing": .string(tracing),
            "cpu_s": .number(cpuSeconds() - cpuStart), "wall_s": .number((ContinuousClock.now - wallStart).seconds),
            "peak_rss_mib": .number(peakRSSMiB()),
        ]
        if timedOut { line["timed_out"] = .bool(true) }
        if activityCpuUs > 0 { line["activity_cpu_us"] = .number(Double(activityCpuUs)) }
        line.merge(figures) { $1 }
        line.merge(floorFigures) { $1 }
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
    var milliseconds: Double { seconds * 1000 }
}

/// A counter's increase per workflow, or `null` where the backend has no counter.
func perWorkflow(
    _ before: (transactions: Int, commits: Int)?, _ after: (transactions: Int, commits: Int)?,
    _ counter: KeyPath<(transactions: Int, commits: Int), Int>, _ count: Int
) -> JSONValue {
    guard let before, let after else { return .null }
    return .number(Double(after[keyPath: counter] - before[keyPath: counter]) / Double(max(count, 1)))
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
