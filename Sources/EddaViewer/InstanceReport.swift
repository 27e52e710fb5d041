import Edda
import EddaDiagram
import Foundation

/// Everything the detail page shows about one instance, read in one go.
struct InstanceReport {
    var instance: WorkflowInstance
    var history: [HistoryEvent]
    var compensations: [CompensationRecord]
    /// Older instances this one continues (newest first), following `continued_from`.
    var predecessors: [String]
    /// The instance that continues this one after `recur`, if any.
    var successor: String?

    /// The history grouped by step ID, in the order the steps first appear.
    var steps: [Step] {
        var order: [String] = []
        var rows: [String: [HistoryEvent]] = [:]
        for event in history {
            if rows[event.activityID] == nil { order.append(event.activityID) }
            rows[event.activityID, default: []].append(event)
        }
        return order.enumerated().map { Step(anchor: "step-\($0.offset + 1)", activityID: $0.element, events: rows[$0.element] ?? []) }
    }

    /// One step ID's rows.
    struct Step {
        var anchor: String
        var activityID: String
        var events: [HistoryEvent]

        var last: HistoryEvent? { events.last }
        var name: String { last?.data?["activity_name"]?.stringValue ?? InstanceReport.stepName(of: activityID) }
        var status: FlowStatus { last.map { InstanceReport.status(of: $0) } ?? .running }
    }

    /// The part of a step ID before its last `:` (`reserve_inventory` for `reserve_inventory:1`).
    static func stepName(of activityID: String) -> String {
        guard let colon = activityID.lastIndex(of: ":") else { return activityID }
        return String(activityID[..<colon])
    }

    /// The reference viewer's mapping from history rows to node statuses.
    static func status(of event: HistoryEvent) -> FlowStatus {
        switch event.eventType {
        case "ActivityCompleted", "EventReceived", "ChannelMessageReceived", "TimerExpired": .completed
        case "ActivityFailed", "CompensationFailed", "WorkflowFailed", "MessageTimeout": .failed
        case "CompensationExecuted": .compensated
        case "WorkflowCancelled": .cancelled
        default: .running
        }
    }

    static func kind(ofStep name: String) -> FlowNode.Kind {
        if name == "sleep" || name == "sleep_until" { return .timer }
        if name.hasPrefix("receive_") { return .receive }
        if name == "publish" || name == "send_to" { return .publish }
        return .activity
    }

    /// The overlay that colours the diagram: one record per history row in order, then the
    /// step the instance waits on or executes now.
    var execution: FlowExecution {
        var execution = FlowExecution()
        for event in history {
            switch event.eventType {
            case "CompensationExecuted", "CompensationFailed":
                let name = event.data?["activity_name"]?.stringValue ?? Self.stepName(of: event.activityID)
                execution.recordCompensation(activityID: event.activityID, label: name, status: Self.status(of: event))
            case "WorkflowFailed", "WorkflowCancelled":
                continue
            default:
                let step = Self.stepName(of: event.activityID)
                let label = event.data?["activity_name"]?.stringValue ?? step
                execution.record(
                    stepName: step, activityID: event.activityID, label: label, kind: Self.kind(ofStep: step),
                    status: Self.status(of: event))
            }
        }
        if let current = instance.currentActivityID, !history.contains(where: { $0.activityID == current }) {
            let status: FlowStatus? =
                switch instance.status {
                case .waitingForTimer: .waitingTimer
                case .waitingForMessage, .waitingForEvent: .waitingEvent
                case .running: .running
                case .cancelled: .cancelled
                case .compensating: .compensating
                default: nil
                }
            if let status {
                let step = Self.stepName(of: current)
                execution.record(stepName: step, activityID: current, label: step, kind: Self.kind(ofStep: step), status: status)
            }
        }
        switch instance.status {
        case .completed: execution.outcome = .completed
        case .failed: execution.outcome = .failed
        case .cancelled: execution.outcome = .cancelled
        default: break
        }
        return execution
    }
}
