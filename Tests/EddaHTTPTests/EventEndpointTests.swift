import AsyncHTTPClient
import Edda
import EddaSQLite
import EddaHTTP
import EddaTesting
import Foundation
import GRDB
import Hummingbird
import NIOHTTP1
import Testing
import TestSupport

struct Payment: Codable, Sendable, Equatable {
    var orderID: String
    var amount: Int
    enum CodingKeys: String, CodingKey {
        case orderID = "order_id"
        case amount
    }
}

func count(_ database: TemporaryDatabase, _ table: String) throws -> Int {
    let queue = try openDatabase(database.path)
    defer { try? queue.close() }
    return try queue.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM \(table)") ?? 0 }
}

@Suite("CloudEvents endpoint", .timeLimit(.minutes(2)))
struct EventEndpointTests {
    @Test("Structured mode: 202 after the event is stored; a waiting workflow receives data and attributes")
    func structuredMode() async throws {
        try await withEddaServer { app, base, database in
            let flow = app.register(workflow: "awaiting") { (_: NoValue, context) -> String in
                let event = try await context.waitEvent("payment.completed", as: Payment.self)
                return "\(event.data.orderID):\(event.data.amount) \(event.source) \(event.id) \(event.extensions["tenant"]?.stringValue ?? "-")"
            }
            let id = try await app.start(flow, input: NoValue())
            let reply = try await httpRequest(
                "\(base)/events", headers: [structured],
                text: structuredEvent(
                    type: "payment.completed", id: "evt-1", source: "/bank",
                    data: #"{"order_id": "A", "amount": 12}"#, extra: #""tenant":"acme","subject":"orders/A""#))
            #expect(reply.status == 202)
            #expect(reply.json == ["status": "accepted"])
            #expect(reply.header("content-type") == "application/json")
            #expect(try await app.result(of: id, as: String.self) == "A:12 /bank evt-1 acme")
            let stored = try #require(try rows(database, "SELECT metadata FROM channel_messages").first)
            let metadata = try #require(JSONValue(jsonText: stored["metadata"]))
            #expect(metadata["ce_type"] == "payment.completed")
            #expect(metadata["ce_subject"] == "orders/A")
            #expect(metadata["ce_extensions"] == ["tenant": "acme"])
            // The root of the mounted path accepts events too.
            #expect(try await httpRequest("\(base)", headers: [structured], text: structuredEvent(type: "other", id: "evt-2")).status == 202)
        }
    }

    @Test("Binary mode: ce- headers (percent-decoded), JSON and binary bodies")
    func binaryMode() async throws {
        try await withEddaServer { app, base, _ in
            let json = app.register(workflow: "json-waiter") { (_: NoValue, context) -> String in
                let event = try await context.waitEvent("reading.taken", as: [String: Int].self)
                return "\(event.data["celsius"] ?? 0) \(event.subject ?? "-") \(event.dataContentType ?? "-")"
            }
            let blob = app.register(workflow: "blob-waiter") { (_: NoValue, context) -> [UInt8] in
                Array(try await context.waitEvent("file.uploaded", as: Data.self).data)
            }
            let a = try await app.start(json, input: NoValue())
            let b = try await app.start(blob, input: NoValue())
            var reply = try await httpRequest(
                "\(base)/events",
                headers: [("ce-specversion", "1.0"), ("ce-id", "r-1"), ("ce-source", "/sensors"), ("ce-type", "reading.taken"),
                          ("ce-subject", "room%2012"), ("Content-Type", "application/json; charset=utf-8")],
                text: #"{"celsius": 21}"#)
            #expect(reply.status == 202)
            #expect(try await app.result(of: a, as: String.self) == "21 room 12 application/json; charset=utf-8")
            reply = try await httpRequest(
                "\(base)/events",
                headers: [("ce-specversion", "1.0"), ("ce-id", "f-1"), ("ce-source", "/files"), ("ce-type", "file.uploaded"),
                          ("Content-Type", "application/octet-stream")],
                body: [0, 1, 2, 255])
            #expect(reply.status == 202)
            #expect(try await app.result(of: b, as: [UInt8].self) == [0, 1, 2, 255])
        }
    }

    @Test("Batch mode stores every event; one bad event in a batch stores none")
    func batchMode() async throws {
        try await withEddaServer { app, base, database in
            let batch = [
                structuredEvent(type: "tick", id: "1", data: "1"),
                structuredEvent(type: "tick", id: "2", data: "2"),
            ]
            let reply = try await httpRequest(
                "\(base)/events", headers: [("Content-Type", "application/cloudevents-batch+json")],
                text: "[\(batch.joined(separator: ","))]")
            #expect(reply.status == 202)
            #expect(try count(database, "channel_messages") == 2)
            let bad = try await httpRequest(
                "\(base)/events", headers: [("Content-Type", "application/cloudevents-batch+json")],
                text: "[\(structuredEvent(type: "tick", id: "3")), {\"specversion\":\"1.0\",\"type\":\"tick\"}]")
            #expect(bad.status == 400)
            #expect(bad.json?["error_type"] == "MissingRequiredFields")
            #expect(bad.json?["error"]?.stringValue?.contains("Event 1 of the batch") == true)
            #expect(try count(database, "channel_messages") == 2)
        }
    }

    @Test("Malformed and oversized requests get a clear 4xx, store nothing, and the server keeps serving", arguments: [
        ("missing id", [structured], structuredEvent(type: "t", id: "").replacingOccurrences(of: #""id":"","#, with: ""), 400, "MissingRequiredFields"),
        ("empty type", [structured], structuredEvent(type: "", id: "x"), 400, "MissingRequiredFields"),
        ("bad specversion", [structured], structuredEvent(type: "t", id: "x").replacingOccurrences(of: "1.0", with: "0.3"), 400, "InvalidRequiredFields"),
        ("not JSON", [structured], "{not json", 400, "InvalidStructuredJSON"),
        ("not an object", [structured], "[1, 2]", 400, "InvalidStructuredJSON"),
        ("attribute name", [structured], structuredEvent(type: "t", id: "x", extra: #""Bad-Name":"v""#), 400, "InvalidAttribute"),
        ("non-string type", [structured], #"{"specversion":"1.0","id":"x","source":"/s","type":5}"#, 400, "InvalidAttribute"),
        ("data and data_base64", [structured], structuredEvent(type: "t", id: "x", data: "1", extra: #""data_base64":"AA==""#), 400, "InvalidStructuredJSON"),
        ("no CloudEvent at all", [("Content-Type", "application/json")], #"{"hello": 1}"#, 400, "MissingRequiredFields"),
        ("binary mode, invalid JSON data", [("ce-specversion", "1.0"), ("ce-id", "x"), ("ce-source", "/s"), ("ce-type", "t"), ("Content-Type", "application/json")], "{nope", 400, "DataUnmarshallerError"),
        ("bad time", [structured], structuredEvent(type: "t", id: "x", extra: #""time":"yesterday""#), 400, "InvalidAttribute"),
        ("non-string eddainstanceid", [structured], structuredEvent(type: "t", id: "x", extra: #""eddainstanceid":5"#), 400, "InvalidAttribute"),
        ("oversized", [structured], structuredEvent(type: "t", id: "x", data: "\"\(String(repeating: "a", count: 1 << 20))\""), 413, "PayloadTooLarge"),
    ] as [(String, [(String, String)], String, Int, String)])
    func malformed(_ name: String, _ headers: [(String, String)], _ body: String, _ status: Int, _ errorType: String) async throws {
        try await withEddaServer { _, base, database in
            let reply = try await httpRequest("\(base)/events", headers: headers, text: body)
            #expect(reply.status == status, "\(name)")
            #expect(reply.json?["error_type"] == .string(errorType), "\(name): \(reply.body)")
            #expect(reply.json?["retryable"] == false)
            #expect((reply.json?["error"]?.stringValue ?? "").isEmpty == false)
            #expect(try count(database, "channel_messages") == 0)
            #expect(try count(database, "workflow_instances") == 0)
            let next = try await httpRequest("\(base)/events", headers: [structured], text: structuredEvent(type: "t", id: "ok"))
            #expect(next.status == 202)
        }
    }

    @Test("Text that is not UTF-8 is refused with 400, never stored with replacement characters")
    func invalidUTF8() async throws {
        try await withEddaServer { _, base, database in
            let invalid: [UInt8] = [0x66, 0xFF, 0x6F]  // "f", a byte no UTF-8 text has, "o"
            let structuredBody = Array(#"{"specversion":"1.0","id":"u-1","source":"/s","type":"t","subject":""#.utf8) + invalid + Array(#""}"#.utf8)
            let binaryHeaders = [("ce-specversion", "1.0"), ("ce-id", "u-3"), ("ce-source", "/s"), ("ce-type", "t")]
            let requests: [(String, [(String, String)], [UInt8])] = [
                ("structured", [structured], structuredBody),
                ("batch", [("Content-Type", "application/cloudevents-batch+json")], Array("[".utf8) + structuredBody + Array("]".utf8)),
                ("binary JSON data", binaryHeaders + [("Content-Type", "application/json")], Array(#"{"name": ""#.utf8) + invalid + Array(#""}"#.utf8)),
                ("percent-encoded header", binaryHeaders + [("ce-subject", "caf%E9"), ("Content-Type", "application/json")], Array("{}".utf8)),
            ]
            for (name, headers, body) in requests {
                let reply = try await httpRequest("\(base)/events", headers: headers, body: body)
                #expect(reply.status == 400, "\(name): \(reply.body)")
                #expect(reply.json?["error_type"] == "InvalidEncoding", "\(name)")
                #expect(reply.json?["error"]?.stringValue?.contains("UTF-8") == true, "\(name)")
            }
            // Raw bytes in a header value, which no HTTP client library sends.
            let path = try #require(URL(string: base)?.path)
            let raw = Array("POST \(path)/events HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nce-specversion: 1.0\r\nce-id: u-5\r\nce-source: /s\r\nce-type: t\r\nce-subject: ".utf8)
                + invalid + Array("\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}".utf8)
            let exchange = try rawHTTPExchange(base, raw)
            #expect(exchange.status == 400, "\(exchange.text)")
            #expect(exchange.text.contains("InvalidEncoding"))
            #expect(try count(database, "channel_messages") == 0)

            // Percent-encoded UTF-8 and a lone % are still taken.
            let accepted = try await httpRequest(
                "\(base)/events", headers: binaryHeaders + [("ce-subject", "caf%C3%A9 100%"), ("Content-Type", "application/json")],
                text: "{}")
            #expect(accepted.status == 202)
            let stored = try #require(try rows(database, "SELECT metadata FROM channel_messages").first)
            #expect(JSONValue(jsonText: stored["metadata"])?["ce_subject"] == "café 100%")
        }
    }

    @Test("Null attributes are unset, an empty batch is accepted, and handler input keeps large numbers exactly")
    func specEdges() async throws {
        try await withEddaServer { app, base, database in
            let recorded = Recorder()
            app.register(workflow: "big", handlingEvents: "big.number") { (input: [String: Int], _) -> Int in
                recorded.record("\(input["n"] ?? 0)")
                return input["n"] ?? 0
            }
            var reply = try await httpRequest(
                "\(base)/events", headers: [structured],
                text: structuredEvent(type: "t", id: "n-1", extra: #""subject":null,"time":"2026-11-21T10:00:00.5+01:00""#))
            #expect(reply.status == 202)
            reply = try await httpRequest("\(base)/events", headers: [("Content-Type", "application/cloudevents-batch+json")], text: "[]")
            #expect(reply.status == 202)
            reply = try await httpRequest(
                "\(base)/events", headers: [structured],
                text: structuredEvent(type: "big.number", id: "b-1", data: #"{"n": 1234567890123456789}"#,
                                      extra: #""traceparent":"00-abc-def-01""#))
            #expect(reply.status == 202)
            try await eventually("the handler") { recorded.count("1234567890123456789") == 1 }
            let input: String = try #require(try rows(database, "SELECT input_data FROM workflow_instances WHERE workflow_name = 'big'").first?["input_data"])
            #expect(input.contains("1234567890123456789"))
            // Stored with the event's trace context, which the input type (a dictionary of
            // numbers) does not see.
            #expect(JSONValue(jsonText: input)?["_trace_context"] == ["traceparent": "00-abc-def-01"])
            app.register(workflow: "traced", handlingEvents: "traced.event") { (payment: Payment, _) -> String in payment.orderID }
            reply = try await httpRequest(
                "\(base)/events", headers: [structured],
                text: structuredEvent(type: "traced.event", id: "t-1", data: #"{"order_id": "A", "amount": 1}"#,
                                      extra: #""traceparent":"00-abc-def-01""#))
            #expect(reply.status == 202)
            let traced: String = try #require(try rows(database, "SELECT input_data FROM workflow_instances WHERE workflow_name = 'traced'").first?["input_data"])
            #expect(JSONValue(jsonText: traced)?["_trace_context"] == ["traceparent": "00-abc-def-01"])
        }
    }

    @Test("Event-handler workflows start with the event data; a repeated event starts nothing more")
    func eventHandlerWorkflows() async throws {
        try await withEddaServer { app, base, database in
            let recorder = Recorder()
            app.register(workflow: "payment_received", handlingEvents: "payment.received") { (payment: Payment, _) -> String in
                recorder.record(payment.orderID)
                return "recorded \(payment.orderID)"
            }
            app.onEvent("payment.received") { event in recorder.record("closure \(event.attributes.id)") }
            let body = structuredEvent(type: "payment.received", id: "pay-1", source: "/bank", data: #"{"order_id":"A","amount":3}"#)
            #expect(try await httpRequest("\(base)/events", headers: [structured], text: body).status == 202)
            #expect(try await httpRequest("\(base)/events", headers: [structured], text: body).status == 202)
            let instances = try rows(database, "SELECT instance_id, input_data FROM workflow_instances")
            #expect(instances.count == 1)
            let id: String = try #require(instances.first?["instance_id"])
            #expect(id.hasPrefix("payment_received-"))
            #expect(try await app.result(of: id, as: String.self) == "recorded A")
            try await eventually("the closure handler") { recorder.count("closure pay-1") == 1 }
            #expect(recorder.count("A") == 1)
            #expect(try count(database, "channel_messages") == 1)

            // Data the handler workflow cannot take is refused before anything is stored.
            let bad = try await httpRequest(
                "\(base)/events", headers: [structured],
                text: structuredEvent(type: "payment.received", id: "pay-2", data: #"{"order_id": 7}"#))
            #expect(bad.status == 400)
            #expect(bad.json?["error_type"] == "EventInputError")
            #expect(try count(database, "workflow_instances") == 1)
            #expect(try count(database, "channel_messages") == 1)
        }
    }

    @Test("eddainstanceid delivers to one waiting instance; without it every waiting instance receives the event")
    func pointToPointAndBroadcast() async throws {
        try await withEddaServer { app, base, _ in
            let flow = app.register(workflow: "approval") { (_: NoValue, context) -> String in
                try await context.waitEvent("approval.granted", as: [String: String].self).data["by"] ?? ""
            }
            let a = try await app.start(flow, input: NoValue())
            let b = try await app.start(flow, input: NoValue())
            let c = try await app.start(flow, input: NoValue())
            let targeted = try await httpRequest(
                "\(base)/events",
                headers: [("ce-specversion", "1.0"), ("ce-id", "g-1"), ("ce-source", "/boss"), ("ce-type", "approval.granted"),
                          ("ce-eddainstanceid", a), ("Content-Type", "application/json")],
                text: #"{"by": "boss"}"#)
            #expect(targeted.status == 202)
            #expect(try await app.result(of: a, as: String.self) == "boss")
            #expect(try await app.instance(b)?.status == .waitingForMessage)
            #expect(try await httpRequest(
                "\(base)/events", headers: [structured],
                text: structuredEvent(type: "approval.granted", id: "g-2", data: #"{"by": "board"}"#)).status == 202)
            #expect(try await app.result(of: b, as: String.self) == "board")
            #expect(try await app.result(of: c, as: String.self) == "board")
        }
    }

    @Test("When the database fails, the endpoint answers 500 with retryable true")
    func storageFailure() async throws {
        try await TemporaryDatabase.with { database in
            let app = try await database.makeApp()
            let router = Router()
            EddaRoutes(app: app).addRoutes(to: router.group("workflows"))
            try await withServer(router) { base in
                #expect(try await httpRequest("\(base)/workflows/health/ready", method: .GET).status == 200)
                await app.shutdown()  // closes the database
                let reply = try await httpRequest("\(base)/workflows/events", headers: [structured], text: structuredEvent(type: "t", id: "x"))
                #expect(reply.status == 500)
                #expect(reply.json?["retryable"] == true)
                #expect(reply.json?["error_type"] != nil)
                #expect(try await httpRequest("\(base)/workflows/health/ready", method: .GET).status == 503)
                #expect(try await httpRequest("\(base)/workflows/health/live", method: .GET).status == 200)
            }
        }
    }
}

@Suite("Cancel and auth routes", .timeLimit(.minutes(2)))
struct CancelAndAuthTests {
    @Test("Cancel answers as the reference: 200 for a cancellable instance, 400 otherwise")
    func cancel() async throws {
        try await withEddaServer(path: "hooks/edda") { app, base, _ in
            let flow = app.register(workflow: "patient") { (_: NoValue, context) -> String in
                _ = try await context.waitEvent("never", as: NoValue.self)
                return "done"
            }
            let done = app.register(workflow: "quick") { (_: NoValue, _) -> String in "done" }
            let waiting = try await app.start(flow, input: NoValue())
            let finished = try await app.start(done, input: NoValue())
            var reply = try await httpRequest("\(base)/cancel/\(waiting)")
            #expect(reply.status == 200)
            #expect(reply.json == ["status": "cancelled", "instance_id": .string(waiting)])
            let cancelled = try #require(try await app.instance(waiting))
            #expect(cancelled.status == .cancelled)
            #expect(cancelled.outputData?["cancelled_by"] == "api_user")
            reply = try await httpRequest("\(base)/cancel/\(waiting)")
            #expect(reply.status == 400)
            #expect(reply.json == ["error": "Cannot cancel workflow (not found or already completed/failed/cancelled)"])
            #expect(try await httpRequest("\(base)/cancel/\(finished)").status == 400)
            #expect(try await httpRequest("\(base)/cancel/no-such-instance").status == 400)
        }
    }

    @Test("With a bearer token, events and cancel need it; health stays open")
    func bearerToken() async throws {
        var routes = EddaRoutes.Configuration()
        routes.bearerToken = "s3cret"
        try await withEddaServer(routes: routes) { _, base, database in
            let event = structuredEvent(type: "t", id: "x")
            var reply = try await httpRequest("\(base)/events", headers: [structured], text: event)
            #expect(reply.status == 401)
            #expect(reply.header("www-authenticate") == "Bearer")
            reply = try await httpRequest("\(base)/events", headers: [structured, ("Authorization", "Bearer wrong")], text: event)
            #expect(reply.status == 401)
            #expect(try await httpRequest("\(base)/cancel/x", headers: [("Authorization", "Bearer s3cre")]).status == 401)
            #expect(try count(database, "channel_messages") == 0)
            reply = try await httpRequest("\(base)/events", headers: [structured, ("Authorization", "Bearer s3cret")], text: event)
            #expect(reply.status == 202)
            reply = try await httpRequest(
                "\(base)/events", headers: [structured, ("Authorization", "bearer s3cret")], text: structuredEvent(type: "t", id: "y"))
            #expect(reply.status == 202)
            #expect(try await httpRequest("\(base)/events", headers: [structured, ("Authorization", "Bearer s3cret!")], text: event).status == 401)
            #expect(try await httpRequest("\(base)/health", method: .GET).status == 200)
        }
    }
}
