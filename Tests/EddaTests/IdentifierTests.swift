@testable import Edda
import EddaTesting
import Foundation
import Testing

@Suite("Identifiers", .timeLimit(.minutes(3)))
struct IdentifierTests {
    @Test("the identifier rules: any printable Unicode up to 255 bytes; no control characters; not empty")
    func rules() throws {
        for accepted in ["order-1", "café", "a/b", "a%2Fb", "x y", "🚚", "'; DROP TABLE x; --", String(repeating: "a", count: 255),
                         String(repeating: "é", count: 127)] {
            #expect(throws: Never.self, "\(accepted)") { try Identifier.validate(accepted, field: "instance_id") }
        }
        let refused: [(String, InvalidIdentifierError.Problem)] = [
            ("", .empty), ("nulA\u{0}one", .controlCharacter), ("line\nbreak", .controlCharacter), ("tab\t", .controlCharacter),
            ("del\u{7F}", .controlCharacter), ("c1\u{85}", .controlCharacter), ("\u{1B}[31m", .controlCharacter),
            (String(repeating: "a", count: 256), .tooLong), (String(repeating: "é", count: 128), .tooLong),
        ]
        for (value, problem) in refused {
            let error = #expect(throws: InvalidIdentifierError.self) { try Identifier.validate(value, field: "channel") }
            #expect(error?.problem == problem)
            #expect(error?.field == "channel")
        }
        // Errors print control characters escaped, never raw.
        let error = #expect(throws: InvalidIdentifierError.self) { try Identifier.validate("w4\u{0}junk", field: "instance_id") }
        #expect(error?.description.contains("\"w4\\u{0}junk\"") == true)
        #expect(error?.description.unicodeScalars.contains { $0.value < 0x20 } == false)
    }

    @Test("a NUL byte cannot make two instance IDs one: each is refused before anything is written", arguments: Backend.allCases)
    func nulInInstanceIDs(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            try await database.withApp { app in
                let flow = app.register(workflow: "order") { (input: String, _) in "done \(input)" }
                for id in ["nulA\u{0}one", "nulA\u{0}two"] {
                    let error = await #expect(throws: InvalidIdentifierError.self) {
                        try await app.start(flow, input: id, instanceID: id)
                    }
                    #expect(error?.field == "instance_id")
                    #expect(error?.problem == .controlCharacter)
                }
                #expect(try await app.findInstances(InstanceQuery()).instances.isEmpty)
                let plain = try await app.run(flow, input: "plain", instanceID: "nulA")
                #expect(plain == "done plain")
                // Reads with such an ID are refused too, instead of answering for "nulA".
                await #expect(throws: InvalidIdentifierError.self) { try await app.instance("nulA\u{0}x") }
                await #expect(throws: InvalidIdentifierError.self) { try await app.result(of: "nulA\u{0}x", as: String.self) }
                await #expect(throws: InvalidIdentifierError.self) { try await app.history(of: "nulA\u{0}x") }
                let page = try await app.findInstances(InstanceQuery())
                #expect(page.instances.map(\.instanceID) == ["nulA"])
                // Too long: refused with a typed error, not a database failure.
                let long = String(repeating: "x", count: 256)
                let tooLong = await #expect(throws: InvalidIdentifierError.self) { try await app.start(flow, input: "x", instanceID: long) }
                #expect(tooLong?.problem == .tooLong)
            }
        }
    }

    @Test("cancel, events and channels refuse control characters before any write", arguments: Backend.allCases)
    func nulInCancelEventsAndChannels(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            try await database.withApp { app in
                let waiter = app.register(workflow: "waiter") { (_: String, context) in
                    let event = try await context.waitEvent("uni", as: [String: Int].self)
                    return event.data["n"] ?? 0
                }
                let id = try await app.startDetached(waiter, input: "x", instanceID: "w4")
                try await eventually("the wait") { try await app.instance(id)?.status == .waitingForMessage }

                let cancel = await #expect(throws: InvalidIdentifierError.self) { try await app.cancel(instanceID: "w4\u{0}junk") }
                #expect(cancel?.field == "instance_id")
                #expect(try await app.instance("w4")?.status == .waitingForMessage)

                let event = await #expect(throws: InvalidIdentifierError.self) {
                    try await app.sendEvent(CloudEventAttributes(type: "uni\u{0}.t", source: "/test"), data: ["n": 1])
                }
                #expect(event?.field == "type")
                await #expect(throws: InvalidIdentifierError.self) {
                    try await app.sendEvent(CloudEventAttributes(type: "uni", source: "/te\nst"), data: ["n": 1])
                }
                await #expect(throws: InvalidIdentifierError.self) {
                    try await app.handle(CloudEvent(attributes: CloudEventAttributes(type: "uni", source: "/x", id: "e\u{0}1"), encoding: ["n": 1]))
                }
                let channel = await #expect(throws: InvalidIdentifierError.self) { try await app.publish(to: "", data: ["n": 1]) }
                #expect(channel?.field == "channel")
                await #expect(throws: InvalidIdentifierError.self) {
                    try await app.publish(to: "uni", data: ["n": 1], targetInstanceID: "w4\u{0}")
                }
                // Nothing was stored by any of those: the waiter still waits, and the next good
                // event is the one it gets.
                #expect(try await app.instance("w4")?.status == .waitingForMessage)
                _ = try await app.sendEvent(CloudEventAttributes(type: "uni", source: "/test"), data: ["n": 7])
                #expect(try await app.result(of: id, as: Int.self) == 7)
            }
        }
    }

    @Test("inside a workflow, a bad channel or step ID fails the workflow with the typed error, not the database")
    func insideWorkflows() async throws {
        try await withDatabase { database in
            try await withApp(database) { app in
                let subscriber = app.register(workflow: "bad_channel") { (channel: String, context) in
                    try await context.subscribe(channel)
                    return "subscribed"
                }
                let badID = app.register(workflow: "bad_step_id") { (_: String, context) in
                    try await context.sleep(for: .milliseconds(1), id: "nap\u{0}1")
                    return "slept"
                }
                let id = try await app.startDetached(subscriber, input: "chan\u{0}nel")
                await #expect(throws: WorkflowFailedError.self) { try await app.result(of: id, as: String.self) }
                let failed = try #require(try await app.instance(id))
                #expect(failed.status == .failed)
                #expect("\(failed.outputData ?? .null)".contains("channel must not contain control characters"))
                let other = try await app.startDetached(badID, input: "x")
                await #expect(throws: WorkflowFailedError.self) { try await app.result(of: other, as: String.self) }
                #expect(try rows(database, "SELECT * FROM channel_subscriptions").isEmpty)
                #expect(try rows(database, "SELECT * FROM workflow_timer_subscriptions").isEmpty)
            }
        }
    }
}
