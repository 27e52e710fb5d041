import EddaDiagram
import EddaVisualizer
import Foundation
import Testing

/// Finding workflows: types, closures, names, context parameters, several sources, files.
@Suite("Finding workflows")
struct DiscoveryTests {
    @Test("A workflow with a different context parameter name")
    func otherContextName() throws {
        let steps = try stepsOf("""
            _ = try await ctx.run(StepA(), input: input)
            try await ctx.sleep(for: .seconds(1))
            _ = try await context.run(StepB(), input: input)
            return 0
            """, context: "ctx")
        #expect(steps == [activity("step_a"), node(.timer, "sleep(for: .seconds(1))", "sleep")])
    }

    @Test("Closure workflows: trailing closure, last argument, shorthand and anonymous parameters")
    func closureWorkflows() throws {
        let source = """
            \(prelude)
            let hello = ActivityDefinition<String, String>(name: "say_hello") { name, _ in "Hello, \\(name)" }

            func setUp(app: EddaApp) {
                app.register(workflow: "greet") { (name: String, context) in
                    try await context.run(hello, input: name)
                }
                app.register(workflow: "short", version: "2") { input, ctx in
                    try await ctx.sleep(for: .seconds(1))
                    return try await ctx.run(StepA(), input: input)
                }
                app.register(workflow: "argument", { (input: Int, context: WorkflowContext) -> Int in
                    try await context.publish("numbers", data: input)
                    return input
                })
                app.register(workflow: "anonymous", handlingEvents: "thing.happened") { (_: Int, _) in
                    try await $1.run(StepB(), input: 0)
                }
                app.register(workflow: "dollar") {
                    let pairs = table.map { $1.run(StepA(), input: $0) }
                    return try await $1.run(StepC(), input: pairs.count)
                }
                app.register(BookTrip())
            }
            """
        let flows = WorkflowAnalyzer().analyze(source: source)
        #expect(flows == [
            WorkflowFlow(workflowName: "greet", steps: [activity("say_hello")]),
            WorkflowFlow(
                workflowName: "short", steps: [node(.timer, "sleep(for: .seconds(1))", "sleep"), activity("step_a")]),
            WorkflowFlow(workflowName: "argument", steps: [node(.publish, "publish: numbers", "publish")]),
            WorkflowFlow(workflowName: "anonymous", steps: []),
            WorkflowFlow(workflowName: "dollar", steps: [activity("step_c")]),
        ])
    }

    @Test("Workflow names: static let name, else the type name; run in an extension; source order")
    func namesAndOrder() throws {
        let source = """
            \(prelude)
            struct Second: Workflow {
                func run(_ input: Int, context: WorkflowContext) async throws -> Int {
                    try await context.run(StepB(), input: input)
                }
            }
            struct NotAWorkflow {
                func run(_ input: Int, context: WorkflowContext) async throws -> Int {
                    try await context.run(StepA(), input: input)
                }
            }
            protocol AuditedWorkflow: Workflow {}
            struct Third: AuditedWorkflow {
                static let name = "third"
            }
            extension Third {
                func run(_ input: Int, context: Edda.WorkflowContext) async throws -> Int {
                    try await context.run(StepC(), input: input)
                }
            }
            """
        let flows = WorkflowAnalyzer().analyze(source: source)
        #expect(flows == [
            WorkflowFlow(workflowName: "Second", steps: [activity("step_b")]),
            WorkflowFlow(workflowName: "third", steps: [activity("step_c")]),
        ])
    }

    @Test("Several sources: declarations in one resolve names in the others")
    func severalSources() throws {
        let activities = """
            struct Charge: CompensatableActivity {
                static let name = "charge_card"
                static let compensationName = "refund_card"
                func run(_ input: Int, context: ActivityContext) async throws -> Int { input }
                func compensate(_ input: Int, output: Int, context: CompensationContext) async throws {}
            }
            enum Shared {
                static let notify = ActivityDefinition<Int, Int>(name: "notify") { value, _ in value }
            }
            extension Billing: Workflow {}
            """
        let workflows = """
            struct Billing {
                static let name = "billing"
                func run(_ input: Int, context: WorkflowContext) async throws -> Int {
                    _ = try await context.run(Charge(), input: input)
                    return try await context.run(Shared.notify, input: input)
                }
            }
            """
        let flows = WorkflowAnalyzer().analyze(sources: [activities, workflows])
        #expect(flows == [
            WorkflowFlow(workflowName: "billing", steps: [activity("charge_card", compensates: true), activity("notify")])
        ])
        // Alone, the workflow file does not know Billing is a workflow.
        #expect(WorkflowAnalyzer().analyze(source: workflows).isEmpty)
    }

    @Test("A file with no workflows gives no flows")
    func noWorkflows() {
        #expect(WorkflowAnalyzer().analyze(source: prelude).isEmpty)
        #expect(WorkflowAnalyzer().analyze(source: "").isEmpty)
        #expect(WorkflowAnalyzer().analyze(sources: []).isEmpty)
    }

    @Test("Broken source: no crash, the recognisable part is returned")
    func brokenSource() throws {
        let source = """
            \(prelude)
            struct Broken: Workflow {
                static let name = "broken"
                func run(_ input: Int, context: WorkflowContext) async throws -> Int {
                    _ = try await context.run(StepA(), input: input)
                    if input > {
                        _ = try await context.run(StepB(), input: input
                    }
                    let = 
                    try await context.sleep(for: .seconds(1))
            """
        let flows = WorkflowAnalyzer().analyze(source: source)
        #expect(flows.map(\.workflowName) == ["broken"])
        let nodes = flows.first?.nodes ?? []
        #expect(nodes.map(\.stepName) == ["step_a", "step_b", "sleep"])
        // Garbage and a truncated file do not crash either.
        for garbage in ["}}}} struct : Workflow { func run(", "app.register(workflow: ) { ", "context.run(", "\u{0}\u{1}"] {
            _ = WorkflowAnalyzer().analyze(source: garbage)
        }
    }
}

/// Reading files and directories.
@Suite("Reading paths")
struct PathTests {
    /// A fresh temporary directory.
    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("edda-visualizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test("A missing path throws an error naming it")
    func missingPath() throws {
        let path = "/nonexistent/edda-visualizer/Workflows.swift"
        let error = try #require(throws: WorkflowAnalyzerError.self) {
            try WorkflowAnalyzer().analyze(paths: [path])
        }
        #expect(error.path == path)
        #expect(error.message.contains(path))
        #expect(error.description == error.message)
    }

    @Test("A file that is not UTF-8 text throws an error naming it")
    func notText() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("Binary.swift")
        try Data([0xFF, 0xFE, 0xC3, 0x28, 0x00]).write(to: file)
        let error = try #require(throws: WorkflowAnalyzerError.self) {
            try WorkflowAnalyzer().analyze(paths: [directory.path])
        }
        #expect(error.path == file.path)
        #expect(error.message.contains(file.path))
    }

    @Test("Directories are searched recursively for .swift files, sorted, hidden ones skipped")
    func directories() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let manager = FileManager.default
        try manager.createDirectory(at: directory.appendingPathComponent("b/nested"), withIntermediateDirectories: true)
        try manager.createDirectory(at: directory.appendingPathComponent(".hidden"), withIntermediateDirectories: true)
        func write(_ relative: String, _ text: String) throws {
            try text.write(to: directory.appendingPathComponent(relative), atomically: true, encoding: .utf8)
        }
        func workflow(_ name: String) -> String {
            """
            struct \(name.capitalized): Workflow {
                static let name = "\(name)"
                func run(_ input: Int, context: WorkflowContext) async throws -> Int {
                    try await context.run(Shared(), input: input)
                }
            }
            """
        }
        try write("a.swift", workflow("alpha"))
        try write("b/nested/c.swift", workflow("gamma"))
        try write("b/beta.swift", workflow("beta"))
        try write("b/notes.txt", workflow("ignored"))
        try write(".hidden/h.swift", workflow("hidden"))
        try write("shared.swift", "struct Shared: Activity { static let name = \"shared_step\" }")

        let flows = try WorkflowAnalyzer().analyze(paths: [directory.path])
        #expect(flows.map(\.workflowName) == ["alpha", "beta", "gamma"])
        #expect(flows.allSatisfy { $0.steps == [activity("shared_step")] })

        // A file named explicitly is read whatever its extension, in the order given.
        let explicit = try WorkflowAnalyzer().analyze(paths: [
            directory.appendingPathComponent("b/notes.txt").path, directory.appendingPathComponent("a.swift").path,
        ])
        #expect(explicit.map(\.workflowName) == ["ignored", "alpha"])
        #expect(explicit.allSatisfy { $0.steps == [activity("Shared")] })
    }
}
