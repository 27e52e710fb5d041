import Edda
import Foundation

/// An instance's life as a waterfall, drawn from its recorded history alone (no tracing
/// collector needed): one bar per history row, from the moment the row before it was recorded
/// (or the instance started) to its own — the time the step took, with its retries, or the
/// time the instance waited — and, while the instance waits or runs, an open bar up to now.
struct Waterfall: Equatable {
    enum Kind: String, Equatable {
        case activity, failure, timer, message, compensation, running
    }

    struct Bar: Equatable {
        /// The step ID.
        var activityID: String
        /// What the bar shows (the activity's name, or what was waited for).
        var label: String
        var kind: Kind
        /// Seconds from the instance's start.
        var start: TimeInterval
        var duration: TimeInterval
        /// Attempts of an activity that was retried.
        var attempts: Int?
        /// Still going on (the instance waits or runs now).
        var isOpen = false
    }

    var bars: [Bar] = []
    /// Seconds from the start to the end of the last bar.
    var total: TimeInterval = 0

    init(_ report: InstanceReport, now: Date) {
        let origin = report.instance.startedAt
        var previous = origin
        for event in report.history {
            guard let kind = Self.kind(of: event.eventType) else { continue }
            let name = event.data?["activity_name"]?.stringValue ?? InstanceReport.stepName(of: event.activityID)
            let label =
                switch kind {
                case .timer: "sleep"
                case .message: event.data?["channel"]?.stringValue.map { "receive \($0)" } ?? name
                default: name
                }
            let attempts = event.data?["retry_metadata"]?["total_attempts"]?.numberValue.map { Int($0) }
            let begin = max(previous, origin)
            bars.append(Bar(
                activityID: event.activityID, label: label, kind: kind, start: begin.timeIntervalSince(origin),
                duration: max(0, event.createdAt.timeIntervalSince(begin)), attempts: attempts.flatMap { $0 > 1 ? $0 : nil }))
            previous = max(previous, event.createdAt)
        }
        let instance = report.instance
        if !instance.status.isTerminal, now > previous {
            let kind: Kind =
                switch instance.status {
                case .waitingForTimer: .timer
                case .waitingForMessage, .waitingForEvent: .message
                case .compensating: .compensation
                default: .running
                }
            let step = instance.currentActivityID ?? ""
            bars.append(Bar(
                activityID: step, label: kind == .timer || kind == .message ? "waiting" : InstanceReport.stepName(of: step), kind: kind,
                start: previous.timeIntervalSince(origin), duration: now.timeIntervalSince(previous), isOpen: true))
        }
        total = bars.map { $0.start + $0.duration }.max() ?? 0
    }

    /// The bar kind of a history row; `nil` for rows that are no step (the workflow's end).
    static func kind(of eventType: String) -> Kind? {
        switch eventType {
        case "ActivityCompleted": .activity
        case "ActivityFailed": .failure
        case "TimerExpired": .timer
        case "ChannelMessageReceived", "EventReceived", "MessageTimeout": .message
        case "CompensationExecuted", "CompensationFailed": .compensation
        default: nil
        }
    }

    /// The waterfall as HTML: a row per bar, its left edge and width in percent of the total.
    var html: String {
        guard !bars.isEmpty else { return "<p class=\"muted\">No steps yet.</p>" }
        let scale = total > 0 ? 100 / total : 0
        var out = "<div class=\"waterfall\" role=\"table\" aria-label=\"Timeline\">"
        for bar in bars {
            let left = min(100, bar.start * scale)
            let width = min(100 - left, max(0.4, bar.duration * scale))
            var title = "\(bar.label): \(Self.format(bar.duration))\(bar.isOpen ? " so far" : ""), from +\(Self.format(bar.start))"
            if let attempts = bar.attempts { title += ", \(attempts) attempts" }
            let attempts = bar.attempts.map { " <span class=\"muted\">×\($0)</span>" } ?? ""
            out += """
                <div class="wf-row" role="row"><span class="wf-label" role="cell">\(HTML.text(bar.label))\(attempts) \
                <code class="muted">\(HTML.text(bar.activityID))</code></span><span class="wf-track" role="cell">\
                <span class="wf-bar wf-\(bar.kind.rawValue)\(bar.isOpen ? " wf-open" : "")" \
                style="left:\(String(format: "%.2f", left))%;width:\(String(format: "%.2f", width))%" title="\(HTML.text(title))"></span>\
                </span><span class="wf-time" role="cell">\(Self.format(bar.duration))</span></div>

                """
        }
        return out + "</div>"
    }

    /// A duration for people: `340 ms`, `2.5 s`, `4 min 5 s`, `3 h 20 min`, `2 d 4 h`.
    static func format(_ seconds: TimeInterval) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded())) ms" }
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let whole = Int(seconds.rounded())
        if whole < 3600 { return "\(whole / 60) min \(whole % 60) s" }
        if whole < 86_400 { return "\(whole / 3600) h \(whole % 3600 / 60) min" }
        return "\(whole / 86_400) d \(whole % 86_400 / 3600) h"
    }
}
