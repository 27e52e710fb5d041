import Edda
import EddaHTTP
import EddaSQLite
import EddaTesting
import Foundation
import InMemoryTracing
import Testing
import TestSupport

/// Trace context carried across processes by the wire formats the family shares: a
/// CloudEvent's `traceparent` in, an outbox event's `traceparent` out.
@Suite("Trace propagation over HTTP", .timeLimit(.minutes(2)))
struct TracePropagationTests {
    struct Order: Codable, Sendable {
        var order: String
    }

    @Test("A CloudEvent's traceparent is the parent of the workflow it starts; the outbox event its activity writes carries the activity's span")
    func cloudEventToOutboxEvent() async throws {
        let tracer = W3CTestTracer()
        let broker = TestBroker()
        let incoming = (traceID: W3CTestTracer.hex(digits: 32), spanID: W3CTestTracer.hex(digits: 16))
        try await withServer(broker.router()) { brokerURL in
            try await withEddaServer(configure: { configuration in
                configuration.tracer = tracer
                configuration.outboxPublisher = HTTPOutboxPublisher(brokerURL: "\(brokerURL)/events")
                configuration.outboxRelayer.pollInterval = .milliseconds(50)
                configuration.outboxRelayer.maxPollInterval = .milliseconds(200)
            }) { app, base, database in
                app.register(workflow: "ship_order", handlingEvents: "order.placed") { (order: Order, context) -> String in
                    try await context.run(shipping(), input: order.order)
                }
                let traceparent = W3CTestTracer.traceparent(traceID: incoming.traceID, spanID: incoming.spanID)
                let reply = try await httpRequest(
                    "\(base)/events", headers: [structured],
                    text: structuredEvent(
                        type: "order.placed", id: "o-1", data: #"{"order": "A"}"#,
                        extra: #""traceparent":"\#(traceparent)","tracestate":"vendor=1""#))
                #expect(reply.status == 202)
                try await eventually("the outbox event is sent") { broker.received.count == 1 }

                // Stored with the instance as the reference stores it.
                let input: String = try #require(try rows(database, "SELECT input_data FROM workflow_instances").first?["input_data"])
                #expect(JSONValue(jsonText: input)?["_trace_context"] == ["traceparent": .string(traceparent), "tracestate": "vendor=1"])

                let spans = tracer.finishedSpans
                let workflow = try #require(spans.first { $0.operationName == "workflow ship_order" })
                let activity = try #require(spans.first { $0.operationName == "activity ship" })
                #expect(workflow.traceID == incoming.traceID)
                #expect(workflow.parentSpanID == incoming.spanID)
                #expect(activity.parentSpanID == workflow.spanID)
                let sent = try #require(broker.received.first?.json)
                #expect(sent["type"] == "order.shipped")
                let outgoing = try #require(sent["traceparent"]?.stringValue.flatMap(W3CTestTracer.ids(of:)))
                #expect(outgoing.traceID == incoming.traceID)
                #expect(outgoing.spanID == activity.spanID, "the event is a child of the attempt that wrote it")
            }
        }
    }

    @Test("Without a tracer nothing is added: the outbox event has no traceparent, the input no trace context")
    func noTracer() async throws {
        let broker = TestBroker()
        try await withBroker(broker) { app, database in
            let flow = app.register(workflow: "quiet") { (orderID: String, context) -> String in
                try await context.run(shipping(), input: orderID)
            }
            try await InMemoryTracer().withSpan("request") { _ in
                _ = try await app.run(flow, input: "B")
            }
            try await eventually("the outbox event is sent") { broker.received.count == 1 }
            #expect(broker.received.first?.json?["traceparent"] == nil)
            let input: String = try #require(try rows(database, "SELECT input_data FROM workflow_instances").first?["input_data"])
            #expect(!input.contains("_trace_context"))
        }
    }
}
