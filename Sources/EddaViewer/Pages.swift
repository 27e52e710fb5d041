import Edda
import EddaDiagram
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The viewer's request handlers and page bodies.
struct Pages: Sendable {
    let viewer: EddaViewer
    let basePath: String

    var app: EddaApp { viewer.app }
    var configuration: EddaViewer.Configuration { viewer.configuration }

    static let themeCookie = "edda_theme"
    static let tokenCookie = "edda_viewer_token"
    static let pageSizes = [10, 20, 50, 100]
    static let maximumInstanceIDLength = Identifier.maximumLength

    /// A request the viewer answers with an error page.
    struct Failure: Error {
        var status: HTTPResponse.Status
        var title: String
        var message: String
    }

    /// A read without the token, when ``EddaViewer/Configuration/protectsReads`` is on: answered
    /// with the sign-in form.
    struct SignInRequired: Error {}

    // MARK: - Plumbing

    func respond(_ request: Request, _ body: (PageContext) async throws -> Response) async -> Response {
        let context = pageContext(request)
        do {
            return try await body(context)
        } catch let failure as Failure {
            return html(failure.status, title: failure.title, body: errorBody(failure), context: context)
        } catch is SignInRequired {
            return loginForm(message: "This viewer needs its token to show pages: sign in.", context: context)
        } catch let error as EddaUsageError {
            let failure = Failure(status: .badRequest, title: "Invalid request", message: error.message)
            return html(.badRequest, title: failure.title, body: errorBody(failure), context: context)
        } catch let error as InvalidIdentifierError {
            let failure = Failure(status: .badRequest, title: "Invalid \(error.field)", message: error.description)
            return html(.badRequest, title: failure.title, body: errorBody(failure), context: context)
        } catch {
            // Details (SQL, paths) go to the log, not to the page.
            app.configuration.logger.error("[EddaViewer] \(request.method) \(request.uri.path) failed: \(error)")
            let failure = Failure(
                status: .internalServerError, title: "Something went wrong",
                message: "The database could not be read or written. The server log has the details; try again.")
            return html(.internalServerError, title: failure.title, body: errorBody(failure), context: context)
        }
    }

    /// Like ``respond(_:_:)``, for pages that read: with ``EddaViewer/Configuration/protectsReads``
    /// they need the token.
    func read(_ request: Request, _ body: (PageContext) async throws -> Response) async -> Response {
        await respond(request) { context in
            try authorizeRead(request)
            return try await body(context)
        }
    }

    private func errorBody(_ failure: Failure) -> String {
        """
        <h1>\(HTML.text(failure.title))</h1>
        <div class="error" role="alert">\(HTML.text(failure.message))</div>
        <p><a href="\(basePath)/">Back to the instance list</a></p>
        """
    }

    func pageContext(_ request: Request) -> PageContext {
        let cookies = Self.cookies(request)
        let theme = cookies[Self.themeCookie].flatMap { ["light", "dark"].contains($0) ? $0 : nil }
        var nonce = [UInt8](repeating: 0, count: 16)
        for index in nonce.indices { nonce[index] = UInt8.random(in: 0...255) }
        return PageContext(
            title: configuration.title, basePath: basePath, currentPath: request.uri.description, theme: theme,
            canStart: !configuration.readOnly && !app.registeredWorkflowNames.isEmpty,
            needsLogin: (!configuration.readOnly || protectsReads) && !isAuthorized(request),
            nonce: Data(nonce).base64EncodedString())
    }

    func html(_ status: HTTPResponse.Status, title: String, body: String, context: PageContext, headers extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8",
            .contentSecurityPolicy:
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; script-src 'nonce-\(context.nonce)'; "
                + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            .xContentTypeOptions: "nosniff",
            HTTPField.Name("Referrer-Policy")!: "same-origin",
            .cacheControl: "no-store",
        ]
        headers.append(contentsOf: extra)
        let page = HTML.page(title: title, body: body, context: context)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: page)))
    }

    func redirect(to location: String, headers extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.location: location]
        headers.append(contentsOf: extra)
        return Response(status: .seeOther, headers: headers)
    }

    static func cookies(_ request: Request) -> [String: String] {
        var result: [String: String] = [:]
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let pair = part.split(separator: "=", maxSplits: 1)
                guard pair.count == 2 else { continue }
                result[pair[0].trimmingCharacters(in: .whitespaces)] = pair[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return result
    }

    /// The instance ID from a path parameter (the router hands it over as sent): percent-decoded
    /// UTF-8, 1 to 255 characters.
    ///
    /// Control characters are accepted here: new IDs cannot have them (the core refuses them),
    /// but a row written by another tool or an older version may, and the viewer must still show
    /// and cancel it. IDs are only ever looked up with bound SQL parameters, and every link
    /// percent-encodes them.
    func instanceID(_ raw: String?) throws -> String {
        guard let decoded = raw?.removingPercentEncoding, !decoded.isEmpty, decoded.count <= Self.maximumInstanceIDLength
        else {
            throw Failure(
                status: .badRequest, title: "Invalid instance ID",
                message: "An instance ID in a link is 1 to \(Self.maximumInstanceIDLength) characters of percent-encoded UTF-8.")
        }
        return decoded
    }

    func instanceLink(_ id: String) -> String { "\(basePath)/workflow/\(HTML.segment(id))" }

    // MARK: - Changes: authorization

    /// The token, if one is configured (and not empty).
    var token: String? {
        guard let token = configuration.bearerToken, !token.isEmpty else { return nil }
        return token
    }

    /// Whether reads need the token.
    var protectsReads: Bool { configuration.protectsReads && token != nil }

    /// The sign-in cookie's value: derived from the token, never the token itself.
    func cookieValue(for token: String) -> String { BearerToken.cookieValue(for: token, purpose: "viewer") }

    func isAuthorized(_ request: Request) -> Bool {
        guard let token else { return true }
        if BearerToken.accepts(authorization: request.headers[.authorization], token: token) { return true }
        if let cookie = Self.cookies(request)[Self.tokenCookie] {
            return BearerToken.matches(cookie, token: cookieValue(for: token))
        }
        return false
    }

    /// Refuses a read without the token when reads are protected.
    func authorizeRead(_ request: Request) throws {
        if protectsReads && !isAuthorized(request) { throw SignInRequired() }
    }

    /// Refuses a post from a page of an untrusted origin.
    func refuseCrossSite(_ request: Request) throws {
        let reason = configuration.crossSiteProtection.refusal(
            origin: request.headers[.origin], fetchSite: request.headers[Self.secFetchSite])
        if let reason {
            throw Failure(status: .forbidden, title: "Cross-site request refused", message: reason)
        }
    }

    static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
    static let forwardedProto = HTTPField.Name("X-Forwarded-Proto")!

    /// Refuses a change in read-only mode, from another site, or without the token.
    func authorizeChange(_ request: Request) throws {
        try refuseIfReadOnly()
        try refuseCrossSite(request)
        guard isAuthorized(request) else {
            throw Failure(
                status: .unauthorized, title: "Sign-in required",
                message: "Changes need the viewer's token: sign in on the Sign in page, or send an Authorization: Bearer header.")
        }
    }

    func refuseIfReadOnly() throws {
        if configuration.readOnly {
            throw Failure(status: .forbidden, title: "Read-only viewer", message: "This viewer is read-only: it cannot cancel or start workflows.")
        }
    }

    func form(_ request: Request) async throws -> [String: String] {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: configuration.maxFormSize)
        } catch is NIOTooManyBytesError {
            throw Failure(status: .contentTooLarge, title: "Form too large", message: "The form exceeds \(configuration.maxFormSize) bytes.")
        }
        return FormData.dictionary(String(buffer: body))
    }

    // MARK: - Theme and login

    func theme(_ request: Request) -> Response {
        let parameters = FormData.dictionary(request.uri.query ?? "")
        let mode = parameters["mode"] ?? "auto"
        var back = parameters["back"] ?? "\(basePath)/"
        // Only the viewer's own pages: never another site (no `//host`, no backslashes, no
        // whitespace or control characters that browsers strip before resolving).
        let unsafe = back.unicodeScalars.contains { $0.value <= 0x20 || $0.value == 0x7F || $0 == "\\" }
        if unsafe || !back.hasPrefix(basePath + "/") || back.hasPrefix("//") { back = "\(basePath)/" }
        let cookie =
            ["light", "dark"].contains(mode)
            ? "\(Self.themeCookie)=\(mode); Path=/; Max-Age=31536000; SameSite=Lax"
            : "\(Self.themeCookie)=; Path=/; Max-Age=0; SameSite=Lax"
        return redirect(to: back, headers: [.setCookie: cookie])
    }

    func loginForm(message: String?, context: PageContext) -> Response {
        let status: HTTPResponse.Status = message == nil ? .ok : .unauthorized
        let note = configuration.bearerToken == nil ? "<p class=\"muted\">This viewer has no token: changes need no sign-in.</p>" : ""
        let body = """
            <h1>Sign in</h1>
            \(message.map { "<div class=\"error\" role=\"alert\">\(HTML.text($0))</div>" } ?? "")
            \(note)
            <section><form method="post" action="\(basePath)/login" class="start">
            <label>Token<input type="password" name="token" autocomplete="current-password" required></label>
            <button type="submit">Sign in</button>
            </form></section>
            """
        return html(status, title: "Sign in", body: body, context: context)
    }

    func login(_ request: Request, context: PageContext) async throws -> Response {
        try refuseCrossSite(request)
        let fields = try await form(request)
        guard let token else { return redirect(to: "\(basePath)/") }
        guard let given = fields["token"], BearerToken.matches(given, token: token) else {
            return loginForm(message: "That token is not valid.", context: context)
        }
        // Scripts cannot read the cookie, other sites' requests do not carry it, it is sent to
        // the viewer's pages only, and it holds a value derived from the token.
        var cookie = "\(Self.tokenCookie)=\(cookieValue(for: token)); Path=\(basePath.isEmpty ? "/" : basePath); HttpOnly; SameSite=Strict"
        if configuration.secureCookies || Self.cameOverHTTPS(request) { cookie += "; Secure" }
        return redirect(to: "\(basePath)/", headers: [.setCookie: cookie])
    }

    /// Whether the browser reached the viewer over HTTPS: directly, through a proxy that says
    /// so, or from an `https` page.
    static func cameOverHTTPS(_ request: Request) -> Bool {
        if request.head.scheme?.lowercased() == "https" { return true }
        let forwarded = request.headers[forwardedProto]?.split(separator: ",").first?.trimmingCharacters(in: .whitespaces)
        if forwarded?.lowercased() == "https" { return true }
        return request.headers[.origin]?.lowercased().hasPrefix("https://") == true
    }

    // MARK: - List

    func list(_ request: Request, context: PageContext) async throws -> Response {
        let parameters = FormData.pairs(request.uri.query ?? "")
        let value = { (name: String) in parameters.last(where: { $0.0 == name })?.1.trimmingCharacters(in: .whitespaces) ?? "" }
        var query = InstanceQuery()
        query.framework = nil
        query.search = value("q").isEmpty ? nil : value("q")
        let status = value("status")
        if !status.isEmpty && status != "all" {
            guard WorkflowStatus.allCases.contains(where: { $0.rawValue == status }) else {
                throw Failure(
                    status: .badRequest, title: "Invalid filter",
                    message: "Unknown status '\(status)'. Use one of: \(WorkflowStatus.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            query.status = WorkflowStatus(rawValue: status)
        }
        query.startedAfter = try Self.day(value("from"), field: "From", endOfDay: false)
        query.startedBefore = try Self.day(value("to"), field: "To", endOfDay: true)
        let key = value("key")
        if !key.isEmpty { query.inputFilters[key] = Self.filterValue(value("value")) }
        let size = value("size").isEmpty ? 20 : Int(value("size")) ?? 0
        guard (1...200).contains(size) else {
            throw Failure(status: .badRequest, title: "Invalid filter", message: "The page size must be a number from 1 to 200.")
        }
        query.limit = size
        let after = value("after")
        query.pageToken = after.isEmpty ? nil : after
        let page = try await app.findInstances(query)

        let filters: [(String, String)] = [
            ("q", value("q")), ("status", status), ("from", value("from")), ("to", value("to")), ("key", key),
            ("value", value("value")), ("size", value("size")),
        ]
        let previous = parameters.filter { $0.0 == "prev" }.map(\.1)
        var pager = ""
        if let back = previous.last {
            let link = HTML.query(filters + [("after", back == "~" ? "" : back)] + previous.dropLast().map { ("prev", $0) })
            pager += "<a class=\"button\" rel=\"prev\" href=\"\(basePath)/\(link)\">← Previous</a>"
        } else {
            pager += "<span></span>"
        }
        if let next = page.nextPageToken {
            let link = HTML.query(filters + [("after", next)] + (previous + [after.isEmpty ? "~" : after]).map { ("prev", $0) })
            pager += "<a class=\"button\" rel=\"next\" href=\"\(basePath)/\(link)\">Next →</a>"
        }

        var rows = ""
        for instance in page.instances {
            rows += """
                <tr><td>\(HTML.text(instance.workflowName))</td>
                <td><a class="instance-link" data-instance-id="\(HTML.text(instance.instanceID))" \
                href="\(instanceLink(instance.instanceID))"><code>\(HTML.text(instance.instanceID))</code></a></td>
                <td>\(HTML.badge(instance.status.rawValue))</td>
                <td class="date">\(HTML.date(instance.startedAt))</td><td class="date">\(HTML.date(instance.updatedAt))</td>
                <td class="muted">\(HTML.text(instance.framework))</td></tr>

                """
        }
        let table =
            page.instances.isEmpty
            ? "<p class=\"muted\" id=\"empty\">No workflow instances match these filters.</p>"
            : """
            <table id="instances"><thead><tr><th>Workflow</th><th>Instance ID</th><th>Status</th><th>Started</th>\
            <th>Updated</th><th>Framework</th></tr></thead>
            <tbody>
            \(rows)</tbody></table>
            """
        var statusOptions = "<option value=\"\">All</option>"
        for candidate in WorkflowStatus.allCases.map(\.rawValue) {
            statusOptions += "<option value=\"\(candidate)\"\(candidate == status ? " selected" : "")>\(candidate)</option>"
        }
        var sizeOptions = ""
        for candidate in Set(Self.pageSizes + [size]).sorted() {
            sizeOptions += "<option value=\"\(candidate)\"\(candidate == size ? " selected" : "")>\(candidate)</option>"
        }
        let body = """
            <h1>Workflow instances</h1>
            <section>
            <form class="filters" method="get" action="\(basePath)/">
            <label>Search<input type="search" name="q" value="\(HTML.text(value("q")))" placeholder="Workflow name or instance ID"></label>
            <label>Status<select name="status">\(statusOptions)</select></label>
            <label>From<input type="date" name="from" value="\(HTML.text(value("from")))"></label>
            <label>To<input type="date" name="to" value="\(HTML.text(value("to")))"></label>
            <label>Input key<input type="text" name="key" value="\(HTML.text(key))" placeholder="customer.id"></label>
            <label>Input value<input type="text" name="value" value="\(HTML.text(value("value")))" placeholder="text, number, true, null"></label>
            <label>Page size<select name="size">\(sizeOptions)</select></label>
            <button type="submit">Apply</button>
            </form>
            </section>
            <section>
            \(table)
            <div class="pager">\(pager)</div>
            </section>
            """
        return html(.ok, title: "Instances", body: body, context: context)
    }

    /// A `yyyy-MM-dd` date as the start or the end of that day in UTC.
    static func day(_ text: String, field: String, endOfDay: Bool) throws -> Date? {
        guard !text.isEmpty else { return nil }
        let parts = text.split(separator: "-").compactMap { Int($0) }
        var components = DateComponents()
        components.calendar = Calendar(identifier: .gregorian)
        components.timeZone = TimeZone(identifier: "UTC")
        let valid = parts.count == 3 && text.count == 10
        if valid {
            (components.year, components.month, components.day) = (parts[0], parts[1], parts[2])
            // The end of the day includes its last second, to the microsecond stored.
            (components.hour, components.minute, components.second) = endOfDay ? (23, 59, 59) : (0, 0, 0)
            components.nanosecond = endOfDay ? 999_999_000 : 0
        }
        guard valid, components.isValidDate, let date = components.date else {
            throw Failure(status: .badRequest, title: "Invalid filter", message: "\(field) must be a date like 2026-11-21, not '\(text)'.")
        }
        return date
    }

    /// A filter value: JSON `true`, `false`, `null`, numbers and quoted strings as such; any
    /// other text as a string.
    static func filterValue(_ text: String) -> JSONValue {
        if let json = JSONValue(jsonText: text) {
            switch json {
            case .object, .array: break
            default: return json
            }
        }
        return .string(text)
    }

    // MARK: - Detail

    func report(_ rawID: String?) async throws -> InstanceReport {
        let id = try instanceID(rawID)
        // Read through the store, which looks up any stored ID, including legacy ones with
        // control characters that the app's checked entry points refuse.
        guard let instance = try await app.store.instance(id: id) else {
            throw Failure(status: .notFound, title: "Workflow not found", message: "No workflow instance has the ID '\(id)'.")
        }
        async let history = app.store.history(instanceID: id)
        async let compensations = app.store.compensations(instanceID: id)
        async let successor = app.store.successor(of: id)
        var predecessors: [String] = []
        var cursor = instance.continuedFrom
        while let previous = cursor, predecessors.count < 50, !predecessors.contains(previous) {
            predecessors.append(previous)
            cursor = try await app.store.instance(id: previous)?.continuedFrom
        }
        return InstanceReport(
            instance: instance, history: try await history, compensations: try await compensations,
            predecessors: predecessors, successor: try await successor)
    }

    func flow(for report: InstanceReport) -> (WorkflowFlow, FlowExecution) {
        let execution = report.execution
        let flow = configuration.flows[report.instance.workflowName]
            ?? execution.historyFlow(workflowName: report.instance.workflowName)
        return (flow, execution)
    }

    func diagram(_ rawID: String?, mermaid: Bool) async throws -> Response {
        let report = try await report(rawID)
        let (flow, execution) = flow(for: report)
        let text = mermaid ? MermaidRenderer().render(flow, execution: execution) : SVGRenderer().render(flow, execution: execution)
        let type = mermaid ? "text/plain; charset=utf-8" : "image/svg+xml"
        return Response(
            status: .ok, headers: [.contentType: type, .xContentTypeOptions: "nosniff", .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    func detail(_ rawID: String?, request: Request, context: PageContext) async throws -> Response {
        let report = try await report(rawID)
        let instance = report.instance
        let steps = report.steps
        let anchors = Dictionary(steps.map { ($0.activityID, $0.anchor) }, uniquingKeysWith: { first, _ in first })
        let (flow, execution) = flow(for: report)
        let svg = SVGRenderer(link: { _, ids in ids.first.flatMap { anchors[$0] }.map { "#\($0)" } })
            .render(flow, execution: execution)
        let link = instanceLink(instance.instanceID)
        let message = FormData.dictionary(request.uri.query ?? "")["notice"] == "cancelled" ? "Cancellation requested." : nil

        var actions = ""
        if instance.status.isCancellable && !configuration.readOnly {
            actions = """
                <form class="cancel-form" method="post" action="\(link)/cancel" \
                data-confirm="Cancel workflow \(HTML.text(instance.instanceID))? Its compensations will run.">
                <button class="danger" type="submit" id="cancel-button">Cancel workflow</button></form>
                """
        }
        var info = """
            <dt>Workflow</dt><dd>\(HTML.text(instance.workflowName))</dd>
            <dt>Instance ID</dt><dd><code id="instance-id">\(HTML.text(instance.instanceID))</code></dd>
            <dt>Status</dt><dd>\(HTML.badge(instance.status.rawValue))</dd>
            <dt>Started</dt><dd>\(HTML.date(instance.startedAt))</dd>
            <dt>Updated</dt><dd>\(HTML.date(instance.updatedAt))</dd>
            """
        // An ended instance has no step in progress; the column keeps the last one it ran.
        if !instance.status.isTerminal {
            let step = instance.currentActivityID.map { "<code>\(HTML.text($0))</code>" } ?? "—"
            info += "<dt>Current step</dt><dd id=\"current-step\">\(step)</dd>"
        }
        info += """
            <dt>Service</dt><dd>\(HTML.text(instance.ownerService)) <span class="muted">(\(HTML.text(instance.framework)))</span></dd>
            <dt>Locked by</dt><dd>\(instance.lockedBy.map(HTML.text) ?? "—")</dd>
            """
        if !report.predecessors.isEmpty {
            let chain = report.predecessors.map { "<a class=\"chain-link\" href=\"\(instanceLink($0))\">\(HTML.text($0))</a>" }
            info += "<dt>Continued from</dt><dd id=\"continued-from\">\(chain.joined(separator: " ← "))</dd>"
        }
        if let successor = report.successor {
            info += "<dt>Continued by</dt><dd><a id=\"successor\" href=\"\(instanceLink(successor))\">\(HTML.text(successor))</a></dd>"
        }

        var outcome = ""
        switch instance.status {
        case .completed:
            outcome = "<section id=\"output\"><h2>Output</h2>\(HTML.json(instance.outputData?["result"]?.jsonText ?? instance.outputData?.jsonText))</section>"
        case .failed:
            outcome = "<section id=\"error\"><h2>Error details</h2>\(errorDetails(instance.outputData))</section>"
        case .cancelled, .recurred:
            outcome = "<section id=\"output\"><h2>Outcome</h2>\(HTML.json(instance.outputData?.jsonText))</section>"
        default:
            break
        }

        let body = """
            <p><a href="\(basePath)/">← All instances</a></p>
            \(message.map { "<div class=\"notice\" role=\"status\">\(HTML.text($0))</div>" } ?? "")
            <div class="title-row"><h1>\(HTML.text(instance.workflowName))</h1>\(HTML.badge(instance.status.rawValue))\(actions)</div>
            <div class="grid2">
            <section id="info"><h2>Info</h2><dl class="info">\(info)</dl></section>
            <section id="input"><h2>Input</h2>\(HTML.json(instance.inputData.jsonText))</section>
            </div>
            \(outcome)
            <section id="timeline"><h2>Timeline</h2>\(Waterfall(report, now: Date()).html)</section>
            <div class="grid2">
            <section id="diagram"><h2>Execution flow</h2>
            <div class="diagram">\(svg)</div>
            <p class="muted">\(configuration.flows[instance.workflowName] == nil ? "Drawn from the history. " : "")Export: \
            <a href="\(link)/diagram.svg">SVG</a> · <a href="\(link)/diagram.mmd">Mermaid</a></p>
            </section>
            <section id="activities"><h2>Activity details</h2>\(stepDetails(steps))</section>
            </div>
            <section id="compensations"><h2>Compensations</h2>\(compensations(report))</section>
            <section id="history"><h2>History</h2>\(timeline(report.history, anchors: anchors))</section>
            """
        return html(.ok, title: "\(instance.workflowName) \(instance.instanceID)", body: body, context: context)
    }

    private func errorDetails(_ output: JSONValue?) -> String {
        guard let output else { return "<p class=\"muted\">No error was recorded.</p>" }
        let error = StoredError(output)
        var out = "<dl class=\"info\">"
        if let type = error.type { out += "<dt>Type</dt><dd><code>\(HTML.text(type))</code></dd>" }
        out += "<dt>Message</dt><dd id=\"error-message\">\(HTML.text(error.message ?? output.jsonText))</dd>"
        for cause in error.causes { out += "<dt>Caused by</dt><dd class=\"cause\">\(HTML.text(cause))</dd>" }
        out += "</dl>"
        if let stack = error.stack { out += Self.stackDisclosure(stack) }
        return out
    }

    static func stackDisclosure(_ stack: String) -> String {
        "<details class=\"stack-trace\"><summary>Stack trace</summary><pre class=\"stack\">\(HTML.text(stack))</pre></details>"
    }

    /// A step's input or a compensation's arguments as the caller wrote them (see
    /// ``CallArguments``).
    static func arguments(_ stored: JSONValue) -> String {
        switch CallArguments(stored: stored) {
        case .value(let value):
            return HTML.json(value.jsonText)
        case .several(let positional, let keyword):
            var out = "<p class=\"muted\">Positional arguments</p>\(HTML.json(JSONValue.array(positional).jsonText))"
            if !keyword.isEmpty { out += "<p class=\"muted\">Keyword arguments</p>\(HTML.json(JSONValue.object(keyword).jsonText))" }
            return out
        }
    }

    /// The stored JSON text as it is, one click away.
    static func rawRow(_ json: String) -> String {
        "<details class=\"raw-row\"><summary>Raw row</summary>\(HTML.json(json))</details>"
    }

    private func stepDetails(_ steps: [InstanceReport.Step]) -> String {
        guard !steps.isEmpty else { return "<p class=\"muted\">No steps recorded yet.</p>" }
        var out = ""
        for step in steps {
            let event = step.last
            let data = event?.data
            var rows = "<dt>Status</dt><dd>\(HTML.text(step.status.label))</dd>"
            rows += "<dt>Executed at</dt><dd>\(HTML.date(event?.createdAt))</dd>"
            if let retry = data?["retry_metadata"], retry != .null {
                let attempts = retry["total_attempts"]?.jsonText ?? retry["attempts"]?.jsonText ?? "?"
                rows += "<dt>Attempts</dt><dd>\(HTML.text(attempts))</dd>"
            }
            if step.events.count > 1 {
                rows += "<dt>Rows</dt><dd>\(HTML.text(step.events.map(\.eventType).joined(separator: " → ")))</dd>"
            }
            var blocks = ""
            if let input = data?["input"] { blocks += "<h3>Input</h3><div class=\"step-input\">\(Self.arguments(input))</div>" }
            if let result = data?["result"], event?.eventType != "TimerExpired" { blocks += "<h3>Output</h3>\(HTML.json(result.jsonText))" }
            if case .binary(let bytes) = event?.payload { blocks += "<p class=\"muted\">Binary payload, \(bytes.count) bytes.</p>" }
            if let data, let message = data["error_message"]?.stringValue {
                let error = StoredError(data)
                blocks += "<h3>Error</h3><p><code>\(HTML.text(error.type ?? "Error"))</code>: \(HTML.text(message))</p>"
                for cause in error.causes { blocks += "<p class=\"cause\">Caused by \(HTML.text(cause))</p>" }
                if let stack = error.stack { blocks += Self.stackDisclosure(stack) }
            }
            if let retry = data?["retry_metadata"], retry != .null {
                blocks += "<details><summary>Retries</summary>\(HTML.json(retry.jsonText))</details>"
            }
            if case .json(let text) = event?.payload { blocks += Self.rawRow(text) }
            out += """
                <div class="step" id="\(step.anchor)" data-activity-id="\(HTML.text(step.activityID))">
                <h3>\(HTML.text(step.name)) <code class="muted">\(HTML.text(step.activityID))</code></h3>
                <dl class="info">\(rows)</dl>\(blocks)</div>

                """
        }
        return out
    }

    private func compensations(_ report: InstanceReport) -> String {
        let executed = report.history.filter { $0.eventType == "CompensationExecuted" || $0.eventType == "CompensationFailed" }
        if report.compensations.isEmpty && executed.isEmpty {
            return "<p class=\"muted\">None registered.</p>"
        }
        var out = ""
        if !report.compensations.isEmpty {
            out += "<h3>Registered (run newest first on failure or cancellation)</h3><table><thead><tr><th>Compensation</th><th>Registered by</th><th>Arguments</th></tr></thead><tbody>"
            for record in report.compensations.reversed() {
                let arguments = JSONValue(jsonText: record.argsJSON).map { Self.arguments($0) + Self.rawRow(record.argsJSON) }
                out += "<tr><td>\(HTML.text(record.name))</td><td><code>\(HTML.text(record.activityID))</code></td>"
                    + "<td>\(arguments ?? HTML.json(record.argsJSON))</td></tr>"
            }
            out += "</tbody></table>"
        }
        if !executed.isEmpty {
            out += "<h3>Executed</h3><table><thead><tr><th>Compensation</th><th>Outcome</th><th>At</th></tr></thead><tbody>"
            for event in executed {
                let name = event.data?["activity_name"]?.stringValue ?? event.activityID
                let outcome = event.eventType == "CompensationExecuted" ? "Compensated" : "Failed: \(event.data?["error_message"]?.stringValue ?? "")"
                out += "<tr class=\"compensation-run\"><td>\(HTML.text(name))</td><td>\(HTML.text(outcome))</td><td>\(HTML.date(event.createdAt))</td></tr>"
            }
            out += "</tbody></table>"
        }
        return out
    }

    private func timeline(_ history: [HistoryEvent], anchors: [String: String]) -> String {
        guard !history.isEmpty else { return "<p class=\"muted\">No history yet.</p>" }
        var out = "<ol class=\"timeline\">"
        for event in history {
            let failed = InstanceReport.status(of: event) == .failed
            let anchor = anchors[event.activityID].map { " <a href=\"#\($0)\">details</a>" } ?? ""
            let payload: String
            switch event.payload {
            case .json(let text): payload = "<details><summary>Data</summary>\(HTML.json(text))</details>"
            case .binary(let bytes): payload = "<p class=\"muted\">Binary data, \(bytes.count) bytes.</p>"
            }
            out += """
                <li class="\(failed ? "failed" : "")"><strong>\(HTML.text(event.eventType))</strong> \
                <code>\(HTML.text(event.activityID))</code>\(anchor) <span class="muted">\(HTML.date(event.createdAt))</span>\(payload)</li>

                """
        }
        return out + "</ol>"
    }

    // MARK: - Cancel

    func cancel(_ request: Request, _ rawID: String?, context: PageContext) async throws -> Response {
        try authorizeChange(request)
        let id = try instanceID(rawID)
        guard try await app.cancel(instanceID: id, cancelledBy: configuration.cancelledBy) else {
            guard let instance = try await app.store.instance(id: id) else {
                throw Failure(status: .notFound, title: "Workflow not found", message: "No workflow instance has the ID '\(id)'.")
            }
            throw Failure(
                status: .badRequest, title: "Cannot cancel",
                message: "Cannot cancel: the instance is \(instance.status.rawValue), and only running or waiting instances can be cancelled.")
        }
        return redirect(to: instanceLink(id) + "?notice=cancelled")
    }

    // MARK: - Start

    func startForm(_ request: Request, context: PageContext, values: [String: String] = [:], error: String? = nil) async throws -> Response {
        try refuseIfReadOnly()
        let names = app.registeredWorkflowNames
        guard !names.isEmpty else {
            let body = """
                <h1>Start a workflow</h1><section><p>No workflows are registered in this process. Mount the viewer in the \
                application that registers your workflows (<code>EddaViewer(app: app)</code>) to start them from here.</p></section>
                """
            return html(.ok, title: "Start", body: body, context: context)
        }
        let query = FormData.dictionary(request.uri.query ?? "")
        let selected = values["workflow"] ?? query["workflow"] ?? names[0]
        guard let schema = app.inputSchema(ofWorkflow: selected) else {
            throw Failure(status: .notFound, title: "Unknown workflow", message: "No workflow named '\(selected)' is registered.")
        }
        let form = StartForm(schema: schema)
        var choices = ""
        for name in names {
            let current = name == selected ? " aria-current=\"page\"" : ""
            choices += "<li><a href=\"\(basePath)/start\(HTML.query([("workflow", name)]))\"\(current)>\(HTML.text(name))</a></li>"
        }
        let body = """
            <h1>Start a workflow</h1>
            \(error.map { "<div class=\"error\" role=\"alert\">\(HTML.text($0))</div>" } ?? "")
            <div class="grid2">
            <section><h2>Workflows</h2><ul>\(choices)</ul></section>
            <section><h2>\(HTML.text(selected))</h2>
            <form class="start" method="post" action="\(basePath)/start">
            <input type="hidden" name="workflow" value="\(HTML.text(selected))">
            \(form.controls(values: values))
            <label>Instance ID <span class="muted">(optional)</span><input type="text" name="instance_id" \
            value="\(HTML.text(values["instance_id"] ?? ""))" maxlength="\(Self.maximumInstanceIDLength)"></label>
            <button type="submit" id="start-button">Start</button>
            </form>
            <details><summary>Input schema</summary>\(HTML.json(schema.jsonSchema.jsonText))</details>
            </section>
            </div>
            """
        return html(error == nil ? .ok : .badRequest, title: "Start", body: body, context: context)
    }

    func start(_ request: Request, context: PageContext) async throws -> Response {
        try authorizeChange(request)
        let values = try await form(request)
        guard let name = values["workflow"], let schema = app.inputSchema(ofWorkflow: name) else {
            throw Failure(status: .badRequest, title: "Unknown workflow", message: "Choose one of the registered workflows.")
        }
        let input: JSONValue
        do {
            input = try StartForm(schema: schema).input(from: values)
        } catch {
            return try await startForm(request, context: context, values: values, error: error.message)
        }
        var instanceID: String?
        if let requested = values["instance_id"]?.trimmingCharacters(in: .whitespaces), !requested.isEmpty {
            do {
                try Identifier.validate(requested, field: "instance_id")
            } catch {
                return try await startForm(request, context: context, values: values, error: error.description)
            }
            instanceID = requested
        }
        let id: String
        do {
            id = try await app.startDetached(workflowNamed: name, inputJSON: input.jsonText, instanceID: instanceID)
        } catch let error as EddaUsageError {
            return try await startForm(request, context: context, values: values, error: error.message)
        } catch let error as InvalidIdentifierError {
            return try await startForm(request, context: context, values: values, error: error.description)
        }
        return redirect(to: instanceLink(id))
    }
}

/// `application/x-www-form-urlencoded` text (query strings and form bodies).
enum FormData {
    static func pairs(_ text: String) -> [(String, String)] {
        text.split(separator: "&").compactMap { part in
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(pair[0]), !name.isEmpty else { return nil }
            return (name, pair.count > 1 ? decode(pair[1]) ?? "" : "")
        }
    }

    /// The last value of each name.
    static func dictionary(_ text: String) -> [String: String] {
        Dictionary(pairs(text), uniquingKeysWith: { _, last in last })
    }

    private static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}
