import EddaDiagram
import EddaVisualizer
import Testing

/// The calls on the context variable and how activities are named.
@Suite("Durable calls")
struct DurableCallTests {
    @Test("Every recognised context call, in source order, with kinds, step names and labels")
    func everyCall() throws {
        let steps = try stepsOf("""
            let reservation = try await context.run(Reserve(), input: input)
            try context.registerCompensation(Refund(), input: reservation)
            try await context.sleep(for: .seconds(10))
            try await context.sleep(until: Date(timeIntervalSince1970: 0))
            let paid = try await context.waitEvent("payment.received", as: Payment.self, timeout: .minutes(5))
            let plain = try await context.waitEvent("ping", as: String.self)
            try await context.subscribe("jobs", mode: .competing)
            let job = try await context.receive("jobs", as: Job.self)
            try await context.unsubscribe("jobs")
            try await context.publish("orders", data: paid.data)
            _ = try await context.sendTo(job.data.owner, data: plain.data)
            let handle = context.start(StepA(), input: input)
            _ = try await handle.value
            let when = try await context.now()
            let id = try await context.uuid()
            let roll = try await context.random(in: 1...6)
            context.logger.info("\\(when) \\(id) \\(roll)")
            try await context.recur(with: input + 1)
            """)
        #expect(steps == [
            activity("reserve", compensates: true),
            node(.compensation, "register compensation: refund_payment", "refund_payment"),
            node(.timer, "sleep(for: .seconds(10))", "sleep"),
            node(.timer, "sleep(until: Date(timeIntervalSince1970: 0))", "sleep_until"),
            node(.waitEvent, "wait event: payment.received (timeout: .minutes(5))", "receive_payment.received"),
            node(.waitEvent, "wait event: ping", "receive_ping"),
            node(.subscription, "subscribe: jobs", nil),
            node(.receive, "receive: jobs", "receive_jobs"),
            node(.subscription, "unsubscribe: jobs", nil),
            node(.publish, "publish: orders", "publish"),
            node(.publish, "send to: job.data.owner", "send_to"),
            activity("step_a"),
            node(.recur, "recur", nil),
        ])
    }

    @Test("Non-literal event types and channels: label shows the expression, no step name")
    func nonLiteralNames() throws {
        let steps = try stepsOf("""
            let type = "order.\\(input)"
            _ = try await context.waitEvent(type, as: String.self)
            _ = try await context.receive(Channels.jobs, as: String.self, timeout: .seconds(1))
            try await context.publish(Channels.jobs, data: input)
            return 0
            """)
        #expect(steps == [
            node(.waitEvent, "wait event: type", nil),
            node(.receive, "receive: Channels.jobs (timeout: .seconds(1))", nil),
            node(.publish, "publish: Channels.jobs", "publish"),
        ])
    }

    @Test("Explicit IDs: the part before the last colon is the step name")
    func explicitIDs() throws {
        let steps = try stepsOf("""
            _ = try await context.run(StepA(), input: input, id: "first:charge:1")
            _ = try await context.run(StepB(), input: input, id: "custom")
            _ = try await context.run(StepC(), input: input, id: "item:\\(input)")
            try await context.sleep(for: .seconds(1), id: "nap:1")
            return 0
            """)
        #expect(steps == [
            .node(FlowNode(kind: .activity, label: "step_a", stepName: "first:charge")),
            activity("step_b"),
            .node(FlowNode(kind: .activity, label: "step_c", stepName: "item")),
            node(.timer, "sleep(for: .seconds(1))", "nap"),
        ])
    }

    @Test("Activity types: unknown types keep their type name; other expressions keep their text")
    func unknownActivities() throws {
        let steps = try stepsOf("""
            _ = try await context.run(ExternalActivity(client: client), input: input)
            _ = try await context.run(makeActivity(), input: input)
            _ = try await context.run(Namespace.StepB(), input: input)
            _ = try await context.run(StepC.init(), input: input)
            return 0
            """)
        #expect(steps == [
            activity("ExternalActivity"),
            .node(FlowNode(kind: .activity, label: "makeActivity()", stepName: nil)),
            activity("step_b"),
            activity("step_c"),
        ])
    }

    @Test("An activity type without a name constant is known by its type name; compensationName defaults")
    func activityWithoutName() throws {
        let source = """
            struct Unnamed: CompensatableActivity {
                func run(_ input: Int, context: ActivityContext) async throws -> Int { input }
                func compensate(_ input: Int, output: Int, context: CompensationContext) async throws {}
            }
            struct Computed: Activity {
                static var name: String { "computed_name" }
                func run(_ input: Int, context: ActivityContext) async throws -> Int { input }
            }
            struct Flow: Workflow {
                func run(_ input: Int, context: WorkflowContext) async throws -> Int {
                    _ = try await context.run(Unnamed(), input: input)
                    return try await context.run(Computed(), input: input)
                }
            }
            """
        let flow = try onlyFlow(source)
        #expect(flow.workflowName == "Flow")
        #expect(flow.steps == [activity("Unnamed", compensates: true), activity("computed_name")])
    }

    @Test("ActivityDefinition bindings at file scope, as static members and as stored properties")
    func activityDefinitionBindings() throws {
        let source = """
            \(prelude)
            let greet = ActivityDefinition<String, String>(name: "greet") { name, _ in "Hello, \\(name)!" }

            enum Activities {
                static let shout = ActivityDefinition<String, String>(name: "shout", retryPolicy: .none) { text, _ in
                    text.uppercased()
                }
            }

            struct Greeter: Workflow {
                static let name = "greeter"
                static let whisper = ActivityDefinition<String, String>(name: "whisper") { text, _ in text }
                let reserve: Reserve
                let other = StepB()

                func run(_ name: String, context: WorkflowContext) async throws -> String {
                    _ = try await context.run(greet, input: name)
                    _ = try await context.run(Activities.shout, input: name)
                    _ = try await context.run(Self.whisper, input: name)
                    _ = try await context.run(Greeter.whisper, input: name)
                    _ = try await context.run(self.reserve, input: 1)
                    _ = try await context.run(other, input: 2)
                    return try await context.start(ActivityDefinition<Int, Int>(name: "inline") { value, _ in value }, input: 3).value
                }
            }
            """
        let flow = try onlyFlow(source)
        #expect(flow.workflowName == "greeter")
        #expect(flow.steps == [
            activity("greet"),
            activity("shout"),
            activity("whisper"),
            activity("whisper"),
            activity("reserve", compensates: true),
            activity("step_b"),
            activity("inline"),
        ])
    }

    @Test("Argument calls run first; calls on other variables and nested functions are ignored")
    func evaluationOrderAndScope() throws {
        let steps = try stepsOf("""
            func helper(_ other: WorkflowContext) async throws -> Int {
                try await context.run(StepC(), input: 0)
            }
            let other = OtherContext()
            _ = try await other.run(StepC(), input: input)
            _ = try await context.run(StepB(), input: try await context.run(StepA(), input: input))
            let values = try await [1, 2].asyncMap { value in
                try await context.run(StepC(), input: value)
            }
            return values.count
            """)
        #expect(steps == [activity("step_a"), activity("step_b"), activity("step_c")])
    }

    @Test("ActivityDefinition bodies and closures rebinding the context name are not workflow code")
    func activityBodiesNotDescended() throws {
        let source = """
            \(prelude)
            func register(app: EddaApp) {
                let emit = ActivityDefinition<String, String>(name: "emit") { id, context in
                    try context.publish("inside-activity", data: id)
                    return id
                }
                app.register(workflow: "emitter") { (id: String, context) -> String in
                    let local = ActivityDefinition<String, String>(name: "local") { id, _ in
                        try await context.sleep(for: .seconds(1))
                        return id
                    }
                    let mapped = items.map { context in context.run(StepA()) }
                    print(mapped)
                    _ = try await context.run(local, input: id)
                    return try await context.run(emit, input: id)
                }
            }
            """
        let flow = try onlyFlow(source)
        #expect(flow.workflowName == "emitter")
        #expect(flow.steps == [activity("local"), activity("emit")])
    }

    @Test("Labels: whitespace collapsed, comments removed, at most 60 characters, not escaped")
    func labels() throws {
        let steps = try stepsOf("""
            if input > 0 &&   // a comment
                input < 100 /* another */ && "<b>" != "&amp;" {
                _ = try await context.run(StepA(), input: input)
            }
            try await context.sleep(for: .seconds(someVeryLongFunctionName(withAnArgument: input, andAnother: input)))
            return 0
            """)
        #expect(steps == [
            branch(.condition, #"input > 0 && input < 100 && "<b>" != "&amp;""#, arm("Yes", activity("step_a")), arm("No")),
            node(.timer, "sleep(for: .seconds(someVeryLongFunctionName(withAnArgume...", "sleep"),
        ])
        if case .node(let timer) = steps.last {
            #expect(timer.label.count == 60)
        }
    }
}
