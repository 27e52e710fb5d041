import ArgumentParser
import Edda
import EddaSQLite
import EddaDiagram
import EddaPostgres
import EddaViewer
import EddaVisualizer
import Foundation
import Hummingbird
import Logging

@main
struct EddaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edda",
        abstract: "Inspect and operate Edda workflows: list, show, cancel, send events, serve the viewer, visualize source.",
        discussion: """
            Commands that read or change a database take --db (a SQLite path, sqlite:///relative.db, sqlite:////absolute.db or \
            postgresql://user@host/db), or read it from the EDDA_DB_URL environment variable.
            """,
        subcommands: [
            Serve.self, List.self, Show.self, Cancel.self, Publish.self, SendEvent.self, Visualize.self, Migrate.self,
        ])
}

/// The database to work on.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: "A SQLite file, sqlite:///relative.db, sqlite:////absolute.db or postgresql://… (default: $EDDA_DB_URL).")
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
        let mustExist = access != .migrate
        guard let given = db ?? ProcessInfo.processInfo.environment["EDDA_DB_URL"], !given.isEmpty else {
            throw ValidationError("No database: pass --db <path or URL>, or set EDDA_DB_URL.")
        }
        var location = try DatabaseLocation.fileOrURL(given, drivers: [PostgresStore.self])
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

extension DatabaseOptions {
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
            print("\nMore: edda list --after '\(next)'")
        }
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
                history.map { [Table.date($0.createdAt), $0.activityID, $0.eventType] }))
        }
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
        print("Cancelled \(instanceID).")
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
        commandName: "send-event", abstract: "Send a CloudEvent to the instances waiting for its type.")

    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The event type.") var type: String
    @Option(help: "The event source.") var source = "/edda-cli"
    @Option(help: "The event data as JSON.") var data = "{}"
    @Option(help: "Deliver to this instance only (the eddainstanceid extension).") var to: String?

    func run() async throws {
        let payload = try parseJSON(data, option: "--data")
        let receipt = try await withApp(database, access: .write) {
            try await $0.sendEvent(CloudEventAttributes(type: type, source: source), data: payload, to: to)
        }
        printReceipt(receipt)
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create or update the database schema.")

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let description = try await withApp(database, access: .migrate) { app in
            try await app.store.migrate()
            return app.configuration.database.description
        }
        print("The schema is up to date in \(description).")
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
    @Option(help: "mermaid or svg.") var format: Format = .mermaid
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
        case .mermaid:
            text = flows.map { "%% \($0.workflowName)\n" + MermaidRenderer().render($0) }.joined(separator: "\n")
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
    @Option(help: "The port to listen on (0 picks a free one).") var port = 8080
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
        try await database.requireSchemaBeforeWriting(access)
        let app = try await EddaApp(configuration: try database.configuration(service: "edda-viewer", access: access))
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
        try await server.runService()
    }
}
