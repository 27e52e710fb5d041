import Edda
import EddaSQLite
import EddaTesting
import Foundation
import GRDB
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
    /// `errors` receives the service's log (standard error); by default it is discarded.
    static func launch(_ arguments: [String], errors: FileHandle = .nullDevice) throws -> (Process, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = errors
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
                defer { process.stop() }
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

    @Test("With --prometheus the service serves its metrics on GET /metrics; without, there is no such route")
    func prometheusEndpoint() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "order-service not built at \(Self.binary)")
        try await TemporaryDatabase.with { database in
            let (process, base) = try Self.launch(["--port", "0", "--database", database.path, "--quiet", "--prometheus"])
            defer { process.stop() }
            let reply = try await httpRequest(
                "\(base)/api/orders", headers: [("Content-Type", "application/json")],
                text: #"{"order_id": "m-1", "items": [{"sku": "book", "quantity": 1}], "amount": 10, "address": "1 Main St"}"#)
            #expect(reply.status == 202)
            #expect(try await status(base, "m-1", until: ["completed", "failed"])["status"] == "completed")
            let metrics = try await httpRequest("\(base)/metrics", method: .GET)
            #expect(metrics.status == 200)
            #expect(metrics.header("content-type")?.hasPrefix("text/plain") == true)
            let lines = metrics.body.split(separator: "\n")
            #expect(lines.contains(#"edda_workflow_starts{edda_workflow_name="order_saga"} 1"#), "\(metrics.body.prefix(3000))")
            #expect(lines.contains(#"edda_workflow_ends{edda_workflow_name="order_saga",edda_workflow_status="completed"} 1"#))
            #expect(lines.contains { $0.hasPrefix("edda_activity_attempts{") && $0.contains(#"edda_outcome="success""#) })
            #expect(lines.contains { $0.hasPrefix("edda_store_commit_duration_bucket{") })
        }
        try await TemporaryDatabase.with { database in
            let (process, base) = try Self.launch(["--port", "0", "--database", database.path, "--quiet"])
            defer { process.stop() }
            #expect(try await httpRequest("\(base)/metrics", method: .GET).status == 404)
        }
        // --otel needs the OpenTelemetry trait, which this build (the default) does not have;
        // and it cannot be combined with --prometheus.
        for (arguments, message) in [(["--otel"], "--traits OpenTelemetry"), (["--otel", "--prometheus"], "Choose one metrics backend")] {
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("order-service-\(UUID().uuidString).txt").path
            defer { try? FileManager.default.removeItem(atPath: output) }
            let exit = try spawnAndWait(
                [Self.binary, "--port", "0", "--database", ":memory:"] + arguments, standardOutput: output, standardError: nil,
                timeout: .seconds(60))
            #expect(exit.code != 0 && !exit.timedOut, "\(arguments)")
            #expect((try? String(contentsOfFile: output, encoding: .utf8))?.contains(message) == true, "\(arguments)")
        }
    }

    @Test("Order IDs are percent-decoded and encoded; bad orders get 400 naming the field, from the REST route and the viewer alike")
    func hostileOrders() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "order-service not built at \(Self.binary)")
        try await TemporaryDatabase.with { database in
            let (process, base) = try Self.launch(["--port", "0", "--database", database.path, "--quiet"])
            defer { process.stop() }
            let json = ("Content-Type", "application/json")
            func order(_ id: String, amount: String = "40") -> String {
                #"{"order_id": \#(JSONValue.string(id).jsonText), "items": [{"sku": "book", "quantity": 1}], "amount": \#(amount), "address": "1 Main St"}"#
            }

            // IDs that need encoding in a URL: the status URL is encoded, and the route decodes it.
            for (id, segment) in [("café", "caf%C3%A9"), ("a/b", "a%2Fb"), ("50% off?", "50%25%20off%3F")] {
                let reply = try await httpRequest("\(base)/api/orders", headers: [json], text: order(id))
                #expect(reply.status == 202, "\(id): \(reply.body)")
                #expect(reply.json?["status_url"] == .string("/api/orders/\(segment)/status"))
                let statusURL = try #require(reply.json?["status_url"]?.stringValue)
                let done = try await status(base, segment, until: ["completed", "failed"])
                #expect(done["order_id"] == .string(id))
                #expect(try await httpRequest(base + statusURL, method: .GET).status == 200)
            }

            // Refusals name the field, without the decoder's internals.
            let refusals: [(body: String, status: Int, field: String?, message: String)] = [
                (order(String(repeating: "x", count: 250)), 400, "order_id", "order_id must be at most 249 bytes"),
                (order("bad\nid"), 400, "order_id", "control characters"),
                (order("o-frac", amount: "40.5"), 400, "amount", "amount must be a positive integer number of cents"),
                (order("o-neg", amount: "-3"), 400, "amount", "amount must be a positive integer number of cents"),
                (order("o-str", amount: #""40""#), 400, "amount", "amount must be a positive integer number of cents"),
                (#"{"items": [], "amount": 1, "address": "x"}"#, 400, "items", "at least one item"),
                (#"{"items": [{"sku": "a", "quantity": 0}], "amount": 1, "address": "x"}"#, 400, "items[0].quantity", "positive integer"),
                (#"{"items": [{"sku": "a", "quantity": 1}], "amount": 1}"#, 400, "address", "address is required"),
                (#"[1, 2]"#, 400, nil, "The order must be a JSON object"),
                ("{not json", 400, nil, "The body is not valid JSON"),
            ]
            for refusal in refusals {
                let reply = try await httpRequest("\(base)/api/orders", headers: [json], text: refusal.body)
                #expect(reply.status == refusal.status, "\(refusal.body.prefix(80)): \(reply.body)")
                #expect(reply.json?["field"]?.stringValue == refusal.field, "\(reply.body)")
                let message = reply.json?["error"]?.stringValue ?? ""
                #expect(message.contains(refusal.message), "\(message)")
                for internals in ["DecodingError", "Swift.", "codingPath", "CodingKeys", "NIO"] {
                    #expect(!message.contains(internals), "\(message)")
                }
            }
            #expect(try await httpRequest("\(base)/api/orders/o-neg/status", method: .GET).status == 404)
            let tooLong = try await httpRequest("\(base)/api/orders/\(String(repeating: "y", count: 250))/status", method: .GET)
            #expect(tooLong.status == 400)
            #expect(tooLong.json?["field"] == "order_id")

            // A body over the 2 MiB limit is 413, not a JSON error.
            let huge = order("o-huge").replacingOccurrences(of: "1 Main St", with: String(repeating: "a", count: 2 << 20))
            let large = try await httpRequest("\(base)/api/orders", headers: [json], text: huge)
            #expect(large.status == 413)
            #expect(large.json?["error"]?.stringValue?.contains("larger than") == true)

            // The viewer's generic start form goes through the same checks as the REST route.
            let fields = [
                ("workflow", "order_saga"), ("input.order_id", "v-neg"), ("input.items", #"[{"sku": "a", "quantity": 1}]"#),
                ("input.amount", "-3"), ("input.address", "1 Main St"), ("instance_id", "order-v-neg"),
            ]
            let unreserved = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
            let encoded = fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "")" }
            let form = try await httpRequest(
                base + "/viewer/start", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                text: encoded.joined(separator: "&"))
            #expect(form.status == 400)
            #expect(form.body.contains("amount must be a positive integer number of cents"))
            #expect(try await httpRequest("\(base)/api/orders/v-neg/status", method: .GET).status == 404)
        }
    }

    @Test("A failure inside the service answers 500 with a JSON body and is logged with the request")
    func loggedServerErrors() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "order-service not built at \(Self.binary)")
        try await TemporaryDatabase.with { database in
            let logPath = database.path + ".log"
            #expect(FileManager.default.createFile(atPath: logPath, contents: nil))
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            defer { try? log.close() }
            let (process, base) = try Self.launch(["--port", "0", "--database", database.path, "--quiet"], errors: log)
            defer { process.stop() }
            // Storing a new instance fails inside SQLite, as it would on a full or read-only disk.
            let connection = try openDatabase(database.path)
            defer { try? connection.close() }
            try await connection.write { db in
                try db.execute(sql: """
                    CREATE TRIGGER refuse_orders BEFORE INSERT ON workflow_instances
                    BEGIN SELECT RAISE(ABORT, 'simulated storage failure'); END
                    """)
            }
            let reply = try await httpRequest(
                "\(base)/api/orders", headers: [("Content-Type", "application/json")],
                text: #"{"order_id": "o-500", "items": [{"sku": "book", "quantity": 1}], "amount": 40, "address": "1 Main St"}"#)
            #expect(reply.status == 500)
            #expect(reply.header("content-type") == "application/json")
            #expect(reply.json?["error"]?.stringValue?.contains("log") == true, "\(reply.body)")
            #expect(!reply.body.contains("simulated"))
            try await eventually("the log line") {
                let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                return text.contains("POST /api/orders failed") && text.contains("simulated storage failure")
            }

            // Cross-site protection is on in the service: another site's form cannot cancel.
            let cancel = try await httpRequest(
                "\(base)/workflows/cancel/order-o-1",
                headers: [("Origin", "http://evil.example"), ("Content-Type", "application/x-www-form-urlencoded")], text: "x=1")
            #expect(cancel.status == 403)
        }
    }
}
