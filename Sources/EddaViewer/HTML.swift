import EddaDiagram
import Foundation

/// Small helpers for building the viewer's HTML as text. Every value from the database or the
/// request goes through ``HTML/text(_:)`` (element content and attribute values alike).
enum HTML {
    static func text(_ value: String) -> String { Markup.escape(value) }

    /// A path segment with everything but unreserved characters percent-encoded (so an
    /// instance ID can never add a segment, a query or a fragment).
    static func segment(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    /// A query string from name/value pairs, skipping empty values.
    static func query(_ pairs: [(String, String)]) -> String {
        let parts = pairs.filter { !$0.1.isEmpty }.map { "\(segment($0.0))=\(segment($0.1))" }
        return parts.isEmpty ? "" : "?" + parts.joined(separator: "&")
    }

    private static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// JSON text re-indented for reading, without reparsing its numbers (so large integers and
    /// exact decimals show as stored).
    static func prettyJSON(_ json: String) -> String {
        var out = ""
        var indent = 0
        var inString = false
        var escaped = false
        let characters = Array(json)
        var index = 0
        func newline() { out += "\n" + String(repeating: "  ", count: indent) }
        while index < characters.count {
            let character = characters[index]
            index += 1
            if inString {
                out.append(character)
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { inString = false }
                continue
            }
            switch character {
            case "\"":
                inString = true
                out.append(character)
            case "{", "[":
                // Keep empty containers on one line.
                var next = index
                while next < characters.count, characters[next].isWhitespace { next += 1 }
                if next < characters.count, characters[next] == (character == "{" ? "}" : "]") {
                    out += character == "{" ? "{}" : "[]"
                    index = next + 1
                } else {
                    out.append(character)
                    indent += 1
                    newline()
                }
            case "}", "]":
                indent = max(0, indent - 1)
                newline()
                out.append(character)
            case ",":
                out.append(character)
                newline()
            case ":":
                out += ": "
            case " ", "\n", "\t", "\r":
                continue
            default:
                out.append(character)
            }
        }
        return out
    }

    static func json(_ json: String?) -> String {
        guard let json, !json.isEmpty else { return "<p class=\"muted\">None</p>" }
        return "<pre class=\"json\">\(text(prettyJSON(json)))</pre>"
    }

    static func date(_ date: Date?) -> String {
        guard let date else { return "—" }
        return text(displayFormatter.string(from: date))
    }

    private static let displayFormatter: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
        return formatter
    }()

    /// The status badge, for every status (others shown as stored).
    static func badge(_ status: String) -> String {
        // Plain words: emoji depend on the viewer's fonts (a server or CI browser may have none).
        let label: String
        switch status {
        case "completed": label = "Completed"
        case "running": label = "Running"
        case "failed": label = "Failed"
        case "waiting_for_event": label = "Waiting (Event)"
        case "waiting_for_timer": label = "Waiting (Timer)"
        case "waiting_for_message": label = "Waiting (Message)"
        case "cancelled": label = "Cancelled"
        case "compensating": label = "Compensating"
        case "recurred": label = "Recurred"
        default: label = status
        }
        return "<span class=\"badge status-\(text(status))\" data-status=\"\(text(status))\">\(text(label))</span>"
    }

    /// A whole page: the shared head, stylesheet, header and theme switch around `body`.
    static func page(title: String, body: String, context: PageContext) -> String {
        let theme = context.theme.map { " data-theme=\"\($0)\"" } ?? ""
        let base = context.basePath
        let here = segment(context.currentPath)
        func themeLink(_ mode: String, _ label: String) -> String {
            let current = (context.theme ?? "auto") == mode
            return "<a href=\"\(base)/theme?mode=\(mode)&amp;back=\(here)\"\(current ? " aria-current=\"true\"" : "")>\(label)</a>"
        }
        var nav = "<a href=\"\(base)/\">Instances</a>"
        if context.canStart { nav += " <a href=\"\(base)/start\">Start New Workflow</a>" }
        if context.needsLogin { nav += " <a href=\"\(base)/login\">Sign in</a>" }
        return """
            <!DOCTYPE html>
            <html lang="en"\(theme)>
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="color-scheme" content="light dark">
            <title>\(text(title)) · \(text(context.title))</title>
            <style>\(stylesheet)</style>
            </head>
            <body>
            <header class="top">
            <a class="brand" href="\(base)/">\(text(context.title))</a>
            <nav>\(nav)</nav>
            <span class="theme">Theme: \(themeLink("light", "Light")) \(themeLink("dark", "Dark")) \(themeLink("auto", "Auto"))</span>
            </header>
            <main>
            \(body)
            </main>
            <script nonce="\(context.nonce)">\(confirmScript)</script>
            </body>
            </html>
            """
    }

    /// Asks before submitting forms marked `data-confirm`; without JavaScript they submit directly.
    static let confirmScript = """
        document.querySelectorAll("form[data-confirm]").forEach(function (form) {
          form.addEventListener("submit", function (event) {
            if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
          });
        });
        """

    /// The dark theme's colours, for a system that prefers dark (unless Light is chosen) and for
    /// Dark. `color-scheme: dark` gives form controls (the date pickers' icons among them) their
    /// dark look; status pills and notices get dark fills with light text.
    private static let darkColours = """
        color-scheme: dark; --bg: #0b1120; --panel: #111827; --ink: #e2e8f0; --muted: #94a3b8; --line: #1f2937;
          --accent: #60a5fa; --danger: #f87171; --code: #0f172a;
          --completed-bg: #064e3b; --completed-ink: #a7f3d0; --failed-bg: #7f1d1d; --failed-ink: #fecaca;
          --running-bg: #78350f; --running-ink: #fde68a; --cancelled-bg: #7c2d12; --cancelled-ink: #fed7aa;
          --waiting-bg: #1e3a8a; --waiting-ink: #bfdbfe; --timer-bg: #0c4a6e; --timer-ink: #bae6fd;
          --compensating-bg: #581c87; --compensating-ink: #e9d5ff;
        """

    /// Every page's styles. Browsers that know `color-scheme` draw the date pickers' icons light
    /// on the dark theme; older ones draw them dark whatever the scheme, so only there the icons
    /// are inverted (inverting everywhere would make them dark again).
    static let stylesheet = """
        :root { color-scheme: light; --bg: #f8fafc; --panel: #ffffff; --ink: #0f172a; --muted: #64748b; --line: #e2e8f0;
          --accent: #2563eb; --danger: #dc2626; --code: #f1f5f9;
          --completed-bg: #ecfdf5; --completed-ink: #065f46; --failed-bg: #fee2e2; --failed-ink: #991b1b;
          --running-bg: #fef3c7; --running-ink: #92400e; --cancelled-bg: #ffedd5; --cancelled-ink: #9a3412;
          --waiting-bg: #dbeafe; --waiting-ink: #1e40af; --timer-bg: #e0f2fe; --timer-ink: #075985;
          --compensating-bg: #f3e8ff; --compensating-ink: #6b21a8; }
        @media (prefers-color-scheme: dark) { :root:not([data-theme="light"]) { \(darkColours) } }
        :root[data-theme="dark"] { \(darkColours) }
        * { box-sizing: border-box; }
        body { margin: 0; background: var(--bg); color: var(--ink); font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
        a { color: var(--accent); }
        header.top { display: flex; gap: 1.5rem; align-items: center; padding: .75rem 1.5rem; background: var(--panel);
          border-bottom: 1px solid var(--line); flex-wrap: wrap; }
        header.top .brand { font-weight: 700; text-decoration: none; color: var(--ink); }
        header.top nav { display: flex; gap: 1rem; flex: 1; }
        header.top .theme { color: var(--muted); font-size: 12px; }
        header.top .theme a[aria-current] { font-weight: 700; text-decoration: none; color: var(--ink); }
        main { padding: 1.5rem; max-width: 1200px; margin: 0 auto; }
        h1 { font-size: 1.4rem; margin: 0 0 1rem; } h2 { font-size: 1.1rem; margin: 0 0 .75rem; }
        section, .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 1rem;
          margin-bottom: 1rem; overflow-x: auto; }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
        .muted { color: var(--muted); }
        code, pre { font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
        pre.json, pre.stack { background: var(--code); padding: .6rem; border-radius: 6px; overflow-x: auto; margin: .25rem 0;
          white-space: pre-wrap; word-break: break-word; }
        td.date { white-space: nowrap; }
        .badge::before { content: "●"; margin-right: .3rem; }
        .badge { display: inline-block; padding: .1rem .5rem; border-radius: 999px; font-size: 12px; border: 1px solid var(--line);
          white-space: nowrap; }
        .status-completed { background: var(--completed-bg); color: var(--completed-ink); }
        .status-failed { background: var(--failed-bg); color: var(--failed-ink); }
        .status-running { background: var(--running-bg); color: var(--running-ink); }
        .status-cancelled { background: var(--cancelled-bg); color: var(--cancelled-ink); }
        .status-waiting_for_event, .status-waiting_for_message { background: var(--waiting-bg); color: var(--waiting-ink); }
        .status-waiting_for_timer { background: var(--timer-bg); color: var(--timer-ink); }
        .status-compensating, .status-recurred { background: var(--compensating-bg); color: var(--compensating-ink); }
        form.filters { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: .75rem; align-items: end; }
        label { display: flex; flex-direction: column; gap: .25rem; font-size: 12px; color: var(--muted); }
        label.check { flex-direction: row; align-items: center; gap: .5rem; color: var(--ink); font-size: 14px; }
        input, select, textarea, button { font: inherit; color: var(--ink); background: var(--panel); border: 1px solid var(--line);
          border-radius: 6px; padding: .4rem .5rem; }
        @supports not (color-scheme: dark) {
          @media (prefers-color-scheme: dark) { :root:not([data-theme="light"]) ::-webkit-calendar-picker-indicator { filter: invert(1); } }
          :root[data-theme="dark"] ::-webkit-calendar-picker-indicator { filter: invert(1); }
        }
        textarea { min-height: 6rem; font-family: ui-monospace, monospace; font-size: 12px; }
        button, .button { cursor: pointer; background: var(--accent); color: #fff; border: none; padding: .45rem .9rem;
          border-radius: 6px; text-decoration: none; display: inline-block; }
        button.danger { background: var(--danger); }
        .pager { display: flex; gap: 1rem; justify-content: space-between; margin-top: 1rem; }
        .notice { padding: .6rem .9rem; border-radius: 6px; margin-bottom: 1rem; background: var(--completed-bg);
          color: var(--completed-ink); }
        .error { padding: .6rem .9rem; border-radius: 6px; margin-bottom: 1rem; background: var(--failed-bg); color: var(--failed-ink); }
        .grid2 { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1rem; }
        @media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
        dl.info { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0; }
        dl.info dt { color: var(--muted); } dl.info dd { margin: 0; word-break: break-all; }
        .title-row { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; margin-bottom: 1rem; }
        .title-row h1 { margin: 0; }
        .diagram { overflow-x: auto; text-align: center; }
        details > summary { cursor: pointer; color: var(--accent); }
        ol.timeline { list-style: none; padding: 0; margin: 0; border-left: 2px solid var(--line); }
        ol.timeline li { position: relative; padding: 0 0 .9rem 1rem; }
        ol.timeline li::before { content: ""; position: absolute; left: -6px; top: .45rem; width: 10px; height: 10px;
          border-radius: 50%; background: var(--accent); }
        ol.timeline li.failed::before { background: var(--danger); }
        .waterfall { display: grid; gap: .2rem; }
        .wf-row { display: grid; grid-template-columns: minmax(10rem, 30%) 1fr 6rem; gap: .75rem; align-items: center; }
        .wf-label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-size: 13px; }
        .wf-track { position: relative; height: 14px; background: var(--code); border-radius: 3px; }
        .wf-bar { position: absolute; top: 2px; bottom: 2px; border-radius: 2px; background: var(--accent); }
        .wf-failure { background: var(--danger); }
        .wf-timer { background: var(--timer-ink); opacity: .55; }
        .wf-message { background: var(--waiting-ink); opacity: .55; }
        .wf-compensation { background: var(--compensating-ink); }
        .wf-running { background: var(--running-ink); }
        .wf-open { background-image: repeating-linear-gradient(45deg, transparent 0 4px, rgba(255, 255, 255, .45) 4px 8px); }
        .wf-time { text-align: right; font-size: 12px; color: var(--muted); white-space: nowrap; }
        .step { border-top: 1px solid var(--line); padding-top: .75rem; margin-top: .75rem; }
        .step:target { outline: 2px solid var(--accent); outline-offset: 4px; border-radius: 4px; }
        fieldset { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 .75rem; display: grid; gap: .6rem; }
        form.start { display: grid; gap: .75rem; max-width: 640px; }
        """
}

/// What every page needs to know about the request and the viewer.
struct PageContext {
    var title: String
    var basePath: String
    var currentPath: String
    var theme: String?
    var canStart: Bool
    var needsLogin: Bool
    var nonce: String
}
