import ArgumentParser
import AsyncHTTPClient
import Edda
import EddaHTTP
import EddaSQLite
import EddaDiagram
import EddaMySQL
import EddaPostgres
import EddaViewer
import EddaVisualizer
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix

@main
struct EddaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edda",
        abstract: "Inspect and operate Edda workflows: list, show, cancel, send events, serve the viewer, visualize source.",
        discussion: """
            Commands that read or change a database take --db (a SQLite path, sqlite:///relative.db, sqlite:////absolute.db, \
            postgresql://user@host/db or mysql://user:password@host/db), or read it from the EDDA_DB_URL environment variable.
            """,
        subcommands: [
            Serve.self, List.self, Show.self, Cancel.self, Publish.self, SendEvent.self, Purge.self, Visualize.self, Migrate.self,
        ])
}

/// The database to work on.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: "A SQLite file, sqlite:///relative.db, sqlite:////absolute.db postgresql://… or mysql://… (default: $EDDA_DB_URL).")
    var db: String?

    /// What a command does to the database.
    enum Access {
        /// Reads only: a SQLite file is opened read-only; nothing is created or changed.
        case read
        /// Changes rows of an existing Edda database, never creating the schema.
        case write
        /// Creates or upgrades the schema (`edda migrate`).
        case migrate
    }

    /// The configuration of an app on the database that runs nothing in the background: it
    /// only reads and changes rows, as a tool should. Only `.migrate` creates the schema; the
    /// others refuse a database without it.
    func configuration(service: String = "edda-cli", access: Access) throws -> EddaApp.Configuration {
        CommandLogging.setUp()
        let mustExist = access != .migrate
        guard let given = db ?? ProcessInfo.processInfo.environment["EDDA_DB_URL"], !given.isEmpty else {
            throw ValidationError("No database: pass --db <path or URL>, or set EDDA_DB_URL.")
        }
        var location = try DatabaseLocation.fileOrURL(given, drivers: [PostgresStore.self, MySQLStore.self])
        let sqlitePath = try Self.sqlitePath(given)
        if mustExist, let path = sqlitePath, !FileManager.default.fileExists(atPath: path) {
            throw CommandError("No database file at '\(path)'. Check the path, or create it with `edda migrate --db \(given)`.")
        }
        if access == .read, let path = sqlitePath {
            location = .sqliteReadOnly(path: path)
        }
        var configuration = EddaApp.Configuration(serviceName: service, database: location)
        configuration.runsBackgroundRecovery = false
        configuration.migratesSchema = access == .migrate
        var logger = Logger(label: "edda")
        logger.logLevel = .warning
        configuration.logger = logger
        return configuration
    }
}

/// The command's log output: warnings and errors only (a driver's retries while a server is
/// unreachable would otherwise fill the terminal).
enum CommandLogging {
    private static let once: Void = {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
    }()

    static func setUp() { once }
}

extension DatabaseOptions {
    /// Fails at once, naming the address, when a database server cannot be reached (connection
    /// refused, unknown host, no answer within 5 s), instead of letting the driver retry.
    func checkReachable() async throws {
        guard let given = db ?? ProcessInfo.processInfo.environment["EDDA_DB_URL"], !DatabaseURL.isSQLite(given),
              DatabaseURL.scheme(of: given) != nil
        else { return }
        let scheme = DatabaseURL.scheme(of: given) ?? ""
        guard let components = URLComponents(string: given), let host = components.host, !host.isEmpty else { return }
        let port = components.port ?? (MySQLStore.urlSchemes.contains(scheme) ? 3306 : 5432)
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                .connect(host: host, port: port).get()
            try? await channel.close()
        } catch {
            throw CommandError("Cannot reach the database server at \(host):\(port): \(Self.reason(error)). Is it running, and is --db right?")
        }
    }

    /// A connection failure in a few words.
    static func reason(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("refused") { return "connection refused" }
        if text.lowercased().contains("timeout") || text.contains("timed out") { return "no answer within 5 s" }
        if text.contains("UnknownHost") || text.contains("resolve") || text.contains("getaddrinfo") { return "unknown host" }
        return text
    }

    /// The file of a SQLite location, `nil` for other databases.
    static func sqlitePath(_ given: String) throws -> String? {
        if DatabaseURL.isSQLite(given) { return try DatabaseURL.sqlitePath(of: given) }
        return DatabaseURL.scheme(of: given) == nil ? given : nil
    }
}

/// Runs `body` with an app on the database and shuts the app down afterwards.
func withApp<T>(
    _ options: DatabaseOptions, access: DatabaseOptions.Access, _ body: (EddaApp) async throws -> T
) async throws -> T {
    let configuration = try options.configuration(access: access)
    try await options.checkReachable()
    do {
        try await options.requireSchemaBeforeWriting(access)
        return try await EddaApp.running(configuration, body)
    } catch let error as EddaUsageError where error.kind == .schemaMissing {
        throw options.notAnEddaDatabase(configuration)
    }
}

extension DatabaseOptions {
    /// Refuses a SQLite file without the Edda schema before opening it for writing, which would
    /// switch it to WAL mode (or start an empty file) even though no table is created.
    func requireSchemaBeforeWriting(_ access: Access) async throws {
        guard access == .write, let given = db ?? ProcessInfo.processInfo.environment["EDDA_DB_URL"],
              let path = try Self.sqlitePath(given)
        else { return }
        let probe = try SQLiteStore(path: path, readOnly: true)
        let hasSchema = try await probe.hasCurrentSchema()
        try await probe.close()
        if !hasSchema { throw notAnEddaDatabase(try configuration(access: access)) }
    }

    func notAnEddaDatabase(_ configuration: EddaApp.Configuration) -> CommandError {
        CommandError(
            "\(configuration.database.description) is not an Edda database (it has no Edda schema); nothing was changed. "
                + "Create the schema with `edda migrate --db \(db ?? "$EDDA_DB_URL")`, or check --db.")
    }
}

/// A command that could not do its work; printed as `Error: <message>`, exit status 1 (usage
/// mistakes are `ValidationError`s, printed with the usage).
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `word` as one word of a POSIX shell command line: as is when it is plainly safe, else in
/// single quotes.
func shellQuoted(_ word: String) -> String {
    let plain = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,")
    if !word.isEmpty, word.allSatisfy(plain.contains) { return word }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

func printJSON(_ value: JSONValue) {
    print(value.jsonText)
}

/// A JSON argument, with a message that names the option when it does not parse.
func parseJSON(_ text: String, option: String) throws -> JSONValue {
    guard let value = JSONValue(jsonText: text) else {
        throw ValidationError("\(option) is not valid JSON: \(text)")
    }
    return value
}

extension WorkflowInstance {
    var json: JSONValue {
        var object: [String: JSONValue] = [
            "instance_id": .string(instanceID), "workflow_name": .string(workflowName), "status": .string(status.rawValue),
            "started_at": .string(Table.date(startedAt)), "updated_at": .string(Table.date(updatedAt)),
            "framework": .string(framework), "owner_service": .string(ownerService), "input": inputData,
        ]
        object["current_activity_id"] = currentActivityID.map(JSONValue.string) ?? .null
        object["continued_from"] = continuedFrom.map(JSONValue.string) ?? .null
        object["output"] = outputData ?? .null
        object["locked_by"] = lockedBy.map(JSONValue.string) ?? .null
        return .object(object)
    }
}

/// Plain-text tables for the terminal.
enum Table {
    static func date(_ date: Date) -> String {
        date.formatted(.iso8601)
    }

    static func render(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            // Padded by characters, as measured (`padding(toLength:)` counts UTF-16 units).
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List workflow instances, newest first.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Only this status (running, completed, failed, waiting_for_timer, …).") var status: String?
    @Option(help: "Workflow name or instance ID contains this text.") var search: String?
    @Option(help: "Input filter KEY=VALUE (dotted key; VALUE as JSON if it parses, else text). Repeatable.")
    var input: [String] = []
    @Option(help: "How many to show (1–1000).") var limit = 50
    @Option(help: "The page token printed by the previous page.") var after: String?
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() async throws {
        var query = InstanceQuery()
        query.framework = nil
        query.limit = limit
        query.search = search
        query.pageToken = after
        if let status {
            guard WorkflowStatus.allCases.contains(where: { $0.rawValue == status }) else {
                throw ValidationError("Unknown status '\(status)'. Use one of: \(WorkflowStatus.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            query.status = WorkflowStatus(rawValue: status)
        }
        for filter in input {
            guard let equals = filter.firstIndex(of: "=") else { throw ValidationError("--input takes KEY=VALUE, not '\(filter)'.") }
            let text = String(filter[filter.index(after: equals)...])
            query.inputFilters[String(filter[..<equals])] = JSONValue(jsonText: text).flatMap {
                if case .object = $0 { return nil }
                if case .array = $0 { return nil }
                return $0
            } ?? .string(text)
        }
        let page = try await withApp(database, access: .read) { try await $0.findInstances(query) }
        if json {
            printJSON([
                "instances": .array(page.instances.map(\.json)),
                "next_page_token": page.nextPageToken.map(JSONValue.string) ?? .null,
            ])
            return
        }
        if page.instances.isEmpty {
            print("No workflow instances match.")
            return
        }
        print(Table.render(
            ["INSTANCE ID", "WORKFLOW", "STATUS", "STARTED", "UPDATED"],
            page.instances.map { [$0.instanceID, $0.workflowName, $0.status.rawValue, Table.date($0.startedAt), Table.date($0.updatedAt)] }))
        if let next = page.nextPageToken {
            print("\nMore: " + nextPageCommand(after: next))
        }
    }

    /// The command that prints the next page: this one's database and filters, and the token.
    func nextPageCommand(after token: String) -> String {
        var words = ["edda", "list"]
        if let db = database.db { words += ["--db", db] }
        if let status { words += ["--status", status] }
        if let search { words += ["--search", search] }
        for filter in input { words += ["--input", filter] }
        if limit != 50 { words += ["--limit", String(limit)] }
        words += ["--after", token]
        return words.map(shellQuoted).joined(separator: " ")
    }
}

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one instance: its details, input, outcome and history.")

    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The instance ID.") var instanceID: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let (instance, history) = try await withApp(database, access: .read) { app in
            guard let instance = try await app.instance(instanceID) else {
                throw CommandError("No workflow instance has the ID '\(instanceID)'.")
            }
            return (instance, try await app.history(of: instanceID))
        }
        if json {
            var object = instance.json
            if case .object(var members) = object {
                members["history"] = .array(history.map { event in
                    var row: [String: JSONValue] = [
                        "activity_id": .string(event.activityID), "event_type": .string(event.eventType),
                        "created_at": .string(Table.date(event.createdAt)),
                    ]
                    row["data"] = event.data ?? .null
                    return .object(row)
                })
                object = .object(members)
            }
            printJSON(object)
            return
        }
        var lines = [
            "Instance:  \(instance.instanceID)", "Workflow:  \(instance.workflowName)", "Status:    \(instance.status.rawValue)",
            "Started:   \(Table.date(instance.startedAt))", "Updated:   \(Table.date(instance.updatedAt))",
        ]
        if let current = instance.currentActivityID { lines.append("Step:      \(current)") }
        if let previous = instance.continuedFrom { lines.append("Continues: \(previous)") }
        lines.append("Input:     \(instance.inputData.jsonText)")
        if let output = instance.outputData { lines.append("Outcome:   \(output.jsonText)") }
        print(lines.joined(separator: "\n"))
        if !history.isEmpty {
            print("\nHistory:")
            print(Table.render(
                ["AT", "STEP", "EVENT"],
                history.map { [Table.date($0.createdAt), Self.stepName($0), $0.eventType] }))
        }
    }
}

extension Show {
    /// A history row's step as a reader names it: a compensation by its name (its row ID is
    /// storage detail), every other step by its ID.
    static func stepName(_ event: HistoryEvent) -> String {
        if event.eventType.hasPrefix("Compensation"), let name = event.data?["activity_name"]?.stringValue {
            return "\(name) (compensation)"
        }
        return event.activityID
    }
}

struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel a running or waiting instance; its compensations run on the worker that executes it.")

    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The instance ID.") var instanceID: String

    func run() async throws {
        let (cancelled, status) = try await withApp(database, access: .write) { app in
            let cancelled = try await app.cancel(instanceID: instanceID, cancelledBy: "edda-cli")
            return (cancelled, try await app.instance(instanceID)?.status)
        }
        guard cancelled else {
            guard let status else { throw CommandError("No workflow instance has the ID '\(instanceID)'.") }
            throw CommandError("Cannot cancel \(instanceID): it is \(status.rawValue); only running or waiting instances can be cancelled.")
        }
        if status == .cancelled {
            print("Cancelled \(instanceID).")
        } else {
            print(
                "Cancellation of \(instanceID) requested: it is \(status?.rawValue ?? "gone") while its compensations run on the worker "
                    + "that executes it; `edda show \(instanceID)` says when it is cancelled.")
        }
    }
}

struct Purge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete finished instances older than an age, with everything recorded for them.",
        discussion: """
            Deletes completed, failed, cancelled and recurred instances (or only --status ones) that ended more than \
            --older-than ago, with their history, archived history, compensations, subscriptions, timers and message claims, \
            in batches of 500. Never a running, waiting or compensating instance; only this library's instances unless \
            --all-frameworks. Safe while workers run.
            """)

    @OptionGroup var database: DatabaseOptions
    @Option(help: "The age: a number with s, m, h or d, e.g. 30d or 12h.") var olderThan: String
    @Option(help: "Only instances in these final statuses, comma-separated (completed, failed, cancelled, recurred).")
    var status: String?
    @Flag(help: "Also delete other frameworks' instances (Python Edda's, …) in the same database.") var allFrameworks = false
    @Flag(help: "Count what would be deleted, and delete nothing.") var dryRun = false

    /// `30d`, `12h`, `15m`, `90s`.
    static func age(_ text: String) throws -> Duration {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400]
        // At most about a thousand years: beyond, the date would not exist (and the duration would overflow).
        guard let unit = text.last.flatMap({ units[$0] }), let number = Double(text.dropLast()), number >= 0,
              number.isFinite, number * unit <= 3e10
        else {
            throw CommandError("--older-than takes a number and a unit (s, m, h or d), e.g. 30d; got '\(text)'.")
        }
        return .seconds(number * unit)
    }

    func run() async throws {
        let age = try Self.age(olderThan)
        let statuses = status.map { $0.split(separator: ",").map { WorkflowStatus(rawValue: $0.trimmingCharacters(in: .whitespaces)) } }
        let filter = try PurgeFilter(
            endedBefore: Date().addingTimeInterval(-age.seconds), statuses: statuses ?? PurgeFilter.finalStatuses,
            allFrameworks: allFrameworks)
        let count = try await withApp(database, access: dryRun ? .read : .write) { app in
            try await app.purgeInstances(filter, dryRun: dryRun)
        }
        let what = "\(count) finished instance\(count == 1 ? "" : "s") (\(filter.statuses.map(\.rawValue).joined(separator: ", ")))"
        print(dryRun ? "Would delete \(what) that ended before \(Timestamp.iso8601(filter.endedBefore))." : "Deleted \(what).")
    }
}

struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Publish a message to a channel.")

    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The channel.") var channel: String
    @Option(help: "The message data as JSON.") var data = "{}"
    @Option(help: "Deliver to this instance only.") var target: String?
    @Option(help: "Message metadata as a JSON object.") var metadata: String?

    func run() async throws {
        let payload = try parseJSON(data, option: "--data")
        var extra: [String: JSONValue] = [:]
        if let metadata {
            guard case .object(let members) = try parseJSON(metadata, option: "--metadata") else {
                throw ValidationError("--metadata must be a JSON object.")
            }
            extra = members
        }
        let receipt = try await withApp(database, access: .write) {
            try await $0.publish(to: channel, data: payload, metadata: extra, targetInstanceID: target)
        }
        printReceipt(receipt)
    }
}

func printReceipt(_ receipt: PublishReceipt) {
    if receipt.deliveredTo.isEmpty {
        print("Stored message \(receipt.messageID); no instance was waiting for it.")
    } else {
        print("Stored message \(receipt.messageID); delivered to \(receipt.deliveredTo.joined(separator: ", ")).")
    }
}

struct SendEvent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-event", abstract: "Send a CloudEvent to the instances waiting for its type.",
        discussion: """
            With --db the event goes straight into the database: it reaches the instances waiting for its type \
            (waitEvent). Workflows an app starts for an event type (its event handlers) are known only to that app: \
            to start them, post the event through the app's CloudEvents endpoint with --url instead.
            """)

    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The event type.") var type: String
    @Option(help: "The event source.") var source = "/edda-cli"
    @Option(help: "The event data as JSON.") var data = "{}"
    @Option(help: "Deliver to this instance only (the eddainstanceid extension).") var to: String?
    @Option(help: ArgumentHelp(
        "Post the event to an app's CloudEvents endpoint (e.g. http://127.0.0.1:8080/workflows/events) instead of writing it to --db, "
            + "so that the app also starts the workflows it handles the type with.",
        valueName: "endpoint"))
    var url: String?

    func run() async throws {
        let payload = try parseJSON(data, option: "--data")
        if let url {
            try await post(payload, to: url)
            return
        }
        let receipt = try await withApp(database, access: .write) {
            try await $0.sendEvent(CloudEventAttributes(type: type, source: source), data: payload, to: to)
        }
        printReceipt(receipt)
        if receipt.deliveredTo.isEmpty {
            print("Workflows an app starts for '\(type)' were not started: only that app knows them. Use --url <its events endpoint>.")
        }
    }

    /// POSTs the event in structured mode and prints the app's answer.
    func post(_ payload: JSONValue, to url: String) async throws {
        var extensions: [String: JSONValue] = [:]
        if let to { extensions["eddainstanceid"] = .string(to) }
        let event = CloudEvent(
            attributes: CloudEventAttributes(type: type, source: source, dataContentType: "application/json", extensions: extensions),
            data: .json(payload.jsonText))
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: CloudEventEncoder.structuredContentType)
        request.body = .bytes(ByteBuffer(string: try CloudEventEncoder().structured(event)))
        let response: HTTPClientResponse
        do {
            response = try await HTTPOutboxPublisher.brokerClient.execute(request, timeout: .seconds(30))
        } catch {
            throw CommandError("Cannot post to \(url): \(DatabaseOptions.reason(error)).")
        }
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard (200..<300).contains(Int(response.status.code)) else {
            throw CommandError("\(url) answered HTTP \(response.status.code): \(body)")
        }
        print("Posted event \(event.attributes.id) to \(url): HTTP \(response.status.code) \(body)")
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create or update the database schema.")

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let location = try database.configuration(access: .migrate).database
        try await database.checkReachable()
        let store = try await location.makeStore()
        let hadSchema: Bool
        do {
            hadSchema = try await store.hasCurrentSchema()
            try await store.migrate()
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
        print(hadSchema
            ? "The Edda schema in \(location.description) is up to date; nothing was changed."
            : "Created (or upgraded) the Edda schema in \(location.description).")
    }
}

struct Visualize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw the workflows in Swift source files as Mermaid text or SVG.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case mermaid, svg
    }

    @Argument(help: "Swift files or directories.") var paths: [String]
    @Option(help: "Only the workflow with this name.") var workflow: String?
    @Option(help: "mermaid or svg. Mermaid of several workflows is Markdown with a fenced block per workflow.")
    var format: Format = .mermaid
    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?

    func run() async throws {
        var flows = try WorkflowAnalyzer().analyze(paths: paths)
        if let workflow {
            flows = flows.filter { $0.workflowName == workflow }
            guard !flows.isEmpty else { throw CommandError("No workflow named '\(workflow)' in \(paths.joined(separator: ", ")).") }
        }
        guard !flows.isEmpty else { throw CommandError("No workflows found in \(paths.joined(separator: ", ")).") }
        let text: String
        switch format {
        case .mermaid where flows.count == 1:
            text = "%% \(flows[0].workflowName)\n" + MermaidRenderer().render(flows[0])
        case .mermaid:
            // One Mermaid document holds one diagram: several become Markdown, a fenced block each
            // (as GitHub renders them, and as `mmdc` reads a .md file).
            text = flows.map { "## \($0.workflowName)\n\n```mermaid\n" + MermaidRenderer().render($0) + "```\n" }
                .joined(separator: "\n")
        case .svg:
            guard flows.count == 1 else {
                throw ValidationError(
                    "SVG draws one workflow; choose one with --workflow: \(flows.map(\.workflowName).joined(separator: ", ")).")
            }
            text = SVGRenderer().render(flows[0])
        }
        if let output {
            try Data(text.utf8).write(to: URL(fileURLWithPath: output))
            print("Wrote \(output).")
        } else {
            print(text, terminator: "")
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the web viewer for a database.")

    @OptionGroup var database: DatabaseOptions
    @Option(help: "The address to listen on.") var host = "127.0.0.1"
    @Option(help: "The port to listen on (0 picks a free one). The default, 8070, keeps clear of the apps' usual 8080.")
    var port = 8070
    @Flag(help: "Refuse every change: no cancel button.") var readOnly = false
    @Option(help: "Require this token for changes (default: $EDDA_VIEWER_TOKEN).") var token: String?
    @Flag(help: "Require the token to read pages too, not only for changes.") var protectReads = false
    @Option(help: ArgumentHelp(
        "An origin whose pages may cancel (e.g. https://edda.example.com), besides loopback and --host. Repeatable.",
        valueName: "origin"))
    var trustedOrigin: [String] = []
    @Option(help: "Swift source files or directories of the workflows, for diagrams drawn from the code. Repeatable.")
    var source: [String] = []

    func run() async throws {
        var viewerConfiguration = EddaViewer.Configuration()
        viewerConfiguration.readOnly = readOnly
        let token = self.token ?? ProcessInfo.processInfo.environment["EDDA_VIEWER_TOKEN"]
        viewerConfiguration.bearerToken = token?.isEmpty == false ? token : nil
        viewerConfiguration.protectsReads = protectReads
        if protectReads, viewerConfiguration.bearerToken == nil {
            throw ValidationError("--protect-reads needs a token: pass --token or set EDDA_VIEWER_TOKEN.")
        }
        // Cross-site changes are refused; trusted: loopback names, the address listened on (unless
        // a wildcard), and the origins given.
        viewerConfiguration.crossSiteProtection.trustedOrigins = trustedOrigin
        if !["0.0.0.0", "::", "[::]", ""].contains(host) { viewerConfiguration.crossSiteProtection.trustedHosts.append(host) }
        if !source.isEmpty {
            for flow in try WorkflowAnalyzer().analyze(paths: source) { viewerConfiguration.flows[flow.workflowName] = flow }
        }
        let access: DatabaseOptions.Access = readOnly ? .read : .write
        let configuration = try database.configuration(service: "edda-viewer", access: access)
        try await database.checkReachable()
        try await database.requireSchemaBeforeWriting(access)
        let app = try await EddaApp(configuration: configuration)
        let router = Router()
        EddaViewer(app: app, configuration: viewerConfiguration).addRoutes(to: router)
        let host = self.host
        let server = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "edda-viewer"),
            services: [app],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                FileHandle.standardOutput.write(Data("Edda viewer on http://\(host):\(port)/\n".utf8))
            })
        do {
            try await server.runService()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw CommandError("Port \(port) on \(host) is in use by another program; choose another with --port (0 picks a free one).")
        } catch let error as IOError {
            throw CommandError("Cannot listen on \(host):\(port): \(error.description)")
        }
    }
}
