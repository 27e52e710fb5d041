#if canImport(Glibc)
import Glibc
#endif
import Edda
import EddaMySQL
import EddaPostgres
import EddaTesting
import Foundation
import Testing
import TestSupport

/// The `edda` binary, built next to the test bundle.
let eddaPath: String = {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    return bundle.appendingPathComponent("edda").path
}()

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

struct CommandResult {
    var status: Int32
    var output: String
    var errors: String
}

/// Runs `edda` with `arguments` to completion, on a thread of its own.
func edda(_ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
    try await onOwnThread { try runProgram(eddaPath, arguments, environment: environment) }
}

/// Runs the program at `path` to completion (in `directory`, if given), capturing its output.
func runProgram(
    _ path: String, _ arguments: [String], environment: [String: String] = [:], directory workingDirectory: URL? = nil
) throws -> CommandResult {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edda-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let out = directory.appendingPathComponent("out")
    let err = directory.appendingPathComponent("err")
    let exit = try spawnAndWait(
        [path] + arguments, environment: environment, directory: workingDirectory?.path, standardOutput: out.path,
        standardError: err.path, timeout: .seconds(300))
    return CommandResult(
        status: exit.code, output: try String(contentsOf: out, encoding: .utf8),
        errors: try String(contentsOf: err, encoding: .utf8))
}

/// Splits a command line printed for a POSIX shell into words (plain words and single-quoted
/// ones, as `shellQuoted` writes them).
func shellWords(_ line: String) -> [String] {
    var words: [String] = []
    var current = ""
    var inWord = false
    var quoted = false
    var escaped = false
    for character in line {
        if escaped {
            current.append(character)
            escaped = false
        } else if quoted {
            if character == "'" { quoted = false } else { current.append(character) }
        } else if character == "'" {
            quoted = true
            inWord = true
        } else if character == " " {
            if inWord { words.append(current) }
            current = ""
            inWord = false
        } else if character == "\\" {
            escaped = true
            inWord = true
        } else {
            current.append(character)
            inWord = true
        }
    }
    if inWord { words.append(current) }
    return words
}

/// A seeded database file, with no app open on it.
func withSeededDatabase<T>(_ body: (TemporaryDatabase) async throws -> T) async throws -> T {
    try await TemporaryDatabase.with { database in
        try await database.withApp { app in try await seedShop(app) }
        return try await body(database)
    }
}

@Suite("edda command line", .timeLimit(.minutes(3)))
struct CLITests {
    @Test("list, show, cancel, send-event, publish and migrate work on a database and report errors clearly")
    func commands() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: eddaPath), "edda not built at \(eddaPath)")
        try await withSeededDatabase { database in
            let db = ["--db", database.path]
            let table = try await edda(["list"] + db)
            #expect(table.status == 0)
            #expect(table.output.hasPrefix("INSTANCE ID"))
            #expect(table.output.contains("ticket-failed"))
            #expect(table.output.contains("waiting_for_timer"))

            let json = try await edda(["list", "--status", "failed", "--json"] + db)
            let listed = try #require(JSONValue(jsonText: json.output))
            #expect(listed["instances"]?[0]?["instance_id"] == "ticket-failed")
            #expect(listed["instances"]?.arrayValue?.count == 1)
            let filtered = try await edda(["list", "--input", "customer.id=c-3", "--json"] + db)
            #expect(JSONValue(jsonText: filtered.output)?["instances"]?[0]?["instance_id"] == "ticket-premium")
            let paged = try await edda(["list", "--limit", "2", "--json"] + db)
            let token = try #require(JSONValue(jsonText: paged.output)?["next_page_token"]?.stringValue)
            let next = try await edda(["list", "--limit", "2", "--after", token, "--json"] + db)
            #expect(JSONValue(jsonText: next.output)?["instances"]?.arrayValue?.count == 2)
            // The hint under a page is a command that works as printed: database, filters and all.
            let firstPage = try await edda(["list", "--limit", "2", "--search", "t"] + db)
            let hint = try #require(firstPage.output.split(separator: "\n").first { $0.hasPrefix("More: ") })
            let words = shellWords(String(hint.dropFirst("More: ".count)))
            #expect(Array(words.prefix(2)) == ["edda", "list"])
            #expect(words.contains("--db") && words.contains("--search") && words.contains("--limit"), "\(hint)")
            let secondPage = try await edda(Array(words.dropFirst()))
            #expect(secondPage.status == 0, "\(secondPage.errors)")
            #expect(secondPage.output.hasPrefix("INSTANCE ID"))
            let firstIDs = Set(firstPage.output.split(separator: "\n").dropFirst().prefix(2).map { $0.split(separator: " ").first ?? "" })
            let secondIDs = Set(secondPage.output.split(separator: "\n").dropFirst().prefix(2).map { $0.split(separator: " ").first ?? "" })
            #expect(firstIDs.isDisjoint(with: secondIDs))

            let shown = try await edda(["show", "ticket-ok", "--json"] + db)
            let instance = try #require(JSONValue(jsonText: shown.output))
            #expect(instance["status"] == "completed")
            #expect(instance["history"]?[0]?["activity_id"] == "book_seats:1")
            let text = try await edda(["show", "ticket-ok"] + db)
            #expect(text.output.contains("Status:    completed"))
            #expect(text.output.contains("ActivityCompleted"))
            // Compensations by name, not by their row ID.
            let failedSaga = try await edda(["show", "ticket-failed"] + db)
            #expect(failedSaga.output.contains("(compensation)"), "\(failedSaga.output)")
            #expect(!failedSaga.output.contains("compensation_"), "\(failedSaga.output)")

            let sent = try await edda(["send-event", "payment.done", "--data", #"{"amount": 5}"#, "--to", "wait-1"] + db)
            #expect(sent.status == 0)
            #expect(sent.output.contains("delivered to wait-1"))
            let unheard = try await edda(["send-event", "order.placed", "--data", "{}"] + db)
            #expect(unheard.output.contains("Use --url"), "\(unheard.output)")
            let published = try await edda(["publish", "nobody.listens", "--data", "[1, 2]"] + db)
            #expect(published.output.contains("no instance was waiting"))

            let cancelled = try await edda(["cancel", "nap-1"] + db)
            #expect(cancelled.status == 0)
            #expect(cancelled.output == "Cancelled nap-1.\n")
            let napStatus: [String] = try rows(database, "SELECT status FROM workflow_instances WHERE instance_id = 'nap-1'").map { $0["status"] }
            #expect(napStatus == ["cancelled"])
            // With compensations to run, cancelling is a request: it says so, not "Cancelled".
            let requested = try await edda(["cancel", "ticket-premium"] + db)
            #expect(requested.status == 0)
            #expect(requested.output.hasPrefix("Cancellation of ticket-premium requested: it is compensating"), "\(requested.output)")
            let again = try await edda(["cancel", "nap-1"] + db)
            #expect(again.status != 0)
            #expect(again.errors.contains("Error: Cannot cancel nap-1: it is cancelled"))
            #expect(!again.errors.contains("USAGE"))  // not a usage mistake

            // Purge: an age keeps recent instances, a dry run counts, a purge deletes, bad input is refused.
            let recent = try await edda(["purge", "--older-than", "1d"] + db)
            #expect(recent.output == "Deleted 0 finished instances (completed, failed, cancelled, recurred).\n", "\(recent.errors)")
            let dry = try await edda(["purge", "--older-than", "0s", "--status", "cancelled", "--dry-run"] + db)
            #expect(dry.output.hasPrefix("Would delete 1 finished instance (cancelled) that ended before "), "\(dry.output)\(dry.errors)")
            let purged = try await edda(["purge", "--older-than", "0s", "--status", "cancelled"] + db)
            #expect(purged.output == "Deleted 1 finished instance (cancelled).\n", "\(purged.errors)")
            #expect(try rows(database, "SELECT status FROM workflow_instances WHERE instance_id = 'nap-1'").isEmpty)
            let badAge = try await edda(["purge", "--older-than", "soon"] + db)
            #expect(badAge.status != 0 && badAge.errors.contains("--older-than takes a number and a unit"), "\(badAge.errors)")
            let hugeAge = try await edda(["purge", "--older-than", "1e300d"] + db)
            #expect(hugeAge.status != 0 && hugeAge.errors.contains("--older-than takes a number and a unit"), "\(hugeAge.errors)")
            let notFinal = try await edda(["purge", "--older-than", "1d", "--status", "running"] + db)
            #expect(notFinal.status != 0 && notFinal.errors.contains("Only finished instances can be purged"), "\(notFinal.errors)")

            // Errors: a clear message and a non-zero status.
            let badStatus = try await edda(["list", "--status", "nope"] + db)
            #expect(badStatus.status != 0)
            #expect(badStatus.errors.contains("Unknown status 'nope'"))
            let badJSON = try await edda(["send-event", "x", "--data", "{oops"] + db)
            #expect(badJSON.errors.contains("--data is not valid JSON"))
            let missing = try await edda(["list", "--db", database.directory.appendingPathComponent("absent.db").path])
            #expect(missing.status != 0)
            #expect(missing.errors.contains("No database file at"))
            #expect(!FileManager.default.fileExists(atPath: database.directory.appendingPathComponent("absent.db").path))
            let noDB = try await edda(["list"], environment: ["EDDA_DB_URL": ""])
            #expect(noDB.errors.contains("pass --db"))
            let unknownInstance = try await edda(["show", "<nope>"] + db)
            #expect(unknownInstance.errors.contains("No workflow instance has the ID '<nope>'"))

            let fresh = database.directory.appendingPathComponent("fresh.db").path
            let migrated = try await edda(["migrate", "--db", "sqlite:///" + fresh])
            #expect(migrated.status == 0)
            #expect(migrated.output.hasPrefix("Created (or upgraded) the Edda schema"), "\(migrated.output)")
            let remigrated = try await edda(["migrate", "--db", "sqlite:///" + fresh])
            #expect(remigrated.output.contains("is up to date; nothing was changed"), "\(remigrated.output)")
            let tables = try rows(fresh, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'workflow_instances'")
            #expect(tables.count == 1)
            let empty = try await edda(["list", "--db", fresh])
            #expect(empty.output == "No workflow instances match.\n")
        }
    }

    @Test("read commands open a database read-only and refuse one without the schema; no command creates tables but migrate")
    func foreignDatabases() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: eddaPath), "edda not built at \(eddaPath)")
        try await TemporaryDatabase.with { database in
            let directory = database.directory
            // Another application's SQLite file, and an empty file.
            let foreign = directory.appendingPathComponent("foreign.db").path
            let queue = try openDatabase(foreign)
            try await queue.write { try $0.execute(sql: "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine')") }
            try queue.close()
            let empty = directory.appendingPathComponent("empty.db").path
            #expect(FileManager.default.createFile(atPath: empty, contents: nil))
            let before = try Data(contentsOf: URL(fileURLWithPath: foreign))

            for (path, command) in [(foreign, ["list"]), (foreign, ["show", "x"]), (empty, ["list"]), (foreign, ["cancel", "x"]),
                                    (foreign, ["publish", "ch", "--data", "{}"]), (empty, ["send-event", "t", "--data", "{}"])] {
                let result = try await edda(command + ["--db", path])
                #expect(result.status != 0, "\(command) on \(path)")
                #expect(result.errors.contains("is not an Edda database"), "\(command): \(result.errors)")
                #expect(result.errors.contains("edda migrate --db \(path)"), "\(command): \(result.errors)")
            }
            // Nothing was created or changed in either file.
            let tables: [String] = try rows(foreign, "SELECT name FROM sqlite_master WHERE type = 'table'").map { $0["name"] }
            #expect(tables == ["notes"])
            #expect(try Data(contentsOf: URL(fileURLWithPath: foreign)) == before)
            #expect(try FileManager.default.attributesOfItem(atPath: empty)[.size] as? Int == 0)
            #expect(!FileManager.default.fileExists(atPath: foreign + "-wal"))

            // Empty or control-character names are refused as over HTTP.
            let migrated = directory.appendingPathComponent("edda.db").path
            #expect(try await edda(["migrate", "--db", migrated]).status == 0)
            for command in [["publish", "", "--data", "{}"], ["send-event", "", "--data", "{}"], ["publish", "a\u{1}b", "--data", "{}"]] {
                let refused = try await edda(command + ["--db", migrated])
                #expect(refused.status != 0, "\(command)")
                #expect(refused.errors.contains("must not"), "\(command): \(refused.errors)")
            }
            #expect(try rows(migrated, "SELECT * FROM channel_messages").isEmpty)
        }
    }

    @Test("The commands and the viewer work on a PostgreSQL or MySQL URL too", arguments: ["postgresql", "mysql"])
    func serverDatabase(_ scheme: String) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: eddaPath), "edda not built at \(eddaPath)")
        let url = scheme == "mysql" ? try await MariaDBTestServer.makeDatabase() : try await PostgresTestServer.makeDatabase()
        let location = try DatabaseLocation.url(url, drivers: [PostgresStore.self, MySQLStore.self])
        try await EddaApp.running(.testing(database: location)) { app in try await seedShop(app) }
        let listed = try await edda(["list", "--status", "waiting_for_timer", "--json", "--db", url])
        #expect(listed.status == 0, "\(listed.errors)")
        #expect(JSONValue(jsonText: listed.output)?["instances"]?[0]?["instance_id"] == "nap-1")
        let cancelled = try await edda(["cancel", "nap-1", "--db", url])
        #expect(cancelled.output == "Cancelled nap-1.\n")
        let shown = try await edda(["show", "nap-1", "--json"], environment: ["EDDA_DB_URL": url])
        #expect(JSONValue(jsonText: shown.output)?["status"] == "cancelled")

        // An unreachable server is named at once, not after the driver's retries.
        let refused = try await edda(["list", "--db", "\(scheme)://edda@127.0.0.1:1/none"])
        #expect(refused.status != 0)
        #expect(refused.errors.contains("Cannot reach the database server at 127.0.0.1:1: connection refused"), "\(refused.errors)")

        let server = try ServeProcess(arguments: ["serve", "--db", url, "--port", "0", "--read-only"])
        // A second server on the same port says which port is taken.
        let port = try #require(URLComponents(string: server.baseURL)?.port)
        let clash = try await edda(["serve", "--db", url, "--port", "\(port)", "--read-only"])
        #expect(clash.status != 0)
        #expect(clash.errors.contains("Port \(port) on 127.0.0.1 is in use"), "\(clash.errors)")
        let page = try await httpRequest(server.baseURL + "/workflow/ticket-failed", method: .GET)
        #expect(page.status == 200)
        #expect(page.body.contains("the mail server refused Customer c-2"))
        #expect(!page.body.contains("cancel-button"))
    }

    @Test("visualize prints Mermaid for the examples and writes an SVG")
    func visualize() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: eddaPath), "edda not built at \(eddaPath)")
        let source = packageRoot.appendingPathComponent("Examples/OrderService/OrderWorkflows.swift").path
        // Two workflows: Markdown with one fenced Mermaid block each (one diagram per document).
        let mermaid = try await edda(["visualize", source])
        #expect(mermaid.status == 0)
        #expect(mermaid.output.contains("## order_saga\n\n```mermaid\nflowchart TD"))
        #expect(mermaid.output.contains("[\"reserve_inventory ⚠\"]"))
        #expect(mermaid.output.contains("## payment_received\n\n```mermaid\nflowchart TD"))
        #expect(mermaid.output.components(separatedBy: "```mermaid").count == 3)
        let one = try await edda(["visualize", source, "--workflow", "order_saga"])
        #expect(one.output.hasPrefix("%% order_saga\nflowchart TD"))
        #expect(one.output.components(separatedBy: "flowchart").count == 2)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edda-viz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let svgPath = directory.appendingPathComponent("saga.svg").path
        let svg = try await edda(["visualize", source, "--workflow", "order_saga", "--format", "svg", "--output", svgPath])
        #expect(svg.status == 0)
        let written = try String(contentsOfFile: svgPath, encoding: .utf8)
        #expect(written.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(written.contains("data-step=\"charge_payment\""))
        let ambiguous = try await edda(["visualize", source, "--format", "svg"])
        #expect(ambiguous.status != 0)
        #expect(ambiguous.errors.contains("choose one with --workflow: order_saga, payment_received"))
        let nothing = try await edda(["visualize", directory.appendingPathComponent("none.swift").path])
        #expect(nothing.status != 0)
    }
}

@Suite("Viewer in a real browser", .timeLimit(.minutes(3)))
struct BrowserTests {
    /// Where the screenshots go: under the build folder, for review.
    static let screenshots = packageRoot.appendingPathComponent(".build/viewer-screenshots")

    @Test("Chromium loads the list served by `edda serve`, clicks through to an instance and cancels it")
    func clickThroughAndCancel() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: eddaPath), "edda not built at \(eddaPath)")
        try await withSeededDatabase { database in
            let server = try ServeProcess(arguments: ["serve", "--db", database.path, "--port", "0"])
            let baseURL = server.baseURL
            let path = database.path
            // The browser session blocks while it waits for pages: on a thread of its own, so
            // that it holds none of the cooperative pool's threads, which other tests need.
            let seen = try await onOwnThread { () throws -> BrowserObservations in
                var seen = BrowserObservations()
                let browser = try Chromium()
                try browser.openPage()

                try browser.navigate(baseURL + "/")
                seen.listTitle = try browser.evaluate("document.title")
                seen.listLinks = try browser.evaluate("document.querySelectorAll('a.instance-link').length")
                try browser.screenshot(to: Self.screenshots.appendingPathComponent("list.png").path)
                try browser.navigate(baseURL + "/?status=failed")
                try browser.screenshot(to: Self.screenshots.appendingPathComponent("list-failed.png").path)

                try browser.navigate(baseURL + "/")
                try browser.click("a.instance-link[data-instance-id='wait-1']")
                seen.detailPath = try browser.evaluate("location.pathname")
                seen.detailID = try browser.evaluate("document.querySelector('#instance-id').textContent")
                seen.diagramVertices = try browser.evaluate("document.querySelectorAll('#diagram svg .vertex').length").numberValue ?? 0
                try browser.screenshot(to: Self.screenshots.appendingPathComponent("detail-waiting.png").path)

                try browser.click("#cancel-button")
                seen.dialogs = browser.dialogs
                seen.notice = try browser.evaluate("document.querySelector('.notice').textContent")
                seen.badge = try browser.evaluate("document.querySelector('.title-row .badge').dataset.status")
                seen.storedStatus = try rows(path, "SELECT status FROM workflow_instances WHERE instance_id = 'wait-1'").map { $0["status"] }
                try browser.screenshot(to: Self.screenshots.appendingPathComponent("detail-cancelled.png").path)

                try browser.navigate(baseURL + "/workflow/ticket-failed")
                try browser.screenshot(to: Self.screenshots.appendingPathComponent("detail-failed.png").path)
                // Dark theme, chosen with the header link (no JavaScript involved).
                try browser.click("header .theme a[href*='mode=dark']")
                seen.theme = try browser.evaluate("document.documentElement.dataset.theme")
                seen.background = try browser.evaluate("getComputedStyle(document.body).backgroundColor")
                try browser.screenshot(to: Self.screenshots.appendingPathComponent("detail-failed-dark.png").path)
                return seen
            }
            #expect(seen.listTitle == "Instances · Edda Workflow Viewer")
            #expect(seen.listLinks == 9)
            #expect(seen.detailPath == "/workflow/wait-1")
            #expect(seen.detailID == "wait-1")
            #expect(seen.diagramVertices >= 3)
            #expect(seen.dialogs == ["Cancel workflow wait-1? Its compensations will run."])
            #expect(seen.notice == "Cancellation requested.")
            #expect(seen.badge == "cancelled")
            #expect(seen.storedStatus == ["cancelled"])
            #expect(seen.theme == "dark")
            #expect(seen.background == "rgb(11, 17, 32)")
            withExtendedLifetime(server) {}
        }
    }
}

/// What the browser test saw, checked once the browser session has ended.
struct BrowserObservations: Sendable {
    var listTitle: JSONValue?
    var listLinks: JSONValue?
    var detailPath: JSONValue?
    var detailID: JSONValue?
    var diagramVertices: Double = 0
    var dialogs: [String] = []
    var notice: JSONValue?
    var badge: JSONValue?
    var storedStatus: [String] = []
    var theme: JSONValue?
    var background: JSONValue?
}

/// `edda serve` as a child process; the first line it prints gives the port.
final class ServeProcess {
    let process = Process()
    let baseURL: String

    init(arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: eddaPath)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var line = Data()
        let handle = output.fileHandleForReading
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = handle.availableData
            guard !chunk.isEmpty else { throw TestFailure("edda serve exited before it listened") }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: "http://"), let end = text[range.lowerBound...].firstIndex(where: \.isWhitespace) else {
            throw TestFailure("unexpected banner: \(text)")
        }
        baseURL = String(text[range.lowerBound..<end]).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
    }

    deinit {
        process.stop(with: SIGINT)
    }
}
