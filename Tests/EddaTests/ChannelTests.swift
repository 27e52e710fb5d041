@testable import Edda
@testable import EddaSQLite
import EddaTesting
import Foundation
import GRDB
import Testing

struct Job: Codable, Sendable, Equatable {
    var number: Int
}

struct Payment: Codable, Sendable, Equatable {
    var orderID: String
    var amount: Int
}

@Suite("Channels and events", .timeLimit(.minutes(2)))
struct ChannelTests {
    @Test("Broadcast: every waiting subscriber receives each message; messages before subscribing are not seen")
    func broadcast() async throws {
        try await withDatabase { database in
            try await withApp(database) { app in
                let listener = app.register(workflow: "listener") { (_: NoValue, context) -> [Int] in
                    try await context.subscribe("news")
                    let first = try await context.receive("news", as: Job.self)
                    let second = try await context.receive("news", as: Job.self)
                    return [first.data.number, second.data.number]
                }
                // Published before anyone subscribed: broadcast subscribers start after it.
                try await app.publish(to: "news", data: Job(number: 0))
                let a = try await app.start(listener, input: NoValue())
                let b = try await app.start(listener, input: NoValue())
                for id in [a, b] {
                    let instance = try #require(try await app.instance(id))
                    #expect(instance.status == .waitingForMessage)
                    #expect(instance.lockedBy == nil)
                    #expect(instance.currentActivityID == "receive_news:1")
                    #expect(app.engine.runningInstanceIDs[id] == nil)
                }
                let receipt = try await app.publish(to: "news", data: Job(number: 1))
                #expect(Set(receipt.deliveredTo) == [a, b])
                try await eventually("both wait for the second message") {
                    var ready = true
                    for id in [a, b] {
                        let instance = try await app.instance(id)
                        ready = ready && instance?.status == .waitingForMessage && instance?.currentActivityID == "receive_news:2"
                    }
                    return ready
                }
                try await app.publish(to: "news", data: Job(number: 2))
                #expect(try await app.result(of: a, as: [Int].self) == [1, 2])
                #expect(try await app.result(of: b, as: [Int].self) == [1, 2])
                // Broadcast messages stay on the channel (until retention) for later subscribers' cursors.
                #expect(try rows(database, "SELECT * FROM channel_messages").count == 3)
                #expect(try rows(database, "SELECT * FROM channel_subscriptions").isEmpty)
            }
        }
    }

    @Test("Competing: each message goes to exactly one consumer, including messages published before subscribing")
    func competing() async throws {
        try await withDatabase { database in
            try await withApp(database) { app in
                let worker = app.register(workflow: "worker") { (_: NoValue, context) -> Int in
                    try await context.subscribe("jobs", mode: .competing)
                    return try await context.receive("jobs", as: Job.self).data.number
                }
                try await app.publish(to: "jobs", data: Job(number: 1))
                var consumers: [String] = []
                for _ in 0..<4 {
                    consumers.append(try await app.start(worker, input: NoValue()))
                }
                // The first consumer took the message published earlier; the others wait.
                #expect(try await app.result(of: consumers[0], as: Int.self) == 1)
                for number in 2...4 {
                    let receipt = try await app.publish(to: "jobs", data: Job(number: number))
                    #expect(receipt.deliveredTo.count == 1)
                }
                var numbers: [Int] = []
                for id in consumers {
                    numbers.append(try await app.result(of: id, as: Int.self))
                }
                #expect(numbers.sorted() == [1, 2, 3, 4])
                #expect(try rows(database, "SELECT * FROM channel_messages").isEmpty)
            }
        }
    }

    @Test("Competing consumers racing on many messages never receive the same one")
    func competingRace() async throws {
        try await withDatabase { database in
            try await withApp(database) { app in
                let worker = app.register(workflow: "racer") { (_: NoValue, context) -> [Int] in
                    try await context.subscribe("work", mode: .competing)
                    var got: [Int] = []
                    for _ in 0..<5 {
                        got.append(try await context.receive("work", as: Job.self).data.number)
                    }
                    return got
                }
                var consumers: [String] = []
                for _ in 0..<4 { consumers.append(try await app.startDetached(worker, input: NoValue())) }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for publisher in 0..<4 {
                        group.addTask {
                            for index in 0..<5 { try await app.publish(to: "work", data: Job(number: publisher * 100 + index)) }
                        }
                    }
                    try await group.waitForAll()
                }
                var all: [Int] = []
                for id in consumers { all += try await app.result(of: id, as: [Int].self) }
                #expect(all.count == 20)
                #expect(Set(all).count == 20)
            }
        }
    }

    @Test("A message for a subscriber that is not waiting is kept and received later without suspending")
    func keptUntilReceived() async throws {
        try await withDatabase { database in
            let gate = Gate()
            let recorder = Recorder()
            try await withApp(database) { app in
                let flow = app.register(workflow: "busy") { (_: NoValue, context) -> Int in
                    try await context.subscribe("inbox")
                    _ = try await context.run(Hold(gate: gate, recorder: recorder), input: "busy")
                    return try await context.receive("inbox", as: Job.self).data.number
                }
                let id = try await app.startDetached(flow, input: NoValue())
                try await eventually("the busy step") { recorder.count("hold") == 1 }
                let receipt = try await app.publish(to: "inbox", data: Job(number: 7))
                #expect(receipt.deliveredTo.isEmpty)
                gate.open()
                #expect(try await app.result(of: id, as: Int.self) == 7)
                let history = try await app.history(of: id).map(\.eventType)
                #expect(history == ["ActivityCompleted", "ChannelMessageReceived"])
            }
        }
    }

    @Test("Direct messages: sendTo reaches one instance and reports whether it was waiting")
    func directMessages() async throws {
        try await withDatabase { database in
            try await withApp(database) { app in
                let receiver = app.register(workflow: "receiver") { (_: NoValue, context) -> String in
                    try await context.subscribe("inbox", mode: .direct)
                    let message = try await context.receive("inbox", as: [String: String].self)
                    return "\(message.data["text"] ?? "") from \(message.metadata["source_instance_id"]?.stringValue ?? "?")"
                }
                let sender = app.register(workflow: "sender") { (target: String, context) -> Bool in
                    try await context.sendTo(target, data: ["text": "hello"], channel: "inbox")
                }
                let other = try await app.start(receiver, input: NoValue())
                let target = try await app.start(receiver, input: NoValue())
                #expect(try rows(database, "SELECT channel FROM channel_subscriptions WHERE instance_id = ?", [target])
                    .map { $0["channel"] as String } == ["inbox:\(target)"])
                let senderID = try await app.start(sender, input: target)
                #expect(try await app.result(of: senderID, as: Bool.self) == true)
                #expect(try await app.result(of: target, as: String.self) == "hello from \(senderID)")
                #expect(try await app.instance(other)?.status == .waitingForMessage)
                // Sending to an instance that does not wait reports false; the message waits on its channel.
                let late = try await app.start(sender, input: "nobody")
                #expect(try await app.result(of: late, as: Bool.self) == false)
                #expect(try rows(database, "SELECT channel FROM channel_messages WHERE channel = 'inbox:nobody'").count == 1)
            }
        }
    }

    @Test("Publishing from a workflow is a step: recorded once, never published again on replay")
    func publishFromWorkflowOnce() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            let gate = Gate()
            let id = try await startAndStop(database, register: { app in
                app.register(workflow: "announcer") { (_: NoValue, context) -> String in
                    let messageID = try await context.publish("announcements", data: Job(number: 1))
                    _ = try await context.run(Hold(gate: gate, recorder: recorder), input: "after publish")
                    return messageID
                }
            }, input: NoValue(), heldBy: recorder)
            gate.open()
            let messageID = try await withApp(database) { app in
                app.register(workflow: "announcer") { (_: NoValue, context) -> String in
                    let messageID = try await context.publish("announcements", data: Job(number: 1))
                    _ = try await context.run(Hold(gate: gate, recorder: recorder), input: "after publish")
                    return messageID
                }
                return try await app.result(of: id, as: String.self)
            }
            let stored = try rows(database, "SELECT message_id, metadata FROM channel_messages")
            #expect(stored.count == 1)
            #expect(stored.first?["message_id"] as String? == messageID)
            let metadata = try #require(JSONValue(jsonText: stored.first?["metadata"] ?? ""))
            #expect(metadata["source_instance_id"] == .string(id))
        }
    }

    @Test("A message published in an activity's transaction exists only if the step commits")
    func publishInActivityTransaction() async throws {
        try await withDatabase { database in
            try await withApp(database) { app in
                let attempts = Recorder()
                struct Rollback: Error {}
                let emit = ActivityDefinition<Int, Int>(
                    name: "emit", retryPolicy: RetryPolicy(initialInterval: .milliseconds(10), maxAttempts: 2)
                ) { number, context in
                    attempts.record("attempt")
                    try context.publish("events", data: Job(number: number))
                    if context.attempt == 1 {
                        context.transaction { _ in throw Rollback() }
                    }
                    return number
                }
                let waiter = app.register(workflow: "waiter") { (_: NoValue, context) -> Int in
                    try await context.subscribe("events")
                    return try await context.receive("events", as: Job.self).data.number
                }
                let emitter = app.register(workflow: "emitter") { (number: Int, context) -> Int in
                    try await context.run(emit, input: number)
                }
                let waiting = try await app.start(waiter, input: NoValue())
                #expect(try await app.run(emitter, input: 5) == 5)
                #expect(attempts.count("attempt") == 2)
                #expect(try await app.result(of: waiting, as: Int.self) == 5)
                #expect(try rows(database, "SELECT * FROM channel_messages").count == 1)
            }
        }
    }

    @Test("waitEvent returns the data with its CloudEvents attributes; point-to-point reaches only its target")
    func events() async throws {
        try await withDatabase { database in
            try await withApp(database) { app in
                let order = app.register(workflow: "order") { (orderID: String, context) -> String in
                    let event = try await context.waitEvent("payment.completed", as: Payment.self)
                    return "\(event.data.orderID):\(event.data.amount) \(event.source) \(event.id) \(event.subject ?? "-") "
                        + "\(event.extensions["region"]?.stringValue ?? "-") \(event.dataContentType ?? "-")"
                }
                let a = try await app.start(order, input: "A")
                let b = try await app.start(order, input: "B")
                let attributes = CloudEventAttributes(
                    type: "payment.completed", source: "/payments", id: "evt-1", dataContentType: "application/json",
                    subject: "order-A", extensions: ["region": "eu"])
                let receipt = try await app.sendEvent(attributes, data: Payment(orderID: "A", amount: 42), to: a)
                #expect(receipt.deliveredTo == [a])
                #expect(try await app.result(of: a, as: String.self) == "A:42 /payments evt-1 order-A eu application/json")
                #expect(try await app.instance(b)?.status == .waitingForMessage)

                // Addressed via the eddainstanceid extension.
                let viaExtension = CloudEventAttributes(
                    type: "payment.completed", source: "/payments", extensions: ["eddainstanceid": .string(b)])
                #expect(try await app.sendEvent(viaExtension, data: Payment(orderID: "B", amount: 7)).deliveredTo == [b])
                #expect(try await app.result(of: b, as: String.self).hasPrefix("B:7 /payments"))

                // A later subscriber never sees the point-to-point events addressed to others.
                let c = try await app.start(order, input: "C")
                let late = try await app.sendEvent(
                    CloudEventAttributes(type: "payment.completed", source: "/p"), data: Payment(orderID: "C", amount: 1))
                #expect(late.deliveredTo == [c])
                #expect(try await app.result(of: c, as: String.self).hasPrefix("C:1"))
            }
        }
    }

    @Test("A point-to-point event never reaches another subscriber, even one that subscribed before it and receives later")
    func pointToPointNotLeaked() async throws {
        try await withDatabase { database in
            let gate = Gate()
            let recorder = Recorder()
            try await withApp(database) { app in
                let early = app.register(workflow: "early") { (_: NoValue, context) -> Int in
                    try await context.subscribe("shipment.sent")
                    _ = try await context.run(Hold(gate: gate, recorder: recorder), input: "busy")
                    return try await context.waitEvent("shipment.sent", as: Job.self).data.number
                }
                let target = app.register(workflow: "target") { (_: NoValue, context) -> Int in
                    try await context.waitEvent("shipment.sent", as: Job.self).data.number
                }
                let earlyID = try await app.startDetached(early, input: NoValue())
                try await eventually("the early subscriber to be busy") { recorder.count("hold") == 1 }
                let targetID = try await app.start(target, input: NoValue())
                let attributes = CloudEventAttributes(type: "shipment.sent", source: "/ship")
                #expect(try await app.sendEvent(attributes, data: Job(number: 1), to: targetID).deliveredTo == [targetID])
                #expect(try await app.result(of: targetID, as: Int.self) == 1)
                gate.open()
                try await eventually("the early subscriber to wait") {
                    try await app.instance(earlyID)?.status == .waitingForMessage
                }
                try await app.sendEvent(attributes, data: Job(number: 2))
                #expect(try await app.result(of: earlyID, as: Int.self) == 2)
            }
        }
    }

    @Test("Binary payloads are delivered and replayed with their metadata")
    func binaryPayload() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            try await withApp(database) { app in
                let flow = app.register(workflow: "blob") { (_: NoValue, context) -> String in
                    let event = try await context.waitEvent("blob.uploaded", as: Data.self)
                    _ = try await context.run(Note(recorder: recorder), input: "got \(event.data.count)")
                    try await context.sleep(for: .milliseconds(50))
                    // After the sleep the body has replayed the event from history.
                    return "\(Array(event.data)) \(event.source)"
                }
                let id = try await app.start(flow, input: NoValue())
                try await app.sendEvent(CloudEventAttributes(type: "blob.uploaded", source: "/store"), data: Data([1, 2, 255]))
                #expect(try await app.result(of: id, as: String.self) == "[1, 2, 255] /store")
                #expect(recorder.all == ["got 3"])
            }
        }
    }

    @Test("Timeouts: a receive throws ReceiveTimeoutError and waitEvent an error naming the event")
    func timeouts() async throws {
        try await withDatabase { database in
            let clock = ManualClock()
            try await withApp(database, configure: { $0.clock = clock }) { app in
                let patient = app.register(workflow: "patient") { (_: NoValue, context) -> String in
                    try await context.subscribe("replies")
                    do {
                        _ = try await context.receive("replies", as: Job.self, timeout: .seconds(30))
                        return "reply"
                    } catch let timeout as ReceiveTimeoutError {
                        return "timed out on \(timeout.channel)"
                    }
                }
                let strict = app.register(workflow: "strict") { (_: NoValue, context) -> String in
                    _ = try await context.waitEvent("approval.granted", as: Job.self, timeout: .seconds(3_600))
                    return "approved"
                }
                let p = try await app.start(patient, input: NoValue())
                let s = try await app.start(strict, input: NoValue())
                let timeoutAt: String? = try rows(database, "SELECT timeout_at FROM channel_subscriptions WHERE instance_id = ?", [p])
                    .first?["timeout_at"]
                #expect(timeoutAt != nil)
                clock.advance(by: .seconds(31))
                #expect(try await app.result(of: p, as: String.self) == "timed out on replies")
                let timeoutRow = try #require(try await app.history(of: p).first { $0.eventType == "MessageTimeout" }?.data)
                #expect(timeoutRow["error_type"] == .string("TimeoutError"))
                #expect(timeoutRow["_error"] == .bool(true))
                #expect(try await app.instance(s)?.status == .waitingForMessage)

                clock.advance(by: .seconds(3_600))
                let failure = await #expect(throws: WorkflowFailedError.self) {
                    _ = try await app.result(of: s, as: String.self)
                }
                #expect(failure?.errorType == "EventTimeoutError")
                #expect(failure?.message.contains("approval.granted") == true)
            }
        }
    }

    @Test("Mode conflicts, receiving without a subscription, and undecodable data are clear errors")
    func misuse() async throws {
        try await withDatabase { database in
            try await withApp(database) { app in
                let competing = app.register(workflow: "competing") { (_: NoValue, context) -> String in
                    try await context.subscribe("shared", mode: .competing)
                    return "ok"
                }
                let broadcast = app.register(workflow: "broadcast") { (_: NoValue, context) -> String in
                    try await context.subscribe("shared", mode: .broadcast)
                    return "ok"
                }
                let unsubscribed = app.register(workflow: "unsubscribed") { (_: NoValue, context) -> String in
                    _ = try await context.receive("nowhere", as: Job.self)
                    return "ok"
                }
                let picky = app.register(workflow: "picky") { (_: NoValue, context) -> String in
                    try await context.subscribe("typed")
                    do {
                        _ = try await context.receive("typed", as: Job.self)
                        return "decoded"
                    } catch let error as MessageDecodingError {
                        return "undecodable: \(error.channel)"
                    }
                }
                // The competing instance stays subscribed while it waits forever.
                let holder = app.register(workflow: "holder") { (_: NoValue, context) -> String in
                    try await context.subscribe("shared", mode: .competing)
                    _ = try await context.receive("shared", as: Job.self)
                    return "ok"
                }
                _ = competing
                _ = try await app.start(holder, input: NoValue())
                let conflict = await #expect(throws: WorkflowFailedError.self) { try await app.run(broadcast, input: NoValue()) }
                #expect(conflict?.errorType == "ChannelModeConflictError")
                #expect(conflict?.message == "Channel 'shared' is already configured as 'competing' mode. Cannot subscribe with 'broadcast' mode.")

                let missing = await #expect(throws: WorkflowFailedError.self) { try await app.run(unsubscribed, input: NoValue()) }
                #expect(missing?.message.contains("without subscribing") == true)

                let p = try await app.start(picky, input: NoValue())
                try await app.publish(to: "typed", data: ["unexpected": true])
                #expect(try await app.result(of: p, as: String.self) == "undecodable: typed")
            }
        }
    }

    @Test("Cancelling a waiting workflow runs its compensations and removes its subscriptions")
    func cancelWaiting() async throws {
        try await withDatabase { database in
            let recorder = Recorder()
            try await withApp(database) { app in
                let flow = app.register(workflow: "reserving") { (_: NoValue, context) -> String in
                    try context.registerCompensation(Refund(recorder: recorder), input: 5)
                    _ = try await context.waitEvent("confirmed", as: Job.self)
                    return "confirmed"
                }
                let id = try await app.start(flow, input: NoValue())
                #expect(try await app.instance(id)?.status == .waitingForMessage)
                #expect(try await app.cancel(instanceID: id))
                let cancelled = try await app.waitForStatus(id, in: [.cancelled])
                #expect(cancelled.outputData?["previous_status"] == .string("waiting_for_message"))
                #expect(recorder.all == ["refund 5"])
                #expect(try rows(database, "SELECT * FROM channel_subscriptions").isEmpty)
                // An event after the cancellation is kept on the channel; nobody consumes it.
                #expect(try await app.sendEvent(CloudEventAttributes(type: "confirmed", source: "/"), data: Job(number: 1)).deliveredTo.isEmpty)
            }
        }
    }

    @Test("Replaying subscribe and unsubscribe changes nothing: messages pending across a resume are not lost")
    func resubscribeReplay() async throws {
        try await withDatabase { database in
            let clock = ManualClock()
            try await withApp(database, configure: { $0.clock = clock }) { app in
                let flow = app.register(workflow: "resubscriber") { (_: NoValue, context) -> [Int] in
                    try await context.subscribe("t")
                    let first = try await context.receive("t", as: Job.self).data.number
                    try await context.unsubscribe("t")
                    try await context.subscribe("t")
                    let second = try await context.receive("t", as: Job.self).data.number
                    try await context.sleep(for: .seconds(3_600))
                    let third = try await context.receive("t", as: Job.self).data.number
                    // A mode switch after an unsubscribe replays too.
                    try await context.unsubscribe("t")
                    try await context.subscribe("t-jobs", mode: .competing)
                    let fourth = try await context.receive("t-jobs", as: Job.self).data.number
                    return [first, second, third, fourth]
                }
                let id = try await app.start(flow, input: NoValue())
                try await app.publish(to: "t", data: Job(number: 1))
                try await eventually("the second receive") { try await app.instance(id)?.currentActivityID == "receive_t:2" }
                try await app.publish(to: "t", data: Job(number: 2))
                _ = try await app.waitForStatus(id, in: [.waitingForTimer])
                // Published while the instance sleeps: kept for its next receive.
                try await app.publish(to: "t", data: Job(number: 3))
                clock.advance(by: .seconds(3_600))
                try await eventually("the competing receive") { try await app.instance(id)?.currentActivityID == "receive_t-jobs:1" }
                try await app.publish(to: "t-jobs", data: Job(number: 4))
                #expect(try await app.result(of: id, as: [Int].self) == [1, 2, 3, 4])
            }
        }
    }

    @Test("Received data replays exactly as it was first read, large integers included")
    func receivedDataFidelity() async throws {
        try await withDatabase { database in
            let gate = Gate()
            let recorder = Recorder()
            try await withApp(database) { app in
                let flow = app.register(workflow: "exact") { (_: NoValue, context) -> [String] in
                    try await context.subscribe("numbers")
                    _ = try await context.run(Hold(gate: gate, recorder: recorder), input: "busy")
                    // Consumed live from the pending message...
                    let pending = try await context.receive("numbers", as: Data.self)
                    // ...and delivered while waiting (read back from history on resume).
                    let delivered = try await context.receive("numbers", as: [String: Int].self)
                    try await context.sleep(for: .milliseconds(10))
                    // After the sleep both come from history again.
                    return [String(decoding: pending.data, as: UTF8.self), String(delivered.data["n"] ?? 0)]
                }
                let id = try await app.startDetached(flow, input: NoValue())
                try await eventually("the busy step") { recorder.count("hold") == 1 }
                // Written as another implementation would, with its own spacing and key order.
                let bigJSON = #"{"n": 9007199254740993, "b": [1, 2], "a": "x"}"#
                let queue = try openDatabase(database.path)
                try await queue.write { db in
                    try db.execute(
                        sql: """
                            INSERT INTO channel_messages (channel, message_id, data_type, data, metadata, published_at)
                            VALUES ('numbers', 'm-1', 'json', ?, '{}', ?)
                            """,
                        // Published now: a message older than the app's message retention would be
                        // deleted by the leader's cleanup, which may run late on a loaded machine.
                        arguments: [bigJSON, Timestamp.database(Date())])
                }
                try queue.close()
                gate.open()
                try await eventually("the second receive") { try await app.instance(id)?.status == .waitingForMessage }
                try await app.publish(to: "numbers", data: ["n": 9_007_199_254_740_993])
                #expect(try await app.result(of: id, as: [String].self) == [bigJSON, "9007199254740993"])
            }
        }
    }

    @Test("A message missed while its subscriber was locked is delivered first, before newer ones")
    func missedMessageKeepsOrder() async throws {
        try await withDatabase { database in
            try await withApp(database) { app in
                let flow = app.register(workflow: "ordered") { (_: NoValue, context) -> [Int] in
                    try await context.subscribe("c")
                    let first = try await context.receive("c", as: Job.self).data.number
                    let second = try await context.receive("c", as: Job.self).data.number
                    return [first, second]
                }
                let id = try await app.start(flow, input: NoValue())
                // Another process holds the instance's lock for a moment (as a delivering peer does).
                let queue = try openDatabase(database.path)
                try await queue.write { db in
                    try db.execute(
                        sql: "UPDATE workflow_instances SET locked_by = 'peer', lock_expires_at = '2999-01-01 00:00:00.000000' WHERE instance_id = ?",
                        arguments: [id])
                }
                #expect(try await app.publish(to: "c", data: Job(number: 1)).deliveredTo.isEmpty)
                try await queue.write { db in
                    try db.execute(sql: "UPDATE workflow_instances SET locked_by = NULL, lock_expires_at = NULL WHERE instance_id = ?", arguments: [id])
                }
                try queue.close()
                try await app.publish(to: "c", data: Job(number: 2))
                #expect(try await app.result(of: id, as: [Int].self) == [1, 2])
            }
        }
    }
}
