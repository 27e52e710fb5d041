import EddaDiagram
import EddaVisualizer
import Foundation
import Testing

/// The analyzer on the repository's own workflows.
@Suite("Workflows of the repository's sources")
struct RepositorySourceTests {
    @Test("OrderService: the saga's three activities, two of them compensatable; the payment handler")
    func orderService() throws {
        let flows = try WorkflowAnalyzer().analyze(paths: [repositoryPath("Examples/OrderService/OrderWorkflows.swift")])
        #expect(flows.map(\.workflowName) == ["order_saga", "payment_received"])
        #expect(flows[0].steps == [
            activity("reserve_inventory", compensates: true),
            activity("charge_payment", compensates: true),
            activity("ship_order"),
        ])
        #expect(flows[1].steps == [activity("record_payment")])
    }

    @Test("OrderService directory: the registrations in OrderService.swift add no workflow")
    func orderServiceDirectory() throws {
        let flows = try WorkflowAnalyzer().analyze(paths: [repositoryPath("Examples/OrderService")])
        #expect(flows.map(\.workflowName) == ["order_saga", "payment_received"])
    }

    @Test("Quickstart: book_trip books a flight and a hotel (compensatable) and rents a car")
    func quickstart() throws {
        let flows = try WorkflowAnalyzer().analyze(paths: [repositoryPath("Examples/Quickstart")])
        #expect(flows.map(\.workflowName) == ["book_trip"])
        #expect(flows.first?.steps == [
            activity("book_flight", compensates: true),
            activity("book_hotel", compensates: true),
            activity("rent_car"),
        ])
    }

    @Test("Test worker: chaos's switch, pool_blocker's step, crash_steps's loop, waiter's timer and event")
    func testWorker() throws {
        let flows = try WorkflowAnalyzer().analyze(paths: [repositoryPath("Sources/EddaTestWorker")])
        // Chaos.swift sorts before PoolBlocking.swift, and that before main.swift.
        #expect(flows.map(\.workflowName) == ["chaos", "pool_blocker", "crash_steps", "waiter"])
        guard flows.count == 4 else { return }

        #expect(flows[0].steps == [
            activity("chaos_step"),
            node(.timer, "sleep(for: .milliseconds(200 + (input.index % 5) * 150))", "sleep"),
            branch(
                .switch, "input.index % 3",
                arm("case 0", node(.waitEvent, "wait event: chaos.go", "receive_chaos.go")),
                arm(
                    "case 1",
                    node(.subscription, "subscribe: chaos.jobs", nil),
                    node(.receive, "receive: chaos.jobs", "receive_chaos.jobs")),
                arm("default", activity("chaos_step"))),
            activity("chaos_step"),
        ])
        #expect(flows[1].steps == [activity("block_thread")])
        #expect(flows[2].steps == [loop("for index in 1...steps", activity("step"))])
        #expect(flows[3].steps == [
            activity("step"),
            node(.timer, "sleep(until: deadline)", "sleep_until"),
            node(.waitEvent, "wait event: go", "receive_go"),
            activity("step"),
        ])
    }

    @Test("Examples directory, searched recursively")
    func examplesDirectory() throws {
        let flows = try WorkflowAnalyzer().analyze(paths: [repositoryPath("Examples")])
        #expect(flows.map(\.workflowName) == ["order_saga", "payment_received", "book_trip"])
    }
}
