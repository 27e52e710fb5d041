/// A flow flattened into vertices and edges, each with its position: what both renderers draw.
///
/// The layout is structured rather than general: a sequence stacks its blocks on one vertical
/// axis, a branch puts its arms side by side between a decision and a merge point, and a loop
/// draws its back edge on its right. Workflow bodies are structured programs, so this gives
/// straight, readable diagrams without a general graph-layout algorithm.
struct FlowGraph {
    enum Shape {
        case stadium, box, decision, hexagon, dot
    }

    struct Vertex {
        var id: String
        var shape: Shape
        var label: String
        /// `nil` for structural vertices (start, end, decisions, merges).
        var node: FlowNode?
        var status: FlowStatus?
        var executed: Bool
        var x: Double
        var y: Double
        var width: Double
        var height: Double
        /// The step IDs it stands for, when it ran (for links to the step's details).
        var activityIDs: [String] = []

        var midX: Double { x + width / 2 }
        var bottom: Double { y + height }
    }

    struct Edge {
        var from: String
        var to: String
        var label: String?
        var dashed: Bool
        var executed: Bool
        var points: [(x: Double, y: Double)]
        /// Where the label goes and how it is anchored (`start`, `middle`, `end`).
        var labelPosition: (x: Double, y: Double, anchor: String)? = nil
    }

    private(set) var vertices: [Vertex] = []
    private(set) var edges: [Edge] = []
    private(set) var width: Double = 0
    private(set) var height: Double = 0
    private let execution: FlowExecution?
    private var positions: [String: Int] = [:]

    // Geometry, in SVG user units.
    static let margin = 20.0
    static let nodeHeight = 36.0
    static let verticalGap = 30.0
    static let armGap = 28.0
    static let armLabelSpace = 18.0
    static let loopSide = 34.0
    /// How far right of the flow the lane of a rollback that leaves a step in mid-flow runs, and
    /// the room for its label beside it.
    static let laneGap = 24.0
    static let laneLabelSpace = 64.0
    static let dotSize = 8.0
    static let characterWidth = 7.4
    static let maximumLabel = 60

    init(flow: WorkflowFlow, execution: FlowExecution?) {
        self.execution = execution
        let body = Self.size(of: flow.steps)
        let compensations = execution?.compensations ?? []
        let outcome = execution?.outcome
        // A run that failed, was cancelled or is rolling back left the flow at the step it
        // stopped at: its path goes from there through the compensations, never to "Complete".
        let endsEarly = outcome == .failed || outcome == .cancelled
        let stoppedEarly = execution != nil && outcome != .completed && (endsEarly || !compensations.isEmpty)
        var contentWidth = max(body.width, Self.boxWidth(flow.workflowName), Self.boxWidth("Complete"))
        for run in compensations { contentWidth = max(contentWidth, Self.boxWidth(Self.compensationLabel(run))) }
        let centre = Self.margin + contentWidth / 2
        var y = Self.margin

        let anyExecuted = execution.map { !$0.steps.isEmpty || $0.outcome != nil } ?? false
        let startID = addVertex(.stadium, label: flow.workflowName, centre: centre, y: y, executed: anyExecuted)
        y += Self.nodeHeight + Self.verticalGap
        var previous = startID
        if let ports = place(flow.steps, centre: centre, top: y, reachedAfter: outcome == .completed) {
            connect(previous, ports.entry)
            previous = ports.exit
            y += body.height + Self.verticalGap
        }

        // The chain a run that stopped early ends with, top to bottom.
        var chain: [ChainNode] = []
        if !compensations.isEmpty { chain.append(ChainNode(shape: .hexagon, label: "Compensation")) }
        for run in compensations {
            chain.append(ChainNode(
                shape: .box, label: Self.compensationLabel(run), status: run.status,
                node: FlowNode(kind: .compensation, label: run.label, stepName: nil), activityIDs: [run.activityID]))
        }
        if endsEarly, let outcome { chain.append(ChainNode(shape: .stadium, label: outcome.label, status: outcome)) }

        var lane: Double?
        if stoppedEarly {
            let stop = stopVertex() ?? startID
            if stop != previous {
                // The steps after the stop did not run: the flow's end stays, not reached, and
                // the rollback leaves the stop on a lane to the right of the flow.
                let endID = addVertex(.stadium, label: "Complete", centre: centre, y: y, executed: false)
                connect(previous, endID)
                y += Self.nodeHeight + Self.verticalGap
                lane = Self.margin + contentWidth + Self.laneGap
            }
            var last = stop
            for (index, item) in chain.enumerated() {
                let id = addVertex(item, centre: centre, y: y)
                if index == 0 {
                    rollback(from: stop, to: id, lane: lane, label: compensations.isEmpty ? nil : "rollback")
                } else {
                    connect(last, id)
                }
                last = id
                y += Self.nodeHeight + Self.verticalGap
            }
            y -= Self.verticalGap
        } else {
            let endID = addVertex(.stadium, label: "Complete", centre: centre, y: y, executed: outcome == .completed)
            connect(previous, endID)
            y += Self.nodeHeight
            // Compensations of a run that completed anyway (not written by Edda): below its end.
            var last = endID
            for (index, item) in chain.enumerated() {
                y += Self.verticalGap
                let id = addVertex(item, centre: centre, y: y)
                if index == 0 {
                    rollback(from: endID, to: id, lane: nil, label: "rollback")
                } else {
                    connect(last, id)
                }
                last = id
                y += Self.nodeHeight
            }
        }
        width = contentWidth + 2 * Self.margin + (lane == nil ? 0 : Self.laneGap + Self.laneLabelSpace)
        height = y + Self.margin
        // In reading order: by source, then target.
        let order = positions
        edges.sort { (order[$0.from] ?? 0, order[$0.to] ?? 0) < (order[$1.from] ?? 0, order[$1.to] ?? 0) }
    }

    /// A node of the chain below the flow: the rollback and the end of a run that stopped early.
    private struct ChainNode {
        var shape: Shape
        var label: String
        var status: FlowStatus? = nil
        var node: FlowNode? = nil
        var activityIDs: [String] = []
    }

    /// The vertex a run that stopped early stopped at: the last one of the step it recorded last,
    /// or the last executed step if the flow does not have that one.
    private func stopVertex() -> String? {
        guard let execution else { return nil }
        let executed = vertices.filter { $0.node != nil && $0.executed }
        if let name = execution.lastStepName, let match = executed.last(where: { $0.node?.stepName == name }) {
            return match.id
        }
        return executed.last?.id
    }

    /// The dashed, executed edge from where a run stopped to the first node of its rollback:
    /// straight down when `from` is on the axis right above `to`, otherwise out of `from`'s right
    /// side, down a lane at `lane`, and into `to`'s right side.
    private mutating func rollback(from: String, to: String, lane: Double?, label: String?) {
        guard let source = positions[from].map({ vertices[$0] }), let target = positions[to].map({ vertices[$0] }) else { return }
        if let lane {
            let sourceMiddle = source.y + source.height / 2
            let targetMiddle = target.y + target.height / 2
            edges.append(Edge(
                from: from, to: to, label: label, dashed: true, executed: true,
                points: [
                    (source.x + source.width, sourceMiddle), (lane, sourceMiddle), (lane, targetMiddle),
                    (target.x + target.width, targetMiddle),
                ],
                labelPosition: label == nil ? nil : (lane + 6, (sourceMiddle + targetMiddle) / 2 + 4, "start")))
        } else {
            edges.append(Edge(
                from: from, to: to, label: label, dashed: true, executed: true,
                points: [(source.midX, source.bottom), (target.midX, target.y)],
                labelPosition: label == nil ? nil : (target.midX + 6, (source.bottom + target.y) / 2 + 4, "start")))
        }
    }

    static func compensationLabel(_ run: FlowExecution.CompensationRun) -> String {
        "Compensate: \(run.label)"
    }

    // MARK: Measuring

    struct Size {
        var width: Double
        var height: Double
    }

    static func truncated(_ label: String) -> String {
        label.count > maximumLabel ? String(label.prefix(maximumLabel - 3)) + "..." : label
    }

    static func textWidth(_ text: String) -> Double {
        let units = truncated(text).unicodeScalars.reduce(0.0) { $0 + ($1.value > 0x2E80 ? 2 : 1) }
        return units * characterWidth
    }

    static func boxWidth(_ label: String) -> Double { max(96, textWidth(label) + 28) }
    static func decisionWidth(_ label: String) -> Double { max(110, textWidth(label) + 56) }

    static func size(of steps: [FlowStep]) -> Size {
        var size = Size(width: 0, height: 0)
        for (index, step) in steps.enumerated() {
            let part = self.size(of: step)
            size.width = max(size.width, part.width)
            size.height += part.height + (index > 0 ? verticalGap : 0)
        }
        return size
    }

    static func size(of step: FlowStep) -> Size {
        switch step {
        case .node(let node):
            return Size(width: boxWidth(node.label), height: nodeHeight)
        case .branch(let branch):
            let arms = branch.arms.map { armWidth($0) }
            let row = arms.reduce(0, +) + armGap * Double(max(0, arms.count - 1))
            let tallest = branch.arms.map { size(of: $0.steps).height }.max() ?? 0
            return Size(
                width: max(decisionWidth(branch.label), row),
                height: nodeHeight + verticalGap + armLabelSpace + tallest + verticalGap + dotSize)
        case .loop(let loop):
            let body = size(of: loop.body)
            return Size(
                width: max(decisionWidth(loop.label), body.width) + 2 * loopSide,
                height: nodeHeight + verticalGap + body.height + verticalGap + dotSize)
        }
    }

    static func armWidth(_ arm: FlowArm) -> Double {
        max(size(of: arm.steps).width, textWidth(arm.label) + 12, 40)
    }

    // MARK: Placing

    struct Ports {
        var entry: String
        var exit: String
    }

    /// Places a sequence centred on `centre` from `top` down; `nil` for an empty sequence.
    /// `reachedAfter` tells whether execution got past the sequence's end, so that decisions
    /// whose taken arm has no steps still show as passed through.
    private mutating func place(_ steps: [FlowStep], centre: Double, top: Double, reachedAfter: Bool) -> Ports? {
        var y = top
        var result: Ports?
        for (index, step) in steps.enumerated() {
            let after = reachedAfter || contains(executedNodeIn: Array(steps[(index + 1)...]))
            let ports = place(step, centre: centre, top: y, reachedAfter: after)
            if let previous = result {
                connect(previous.exit, ports.entry)
                result = Ports(entry: previous.entry, exit: ports.exit)
            } else {
                result = ports
            }
            y += Self.size(of: step).height + Self.verticalGap
        }
        return result
    }

    private mutating func place(_ step: FlowStep, centre: Double, top: Double, reachedAfter: Bool) -> Ports {
        switch step {
        case .node(let node):
            let status = execution?.status(of: node)
            let record = execution?.record(of: node)
            var label = node.label
            if let count = record?.count, count > 1 { label += " (\(count)x)" }
            let id = addVertex(
                .box, label: label, centre: centre, y: top, executed: record != nil, status: status ?? .notExecuted,
                node: node, activityIDs: record?.activityIDs ?? [])
            return Ports(entry: id, exit: id)

        case .branch(let branch):
            let executed = reachedAfter || contains(executedNodeIn: [step])
            // An arm without steps was taken when the branch was passed and no other arm ran.
            let emptyArmTaken = executed && !branch.arms.contains { contains(executedNodeIn: $0.steps) }
            let decision = addVertex(
                branch.kind == .condition ? .decision : .hexagon, label: branch.label, centre: centre, y: top,
                executed: executed)
            let widths = branch.arms.map(Self.armWidth)
            let row = widths.reduce(0, +) + Self.armGap * Double(max(0, widths.count - 1))
            let tallest = branch.arms.map { Self.size(of: $0.steps).height }.max() ?? 0
            let split = top + Self.nodeHeight + Self.verticalGap / 2
            let armTop = top + Self.nodeHeight + Self.verticalGap + Self.armLabelSpace
            let join = armTop + tallest + Self.verticalGap / 2
            let mergeTop = armTop + tallest + Self.verticalGap
            let merge = addVertex(.dot, label: "", centre: centre, y: mergeTop, executed: executed)
            var left = centre - row / 2
            for (arm, width) in zip(branch.arms, widths) {
                let armCentre = left + width / 2
                left += width + Self.armGap
                let armExecuted = contains(executedNodeIn: arm.steps)
                // Centred on the arm, whose width makes room for it.
                let labelPosition = (armCentre, split + 14, "middle")
                if let ports = place(arm.steps, centre: armCentre, top: armTop, reachedAfter: armExecuted && reachedAfter) {
                    edges.append(Edge(
                        from: decision, to: ports.entry, label: arm.label, dashed: arm.isErrorPath,
                        executed: armExecuted,
                        points: [(centre, top + Self.nodeHeight), (centre, split), (armCentre, split), (armCentre, armTop)],
                        labelPosition: labelPosition))
                    let armBottom = armTop + Self.size(of: arm.steps).height
                    let exitExecuted = positions[ports.exit].map { vertices[$0].executed } ?? false
                    edges.append(Edge(
                        from: ports.exit, to: merge, label: nil, dashed: arm.isErrorPath, executed: exitExecuted && executed,
                        points: [(armCentre, armBottom), (armCentre, join), (centre, join), (centre, mergeTop)]))
                } else {
                    edges.append(Edge(
                        from: decision, to: merge, label: arm.label, dashed: arm.isErrorPath, executed: emptyArmTaken,
                        points: [
                            (centre, top + Self.nodeHeight), (centre, split), (armCentre, split), (armCentre, join),
                            (centre, join), (centre, mergeTop),
                        ],
                        labelPosition: labelPosition))
                }
            }
            return Ports(entry: decision, exit: merge)

        case .loop(let loop):
            let executed = reachedAfter || contains(executedNodeIn: loop.body)
            let header = addVertex(.hexagon, label: loop.label, centre: centre, y: top, executed: executed)
            let bodyTop = top + Self.nodeHeight + Self.verticalGap
            let body = Self.size(of: loop.body)
            let junctionTop = bodyTop + body.height + Self.verticalGap
            let junction = addVertex(.dot, label: "", centre: centre, y: junctionTop, executed: executed)
            if let ports = place(loop.body, centre: centre, top: bodyTop, reachedAfter: false) {
                connect(header, ports.entry)
                connect(ports.exit, junction)
            } else {
                connect(header, junction)
            }
            let right = centre + Self.size(of: step).width / 2 - 4
            let headerRight = centre + Self.decisionWidth(loop.label) / 2
            let dotMiddle = junctionTop + Self.dotSize / 2
            edges.append(Edge(
                from: junction, to: header, label: "loop", dashed: true, executed: contains(executedNodeIn: loop.body),
                points: [
                    (centre + Self.dotSize / 2, dotMiddle), (right, dotMiddle), (right, top + Self.nodeHeight / 2),
                    (headerRight, top + Self.nodeHeight / 2),
                ],
                labelPosition: (right - 4, (dotMiddle + top + Self.nodeHeight / 2) / 2, "end")))
            return Ports(entry: header, exit: junction)
        }
    }

    private func contains(executedNodeIn steps: [FlowStep]) -> Bool {
        guard let execution else { return false }
        return WorkflowFlow(workflowName: "", steps: steps).nodes.contains { execution.record(of: $0) != nil }
    }

    @discardableResult
    private mutating func addVertex(
        _ shape: Shape, label: String, centre: Double, y: Double, executed: Bool, status: FlowStatus? = nil,
        node: FlowNode? = nil, activityIDs: [String] = []
    ) -> String {
        let id = "N\(vertices.count + 1)"
        let width: Double
        let height: Double
        switch shape {
        case .dot: (width, height) = (Self.dotSize, Self.dotSize)
        case .decision, .hexagon: (width, height) = (Self.decisionWidth(label), Self.nodeHeight)
        case .box, .stadium: (width, height) = (Self.boxWidth(label), Self.nodeHeight)
        }
        positions[id] = vertices.count
        vertices.append(Vertex(
            id: id, shape: shape, label: Self.truncated(label), node: node, status: status,
            executed: executed, x: centre - width / 2, y: y, width: width, height: height, activityIDs: activityIDs))
        return id
    }

    private mutating func addVertex(_ item: ChainNode, centre: Double, y: Double) -> String {
        addVertex(
            item.shape, label: item.label, centre: centre, y: y, executed: true, status: item.status, node: item.node,
            activityIDs: item.activityIDs)
    }

    /// A straight edge from the bottom of `from` to the top of `to` (both on one axis).
    private mutating func connect(_ from: String, _ to: String) {
        guard let source = positions[from].map({ vertices[$0] }), let target = positions[to].map({ vertices[$0] }) else { return }
        edges.append(Edge(
            from: from, to: to, label: nil, dashed: false, executed: source.executed && target.executed,
            points: [(source.midX, source.bottom), (target.midX, target.y)]))
    }
}
