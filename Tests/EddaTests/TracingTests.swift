@testable import Edda
import EddaSQLite
import EddaTesting
import Foundation
import InMemoryTracing
import Testing
import TestSupport
import Tracing

/// The spans an app records, read from swift-distributed-tracing's in-memory tracer given to the
/// app (the process's `InstrumentationSystem` stays untouched).
@Suite("Tracing", .timeLimit(.minutes(2)))
struct TracingTests {
    typealias Attribute = EddaSpanAttribute

    func names(_ spans: [FinishedInMemorySpan]) -> [String] {
        spans.map(\.operationName).sorted()
    }

    func text(_ span: FinishedInMemorySpan, _ key: String) -> String? {
        guard case .string(let value)? = span.attributes.get(key) else { return nil }
        return value
    }

    @Test("a saga with a retry and a compensation: one execution span, a span per attempt and compensation, errors recorded, all in the caller's trace")
    func saga() async throws {
        let tracer = InMemoryTracer()
        try await withDatabase { database in
            let recorder = Recorder()
            try await withApp(database, configure: { $0.tracer = tracer }) { app in
                let flow = registerTrip(app, recorder: recorder)
                try await tracer.withSpan("POST /trips") { _ in
                    await #expect(throws: WorkflowFailedError.self) { try await app.run(flow, input: NoValue()) }
                }
            }
        }
        let spans = tracer.finishedSpans
        #expect(names(spans) == [
            "POST /trips", "activity book", "activity explode", "activity flaky", "activity flaky", "compensation compensate_book",
            "workflow trip",
        ])
        let request = try #require(spans.first { $0.operationName == "POST /trips" })
        let workflow = try #require(spans.first { $0.operationName == "workflow trip" })
        #expect(workflow.parentSpanID == request.spanID)
        #expect(spans.allSatisfy { $0.traceID == request.traceID })
        for span in spans where span.operationName.hasPrefix("activity") || span.operationName.hasPrefix("compensation") {
            #expect(span.parentSpanID == workflow.spanID, "\(span.operationName)")
        }
        #expect(text(workflow, Attribute.outcome) == "failed")
        #expect(text(workflow, Attribute.execution) == "start")
        #expect(workflow.status?.code == .error)
        let flaky = spans.filter { $0.operationName == "activity flaky" }
            .sorted { $0.startInstant.nanosecondsSinceEpoch < $1.startInstant.nanosecondsSinceEpoch }
        #expect(flaky.map { $0.errors.count } == [1, 0], "the first attempt failed, the second succeeded")
        #expect(spans.first { $0.operationName == "activity explode" }?.status?.code == .error)
    }

    @Test("a resumption after a wait is a new execution span; the replayed step records no span")
    func replay() async throws {
        let tracer = InMemoryTracer()
        try await withDatabase { database in
            let recorder = Recorder()
            try await withApp(database, configure: { $0.tracer = tracer }) { app in
                let flow = app.register(workflow: "waiting") { (_: NoValue, context) -> String in
                    _ = try await context.run(Book(recorder: recorder), input: "car")
                    let word = try await context.waitEvent("go", as: String.self).data
                    _ = try await context.run(Book(recorder: recorder), input: word)
                    return word
                }
                let id = try await app.start(flow, input: NoValue())
                #expect(try await app.instance(id)?.status == .waitingForMessage)
                try await app.publish(to: "go", data: "boat")
                try await eventually("the workflow completes") { try await app.instance(id)?.status == .completed }
            }
        }
        let spans = tracer.finishedSpans
        #expect(names(spans) == ["activity book", "activity book", "workflow waiting", "workflow waiting"])
        let executions = spans.filter { $0.operationName == "workflow waiting" }
        #expect(Set(executions.compactMap { text($0, Attribute.outcome) }) == ["suspended", "completed"])
        #expect(Set(executions.compactMap { text($0, Attribute.execution) }) == ["start", "resume"])
    }

    @Test("a crash and a replay on another worker: the step that completed before the crash records no second span; both executions are in the starting trace")
    func crashAndReplay() async throws {
        let tracer = InMemoryTracer()
        try await withDatabase { database in
            let recorder = Recorder()
            let gate = Gate()
            func register(_ app: EddaApp) -> WorkflowReference<NoValue, String> {
                app.register(workflow: "crashy") { (_: NoValue, context) -> String in
                    _ = try await context.run(Book(recorder: recorder), input: "car")
                    return try await context.run(Hold(gate: gate, recorder: recorder), input: "x")
                }
            }
            // The first worker stops inside the held step, as a crash there would leave it.
            let id = try await withApp(database, configure: { $0.tracer = tracer }) { first in
                let id = try await tracer.withSpan("request") { _ in try await first.startDetached(register(first), input: NoValue()) }
                try await eventually("the held step") { recorder.count("hold") == 1 }
                return id
            }
            try await withApp(database, configure: { $0.tracer = tracer }) { second in
                _ = register(second)
                gate.open()
                try await eventually("the replay completes it") { try await second.instance(id)?.status == .completed }
            }
            #expect(recorder.count("book car") == 1)
        }
        let spans = tracer.finishedSpans
        #expect(names(spans) == ["activity book", "activity hold", "activity hold", "request", "workflow crashy", "workflow crashy"])
        let request = try #require(spans.first { $0.operationName == "request" })
        let executions = spans.filter { $0.operationName == "workflow crashy" }
        #expect(Set(executions.compactMap { text($0, Attribute.outcome) }) == ["stopped", "completed"])
        #expect(executions.allSatisfy { $0.traceID == request.traceID && $0.parentSpanID == request.spanID })
    }

    @Test("every execution joins the trace the instance was started in, on another worker too; the message that resumes it links its sender's trace")
    func traceThroughTheDatabase() async throws {
        let tracer = W3CTestTracer()
        try await withDatabase { database in
            let recorder = Recorder()
            let id = try await withApp(database, configure: { $0.tracer = tracer }) { app in
                let flow = registerWaiting(app, recorder: recorder)
                return try await tracer.withSpan("POST /orders") { _ in try await app.start(flow, input: NoValue()) }
            }
            // Another worker (the first has stopped) resumes it when a message arrives.
            try await withApp(database, configure: { $0.tracer = tracer }) { app in
                _ = registerWaiting(app, recorder: recorder)
                #expect(try await app.instance(id)?.status == .waitingForMessage)
                try await tracer.withSpan("publisher") { _ in _ = try await app.publish(to: "go", data: "boat") }
                try await eventually("the workflow completes") { try await app.instance(id)?.status == .completed }
            }
        }
        let spans = tracer.finishedSpans
        let request = try #require(spans.first { $0.operationName == "POST /orders" })
        let publisher = try #require(spans.first { $0.operationName == "publisher" })
        let executions = spans.filter { $0.operationName == "workflow waiting" }
        #expect(executions.count == 2)
        #expect(executions.allSatisfy { $0.traceID == request.traceID && $0.parentSpanID == request.spanID })
        let start = try #require(executions.first { text($0, Attribute.execution) == "start" })
        let resume = try #require(executions.first { text($0, Attribute.execution) == "resume" })
        #expect(start.links.isEmpty)
        #expect(resume.links.compactMap { $0.context.inMemorySpanContext?.spanID } == [publisher.spanID])
        #expect(resume.links.first?.context.inMemorySpanContext?.traceID == publisher.traceID)
    }

    @Test("a message published inside an activity or a workflow carries the trace context in its metadata; none without a tracer")
    func messageMetadata() async throws {
        for traced in [true, false] {
            let tracer = W3CTestTracer()
            try await withDatabase { database in
                try await withApp(database, configure: { if traced { $0.tracer = tracer } }) { app in
                    let flow = app.register(workflow: "announcer") { (_: NoValue, context) -> String in
                        try await context.publish("news", data: ["from": "workflow"])
                        return try await context.run(
                            ActivityDefinition<String, String>(name: "announce") { text, activity in
                                try activity.publish("news", data: ["from": text])
                                return text
                            },
                            input: "activity")
                    }
                    _ = try await tracer.withSpan("request") { _ in try await app.run(flow, input: NoValue()) }
                }
                let metadata = try rows(database, "SELECT metadata FROM channel_messages ORDER BY id").compactMap { row -> JSONValue? in
                    JSONValue(jsonText: row["metadata"] as String? ?? "")
                }
                #expect(metadata.count == 2)
                let carried = metadata.compactMap { $0["_trace_context"]?["traceparent"]?.stringValue.flatMap(W3CTestTracer.ids(of:)) }
                if traced {
                    let spans = tracer.finishedSpans
                    let workflow = try #require(spans.first { $0.operationName == "workflow announcer" })
                    let activity = try #require(spans.first { $0.operationName == "activity announce" })
                    #expect(carried.map(\.spanID) == [workflow.spanID, activity.spanID])
                    #expect(carried.allSatisfy { $0.traceID == workflow.traceID })
                } else {
                    #expect(carried.isEmpty)
                }
            }
        }
    }

    @Test("the outbox's in-memory trace contexts stay bounded: sent events are forgotten, the oldest unsent dropped past capacity")
    func outboxTraceContextsBounded() {
        let table = OutboxTraceContexts()
        let carrier = TraceCarrier(fields: ["traceparent": "00-a-b-01"])
        // Sent here, one after another: nothing accumulates, not even in the order list.
        for index in 0..<(3 * OutboxTraceContexts.capacity) {
            table.record(carrier, for: ["sent-\(index)"])
            #expect(table.fields(for: "sent-\(index)") == carrier.fields)
            table.remove("sent-\(index)")
        }
        #expect(table.sizes.events == 0)
        #expect(table.sizes.order <= 2 * OutboxTraceContexts.capacity)
        // Never sent here (another process relays them): the oldest go first.
        for index in 0...OutboxTraceContexts.capacity { table.record(carrier, for: ["unsent-\(index)"]) }
        #expect(table.sizes.events == OutboxTraceContexts.capacity)
        #expect(table.fields(for: "unsent-0").isEmpty)
        #expect(table.fields(for: "unsent-\(OutboxTraceContexts.capacity)") == carrier.fields)
    }
}
