import Edda
import EddaTesting
import Foundation
import Testing
import TestSupport

/// Drives the `order-service` example as a user would: a real process, plain HTTP requests.
@Suite("Order service example", .timeLimit(.minutes(2)))
struct OrderServiceTests {
    /// The example's binary, built next to the test bundle.
    static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("order-service").path
    }

    /// Starts the service and returns it with its base URL (read from its first output line).
    static func launch(_ arguments: [String]) throws -> (Process, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while !text.contains("\n"), Date() < deadline {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let line = text.split(separator: "\n").first, let range = line.range(of: "http://") else {
            process.terminate()
            throw TestFailure("order-service did not report its address: \(text)")
        }
        return (process, String(line[range.lowerBound...]))
    }

    func status(_ base: String, _ orderID: String, until expected: Set<String>) async throws -> JSONValue {
        var last: JSONValue?
        try await eventually("order \(orderID) to reach \(expected)") {
            last = try await httpRequest("\(base)/api/orders/\(orderID)/status", method: .GET).json
            return expected.contains(last?["status"]?.stringValue ?? "")
        }
        return last ?? .null
    }

    @Test("Orders complete; a failed shipment rolls back in reverse order; a payment event runs its workflow")
    func endToEnd() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "order-service not built at \(Self.binary)")
        let broker = TestBroker()
        try await withServer(broker.router()) { brokerBase in
            try await TemporaryDatabase.with { database in
                let (process, base) = try Self.launch([
                    "--port", "0", "--database", database.path, "--broker-url", "\(brokerBase)/events", "--quiet",
                ])
                defer {
                    process.terminate()
                    process.waitUntilExit()
                }
                let json = ("Content-Type", "application/json")
                var reply = try await httpRequest(
                    "\(base)/api/orders", headers: [json],
                    text: #"{"order_id": "o-1", "items": [{"sku": "book", "quantity": 2}], "amount": 40, "address": "1 Main St"}"#)
                #expect(reply.status == 202)
                #expect(reply.json?["instance_id"] == "order-o-1")
                let done = try await status(base, "o-1", until: ["completed", "failed"])
                #expect(done["status"] == "completed")
                #expect(done["result"]?["tracking_number"] == "TRK-o-1")
                #expect(done["compensations"] == [])

                reply = try await httpRequest(
                    "\(base)/api/orders", headers: [json],
                    text: #"{"order_id": "o-2", "items": [{"sku": "lamp", "quantity": 1}], "amount": 25, "address": "Unreachable Island"}"#)
                #expect(reply.status == 202)
                let failed = try await status(base, "o-2", until: ["completed", "failed"])
                #expect(failed["status"] == "failed")
                #expect(failed["error"]?.stringValue?.contains("Unreachable Island") == true)
                #expect(failed["compensations"] == ["refund_payment", "release_inventory"])

                reply = try await httpRequest(
                    "\(base)/workflows/events", headers: [("Content-Type", "application/cloudevents+json")],
                    text: #"{"specversion": "1.0", "id": "pay-o-1", "source": "/bank", "type": "payment.received", "data": {"order_id": "o-1", "amount": 40, "method": "card"}}"#)
                #expect(reply.status == 202)
                try await eventually("the payment workflow") {
                    try await httpRequest("\(base)/api/payments/o-1", method: .GET).json?["status"] == "completed"
                }
                let payment = try await httpRequest("\(base)/api/payments/o-1", method: .GET).json
                #expect(payment?["result"]?["receipt"] == "PAY-o-1")

                // The shipped order's event went through the outbox to the broker; the failed one sent none.
                try await eventually("the order.shipped event") { broker.received.count == 1 }
                #expect(broker.received.first?.json?["type"] == "order.shipped")
                #expect(broker.received.first?.json?["data"]?["order_id"] == "o-1")

                // Bad input is refused with a clear error.
                reply = try await httpRequest("\(base)/api/orders", headers: [json], text: #"{"items": []}"#)
                #expect(reply.status == 400)
                #expect(try await httpRequest("\(base)/api/orders/nope/status", method: .GET).status == 404)

                // The viewer is mounted at /viewer: the orders are listed, the failed one shows its
                // rollback, and the start form asks for the order's fields.
                let list = try await httpRequest("\(base)/viewer/", method: .GET)
                #expect(list.status == 200)
                #expect(list.body.contains("data-instance-id=\"order-o-1\""))
                #expect(list.body.contains("<title>Instances · Order service workflows</title>"))
                let detail = try await httpRequest("\(base)/viewer/workflow/order-o-2", method: .GET)
                #expect(detail.body.contains("no carrier delivers to &#39;Unreachable Island&#39;"))
                #expect(detail.body.contains("<tr class=\"compensation-run\"><td>refund_payment"))
                let form = try await httpRequest("\(base)/viewer/start?workflow=order_saga", method: .GET)
                #expect(form.body.contains("name=\"input.order_id\""))
                #expect(form.body.contains("name=\"input.items\""))
            }
        }
    }
}
