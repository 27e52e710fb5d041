import Edda
import EddaSQLite
import EddaDiagram
import EddaTesting
import EddaViewer
import Foundation
import GRDB
import Testing
import TestSupport

@Suite("Viewer pages", .timeLimit(.minutes(3)))
struct ViewerPageTests {
    @Test("The list shows every instance with its status, and filters by search, status, dates and input")
    func listAndFilters() async throws {
        try await withSeededViewer { _, base, _ in
            let page = try await get(base + "/")
            #expect(page.status == 200)
            #expect(page.header("Content-Type")?.hasPrefix("text/html") == true)
            #expect(page.header("Content-Security-Policy")?.contains("script-src 'nonce-") == true)
            for id in ["ticket-ok", "ticket-failed", "ticket-premium", "wait-1", "nap-1", "countdown-1"] {
                #expect(page.body.contains("data-instance-id=\"\(id)\""), "missing \(id)")
            }
            for status in ["completed", "failed", "waiting_for_message", "waiting_for_timer", "recurred"] {
                #expect(page.body.contains("data-status=\"\(status)\""), "missing status \(status)")
            }
            // Every status is offered, including those the reference leaves out.
            for status in WorkflowStatus.allCases {
                #expect(page.body.contains("<option value=\"\(status.rawValue)\""))
            }

            let failed = try await get(base + "/?status=failed")
            #expect(failed.body.contains("data-instance-id=\"ticket-failed\""))
            #expect(!failed.body.contains("data-instance-id=\"ticket-ok\""))

            let search = try await get(base + "/?q=NAP")
            #expect(search.body.contains("data-instance-id=\"nap-1\""))
            #expect(!search.body.contains("data-instance-id=\"wait-1\""))

            let byInput = try await get(base + "/?key=customer.id&value=c-3")
            #expect(byInput.body.contains("data-instance-id=\"ticket-premium\""))
            #expect(!byInput.body.contains("data-instance-id=\"ticket-ok\""))
            let byNumber = try await get(base + "/?key=seats&value=2&status=completed")
            #expect(byNumber.body.contains("data-instance-id=\"ticket-ok\""))

            let today = Date().formatted(.iso8601.year().month().day())
            let inRange = try await get(base + "/?from=\(today)&to=\(today)")
            #expect(inRange.body.contains("data-instance-id=\"ticket-ok\""))
            let past = try await get(base + "/?to=2001-01-01")
            #expect(past.body.contains("id=\"empty\""))
            #expect(!past.body.contains("data-instance-id="))
        }
    }

    @Test("Cursor pagination walks every instance once, forwards and back")
    func pagination() async throws {
        try await withSeededViewer { app, base, _ in
            var all = InstanceQuery()
            all.framework = nil
            all.limit = 1000
            let expected = try await app.findInstances(all).instances.map(\.instanceID)
            var seen: [String] = []
            var url = base + "/?size=3"
            var pages: [String] = []
            while true {
                let page = try await get(url)
                #expect(page.status == 200)
                pages.append(url)
                seen += Self.instanceIDs(in: page.body)
                guard let next = Self.link(rel: "next", in: page.body) else { break }
                url = base.replacingOccurrences(of: "/viewer", with: "") + next
            }
            #expect(seen == expected)
            #expect(pages.count == (expected.count + 2) / 3)
            // Back from the last page reaches the one before it.
            let last = try await get(url)
            let previous = try #require(Self.link(rel: "prev", in: last.body))
            let back = try await get(base.replacingOccurrences(of: "/viewer", with: "") + previous)
            #expect(Self.instanceIDs(in: back.body) == Array(expected[(pages.count - 2) * 3..<(pages.count - 1) * 3]))
        }
    }

    static func instanceIDs(in html: String) -> [String] {
        html.components(separatedBy: "data-instance-id=\"").dropFirst().compactMap { part in
            part.split(separator: "\"", maxSplits: 1).first.map { decodeEntities(String($0)) }
        }
    }

    static func link(rel: String, in html: String) -> String? {
        guard let range = html.range(of: "rel=\"\(rel)\" href=\"") else { return nil }
        let rest = html[range.upperBound...]
        return rest.split(separator: "\"", maxSplits: 1).first.map { decodeEntities(String($0)) }
    }

    static func decodeEntities(_ text: String) -> String {
        text.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    @Test("The detail page shows info, input, output, errors, compensations, history and a coloured diagram")
    func detail() async throws {
        try await withSeededViewer { _, base, _ in
            let ok = try await get(base + "/workflow/ticket-ok")
            #expect(ok.status == 200)
            #expect(ok.body.contains("<section id=\"output\">"))
            #expect(ok.body.contains("&quot;customer&quot;: {"))  // the input, pretty-printed
            #expect(ok.body.contains("ActivityCompleted"))
            #expect(ok.body.contains("class=\"vertex shape-box kind-activity st-completed executed\" data-step=\"book_seats\""))
            #expect(ok.body.contains("data-step=\"send_tickets\""))
            #expect(!ok.body.contains("id=\"cancel-button\""))  // completed: nothing to cancel
            #expect(ok.body.contains("<a href=\"#step-1\">"))  // diagram node → step details

            let failed = try await get(base + "/workflow/ticket-failed")
            #expect(failed.body.contains("<section id=\"error\">"))
            #expect(failed.body.contains("the mail server refused Customer c-2"))
            #expect(failed.body.contains("TerminalError"))
            #expect(!failed.body.contains("Stack trace"))  // a Swift error has none; see ViewerPresentationTests
            #expect(failed.body.contains("st-failed"))
            // Compensations ran newest first: the card refund, then the seat release.
            let refund = try #require(failed.body.range(of: "<tr class=\"compensation-run\"><td>refund_card"))
            let release = try #require(failed.body.range(of: "<tr class=\"compensation-run\"><td>release_seats"))
            #expect(refund.lowerBound < release.lowerBound)
            #expect(failed.body.contains("Compensate: refund_card"))  // in the diagram's rollback chain

            let waiting = try await get(base + "/workflow/ticket-premium")
            #expect(waiting.body.contains("id=\"cancel-button\""))
            #expect(waiting.body.contains("st-waiting_event"))
            #expect(waiting.body.contains("Registered (run newest first"))

            let napping = try await get(base + "/workflow/nap-1")
            #expect(napping.body.contains("st-waiting_timer"))
        }
    }

    @Test("A recur chain links each instance to its predecessors and its successor")
    func recurChain() async throws {
        try await withSeededViewer { app, base, _ in
            let second = try #require(try await app.store.successor(of: "countdown-1"))
            let third = try #require(try await app.store.successor(of: second))
            let first = try await get(base + "/workflow/countdown-1")
            #expect(first.body.contains("id=\"successor\" href=\"/viewer/workflow/\(segment(second))\""))
            let last = try await get(base + "/workflow/\(segment(third))")
            #expect(last.body.contains("id=\"continued-from\""))
            #expect(last.body.contains(">\(second)</a> ← <a class=\"chain-link\" href=\"/viewer/workflow/countdown-1\">countdown-1</a>"))
            #expect(last.body.contains("&quot;liftoff&quot;"))
        }
    }

    @Test("Diagram exports: Mermaid text and a standalone SVG")
    func exports() async throws {
        try await withSeededViewer { _, base, _ in
            let mermaid = try await get(base + "/workflow/ticket-failed/diagram.mmd")
            #expect(mermaid.status == 200)
            #expect(mermaid.body.hasPrefix("flowchart TD\n"))
            #expect(mermaid.body.contains("✅ book_seats"))
            #expect(mermaid.body.contains("❌ send_tickets"))
            #expect(mermaid.body.contains("classDef failed fill:#FEE2E2,stroke:#EF4444"))
            #expect(mermaid.body.contains("-->|rollback|") || mermaid.body.contains("-.->|rollback|"))
            let svg = try await get(base + "/workflow/ticket-failed/diagram.svg")
            #expect(svg.header("Content-Type") == "image/svg+xml")
            #expect(svg.body.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
            #expect(svg.body.contains("st-compensated"))
        }
    }

    @Test("Static flows from source are drawn with the executed path; steps not run are marked")
    func staticFlow() async throws {
        let flow = WorkflowFlow(workflowName: "ticket_order", steps: [
            .node(FlowNode(kind: .activity, label: "book_seats", stepName: "book_seats", registersCompensation: true)),
            .node(FlowNode(kind: .activity, label: "charge_card", stepName: "charge_card", registersCompensation: true)),
            .branch(FlowBranch(kind: .condition, label: "order.tier == .premium", arms: [
                FlowArm(label: "Yes", steps: [.node(FlowNode(kind: .waitEvent, label: "wait event: upgrade.offered", stepName: "receive_upgrade.offered"))]),
                FlowArm(label: "No", steps: []),
            ])),
            .node(FlowNode(kind: .activity, label: "send_tickets", stepName: "send_tickets")),
        ])
        var configuration = EddaViewer.Configuration()
        configuration.flows = ["ticket_order": flow]
        try await withSeededViewer(configuration) { _, base, _ in
            let ok = try await get(base + "/workflow/ticket-ok")
            #expect(ok.body.contains("class=\"vertex shape-box kind-waitEvent st-not_executed pending\" data-step=\"receive_upgrade.offered\""))
            #expect(ok.body.contains("order.tier == .premium"))
            #expect(!ok.body.contains("Drawn from the history."))
        }
    }
}

@Suite("Viewer changes and hostile input", .timeLimit(.minutes(3)))
struct ViewerChangeTests {
    @Test("Cancel: the button posts, the instance is cancelled, and the page says so")
    func cancel() async throws {
        try await withSeededViewer { app, base, _ in
            let reply = try await postForm(base + "/workflow/wait-1/cancel", [])
            #expect(reply.status == 200)  // the redirect to the detail page, followed
            #expect(reply.body.contains("Cancellation requested."))
            #expect(try await app.instance("wait-1")?.status == .cancelled)
            let again = try await postForm(base + "/workflow/wait-1/cancel", [])
            #expect(again.status == 400)
            #expect(again.body.contains("Cannot cancel: the instance is cancelled"))
            let missing = try await postForm(base + "/workflow/nope/cancel", [])
            #expect(missing.status == 404)
        }
    }

    @Test("Read-only mode refuses changes and hides the buttons; a token guards them otherwise")
    func readOnlyAndToken() async throws {
        var readOnly = EddaViewer.Configuration()
        readOnly.readOnly = true
        try await withSeededViewer(readOnly) { app, base, _ in
            let page = try await get(base + "/workflow/wait-1")
            #expect(!page.body.contains("cancel-button"))
            #expect(!page.body.contains("/start\">Start New Workflow"))
            #expect(try await postForm(base + "/workflow/wait-1/cancel", []).status == 403)
            #expect(try await postForm(base + "/start", [("workflow", "nap"), ("input.name", "x")]).status == 403)
            #expect(try await app.instance("wait-1")?.status == .waitingForMessage)
        }
        var guarded = EddaViewer.Configuration()
        guarded.bearerToken = "s3cret-token"
        try await withSeededViewer(guarded) { app, base, _ in
            #expect(try await postForm(base + "/workflow/wait-1/cancel", []).status == 401)
            #expect(try await postForm(base + "/workflow/wait-1/cancel", [], headers: [("Authorization", "Bearer wrong")]).status == 401)
            #expect(try await app.instance("wait-1")?.status == .waitingForMessage)
            // Another site's page posting with the token cookie is refused.
            let crossSite = try await postForm(
                base + "/workflow/wait-1/cancel", [],
                headers: [("Cookie", "edda_viewer_token=s3cret-token"), ("Origin", "http://evil.example")])
            #expect(crossSite.status == 403)
            #expect(try await app.instance("wait-1")?.status == .waitingForMessage)
            // Signing in sets the cookie; the cookie (same origin) then works.
            let wrongLogin = try await postForm(base + "/login", [("token", "nope")])
            #expect(wrongLogin.status == 401)
            let cookie = try await signIn(base, token: "s3cret-token")
            let withCookie = try await postForm(base + "/workflow/wait-1/cancel", [], headers: [("Cookie", cookie)])
            #expect(withCookie.status == 200)
            #expect(try await app.instance("wait-1")?.status == .cancelled)
            let withHeader = try await postForm(
                base + "/workflow/nap-1/cancel", [], headers: [("Authorization", "Bearer s3cret-token")])
            #expect(withHeader.status == 200)
            #expect(try await app.instance("nap-1")?.status == .cancelled)
        }
    }

    @Test("The start form is generated from the input type and starts the workflow; bad fields change nothing")
    func startForm() async throws {
        try await withSeededViewer { app, base, _ in
            let form = try await get(base + "/start?workflow=ticket_order")
            #expect(form.status == 200)
            #expect(form.body.contains("<input type=\"text\" name=\"input.customer.id\""))
            #expect(form.body.contains("<input type=\"number\" step=\"1\" name=\"input.seats\""))
            #expect(form.body.contains("<select name=\"input.tier\" required><option value=\"standard\">"))
            #expect(form.body.contains("name=\"input.note\" value=\"\">"))  // optional: not required
            #expect(form.body.contains("<input type=\"text\" name=\"input.giftFor.id\" value=\"\">"))  // in an optional object
            let before = try await app.findInstances(InstanceQuery()).instances.count

            let bad = try await postForm(base + "/start", [
                ("workflow", "ticket_order"), ("input.customer.id", "c-9"), ("input.customer.name", "Eve"),
                ("input.seats", "two"), ("input.tier", "standard"),
            ])
            #expect(bad.status == 400)
            #expect(bad.body.contains("Field &#39;seats&#39; must be a whole number, not &#39;two&#39;."))
            #expect(bad.body.contains("value=\"c-9\""))  // what was typed is kept
            #expect(try await app.findInstances(InstanceQuery()).instances.count == before)

            let started = try await postForm(base + "/start", [
                ("workflow", "ticket_order"), ("input.customer.id", "c-9"), ("input.customer.name", "Eve"),
                ("input.seats", "3"), ("input.tier", "standard"), ("input.note", ""), ("input.giftFor.id", ""),
                ("input.giftFor.name", ""), ("instance_id", "from-form"),
            ])
            #expect(started.status == 200)
            #expect(started.body.contains("<code id=\"instance-id\">from-form</code>"))
            let done = try await app.waitForStatus("from-form", in: [.completed])
            #expect(done.inputData == ["customer": ["id": "c-9", "name": "Eve"], "seats": 3, "tier": "standard"])
            #expect(done.outputData?["result"] == 90)

            let unknown = try await postForm(base + "/start", [("workflow", "no_such_workflow")])
            #expect(unknown.status == 400)
        }
    }

    @Test("Hostile IDs, inputs and filters are escaped, rejected where invalid, and never reach SQL or paths")
    func hostileInput() async throws {
        try await withSeededViewer { _, base, _ in
            let list = try await get(base + "/")
            #expect(!list.body.contains("<script>alert"))
            #expect(list.body.contains("&lt;script&gt;alert(&quot;id&quot;)&lt;/script&gt;&#39; OR &#39;1&#39;=&#39;1 ../../etc/passwd"))

            let detail = try await get(base + "/workflow/\(segment(hostileID))")
            #expect(detail.status == 200)
            #expect(!detail.body.contains("<img src=x"))
            #expect(!detail.body.contains("<script>alert"))
            #expect(detail.body.contains("&lt;img src=x onerror=alert(1)&gt;"))

            let filters = try await get(base + "/?q=%27%20OR%201%3D1%20--&key=name&value=%3Cimg%20src%3Dx%3E")
            #expect(filters.status == 200)
            #expect(filters.body.contains("value=\"&#39; OR 1=1 --\""))
            #expect(filters.body.contains("value=\"&lt;img src=x&gt;\""))
            #expect(filters.body.contains("id=\"empty\""))  // a filter, not SQL: it matches nothing

            let badKey = try await get(base + "/?key=..%2F..%2Fetc&value=1")
            #expect(badKey.status == 400)
            #expect(badKey.body.contains("Invalid JSON path: ../../etc"))
            #expect(try await get(base + "/?status=%3Cb%3E").body.contains("Unknown status &#39;&lt;b&gt;&#39;"))
            #expect(try await get(base + "/?status=bogus").status == 400)
            #expect(try await get(base + "/?from=2026-13-45").status == 400)
            #expect(try await get(base + "/?size=0").status == 400)
            #expect(try await get(base + "/?after=garbage").status == 400)

            let traversal = try await get(base + "/workflow/..%2F..%2Fetc%2Fpasswd")
            #expect(traversal.status == 404)
            #expect(!traversal.body.contains("root:x:0"))
            let missing = try await get(base + "/workflow/%3Cscript%3Ex%3C%2Fscript%3E")
            #expect(missing.status == 404)
            #expect(missing.body.contains("&lt;script&gt;x&lt;/script&gt;"))
            #expect(try await get(base + "/workflow/" + String(repeating: "a", count: 300)).status == 400)
            // Control characters are looked up (a legacy row may have them), never interpreted.
            let nul = try await get(base + "/workflow/a%00b")
            #expect(nul.status == 404)
            #expect(nul.body.contains("No workflow instance has the ID"))

            #expect(try await get(base + "/?from=2026-1-5").status == 400)

            // The theme switch only redirects within the viewer.
            for back in ["%2F%2Fevil.example%2F", "%2F%09%2Fevil.example", "https%3A%2F%2Fevil.example", "%2Fother"] {
                let theme = try await get(base + "/theme?mode=dark&back=\(back)")
                #expect(theme.status == 200, "back=\(back)")
                #expect(theme.body.contains("Workflow instances"), "back=\(back)")
            }
            // A quote hidden in a combined character is still escaped.
            let combined = try await get(base + "/?q=%22%CC%81%20autofocus%20x=")
            #expect(combined.body.contains("value=\"&quot;\u{301} autofocus x=\""))
        }
    }

    @Test("The theme follows the system, or the choice stored in a cookie")
    func theme() async throws {
        try await withSeededViewer { _, base, _ in
            let auto = try await get(base + "/")
            #expect(auto.body.contains("<html lang=\"en\">"))
            #expect(auto.body.contains("prefers-color-scheme: dark"))
            let dark = try await get(base + "/", headers: [("Cookie", "edda_theme=dark")])
            #expect(dark.body.contains("<html lang=\"en\" data-theme=\"dark\">"))
            let junk = try await get(base + "/", headers: [("Cookie", "edda_theme=\"><script>")])
            #expect(junk.body.contains("<html lang=\"en\">"))
        }
    }

    @Test("DNS rebinding: a page whose Host and Origin name another site cannot post; trusted hosts are configured")
    func dnsRebinding() async throws {
        try await withSeededViewer { app, base, _ in
            let rebound = try await postForm(
                base + "/workflow/wait-1/cancel", [], headers: [("Host", "evil.example"), ("Origin", "http://evil.example")])
            #expect(rebound.status == 403)
            #expect(rebound.body.contains("not a trusted origin"))
            let crossSite = try await postForm(base + "/workflow/wait-1/cancel", [], headers: [("Sec-Fetch-Site", "cross-site")])
            #expect(crossSite.status == 403)
            #expect(try await app.instance("wait-1")?.status == .waitingForMessage)
            let start = try await postForm(
                base + "/start", [("workflow", "nap"), ("input.name", "x")], headers: [("Origin", "http://evil.example")])
            #expect(start.status == 403)
            // The viewer's own loopback page may.
            let port = try #require(URL(string: base)?.port)
            let own = try await postForm(base + "/workflow/wait-1/cancel", [], headers: [("Origin", "http://127.0.0.1:\(port)")])
            #expect(own.status == 200)
            #expect(try await app.instance("wait-1")?.status == .cancelled)
        }
        var configuration = EddaViewer.Configuration()
        configuration.crossSiteProtection.trustedHosts = ["ops.example.com"]
        try await withSeededViewer(configuration) { app, base, _ in
            let local = try await postForm(
                base + "/workflow/wait-1/cancel", [], headers: [("Origin", "http://localhost")])
            #expect(local.status == 403)
            let ops = try await postForm(
                base + "/workflow/wait-1/cancel", [], headers: [("Host", "ops.example.com"), ("Origin", "https://ops.example.com")])
            #expect(ops.status == 200)
            #expect(try await app.instance("wait-1")?.status == .cancelled)
        }
    }

    @Test("The sign-in cookie is HttpOnly, SameSite=Strict, scoped to the viewer, Secure over HTTPS, and not the token")
    func signInCookie() async throws {
        var configuration = EddaViewer.Configuration()
        configuration.bearerToken = "s3cret-token"
        try await withSeededViewer(configuration) { app, base, _ in
            let login = try await postForm(base + "/login", [("token", "s3cret-token")], followRedirects: false)
            #expect(login.status == 303)
            let cookie = try #require(login.header("Set-Cookie"))
            let attributes = cookie.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(attributes.first?.hasPrefix("edda_viewer_token=") == true)
            #expect(attributes.contains("HttpOnly"))
            #expect(attributes.contains("SameSite=Strict"))
            #expect(attributes.contains("Path=/viewer"))
            #expect(!attributes.contains("Secure"))
            #expect(!cookie.contains("s3cret"))
            let secure = try await postForm(
                base + "/login", [("token", "s3cret-token")], headers: [("X-Forwarded-Proto", "https")], followRedirects: false)
            #expect(secure.header("Set-Cookie")?.contains("; Secure") == true)

            // The cookie authorizes changes; the raw token in a cookie does not.
            let raw = try await postForm(base + "/workflow/wait-1/cancel", [], headers: [("Cookie", "edda_viewer_token=s3cret-token")])
            #expect(raw.status == 401)
            let value = try #require(attributes.first)
            let cancel = try await postForm(base + "/workflow/wait-1/cancel", [], headers: [("Cookie", value)])
            #expect(cancel.status == 200)
            #expect(try await app.instance("wait-1")?.status == .cancelled)
        }
    }

    @Test("With a token, reading is open unless protectsReads is on; then every page needs the token")
    func readProtection() async throws {
        var open = EddaViewer.Configuration()
        open.bearerToken = "s3cret-token"
        try await withSeededViewer(open) { _, base, _ in
            let list = try await get(base + "/")
            #expect(list.status == 200)
            #expect(list.body.contains("data-instance-id=\"ticket-ok\""))
            #expect(try await get(base + "/workflow/ticket-ok").status == 200)
        }
        var guarded = open
        guarded.protectsReads = true
        try await withSeededViewer(guarded) { _, base, _ in
            for path in ["/", "/workflow/ticket-ok", "/workflow/ticket-ok/diagram.svg", "/workflow/ticket-ok/diagram.mmd", "/start"] {
                let page = try await get(base + path)
                #expect(page.status == 401, "\(path)")
                #expect(page.body.contains("name=\"token\""), "\(path)")  // the sign-in form
                for content in ["data-instance-id", "id=\"instance-id\"", "flowchart", "<svg", "c-1", "start-button"] {
                    #expect(!page.body.contains(content), "\(path) shows \(content)")
                }
            }
            #expect(try await get(base + "/login").status == 200)
            #expect(try await get(base + "/", headers: [("Authorization", "Bearer s3cret-token")]).status == 200)
            let cookie = try await signIn(base, token: "s3cret-token")
            let page = try await get(base + "/workflow/ticket-ok", headers: [("Cookie", cookie)])
            #expect(page.status == 200)
            #expect(page.body.contains("<code id=\"instance-id\">ticket-ok</code>"))
        }
    }

    /// The ID of a row written with a newline in its ID, as another tool or an older version
    /// could: straight into the database, copying `wait-1` (waiting, nothing to compensate).
    static let legacyID = "legacy\nid"

    static func insertLegacyRow(_ database: TemporaryDatabase) async throws {
        let connection = try openDatabase(database.path)
        defer { try? connection.close() }
        try await connection.write { db in
            let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(workflow_instances)").map { $0["name"] as String }
            let others = columns.filter { $0 != "instance_id" }.joined(separator: ", ")
            try db.execute(
                sql: "INSERT INTO workflow_instances (instance_id, \(others)) SELECT ?, \(others) FROM workflow_instances WHERE instance_id = 'wait-1'",
                arguments: [legacyID])
        }
    }

    @Test("A legacy instance whose ID has a newline (written by another tool) is listed, linked and shown")
    func legacyControlCharacterIDIsShown() async throws {
        try await withSeededViewer { _, base, database in
            try await Self.insertLegacyRow(database)
            let list = try await get(base + "/")
            #expect(list.body.contains("href=\"/viewer/workflow/legacy%0Aid\""))
            let detail = try await get(base + "/workflow/legacy%0Aid")
            #expect(detail.status == 200)
            #expect(detail.body.contains("<code id=\"instance-id\">legacy\nid</code>"))
            #expect(detail.body.contains("action=\"/viewer/workflow/legacy%0Aid/cancel\""))
            #expect(try await get(base + "/workflow/legacy%0Aid/diagram.svg").status == 200)
        }
    }

    @Test("A legacy instance whose ID has a newline (written by another tool) can be cancelled from the viewer")
    func legacyControlCharacterIDIsCancelled() async throws {
        try await withSeededViewer { app, base, database in
            try await Self.insertLegacyRow(database)
            let cancelled = try await postForm(base + "/workflow/legacy%0Aid/cancel", [])
            #expect(cancelled.status == 200, "\(cancelled.body)")
            #expect(cancelled.body.contains("Cancellation requested."))
            let status = try rows(database, "SELECT status FROM workflow_instances WHERE instance_id = ?", [Self.legacyID]).first?["status"] as String?
            #expect(status == "cancelled")
            #expect(try await app.store.instance(id: "wait-1")?.status == .waitingForMessage)
        }
    }
}

/// Signs in on the viewer at `base` and returns the `name=value` of the cookie it sets.
func signIn(_ base: String, token: String) async throws -> String {
    let login = try await postForm(base + "/login", [("token", token)], followRedirects: false)
    let cookie = try #require(login.header("Set-Cookie"))
    return String(cookie.split(separator: ";")[0])
}
