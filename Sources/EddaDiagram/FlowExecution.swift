/// The execution status a diagram shows for a node, with the reference viewer's palette.
public enum FlowStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// The step finished.
    case completed
    /// The step failed (its last attempt).
    case failed
    /// The step started, or the instance is executing it.
    case running
    /// The instance waits for an event or a message at this step.
    case waitingEvent = "waiting_event"
    /// The instance waits for a timer at this step.
    case waitingTimer = "waiting_timer"
    /// The instance was cancelled at this step.
    case cancelled
    /// The step's compensation is running.
    case compensating
    /// The step's compensation ran.
    case compensated
    /// The step was not executed.
    case notExecuted = "not_executed"

    /// A short human label.
    public var label: String {
        switch self {
        case .completed: "Completed"
        case .failed: "Failed"
        case .running: "Running"
        case .waitingEvent: "Waiting (event)"
        case .waitingTimer: "Waiting (timer)"
        case .cancelled: "Cancelled"
        case .compensating: "Compensating"
        case .compensated: "Compensated"
        case .notExecuted: "Not executed"
        }
    }

    /// The icon the reference puts in front of a Mermaid label.
    var icon: String? {
        switch self {
        case .completed: "✅"
        case .failed: "❌"
        case .compensated: "🔄"
        case .notExecuted: nil
        default: "⏳"
        }
    }

    /// Fill and stroke colours: light theme, then dark theme.
    var colours: (light: (fill: String, stroke: String), dark: (fill: String, stroke: String)) {
        switch self {
        case .completed: (("#ECFDF5", "#10B981"), ("#064E3B", "#34D399"))
        case .failed: (("#FEE2E2", "#EF4444"), ("#7F1D1D", "#F87171"))
        case .running: (("#FEF3C7", "#F59E0B"), ("#78350F", "#FBBF24"))
        case .waitingEvent: (("#DBEAFE", "#3B82F6"), ("#1E3A8A", "#60A5FA"))
        case .waitingTimer: (("#E0F2FE", "#0EA5E9"), ("#0C4A6E", "#38BDF8"))
        case .cancelled: (("#FFEDD5", "#F97316"), ("#7C2D12", "#FB923C"))
        case .compensating, .compensated: (("#F3E8FF", "#A855F7"), ("#581C87", "#C084FC"))
        case .notExecuted: (("#F1F5F9", "#CBD5E1"), ("#1E293B", "#475569"))
        }
    }
}

/// What one instance did, per durable step name: the overlay that colours a ``WorkflowFlow``.
///
/// Build it from the instance's history with ``record(stepName:activityID:label:kind:status:)``
/// and ``recordCompensation(activityID:label:status:)`` in history order; later rows for the
/// same step name replace the status, as the reference viewer does. Set ``outcome`` once the
/// instance has ended.
public struct FlowExecution: Sendable, Hashable {
    /// What happened to one step name.
    public struct StepRecord: Sendable, Hashable {
        /// The latest status.
        public var status: FlowStatus
        /// How many distinct step IDs ran under this name (loops, retries of the workflow).
        public var count: Int { activityIDs.count }
        /// The step IDs, in the order they first appeared.
        public var activityIDs: [String]
        /// The label to show when the flow comes from history only.
        public var label: String
        /// The node kind to show when the flow comes from history only.
        public var kind: FlowNode.Kind
    }

    /// A compensation that ran.
    public struct CompensationRun: Sendable, Hashable {
        /// Its step ID.
        public var activityID: String
        /// Its label, e.g. the compensation's name.
        public var label: String
        /// ``FlowStatus/compensated`` or ``FlowStatus/failed``.
        public var status: FlowStatus
    }

    /// The steps by step name.
    public private(set) var steps: [String: StepRecord] = [:]
    /// The step names in the order they first ran.
    public private(set) var order: [String] = []
    /// The compensations that ran, in order.
    public private(set) var compensations: [CompensationRun] = []
    /// How the instance ended, when it has: ``FlowStatus/completed``, ``FlowStatus/failed`` or
    /// ``FlowStatus/cancelled``. A completed run's path ends at the flow's "Complete" node; a
    /// failed or cancelled run's path leaves the flow at the step it stopped at, runs through
    /// its compensations and ends at a node with that status, never at "Complete".
    public var outcome: FlowStatus?

    /// Whether the instance completed: ``outcome`` is ``FlowStatus/completed``.
    public var finished: Bool {
        get { outcome == .completed }
        set {
            if newValue {
                outcome = .completed
            } else if outcome == .completed {
                outcome = nil
            }
        }
    }

    /// The step name of the latest ``record(stepName:activityID:label:kind:status:)``: where a run
    /// that stopped early stopped.
    private(set) var lastStepName: String?

    /// An empty execution: every node is ``FlowStatus/notExecuted``.
    public init() {}

    /// Records a history row for `stepName`.
    public mutating func record(stepName: String, activityID: String, label: String, kind: FlowNode.Kind, status: FlowStatus) {
        if var existing = steps[stepName] {
            existing.status = status
            if !existing.activityIDs.contains(activityID) { existing.activityIDs.append(activityID) }
            steps[stepName] = existing
        } else {
            steps[stepName] = StepRecord(status: status, activityIDs: [activityID], label: label, kind: kind)
            order.append(stepName)
        }
        lastStepName = stepName
    }

    /// Records a compensation that ran (or failed).
    public mutating func recordCompensation(activityID: String, label: String, status: FlowStatus) {
        compensations.append(CompensationRun(activityID: activityID, label: label, status: status))
    }

    /// The status of `node`: its step name's latest status, or not executed.
    public func status(of node: FlowNode) -> FlowStatus {
        node.stepName.flatMap { steps[$0]?.status } ?? .notExecuted
    }

    /// The record of `node`'s step name, if it ran.
    public func record(of node: FlowNode) -> StepRecord? {
        node.stepName.flatMap { steps[$0] }
    }

    /// A flow with one node per step name, in the order they ran: the diagram for an instance
    /// whose source is not available.
    public func historyFlow(workflowName: String) -> WorkflowFlow {
        WorkflowFlow(
            workflowName: workflowName,
            steps: order.compactMap { name in
                steps[name].map { .node(FlowNode(kind: $0.kind, label: $0.label, stepName: name)) }
            })
    }
}
