import Edda
import EddaTesting
import EddaViewer
import Foundation
import GRDB
import Testing
import TestSupport

/// What the pages show of an instance: the diagram of a failed saga, step inputs as written,
/// stack traces only when there is one, the current step only while running, the list's links,
/// and the dark theme's colours.
@Suite("Viewer presentation", .timeLimit(.minutes(3)))
struct ViewerPresentationTests {
    @Test("A failed saga's diagram goes from the failing step through its compensations to Failed, never to Complete")
    func failedSagaDiagram() async throws {
        try await withSeededViewer { _, base, _ in
            let mermaid = try await get(base + "/workflow/ticket-failed/diagram.mmd").body
            let lines = mermaid.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(!mermaid.contains("Complete"))
            let failing = try #require(Self.mermaidID(of: "❌ send_tickets", in: lines))
            let rollback = try #require(Self.mermaidID(of: "Compensation", in: lines))
            let release = try #require(Self.mermaidID(of: "🔄 Compensate: release_seats", in: lines))
            let end = try #require(Self.mermaidID(of: "Failed", in: lines))
            #expect(lines.contains("\(failing) -.->|rollback| \(rollback)"))
            #expect(lines.contains("\(release) --> \(end)"))
            #expect(lines.contains("class \(end) failed"))
            // The edge into the end is on the executed path.
            let links = try #require(lines.first { $0.hasPrefix("linkStyle ") })
            let edges = lines.filter { $0.contains("-->") || $0.contains("-.->") }
            let index = try #require(edges.firstIndex(of: "\(release) --> \(end)"))
            #expect(links.split(separator: " ")[1].split(separator: ",").contains(Substring(String(index))))

            let page = try await get(base + "/workflow/ticket-failed").body
            let diagram = try #require(Self.section("diagram", in: page))
            #expect(!diagram.contains(">Complete</text>"))
            #expect(diagram.contains("<g class=\"vertex shape-stadium st-failed executed\"><title>Failed</title>"))

            // A completed instance still ends at Complete.
            let ok = try await get(base + "/workflow/ticket-ok/diagram.mmd").body
            #expect(ok.contains("([\"Complete\"])"))
            #expect(!ok.contains("rollback"))
        }
    }

    @Test("Step inputs show what the workflow passed, not the args/kwargs wrapper; the raw row is one click away")
    func stepInputsAsWritten() async throws {
        try await withSeededViewer { _, base, database in
            let page = try await get(base + "/workflow/ticket-ok").body
            let activities = try #require(Self.section("activities", in: page))
            let inputs = Self.blocks(of: "<div class=\"step-input\">", in: activities)
            #expect(inputs.count == 3)
            for input in inputs {
                #expect(input.hasPrefix("<pre class=\"json\">{\n  &quot;customer&quot;: {"), "\(input)")
                #expect(!input.contains("kwargs"))
                #expect(!input.contains("&quot;args&quot;"))
            }
            let raw = Self.blocks(of: "<details class=\"raw-row\"><summary>Raw row</summary>", in: activities)
            #expect(raw.count == 3)
            #expect(raw.allSatisfy { $0.contains("&quot;kwargs&quot;: {") && $0.contains("&quot;activity_name&quot;") })
            // Registered compensations show their input and output, with the stored row behind them.
            let premium = try await get(base + "/workflow/ticket-premium").body
            let compensations = try #require(Self.section("compensations", in: premium))
            #expect(compensations.contains("<td><pre class=\"json\">{\n  &quot;input&quot;: {"))
            let rawArguments = Self.blocks(of: "<details class=\"raw-row\"><summary>Raw row</summary>", in: compensations)
            #expect(rawArguments.count == 2)
            #expect(rawArguments.allSatisfy { $0.contains("&quot;args&quot;: []") && $0.contains("&quot;kwargs&quot;: {") })

            // Rows written by the Python implementation, with positional arguments.
            try await Self.insertPythonRows(database)
            let python = try await get(base + "/workflow/py-failed")
            #expect(python.status == 200)
            let steps = try #require(Self.section("activities", in: python.body))
            let pythonInputs = Self.blocks(of: "<div class=\"step-input\">", in: steps)
            try #require(pythonInputs.count == 3)
            // Two positional arguments: listed as such.
            #expect(pythonInputs[0] == """
                <p class="muted">Positional arguments</p><pre class="json">[
                  &quot;sku-9&quot;,
                  3
                ]</pre>
                """)
            // One positional argument: the value itself.
            #expect(pythonInputs[1] == "<pre class=\"json\">42</pre>")
            // Positional and keyword arguments: both, apart.
            #expect(pythonInputs[2] == """
                <p class="muted">Positional arguments</p><pre class="json">[
                  &quot;c-7&quot;
                ]</pre><p class="muted">Keyword arguments</p><pre class="json">{
                  &quot;amount&quot;: 30
                }</pre>
                """)
        }
    }

    @Test("Stack trace: shown when the row stores a real one (a Python traceback), left out when it would repeat the message")
    func stackTraces() async throws {
        try await withSeededViewer { _, base, database in
            let swift = try await get(base + "/workflow/ticket-failed").body
            #expect(swift.contains("the mail server refused Customer c-2"))
            #expect(!swift.contains("Stack trace"))
            #expect(!swift.contains("<pre class=\"stack\">"))

            try await Self.insertPythonRows(database)
            let python = try await get(base + "/workflow/py-failed").body
            let error = try #require(Self.section("error", in: python))
            #expect(error.contains("<dd id=\"error-message\">card declined</dd>"))
            let disclosure = "<details class=\"stack-trace\"><summary>Stack trace</summary><pre class=\"stack\">"
            #expect(error.contains(disclosure + "Traceback (most recent call last):\n  File &quot;/srv/shop/activities.py&quot;, line 41"))
            let steps = try #require(Self.section("activities", in: python))
            #expect(steps.contains(disclosure + "Traceback (most recent call last):"))
        }
    }

    @Test("The current step is shown while an instance runs or waits, and not once it has ended")
    func currentStepOnlyWhileRunning() async throws {
        try await withSeededViewer { app, base, _ in
            _ = try await postForm(base + "/workflow/wait-1/cancel", [])
            _ = try await app.waitForStatus("wait-1", in: [.cancelled])
            for id in ["ticket-ok", "ticket-failed", "wait-1", "countdown-1"] {
                let page = try await get(base + "/workflow/\(id)").body
                #expect(!page.contains("Current step"), "\(id)")
            }
            let waiting = try await get(base + "/workflow/ticket-premium").body
            #expect(waiting.contains("<dt>Current step</dt><dd id=\"current-step\"><code>"))
        }
    }

    @Test("The timeline draws each recorded step as a bar in order, failures and compensations in their colours, an open bar while the instance waits")
    func timelineWaterfall() async throws {
        try await withSeededViewer { app, base, _ in
            for id in ["ticket-ok", "ticket-failed", "ticket-premium"] {
                let page = try await get(base + "/workflow/\(id)").body
                let timeline = try #require(Self.section("timeline", in: page), "\(id)")
                let history = try await app.history(of: id)
                let steps = history.filter {
                    ["ActivityCompleted", "ActivityFailed", "TimerExpired", "ChannelMessageReceived", "EventReceived", "MessageTimeout",
                     "CompensationExecuted", "CompensationFailed"].contains($0.eventType)
                }
                let rows = Self.blocks(of: "<div class=\"wf-row\" role=\"row\">", in: timeline)
                let isWaiting = id == "ticket-premium"
                #expect(rows.count == steps.count + (isWaiting ? 1 : 0), "\(id): a bar per step\(isWaiting ? ", and the wait" : "")")
                // The bars follow the history's order, and fit the track.
                for (row, step) in zip(rows, steps) { #expect(row.contains("<code class=\"muted\">\(step.activityID)</code>"), "\(id)") }
                var previousLeft = -1.0
                for row in rows {
                    let style = try #require(row.range(of: "style=\"left:").map { row[$0.upperBound...] })
                    let numbers = style.prefix { $0 != "\"" }.split(separator: "%").compactMap { Double($0.filter { $0.isNumber || $0 == "." }) }
                    #expect(numbers.count == 2)
                    #expect(numbers[0] >= previousLeft && numbers[0] + numbers[1] <= 100.01, "\(id): \(style.prefix(40))")
                    previousLeft = numbers[0]
                }
                #expect(rows.last?.contains("wf-open") == isWaiting, "\(id)")
                if id == "ticket-failed" {
                    #expect(rows.contains { $0.contains("wf-bar wf-failure") })
                    #expect(rows.contains { $0.contains("wf-bar wf-compensation") })
                }
            }
        }
    }

    @Test("In a real browser: the list links each instance by its ID; dark theme pills and date pickers are dark")
    func browserListAndDarkTheme() async throws {
        try await withSeededViewer { _, base, _ in
            let seen = try await onOwnThread { () throws -> [String: JSONValue] in
                let browser = try Chromium()
                try browser.openPage()
                try browser.navigate(base + "/")
                var seen: [String: JSONValue] = [:]
                seen["links"] = try browser.evaluate("""
                    Array.from(document.querySelectorAll('#instances tbody tr')).map(row => {
                      const links = Array.from(row.querySelectorAll('a'));
                      return { id: row.querySelector('a.instance-link')?.dataset.instanceId ?? null,
                               texts: links.map(a => a.textContent), paths: links.map(a => new URL(a.href).pathname),
                               workflow: row.cells[0].textContent };
                    })
                    """)
                try browser.click("a.instance-link[data-instance-id='ticket-ok']")
                seen["clicked"] = try browser.evaluate("location.pathname")

                // Dark chosen in the header, and Auto on a system that prefers dark.
                try browser.navigate(base + "/?status=failed")
                try browser.click("header .theme a[href*='mode=dark']")
                seen["theme"] = try browser.evaluate("document.documentElement.dataset.theme")
                seen["dark"] = try browser.evaluate(Self.themeProbe)
                try browser.screenshot(to: BrowserTests.screenshots.appendingPathComponent("list-failed-dark.png").path)
                try browser.click("header .theme a[href*='mode=auto']")
                try browser.emulateColorScheme("dark")
                try browser.navigate(base + "/?status=failed")
                seen["auto"] = try browser.evaluate(Self.themeProbe)
                return seen
            }
            let rows = try #require(seen["links"]?.arrayValue)
            #expect(rows.count == 9)
            for row in rows {
                let id = try #require(row["id"]?.stringValue)
                // One link per row: the instance ID, to the instance's page.
                #expect(row["texts"] == [.string(id)], "\(row)")
                #expect(row["paths"] == [.string("/viewer/workflow/\(segment(id))")], "\(row)")
                #expect(row["workflow"]?.stringValue?.isEmpty == false)
            }
            #expect(seen["clicked"] == "/viewer/workflow/ticket-ok")

            #expect(seen["theme"] == "dark")
            for mode in ["dark", "auto"] {
                let probe = try #require(seen[mode], "\(mode)")
                #expect(probe["theme"] == (mode == "dark" ? JSONValue.string("dark") : JSONValue.null), "\(mode)")
                #expect(probe["body"] == "rgb(11, 17, 32)", "\(mode)")
                let background = try #require(probe["pill"]?[0]?.stringValue.flatMap(Self.luminance))
                let text = try #require(probe["pill"]?[1]?.stringValue.flatMap(Self.luminance))
                #expect(background < 0.2, "\(mode): pill \(probe)")
                #expect(text > 0.6, "\(mode): pill \(probe)")
                #expect((text + 0.05) / (background + 0.05) > 4.5, "\(mode): pill contrast \(probe)")
                // The date inputs use the dark scheme, which draws their picker icons light; no
                // filter inverts them back to dark.
                #expect(probe["date"]?[0] == "dark", "\(mode): \(probe)")
                #expect(probe["date"]?[1] == "none", "\(mode): \(probe)")
            }
        }
    }

    /// What the dark theme looks like on the list filtered to failed instances.
    static let themeProbe = """
        (() => {
          const pill = getComputedStyle(document.querySelector('#instances .badge.status-failed'));
          const date = document.querySelector('input[type=date]');
          return { theme: document.documentElement.dataset.theme ?? null,
                   body: getComputedStyle(document.body).backgroundColor,
                   pill: [pill.backgroundColor, pill.color],
                   date: [getComputedStyle(date).colorScheme, getComputedStyle(date, '::-webkit-calendar-picker-indicator').filter] };
        })()
        """

    // MARK: - Helpers

    /// The ID of the Mermaid node declared with `label`.
    static func mermaidID(of label: String, in lines: [String]) -> String? {
        for line in lines {
            for (open, close) in [("([\"", "\"])"), ("{{\"", "\"}}"), ("[\"", "\"]")] where line.hasSuffix(open + label + close) {
                let id = line.dropLast((open + label + close).count)
                if !id.isEmpty && id.allSatisfy({ $0.isLetter || $0.isNumber }) { return String(id) }
            }
        }
        return nil
    }

    /// The content of `<section id="name">`.
    static func section(_ name: String, in html: String) -> String? {
        guard let start = html.range(of: "<section id=\"\(name)\">") else { return nil }
        guard let end = html.range(of: "</section>", range: start.upperBound..<html.endIndex) else { return nil }
        return String(html[start.upperBound..<end.lowerBound])
    }

    /// What follows each `opening` up to its closing tag (blocks contain no element of the same
    /// name).
    static func blocks(of opening: String, in html: String) -> [String] {
        let name = opening.dropFirst().prefix { $0.isLetter }
        return html.components(separatedBy: opening).dropFirst().map { part in
            part.components(separatedBy: "</\(name)>").first ?? ""
        }
    }

    /// The relative luminance (0 black, 1 white) of a CSS `rgb(…)` colour.
    static func luminance(_ css: String) -> Double? {
        let numbers = css.split { !$0.isNumber && $0 != "." }.compactMap { Double($0) }
        guard numbers.count >= 3 else { return nil }
        let linear = numbers.prefix(3).map { value -> Double in
            let channel = value / 255
            return channel <= 0.039_28 ? channel / 12.92 : pow((channel + 0.055) / 1.055, 2.4)
        }
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    }

    static let traceback = """
        Traceback (most recent call last):
          File "/srv/shop/activities.py", line 41, in charge_card
            raise ValueError("card declined")
        ValueError: card declined
        """

    /// A failed instance as the Python implementation writes it, straight into the database:
    /// activities called with positional arguments, and tracebacks in `stack_trace`.
    static func insertPythonRows(_ database: TemporaryDatabase) async throws {
        let error: JSONValue = ["error_message": "card declined", "error_type": "ValueError", "stack_trace": .string(traceback)]
        let history: [(String, String, JSONValue)] = [
            ("reserve:1", "ActivityCompleted", [
                "activity_name": "reserve", "result": "R-1", "input": ["args": ["sku-9", 3], "kwargs": [:]],
            ]),
            ("quote:1", "ActivityCompleted", ["activity_name": "quote", "result": 12.5, "input": ["args": [42], "kwargs": [:]]]),
            ("charge_card:1", "ActivityFailed", [
                "activity_name": "charge_card", "error_type": "ValueError", "error_message": "card declined",
                "stack_trace": .string(traceback), "input": ["args": ["c-7"], "kwargs": ["amount": 30]],
            ]),
            ("workflow_failed", "WorkflowFailed", error),
        ]
        let errorJSON = error.jsonText
        let rows = history.map { ($0.0, $0.1, $0.2.jsonText) }
        let connection = try openDatabase(database.path)
        defer { try? connection.close() }
        try await connection.write { db in
            let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(workflow_instances)").map { $0["name"] as String }
            let copied = columns.filter { !["instance_id", "framework", "status", "output_data", "current_activity_id"].contains($0) }
                .joined(separator: ", ")
            try db.execute(
                sql: """
                    INSERT INTO workflow_instances (instance_id, framework, status, output_data, current_activity_id, \(copied))
                    SELECT 'py-failed', 'python', 'failed', ?, 'charge_card:1', \(copied) FROM workflow_instances
                    WHERE instance_id = 'ticket-failed'
                    """,
                arguments: [errorJSON])
            for (index, row) in rows.enumerated() {
                try db.execute(
                    sql: """
                        INSERT INTO workflow_history (instance_id, activity_id, event_type, data_type, event_data, created_at)
                        VALUES ('py-failed', ?, ?, 'json', ?, ?)
                        """,
                    arguments: [row.0, row.1, row.2, "2026-01-02 03:04:0\(index)"])
            }
        }
    }
}
