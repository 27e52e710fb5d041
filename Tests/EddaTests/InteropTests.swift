@testable import Edda
import EddaSQLite
import EddaTesting
import Foundation
import GRDB
import InMemoryTracing
import PostgresNIO
import Testing
import TestSupport

/// Messages crossing between this implementation and Python Edda 0.16.2 in one database, on
/// SQLite, PostgreSQL and MySQL (MariaDB).
///
/// Needs Python 3 with `edda-framework==0.16.2`, `asyncpg` and `aiomysql`: the system `python3` if it has
/// them, otherwise a virtual environment under `.build/edda-python` that the suite creates and
/// installs them into. Fails, never skips, when neither works.
// The limit covers the one-time install of Python Edda into .build/edda-python on a fresh clone,
// which took 4.5 minutes on a loaded 2-core machine.
@Suite("Interoperability with Python Edda", .timeLimit(.minutes(20)))
struct InteropTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let peerScript = packageRoot.appendingPathComponent("Tests/Interop/python_peer.py").path

    /// The interpreter with Python Edda 0.16.2, found or installed once per test run.
    static let interpreter: Result<String, PeerError> = {
        let check = ["-c", "import importlib.metadata as m, asyncpg, aiomysql; assert m.version('edda-framework') == '0.16.2'"]
        if (try? run("/usr/bin/env", ["python3"] + check)) != nil { return .success("python3") }
        let venv = packageRoot.appendingPathComponent(".build/edda-python").path
        let python = venv + "/bin/python"
        if (try? run(python, check)) != nil { return .success(python) }
        do {
            _ = try run("/usr/bin/env", ["python3", "-m", "venv", venv])
            _ = try run(python, ["-m", "pip", "install", "--quiet", "edda-framework==0.16.2", "asyncpg", "aiomysql"], timeout: .seconds(900))
            _ = try run(python, check)
            return .success(python)
        } catch {
            return .failure(PeerError(message: "Python Edda 0.16.2 with asyncpg and aiomysql is not available and could not be installed into \(venv): \(error)"))
        }
    }()

    /// Runs the Python peer (on a thread of its own: it takes seconds, and the first call may
    /// install Python Edda) and returns its standard output.
    static func python(_ arguments: [String]) async throws -> String {
        try await onOwnThread {
            let python = try interpreter.get()
            return python.hasPrefix("/")
                ? try run(python, [peerScript] + arguments)
                : try run("/usr/bin/env", [python, peerScript] + arguments)
        }
    }

    /// Runs a command to its end and returns its standard output; throws with its standard error
    /// when it fails, and kills it when it runs past `timeout`.
    ///
    /// Both outputs go to files, not pipes: Python Edda's background tasks can log more than a
    /// pipe holds, and a child blocked on a full standard-error pipe while the test reads its
    /// standard output to the end would never exit.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(240)) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edda-peer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let outputURL = directory.appendingPathComponent("stdout")
        let errorURL = directory.appendingPathComponent("stderr")
        let exit = try spawnAndWait(
            [executable] + arguments, standardOutput: outputURL.path, standardError: errorURL.path, timeout: timeout)
        let text = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
        let errorText = (try? String(contentsOf: errorURL, encoding: .utf8)) ?? ""
        let command = "\(executable) \(arguments.joined(separator: " "))"
        if exit.timedOut {
            throw PeerError(message: "\(command) did not finish within \(timeout) and was stopped; it wrote:\n\(text)\n\(errorText)")
        }
        guard exit.code == 0 else {
            throw PeerError(message: "\(command) exited with \(exit.code):\n\(errorText)")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    struct PeerError: Error, Sendable, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// The database as the Python peer is given it: the SQLite file's path, or the server URL
    /// with Python's driver (the same URL also opens it here).
    static func peerDatabase(_ database: BackendDatabase) throws -> String {
        if let path = database.sqlite?.path { return path }
        let url = try #require(database.url)
        return url.replacingOccurrences(of: "postgresql://", with: "postgresql+asyncpg://")
            .replacingOccurrences(of: "mysql://", with: "mysql+aiomysql://")
    }

    /// Starts the Python peer's receiver workflow on `channel`; returns its instance ID.
    static func startPythonReceiver(_ database: BackendDatabase, channel: String) async throws -> String {
        let started = try await python([try peerDatabase(database), "start-receiver", channel])
        return try #require(JSONValue(jsonText: started)?["instance_id"]?.stringValue)
    }

    /// Lets the Python peer run the instance to its end; returns `{"status", "output"}`.
    static func resumePython(_ database: BackendDatabase, _ instanceID: String) async throws -> JSONValue {
        try #require(JSONValue(jsonText: try await python([try peerDatabase(database), "resume", instanceID])))
    }

    @Test("The shared schema renders, statement by statement, the migration files Python Edda ships", arguments: SharedSchema.Dialect.allCases)
    func sharedSchemaIsTheReferences(_ dialect: SharedSchema.Dialect) async throws {
        let directory = try await onOwnThread {
            let python = try Self.interpreter.get()
            let script = ["-c", "import edda, os; print(os.path.join(os.path.dirname(edda.__file__), 'migrations'))"]
            return python.hasPrefix("/") ? try Self.run(python, script) : try Self.run("/usr/bin/env", [python] + script)
        }
        // The reference's file: the `-- migrate:up` section, comments dropped, split at `;`;
        // compared up to white space (none inside parentheses, one space elsewhere).
        func normalized(_ statement: Substring) -> String {
            statement.split(whereSeparator: \.isWhitespace).joined(separator: " ")
                .replacingOccurrences(of: "( ", with: "(").replacingOccurrences(of: " )", with: ")")
        }
        #expect(SharedSchema.migrations(in: dialect).map(\.version) == SchemaMigrator.versions)
        for migration in SharedSchema.migrations(in: dialect) {
            let file = try String(contentsOfFile: "\(directory)/\(dialect.rawValue)/\(migration.version)_initial_schema.sql", encoding: .utf8)
            let up = try #require(file.components(separatedBy: "-- migrate:up").last?.components(separatedBy: "-- migrate:down").first)
            let reference = up.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }
                .joined(separator: "\n").split(separator: ";").map(normalized).filter { !$0.isEmpty }
            #expect(reference.count > 40)
            #expect(migration.statements.map { normalized($0[...]) } == reference)
        }
    }

    @Test("A message published by Python Edda reaches a waiting Swift workflow", arguments: Backend.allCases)
    func pythonToSwift(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            try await database.withApp { app in
                let receiver = app.register(workflow: "swift_receiver") { (_: NoValue, context) -> [String: JSONValue] in
                    try await context.subscribe("cross.to-swift")
                    let message = try await context.receive("cross.to-swift", as: [String: JSONValue].self)
                    return ["data": .object(message.data), "published_at": message.metadata["published_at"] ?? .null]
                }
                let id = try await app.start(receiver, input: NoValue())
                #expect(try await app.instance(id)?.status == .waitingForMessage)

                let messageID = try await Self.python([try Self.peerDatabase(database), "publish", "cross.to-swift", #"{"text": "from python", "n": 1}"#])
                let result = try await app.result(of: id, as: [String: JSONValue].self)
                #expect(result["data"] == ["text": "from python", "n": 1])
                #expect(result["published_at"]?.stringValue != nil)
                let received = try #require(try await app.history(of: id).first { $0.eventType == "ChannelMessageReceived" }?.data)
                #expect(received["id"] == .string(messageID))
            }
        }
    }

    @Test("A CloudEvent that Python Edda accepted with a traceparent resumes a Swift workflow in an execution linked to that trace", arguments: Backend.allCases)
    func pythonTraceContext(_ backend: Backend) async throws {
        let tracer = W3CTestTracer()
        let python = (traceID: W3CTestTracer.hex(digits: 32), spanID: W3CTestTracer.hex(digits: 16))
        let traceparent = W3CTestTracer.traceparent(traceID: python.traceID, spanID: python.spanID)
        try await withBackend(backend) { database in
            try await database.withApp(configure: { $0.tracer = tracer }) { app in
                let waiter = app.register(workflow: "swift_traced_waiter") { (_: NoValue, context) -> String in
                    let event = try await context.waitEvent("cross.traced", as: [String: String].self)
                    return event.extensions["traceparent"]?.stringValue ?? "-"
                }
                let id = try await app.start(waiter, input: NoValue())
                #expect(try await app.instance(id)?.status == .waitingForMessage)
                _ = try await Self.python([try Self.peerDatabase(database), "cloudevent", "cross.traced", #"{"from": "python"}"#, traceparent])
                #expect(try await app.result(of: id, as: String.self) == traceparent)
            }
        }
        let resumed = try #require(tracer.finishedSpans.first { span in
            guard case .string("resume")? = span.attributes.get(EddaSpanAttribute.execution) else { return false }
            return span.operationName == "workflow swift_traced_waiter"
        })
        #expect(resumed.links.compactMap { $0.context.inMemorySpanContext?.traceID } == [python.traceID])
        #expect(resumed.links.compactMap { $0.context.inMemorySpanContext?.spanID } == [python.spanID])
    }

    @Test("A message published by Swift Edda reaches a waiting Python workflow, which completes with it", arguments: Backend.allCases)
    func swiftToPython(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            // Python creates the schema here: the Swift app must accept it as it is.
            let started = try await Self.python([try Self.peerDatabase(database), "start-receiver", "cross.to-python"])
            let startInfo = try #require(JSONValue(jsonText: started))
            let pythonID = try #require(startInfo["instance_id"]?.stringValue)
            #expect(startInfo["status"] == "waiting_for_message")

            try await database.withApp { app in
                let sender = app.register(workflow: "swift_sender") { (_: NoValue, context) -> String in
                    try await context.publish("cross.to-python", data: ["text": "from swift"] as [String: String])
                }
                let messageID = try await app.run(sender, input: NoValue())
                let instance = try #require(try await app.instance(pythonID))
                #expect(instance.framework == "python")
                #expect(instance.status == .running)
                #expect(instance.lockedBy == nil)

                let finished = try await Self.resumePython(database, pythonID)
                #expect(finished["status"] == "completed")
                let output = try #require(finished["output"]?["result"])
                #expect(output["data"] == ["text": "from swift"])
                #expect(output["id"] == .string(messageID))
                #expect(output["metadata"]?["source_instance_id"]?.stringValue?.hasPrefix("swift_sender-") == true)
            }
        }
    }

    @Test(
        "Binary data published by Swift Edda to a waiting Python workflow does not leave it stuck: it receives the bytes as {_binary, data}",
        arguments: Backend.allCases)
    func binaryToPython(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            let pythonID = try await Self.startPythonReceiver(database, channel: "cross.bytes")
            try await database.withApp { app in
                let bytes = Data([0x00, 0xFF, 0x10, 0x80, 0x7F])
                let receipt = try await app.publish(to: "cross.bytes", data: bytes)
                #expect(receipt.deliveredTo == [pythonID])
                // A raw-bytes history row would make Python's history loading fail on every
                // resume, leaving the instance running for ever; this one it loads.
                let finished = try await Self.resumePython(database, pythonID)
                #expect(finished["status"] == "completed")
                let output = try #require(finished["output"]?["result"])
                #expect(output["data"] == ["_binary": true, "data": .string(bytes.base64EncodedString())])
                #expect(output["id"] == .string(receipt.messageID))
            }
        }
    }

    @Test(
        "A Swift workflow sharing a name with a Python one never becomes the newest definition that Python checks before resuming its crashed instances",
        arguments: Backend.allCases)
    func definitionsNeverNewest(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            let pythonID = try await Self.startPythonReceiver(database, channel: "cross.names")
            try await database.withApp { app in
                let pythonHash = try #require(try await app.instance(pythonID)?.sourceHash)
                // Same durable name as the Python peer's workflow, different code.
                let namesake = app.register(workflow: "python_receiver") { (_: NoValue, _) -> String in "swift" }
                let swiftID = try await app.startDetached(namesake, input: NoValue())
                #expect(try await app.result(of: swiftID, as: String.self) == "swift")
                let swiftHash = try #require(try await app.instance(swiftID)?.sourceHash)
                #expect(swiftHash != pythonHash)
                // Python 0.16.2's stale-lock recovery resumes an instance only if its hash is that of
                // the newest definition row of its name, by created_at.
                let hashes = try await Self.definitionHashes(database, workflowName: "python_receiver")
                #expect(hashes.first == pythonHash)
                #expect(Set(hashes) == [pythonHash, swiftHash])
            }
        }
    }

    @Test(
        "A Swift instance that Python Edda cancels while a Swift worker runs it stays cancelled: the worker stops, records no further step and overwrites nothing",
        arguments: Backend.allCases)
    func cancelledByPythonWhileRunning(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            let recorder = Recorder()
            let gate = Gate()
            // The held step ignores cancellation: it finishes after the cancel, and its result
            // must not be recorded.
            let hold = ActivityDefinition<String, String>(name: "hold") { input, _ in
                recorder.record("hold")
                await gate.wait()
                return input
            }
            let after = ActivityDefinition<String, String>(name: "after") { input, _ in
                recorder.record("after")
                return input
            }
            try await database.withApp { app in
                let flow = app.register(workflow: "cancelled_by_python") { (input: String, context) -> String in
                    _ = try await context.run(hold, input: input)
                    return try await context.run(after, input: input)
                }
                let id = try await app.startDetached(flow, input: "x")
                try await eventually("the held step") { recorder.count("hold") == 1 }
                #expect(try await Self.python([try Self.peerDatabase(database), "cancel", id]) == "true")
                gate.open()
                try await eventually("the Swift worker letting the instance go") { app.engine.runningInstanceIDs[id] == nil }
                let instance = try #require(try await app.instance(id))
                #expect(instance.status == .cancelled)
                #expect(instance.outputData?["cancelled_by"] == "python-peer")
                #expect(instance.lockedBy == nil)
                #expect(recorder.count("after") == 0)
                #expect(try await app.history(of: id).filter { $0.eventType == "ActivityCompleted" }.isEmpty)
                // Cancelled stays cancelled: nothing resumes it.
                try await Task.sleep(for: .milliseconds(500))
                #expect(try await app.instance(id)?.status == .cancelled)
                #expect(try await !app.cancel(instanceID: id))
            }
        }
    }

    @Test(
        "Python Edda cancels a waiting Swift instance; it cannot run the instance's Swift compensations, and Swift leaves the cancelled instance alone",
        arguments: Backend.allCases)
    func cancelledByPythonWhileWaiting(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            let recorder = Recorder()
            try await database.withApp { app in
                let flow = app.register(workflow: "waiting_cancelled_by_python") { (_: NoValue, context) -> String in
                    _ = try await context.run(Book(recorder: recorder), input: "hotel")
                    return try await context.waitEvent("never", as: String.self).data
                }
                let id = try await app.start(flow, input: NoValue())
                #expect(try await app.instance(id)?.status == .waitingForMessage)
                #expect(try await Self.python([try Self.peerDatabase(database), "cancel", id]) == "true")
                let instance = try #require(try await app.instance(id))
                #expect(instance.status == .cancelled)
                #expect(instance.outputData?["cancelled_by"] == "python-peer")
                // Python took the lock, marked the instance compensating, found no Python
                // compensation of that name, and cancelled it: the Swift compensation never ran.
                #expect(instance.outputData?["previous_status"] == "compensating")
                try await Task.sleep(for: .milliseconds(500))
                #expect(recorder.all == ["book hotel"])
                #expect(try await app.instance(id)?.status == .cancelled)
            }
        }
    }

    @Test(
        "An outbox event written by Python Edda is never taken by this library's relayer; this library's own events are",
        arguments: Backend.allCases)
    func outboxRowsStayWithTheirWriter(_ backend: Backend) async throws {
        try await withBackend(backend) { database in
            let emitted = try #require(JSONValue(jsonText: try await Self.python([try Self.peerDatabase(database), "emit-event", "python.event"])))
            #expect(emitted["status"] == "completed")
            let pythonEventID = try #require(emitted["output"]?["result"]?.stringValue)
            try await database.withApp(configure: { $0.runsBackgroundRecovery = false }) { app in
                let store = try #require(app.store as? any OutboxStore)
                #expect(try await store.outboxEvent(id: pythonEventID)?.status == .pending)
                let emit = ActivityDefinition<String, String>(name: "emit") { id, context in
                    try context.sendEventTransactional(type: "swift.event", source: "/swift", data: ["id": id])
                }
                let flow = app.register(workflow: "swift_emitter") { (id: String, context) -> String in
                    try await context.run(emit, input: id)
                }
                let swiftEventID = try await app.run(flow, input: "A")
                // Taken back from `processing` at once if it were anyone's: every lease has ended an
                // hour from now.
                let later = Date().addingTimeInterval(3_600)
                let claim = OutboxClaim(limit: 10, leaseUntil: Date().addingTimeInterval(60))
                #expect(try await store.claimOutboxEvents(claim, now: Date()).map(\.eventID) == [swiftEventID])
                #expect(try await store.claimOutboxEvents(claim, now: later).map(\.eventID) == [swiftEventID])
                #expect(try await store.outboxEvent(id: pythonEventID)?.status == .pending)
            }
        }
    }

    /// The rows of `workflow_definitions` for `workflowName`, newest first by `created_at` (the
    /// order Python 0.16.2's stale-lock recovery reads them in): their `source_hash` values.
    static func definitionHashes(_ database: BackendDatabase, workflowName: String) async throws -> [String] {
        if let sqlite = database.sqlite {
            return try await DatabaseQueue(path: sqlite.path).read { db in
                try String.fetchAll(
                    db, sql: "SELECT source_hash FROM workflow_definitions WHERE workflow_name = ? ORDER BY created_at DESC",
                    arguments: [workflowName])
            }
        }
        if let url = database.mysqlURL {
            // Test-controlled name, no quotes in it.
            let rows = try await MariaDBTestServer.execute(
                url, "SELECT source_hash FROM workflow_definitions WHERE workflow_name = '\(workflowName)' ORDER BY created_at DESC")
            return rows.split(separator: "\n").map(String.init)
        }
        return try await PostgresTestServer.withConnection(try #require(database.postgresURL)) { connection in
            try await connection.query(
                "SELECT source_hash FROM workflow_definitions WHERE workflow_name = \(workflowName) ORDER BY created_at DESC",
                logger: PostgresTestServer.logger
            ).collect().map { try $0.decode(String.self) }
        }
    }
}
