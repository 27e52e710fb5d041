import Edda
import EddaTesting
import Foundation

/// The checks of ``StoreConformance``, each a scenario through the public API.
enum ConformanceChecks {
    static let all: [StoreConformance.Check] = [
        .init(name: "activities run once and replay; a failure compensates newest first", body: runAndCompensate),
        .init(name: "an app stopped mid-step is resumed by another; no completed step runs twice", body: takeover),
        .init(name: "timers and receive timeouts follow the workflow clock", needs: .channels, body: timersAndTimeouts),
        .init(name: "channels: broadcast, competing, direct, point-to-point events, kept messages", needs: .channels, body: channels),
        .init(name: "cancellation compensates a waiting instance, and refuses an ended one", needs: .channels, body: cancellation),
        .init(name: "recur chains archive history and the result follows the chain", body: recur),
        .init(name: "queries filter by status, name and input, and page through results", body: queries),
        .init(name: "input filters compare numbers exactly, beyond a Double's precision", body: exactNumberFilters),
        .init(name: "outbox rows are written with the step, taken by one relayer, and finished", needs: .outbox, body: outbox),
        .init(name: "the leader lease is held by one app and moves on shutdown", needs: .systemLocks, body: leader),
        .init(name: "an event delivered by another app wakes the waiting instance in its own app", needs: .channels, body: crossAppDelivery),
        .init(name: "migrating again changes nothing and the schema reads as current", body: migrations),
        .init(name: "a purge deletes finished instances with their rows, by status and age, and never a waiting one", needs: .retention, body: retention),
    ]

    /// For a driver without `capability`: the app refuses its calls with a clear error, or
    /// runs without it.
    static func refuses(_ capability: StoreConformance.Capability, _ harness: ConformanceHarness) async throws {
        func expectUnsupported(_ what: String, _ body: () async throws -> Void) async throws {
            do {
                try await body()
            } catch let error as EddaUsageError where error.kind == .unsupportedByStore {
                return
            }
            throw ConformanceFailure("\(what) on a store without \(capability): expected EddaUsageError.unsupportedByStore")
        }
        switch capability {
        case .channels:
            try await harness.withApp { app in
                try await expectUnsupported("publishing") { _ = try await app.publish(to: "news", data: Job(number: 1)) }
            }
        case .outbox:
            try await expectUnsupported("an app with an outbox publisher") {
                _ = try await harness.withApp(configure: { $0.outboxPublisher = DiscardingPublisher() }) { _ in }
            }
        case .systemLocks:
            try await runAndCompensate(harness)
        case .retention:
            try await harness.withApp { app in
                try await expectUnsupported("a purge") { _ = try await app.purgeInstances(try PurgeFilter(endedBefore: Date())) }
            }
        }
    }

    static func runAndCompensate(_ harness: ConformanceHarness) async throws {
        let trail = Recorder()
        try await harness.withApp { app in
            let pair = app.register(workflow: "conformance_pair") { (purchase: Purchase, context) -> String in
                let first = try await context.run(note(trail), input: "\(purchase.id) first")
                let second = try await context.run(note(trail), input: "\(purchase.id) second")
                return first + ", " + second
            }
            try expectEqual(try await app.run(pair, input: Purchase(id: "p1", amount: 4)), "p1 first, p1 second", "the result")
            try expectEqual(trail.all, ["p1 first", "p1 second"], "each step ran once")
            try expectEqual(try await app.history(of: "no-such-instance").count, 0, "the history of a missing instance")

            let saga = app.register(workflow: "conformance_saga") { (_: Empty, context) -> String in
                _ = try await context.run(Booking(trail: trail), input: "hotel")
                try context.registerCompensation(Refund(trail: trail), input: 9)
                _ = try await context.run(Booking(trail: trail), input: "flight")
                throw TerminalError("no seats")
            }
            try await expectThrows(WorkflowFailedError.self, "the failed saga") { _ = try await app.run(saga, input: Empty()) }
            try expectEqual(
                Array(trail.all.suffix(3)), ["undo booking-flight", "refund 9", "undo booking-hotel"], "compensations, newest first")
        }
    }

    static func takeover(_ harness: ConformanceHarness) async throws {
        let trail = Recorder()
        let gate = Gate()
        let hold = ActivityDefinition<String, String>(name: "conformance_hold") { input, _ in
            trail.record("hold")
            await gate.wait()
            try Task.checkCancellation()
            return "released \(input)"
        }
        let register: (EddaApp) -> WorkflowReference<String, String> = { app in
            app.register(workflow: "conformance_held") { (input: String, context) -> String in
                _ = try await context.run(note(trail), input: "first")
                return try await context.run(hold, input: input)
            }
        }
        let id = try await harness.withApp { app in
            let id = try await app.startDetached(register(app), input: "x")
            try await eventually("the held step") { trail.count("hold") == 1 }
            return id
        }
        gate.open()
        let result = try await harness.withApp(serviceName: "conformance_second") { app in
            _ = register(app)
            return try await app.result(of: id, as: String.self)
        }
        try expectEqual(result, "released x", "the result after takeover")
        try expectEqual(trail.count("first"), 1, "runs of the step completed before the stop")
    }

    static func timersAndTimeouts(_ harness: ConformanceHarness) async throws {
        let clock = ManualClock()
        let trail = Recorder()
        try await harness.withApp(configure: { $0.clock = clock }) { app in
            let napper = app.register(workflow: "conformance_napper") { (seconds: Int, context) -> String in
                _ = try await context.run(note(trail), input: "before")
                try await context.sleep(for: .seconds(seconds))
                return try await context.run(note(trail), input: "after")
            }
            let waiter = app.register(workflow: "conformance_waiter") { (_: Empty, context) -> String in
                do {
                    _ = try await context.waitEvent("never", as: Job.self, timeout: .seconds(60))
                    return "event"
                } catch is EventTimeoutError {
                    return "timed out"
                }
            }
            let sleeping = try await app.start(napper, input: 3_600)
            let waiting = try await app.start(waiter, input: Empty())
            let instance = try await app.instance(sleeping)
            try expectEqual(instance?.status, .waitingForTimer, "a sleeping instance's status")
            try expect(instance?.lockedBy == nil, "a sleeping instance holds no lock")
            clock.advance(by: .seconds(3_600))
            try expectEqual(try await app.result(of: sleeping, as: String.self), "after", "the sleeper's result")
            try expectEqual(try await app.result(of: waiting, as: String.self), "timed out", "the waiter's result")
            try expectEqual(
                try await app.history(of: sleeping).map(\.eventType), ["ActivityCompleted", "TimerExpired", "ActivityCompleted"],
                "the sleeper's history")
        }
    }

    static func channels(_ harness: ConformanceHarness) async throws {
        try await harness.withApp { app in
            let listener = app.register(workflow: "conformance_listener") { (_: Empty, context) -> Int in
                try await context.subscribe("news")
                return try await context.receive("news", as: Job.self).data.number
            }
            let worker = app.register(workflow: "conformance_worker") { (_: Empty, context) -> Int in
                try await context.subscribe("jobs", mode: .competing)
                return try await context.receive("jobs", as: Job.self).data.number
            }
            let receiver = app.register(workflow: "conformance_receiver") { (_: Empty, context) -> String in
                try await context.subscribe("inbox", mode: .direct)
                return try await context.receive("inbox", as: [String: String].self).data["text"] ?? ""
            }
            let sender = app.register(workflow: "conformance_sender") { (target: String, context) -> Bool in
                try await context.sendTo(target, data: ["text": "hi"], channel: "inbox")
            }
            let order = app.register(workflow: "conformance_order") { (_: Empty, context) -> Int in
                try await context.waitEvent("paid", as: Job.self).data.number
            }

            let listeners = [try await app.start(listener, input: Empty()), try await app.start(listener, input: Empty())]
            try expectEqual(
                Set(try await app.publish(to: "news", data: Job(number: 5)).deliveredTo), Set(listeners), "broadcast receivers")
            for id in listeners { try expectEqual(try await app.result(of: id, as: Int.self), 5, "a listener's message") }

            try await app.publish(to: "jobs", data: Job(number: 1))  // kept until a worker receives it
            let workers = [try await app.start(worker, input: Empty()), try await app.start(worker, input: Empty())]
            try expectEqual(
                try await app.publish(to: "jobs", data: Job(number: 2)).deliveredTo.count, 1, "competing receivers of one message")
            let numbers = [try await app.result(of: workers[0], as: Int.self), try await app.result(of: workers[1], as: Int.self)]
            try expectEqual(numbers.sorted(), [1, 2], "the jobs the competing workers took")

            let target = try await app.start(receiver, input: Empty())
            try expectEqual(try await app.run(sender, input: target), true, "a direct send's delivery")
            try expectEqual(try await app.result(of: target, as: String.self), "hi", "the direct message")

            let a = try await app.start(order, input: Empty())
            let b = try await app.start(order, input: Empty())
            let receipt = try await app.sendEvent(CloudEventAttributes(type: "paid", source: "/"), data: Job(number: 7), to: a)
            try expectEqual(receipt.deliveredTo, [a], "a point-to-point event's receivers")
            try expectEqual(try await app.result(of: a, as: Int.self), 7, "the event's data")
            try expectEqual(try await app.instance(b)?.status, .waitingForMessage, "the instance the event was not for")
            try expect(try await app.cancel(instanceID: b), "cancelling the other waiter")
            try expectEqual(try await app.instance(b)?.status, .cancelled, "the cancelled waiter")
        }
    }

    static func cancellation(_ harness: ConformanceHarness) async throws {
        let trail = Recorder()
        try await harness.withApp { app in
            let trip = app.register(workflow: "conformance_trip") { (_: Empty, context) -> String in
                _ = try await context.run(Booking(trail: trail), input: "hotel")
                return try await context.waitEvent("confirmed", as: String.self).data
            }
            let id = try await app.start(trip, input: Empty())
            try expectEqual(try await app.instance(id)?.status, .waitingForMessage, "the trip before cancelling")
            try expect(try await app.cancel(instanceID: id, cancelledBy: "conformance"), "cancelling a waiting instance")
            let ended = try await app.waitForStatus(id, in: [.cancelled], timeout: .seconds(75))
            try expectEqual(ended.status, .cancelled, "the status after cancelling")
            try expectEqual(trail.all, ["book hotel", "undo booking-hotel"], "the compensation of the booked step")
            try expect(try await !app.cancel(instanceID: id), "cancelling a cancelled instance again")
            let receipt = try await app.sendEvent(CloudEventAttributes(type: "confirmed", source: "/"), data: "late")
            try expect(!receipt.deliveredTo.contains(id), "an event after cancellation reaches the cancelled instance")

            let quick = app.register(workflow: "conformance_quick") { (_: Empty, _) -> String in "done" }
            let finished = try await app.start(quick, input: Empty())
            try expect(try await !app.cancel(instanceID: finished), "cancelling a completed instance")
            try expectEqual(try await app.instance(finished)?.status, .completed, "a completed instance after a refused cancel")
            try expect(try await !app.cancel(instanceID: "no-such-instance"), "cancelling a missing instance")
        }
    }

    static func recur(_ harness: ConformanceHarness) async throws {
        try await harness.withApp { app in
            let loop = app.register(workflow: "conformance_doubling") { (value: Int, context) -> Int in
                _ = try await context.run(note(Recorder()), input: "\(value)")
                if value >= 8 { return value }
                try await context.recur(with: value * 2)
            }
            let first = try await app.start(loop, input: 1)
            try expectEqual(try await app.result(of: first, as: Int.self), 8, "the chain's result")
            try expectEqual(try await app.instance(first)?.status, .recurred, "the first instance's status")
            try expect(try await app.history(of: first).isEmpty, "the recurred instance's history is archived")
            var query = InstanceQuery()
            query.workflowName = "conformance_doubling"
            try expectEqual(try await app.findInstances(query).instances.count, 4, "instances in the chain")
        }
    }

    static func retention(_ harness: ConformanceHarness) async throws {
        try await harness.withApp { app in
            let done = app.register(workflow: "conformance_done") { (value: Int, context) -> Int in
                _ = try await context.run(note(Recorder()), input: "\(value)")
                return value
            }
            let trail = Recorder()
            let failing = app.register(workflow: "conformance_failing") { (_: Empty, context) -> String in
                _ = try await context.run(Booking(trail: trail), input: "room")
                throw TerminalError("no")
            }
            let chain = app.register(workflow: "conformance_chain") { (value: Int, context) -> Int in
                _ = try await context.run(note(Recorder()), input: "\(value)")
                if value >= 4 { return value }
                try await context.recur(with: value * 2)
            }
            let sleeper = app.register(workflow: "conformance_sleeper") { (_: Empty, context) -> String in
                _ = try await context.run(note(Recorder()), input: "before")
                try await context.sleep(for: .seconds(3_600))
                return "woke"
            }
            let completed = try await app.start(done, input: 1)
            let failed = try await app.start(failing, input: Empty())
            let first = try await app.start(chain, input: 1)
            try expectEqual(try await app.result(of: first, as: Int.self), 4, "the chain's result")
            let waiting = try await app.start(sleeper, input: Empty())
            try expectEqual(try await app.instance(failed)?.status, .failed, "the failing instance")
            try expectEqual(try await app.instance(waiting)?.status, .waitingForTimer, "the sleeping instance")

            // Whole seconds on some databases: "ended before" a moment safely after now.
            let later = Date().addingTimeInterval(2)
            try expectEqual(try await app.purgeInstances(try PurgeFilter(endedBefore: Date(timeIntervalSince1970: 0))), 0, "instances that ended before 1970")
            try expectEqual(
                try await app.purgeInstances(try PurgeFilter(endedBefore: later, statuses: [.failed])), 1, "failed instances purged")
            try expect(try await app.instance(failed) == nil, "the failed instance is gone")
            try expect(try await app.history(of: failed).isEmpty, "its history is gone")
            try expectEqual(try await app.purgeInstances(try PurgeFilter(endedBefore: later), dryRun: true), 4, "a dry run's count")
            try expect(try await app.instance(completed) != nil, "a dry run deletes nothing")
            // The completed instance, two recurred links of the chain and its completed end.
            try expectEqual(try await app.purgeInstances(try PurgeFilter(endedBefore: later)), 4, "finished instances purged")
            try expect(try await app.instance(completed) == nil, "the completed instance is gone")
            try expect(try await app.instance(first) == nil, "the chain's first link is gone")
            try expectEqual(try await app.instance(waiting)?.status, .waitingForTimer, "the waiting instance stays")
            try expect(try await !app.history(of: waiting).isEmpty, "and keeps its history")
            try expectEqual(try await app.purgeInstances(try PurgeFilter(endedBefore: later)), 0, "nothing left to purge")
            do {
                _ = try PurgeFilter(endedBefore: later, statuses: [.running])
                throw ConformanceFailure("a filter of running instances: expected EddaUsageError.invalidQuery")
            } catch let error as EddaUsageError where error.kind == .invalidQuery {}
        }
    }

    static func queries(_ harness: ConformanceHarness) async throws {
        try await harness.withApp { app in
            let flow = app.register(workflow: "conformance_lookup") { (purchase: Purchase, _) -> Int in purchase.amount }
            for index in 0..<5 { _ = try await app.run(flow, input: Purchase(id: "id-\(index)", amount: index)) }
            var query = InstanceQuery()
            query.inputFilters = ["amount": 3]
            try expectEqual(
                try await app.findInstances(query).instances.map { $0.inputData["id"] }, ["id-3"], "instances with amount 3")
            query = InstanceQuery()
            query.inputFilters = ["id": "id-1"]
            query.status = .completed
            try expectEqual(try await app.findInstances(query).instances.count, 1, "completed instances with id-1")
            query = InstanceQuery()
            query.search = "LOOK"
            query.limit = 2
            var seen: [String] = []
            while true {
                let page = try await app.findInstances(query)
                seen += page.instances.map(\.instanceID)
                guard let token = page.nextPageToken else { break }
                query.pageToken = token
            }
            try expectEqual(seen.count, 5, "instances seen over the pages")
            try expectEqual(Set(seen).count, 5, "distinct instances seen over the pages")
            query = InstanceQuery()
            query.inputFilters = ["bad path": 1]
            try await expectThrows(EddaUsageError.self, "an invalid filter path") { _ = try await app.findInstances(query) }
        }
    }

    static func exactNumberFilters(_ harness: ConformanceHarness) async throws {
        try await harness.withApp { app in
            app.register(workflow: "conformance_exact") { (_: JSONValue, _: WorkflowContext) -> Int in 0 }
            for (id, amount) in [("low", "9007199254740992"), ("high", "9007199254740993"), ("sum", "0.30000000000000004")] {
                _ = try await app.start(workflowNamed: "conformance_exact", inputJSON: #"{"amount":\#(amount)}"#, instanceID: id)
            }
            func matching(_ literal: String) async throws -> [String] {
                var query = InstanceQuery()
                query.inputFilters = ["amount": try JSONValue(parsing: literal)]
                return try await app.findInstances(query).instances.map(\.instanceID)
            }
            try expectEqual(try await matching("9007199254740993"), ["high"], "amount 2^53 + 1")
            try expectEqual(try await matching("9007199254740992"), ["low"], "amount 2^53")
            try expectEqual(try await matching("0.30000000000000004"), ["sum"], "amount 0.30000000000000004")
            try expectEqual(try await matching("0.3"), [], "amount 0.3")
        }
    }

    static func outbox(_ harness: ConformanceHarness) async throws {
        try await harness.withApp(configure: { $0.runsBackgroundRecovery = false }) { app in
            let emit = ActivityDefinition<String, String>(name: "conformance_emit") { id, context in
                try context.sendEventTransactional(type: "order.shipped", source: "/shop", data: ["id": id])
                return id
            }
            let flow = app.register(workflow: "conformance_emitter") { (id: String, context) -> String in
                try await context.run(emit, input: id)
            }
            _ = try await app.run(flow, input: "A")
            let start = Date()
            let claim = OutboxClaim(limit: 10, leaseUntil: start.addingTimeInterval(60))
            guard let store = app.store as? any OutboxStore else { throw ConformanceFailure("the store is not an OutboxStore") }
            let taken = try await store.claimOutboxEvents(claim, now: start)
            try expectEqual(taken.count, 1, "events claimed")
            try expect(
                taken.allSatisfy { OutboxEventID.isWrittenHere($0.eventID) },
                "claimed event IDs have the form of this library's (\(taken.map(\.eventID)))")
            try expectEqual(taken.first?.payload, .json(#"{"id":"A"}"#), "the event's payload")
            try expectEqual(try await store.outboxEvent(id: taken[0].eventID)?.status, .processing, "a claimed event's status")
            try expect(try await store.claimOutboxEvents(claim, now: start).isEmpty, "a claimed event is not claimed again")
            // Renewed, the lease holds past its first end; once it ends, the row is taken again.
            try await store.renewOutboxEvents(eventIDs: [taken[0].eventID], until: start.addingTimeInterval(120))
            try expect(
                try await store.claimOutboxEvents(claim, now: start.addingTimeInterval(90)).isEmpty, "a renewed lease holds")
            let retaken = try await store.claimOutboxEvents(
                OutboxClaim(limit: 10, leaseUntil: start.addingTimeInterval(200)), now: start.addingTimeInterval(121))
            try expectEqual(retaken.map(\.eventID), [taken[0].eventID], "a row whose lease ended is taken again")
            try await store.finishOutboxEvent(eventID: taken[0].eventID, outcome: .retrying("HTTP 503"), now: Date())
            let pending = try await store.outboxEvent(id: taken[0].eventID)
            try expectEqual(pending?.status, .pending, "a row that will be retried is pending")
            try expectEqual(pending?.lastError, "HTTP 503", "its last error")
            let retried = try await store.claimOutboxEvents(claim, now: Date())
            try expectEqual(retried.first?.retryCount, 1, "the retry count after a failure")
            try await store.finishOutboxEvent(eventID: taken[0].eventID, outcome: .published, now: Date())
            try expectEqual(try await store.outboxEvent(id: taken[0].eventID)?.status, .published, "the finished event's status")
        }
    }

    static func leader(_ harness: ConformanceHarness) async throws {
        let configure: (inout EddaApp.Configuration) -> Void = {
            $0.leaderHeartbeatInterval = .milliseconds(100)
            // Failover here comes from the release on shutdown, never from expiry: a lease this
            // long cannot lapse on a live leader however loaded the machine is.
            $0.leaderLeaseDuration = .seconds(60)
        }
        var first = harness.configuration(serviceName: "conformance_first")
        configure(&first)
        let leader = try await EddaApp(configuration: first)
        do {
            try await eventually("a leader") { leader.isLeader }
            try await harness.withApp(serviceName: "conformance_second", configure: configure) { second in
                try await Task.sleep(for: .milliseconds(300))
                try expect(!second.isLeader, "a second leader while the first holds the lease")
                await leader.shutdown()
                try await eventually("failover") { second.isLeader }
            }
        } catch {
            await leader.shutdown()
            throw error
        }
    }

    static func crossAppDelivery(_ harness: ConformanceHarness) async throws {
        try await harness.withApp(serviceName: "conformance_runner") { runner in
            let flow = runner.register(workflow: "conformance_awaiting") { (_: Empty, context) -> Int in
                try await context.waitEvent("go", as: Job.self).data.number
            }
            let id = try await runner.start(flow, input: Empty())
            let receipt = try await harness.withApp(serviceName: "conformance_sender", configure: { $0.runsBackgroundRecovery = false }) {
                try await $0.sendEvent(CloudEventAttributes(type: "go", source: "/"), data: Job(number: 3))
            }
            try expectEqual(receipt.deliveredTo, [id], "the event's receivers")
            try expectEqual(try await runner.result(of: id, as: Int.self), 3, "the woken instance's result")
        }
    }

    static func migrations(_ harness: ConformanceHarness) async throws {
        let id = try await harness.withApp { app in
            try expect(try await app.store.hasCurrentSchema(), "the schema after opening an app")
            try await app.store.migrate()
            try expect(try await app.store.hasCurrentSchema(), "the schema after migrating again")
            let flow = app.register(workflow: "conformance_kept") { (value: Int, _) -> Int in value }
            return try await app.start(flow, input: 11)
        }
        try await harness.withApp(serviceName: "conformance_reopened") { app in
            try expectEqual(try await app.instance(id)?.status, .completed, "an instance written before reopening")
        }
    }
}

/// An outbox publisher that accepts every event and sends it nowhere.
struct DiscardingPublisher: OutboxPublisher {
    func publish(_ event: OutboxEvent) async -> OutboxOutcome { .published }
}
