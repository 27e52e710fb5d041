import AsyncHTTPClient
#if canImport(Glibc)
import Glibc
#endif
@testable import Edda
@testable import EddaSQLite
import EddaHTTP
import EddaTesting
import Foundation
import GRDB
import Hummingbird
import Testing
import TestSupport

struct Shipment: Codable, Sendable, Equatable {
    var orderID: String
    var carrier: String
}

/// An activity that writes one outbox event, and fails its first attempt if asked.
func shipping(failFirstAttempt: Bool = false, contentType: String = "application/json", binary: Bool = false)
    -> ActivityDefinition<String, String>
{
    struct Rollback: Error {}
    return ActivityDefinition(name: "ship", retryPolicy: RetryPolicy(initialInterval: .milliseconds(10), maxAttempts: 3)) {
        orderID, context in
        if binary {
            try context.sendEventTransactional(type: "order.shipped", source: "/shop", data: Data([1, 2, 3]), contentType: contentType)
        } else {
            try context.sendEventTransactional(
                type: "order.shipped", source: "/shop", data: Shipment(orderID: orderID, carrier: "ACME"), contentType: contentType)
        }
        if failFirstAttempt, context.attempt == 1 { context.transaction { _ in throw Rollback() } }
        return orderID
    }
}

/// Runs `body` with a broker and an app whose relayer sends to it (fast polling for tests).
func withBroker<T>(
    _ broker: TestBroker, configure: (inout EddaApp.Configuration) -> Void = { _ in },
    _ body: (EddaApp, TemporaryDatabase) async throws -> T
) async throws -> T {
    try await withServer(broker.router()) { base in
        try await TemporaryDatabase.with { database in
            try await database.withApp(configure: { configuration in
                configuration.outboxPublisher = HTTPOutboxPublisher(brokerURL: "\(base)/events")
                configuration.outboxRelayer.pollInterval = .milliseconds(50)
                configuration.outboxRelayer.maxPollInterval = .milliseconds(200)
                configure(&configuration)
            }) { app in try await body(app, database) }
        }
    }
}

func outboxRows(_ database: TemporaryDatabase) throws -> [Row] {
    try rows(database, "SELECT event_id, status, retry_count, last_error, content_type FROM outbox_events ORDER BY created_at")
}

@Suite("Transactional outbox", .timeLimit(.minutes(2)))
struct OutboxTests {
    @Test("An event written in an activity's transaction is published once the step commits (2xx)")
    func published() async throws {
        let broker = TestBroker(statuses: [202])
        let hooks = SentHooks()
        try await withBroker(broker, configure: { $0.hooks = hooks }) { app, database in
            let flow = app.register(workflow: "shipper") { (orderID: String, context) -> String in
                try await context.run(shipping(failFirstAttempt: true), input: orderID)
            }
            #expect(try await app.run(flow, input: "A-1") == "A-1")
            try await eventually("publication") { try outboxRows(database).first?["status"] as String? == "published" }
            // The rolled-back first attempt wrote nothing: one row, one request.
            #expect(try outboxRows(database).count == 1)
            #expect(broker.received.count == 1)
            let sent = try #require(broker.received.first)
            #expect(sent.contentType == "application/cloudevents+json")
            let event = try #require(sent.json)
            #expect(event["type"] == "order.shipped")
            #expect(event["source"] == "/shop")
            #expect(event["specversion"] == "1.0")
            #expect(event["datacontenttype"] == "application/json")
            #expect(event["data"] == ["orderID": "A-1", "carrier": "ACME"])
            #expect(event["id"] == .string(try outboxRows(database).first?["event_id"] ?? ""))
            try await eventually("the eventSent hook") { hooks.sent.count == 1 }
        }
    }

    @Test("The stored content type is sent; binary data goes as data_base64")
    func contentTypes() async throws {
        let broker = TestBroker()
        try await withBroker(broker) { app, database in
            let flow = app.register(workflow: "blobs") { (orderID: String, context) -> String in
                try await context.run(shipping(contentType: "application/octet-stream", binary: true), input: orderID)
            }
            _ = try await app.run(flow, input: "B-1")
            try await eventually("publication") { broker.received.count == 1 }
            let event = try #require(broker.received.first?.json)
            #expect(event["datacontenttype"] == "application/octet-stream")
            #expect(event["data_base64"] == .string(Data([1, 2, 3]).base64EncodedString()))
            #expect(event["data"] == nil)
        }
    }

    @Test("A 4xx answer marks the event invalid and it is never retried")
    func invalid() async throws {
        let broker = TestBroker(statuses: [422])
        try await withBroker(broker) { app, database in
            let flow = app.register(workflow: "shipper") { (orderID: String, context) -> String in
                try await context.run(shipping(), input: orderID)
            }
            _ = try await app.run(flow, input: "C-1")
            try await eventually("the refusal") { try outboxRows(database).first?["status"] as String? == "invalid" }
            let row = try #require(try outboxRows(database).first)
            #expect((row["last_error"] as String?)?.hasPrefix("HTTP 422") == true)
            try await Task.sleep(for: .milliseconds(500))
            #expect(broker.received.count == 1)
        }
    }

    @Test("5xx answers are retried up to maxRetries, then the event stays failed and is not fetched again")
    func failedThenPermanent() async throws {
        let broker = TestBroker(statuses: Array(repeating: 503, count: 10))
        try await withBroker(broker, configure: { $0.outboxRelayer.maxRetries = 3 }) { app, database in
            let flow = app.register(workflow: "shipper") { (orderID: String, context) -> String in
                try await context.run(shipping(), input: orderID)
            }
            _ = try await app.run(flow, input: "D-1")
            try await eventually("three attempts") { broker.received.count == 3 }
            try await eventually("the third failure recorded") { try outboxRows(database).first?["retry_count"] as Int? == 3 }
            try await Task.sleep(for: .milliseconds(600))
            #expect(broker.received.count == 3)
            let row = try #require(try outboxRows(database).first)
            #expect(row["status"] as String == "failed")
            #expect((row["last_error"] as String?)?.hasPrefix("HTTP 503") == true)
        }
    }

    @Test("A 2xx with a large body is a success; 429 is retried, not dropped")
    func largeBodiesAndRateLimits() async throws {
        let broker = TestBroker(statuses: [429, 202], replyBody: String(repeating: "x", count: 100_000))
        try await withBroker(broker) { app, database in
            let flow = app.register(workflow: "shipper") { (orderID: String, context) -> String in
                try await context.run(shipping(), input: orderID)
            }
            _ = try await app.run(flow, input: "G-1")
            try await eventually("publication") { try outboxRows(database).first?["status"] as String? == "published" }
            #expect(broker.received.count == 2)
            #expect(try outboxRows(database).first?["retry_count"] as Int? == 1)
        }
    }

    @Test("A row put back while the app shuts down returns to pending without counting an attempt")
    func postponedRows() async throws {
        try await TemporaryDatabase.with { database in
            try await database.withApp(configure: { $0.runsBackgroundRecovery = false }) { app in
                let flow = app.register(workflow: "shipper") { (orderID: String, context) -> String in
                    try await context.run(shipping(), input: orderID)
                }
                _ = try await app.run(flow, input: "H-1")
                let store = try #require(app.store as? any OutboxStore)
                let claimed = try await store.claimOutboxEvents(
                    OutboxClaim(limit: 10, leaseUntil: Date().addingTimeInterval(60)), now: Date())
                #expect(claimed.count == 1)
                #expect(try outboxRows(database).first?["status"] as String? == "processing")
                try await store.finishOutboxEvent(eventID: claimed[0].eventID, outcome: .postponed, now: Date())
                let row = try #require(try outboxRows(database).first)
                #expect(row["status"] as String == "pending")
                #expect(row["retry_count"] as Int == 0)
            }
        }
    }

    @Test("A 5xx then a 2xx: published on the retry")
    func recoversAfterFailure() async throws {
        let broker = TestBroker(statuses: [500, 200])
        try await withBroker(broker) { app, database in
            let flow = app.register(workflow: "shipper") { (orderID: String, context) -> String in
                try await context.run(shipping(), input: orderID)
            }
            _ = try await app.run(flow, input: "E-1")
            try await eventually("publication") { try outboxRows(database).first?["status"] as String? == "published" }
            #expect(broker.received.count == 2)
            #expect(try outboxRows(database).first?["retry_count"] as Int? == 1)
        }
    }

    @Test("An unreachable broker (connection refused) is noticed at once, recorded as pending with its error, and given up after maxRetries")
    func connectionRefused() async throws {
        // A port this test holds bound without listening: connecting is refused, and no other
        // test's server can take the port meanwhile.
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(socket >= 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        try #require(bound)
        let closedPort = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
        // A request timeout of ten minutes: retrying the connection until it would fail the wait
        // below; noticing the refusal at once passes it even on a loaded machine.
        let unreachable = HTTPOutboxPublisher(brokerURL: "\(closedPort)/events", timeout: .seconds(600))
        try await withBroker(TestBroker(), configure: {
            $0.outboxPublisher = unreachable
            $0.outboxRelayer.maxRetries = 2
            $0.outboxRelayer.pollInterval = .milliseconds(50)
            $0.outboxRelayer.maxPollInterval = .milliseconds(100)
        }) { app, database in
            let flow = app.register(workflow: "shipper") { (orderID: String, context) -> String in
                try await context.run(shipping(), input: orderID)
            }
            _ = try await app.run(flow, input: "F-1")
            try await eventually("a recorded failure", timeout: .seconds(120)) {
                (try outboxRows(database).first?["retry_count"] as Int? ?? 0) >= 1
            }
            // Given up after the second attempt: `failed`, with the error and the attempts.
            try await eventually("given up", timeout: .seconds(120)) { try outboxRows(database).first?["status"] as String? == "failed" }
            let row = try #require(try outboxRows(database).first)
            #expect(row["retry_count"] as Int == 2)
            let error = row["last_error"] as String? ?? ""
            #expect(error.hasPrefix("Network error") && error.hasSuffix("(gave up after 2 attempts)"), "\(error)")
        }
    }

    @Test("A failure with attempts left leaves the row pending, with its error and the attempt counted")
    func failureWillRetry() async throws {
        let broker = TestBroker(statuses: Array(repeating: 503, count: 10))
        try await withBroker(broker, configure: {
            $0.outboxRelayer.pollInterval = .seconds(30)
            $0.outboxRelayer.maxPollInterval = .seconds(30)
        }) { app, database in
            let flow = app.register(workflow: "shipper") { (orderID: String, context) -> String in
                try await context.run(shipping(), input: orderID)
            }
            _ = try await app.run(flow, input: "R-1")
            // Between attempts (the relayer backs off), the row says it will be retried.
            try await eventually("a failure recorded as pending") {
                guard let row = try outboxRows(database).first else { return false }
                return row["status"] as String == "pending" && row["retry_count"] as Int >= 1
                    && (row["last_error"] as String?)?.contains("503") == true
            }
        }
    }

    @Test("A row left processing by a relayer that crashed is taken again and published")
    func reclaimsProcessing() async throws {
        let broker = TestBroker()
        try await TemporaryDatabase.with { database in
            // As a crashed relayer leaves it: processing, its lease ended ten minutes ago; one whose
            // lease runs for five more minutes (its relayer is sending it); and one processing with
            // no lease end, as Python's relayer marks the rows it takes (it is sending it).
            try await database.withApp(configure: { $0.runsBackgroundRecovery = false }) { _ in }
            let stuck = OutboxEventID.make()
            let busy = OutboxEventID.make()
            let foreignBusy = OutboxEventID.make()
            let queue = try openDatabase(database.path)
            try await queue.write { db in
                try db.execute(sql: """
                    INSERT INTO outbox_events (event_id, event_type, event_source, data_type, event_data, content_type,
                                               created_at, published_at, status, retry_count)
                    VALUES (?, 'order.shipped', '/shop', 'json', '{"n":1}', 'application/json',
                            '2026-01-01 00:00:00.000000', ?, 'processing', 0),
                           (?, 'order.shipped', '/shop', 'json', '{"n":2}', 'application/json',
                            '2026-01-01 00:00:00.000000', ?, 'processing', 0),
                           (?, 'order.shipped', '/shop', 'json', '{"n":3}', 'application/json',
                            '2026-01-01 00:00:00.000000', NULL, 'processing', 0)
                    """,
                    arguments: [
                        stuck, Timestamp.database(Date().addingTimeInterval(-600)), busy,
                        Timestamp.database(Date().addingTimeInterval(300)), foreignBusy,
                    ])
            }
            try queue.close()
            try await withServer(broker.router()) { base in
                try await database.withApp(configure: { configuration in
                    configuration.outboxPublisher = HTTPOutboxPublisher(brokerURL: "\(base)/events")
                    configuration.outboxRelayer.pollInterval = .milliseconds(50)
                    configuration.outboxRelayer.lease = .seconds(300)
                }) { _ in
                    try await eventually("the stuck row published") {
                        try rows(database, "SELECT status FROM outbox_events WHERE event_id = ?", [stuck]).first?["status"] as String? == "published"
                    }
                    // Ones being sent right now (a lease runs, or another framework's relayer has them) are
                    // left to their relayer.
                    #expect(try rows(database, "SELECT status FROM outbox_events WHERE event_id = ?", [busy]).first?["status"] as String? == "processing")
                    #expect(try rows(database, "SELECT status FROM outbox_events WHERE event_id = ?", [foreignBusy]).first?["status"] as String? == "processing")
                    #expect(broker.received.count == 1)
                }
            }
        }
    }

    @Test("Immediate sendEvent: 2xx returns, other statuses throw")
    func immediateSend() async throws {
        let broker = TestBroker(statuses: [200, 500])
        try await withServer(broker.router()) { base in
            let client = CloudEventClient(brokerURL: "\(base)/events")
            try await client.send(type: "note", source: "/test", data: ["text": "hi"])
            let error = await #expect(throws: CloudEventSendError.self) {
                try await client.send(type: "note", source: "/test", data: ["text": "again"])
            }
            #expect(error?.status == 500)
            #expect(broker.received.first?.json?["data"] == ["text": "hi"])
            #expect(broker.received.first?.json?["type"] == "note")
        }
    }
}

/// Records `eventSent` calls.
final class SentHooks: WorkflowHooks {
    private let recorder = Recorder()
    var sent: [String] { recorder.all }
    func eventSent(eventType: String, eventSource: String, dataJSON: String) async {
        recorder.record("\(eventType) \(eventSource)")
    }
}
