/// Renders a ``WorkflowFlow`` as a self-contained SVG document, laid out by this library (no
/// JavaScript, no external fonts or scripts).
///
/// Nodes are coloured by ``FlowStatus`` with the reference viewer's palette; the colours follow
/// `prefers-color-scheme`, and a page embedding the SVG inline can force a theme with
/// `data-theme="dark"` or `data-theme="light"` on its root element.
///
/// ```swift
/// let svg = SVGRenderer().render(flow, execution: execution)
/// ```
public struct SVGRenderer: Sendable {
    /// Where a node links to, given the node and the step IDs it ran under; `nil` for no link.
    public typealias Link = @Sendable (_ node: FlowNode, _ activityIDs: [String]) -> String?

    /// A prefix for the document's element IDs, so that several diagrams can share one page.
    public var idPrefix: String
    /// Where executed nodes link to (for example the step's details on the same page).
    public var link: Link?

    /// Creates a renderer.
    public init(idPrefix: String = "edda-flow", link: Link? = nil) {
        self.idPrefix = idPrefix
        self.link = link
    }

    /// The SVG markup for `flow`, coloured by `execution` when given.
    public func render(_ flow: WorkflowFlow, execution: FlowExecution? = nil) -> String {
        let graph = FlowGraph(flow: flow, execution: execution)
        let prefix = Markup.escape(idPrefix)
        let statuses = execution == nil ? [] : Self.statuses(in: graph)
        let marksCompensation = graph.vertices.contains { $0.node?.registersCompensation == true }
        let width = max(graph.width, marksCompensation ? 200 : 150)
        let height = graph.height + Double(statuses.count + (marksCompensation ? 1 : 0)) * Self.legendRow
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" class="edda-flow" width="\(number(width))" \
            height="\(number(height))" viewBox="0 0 \(number(width)) \(number(height))" \
            role="img" aria-label="Flow of \(Markup.escape(flow.workflowName))">
            <style>\(Self.style)</style>
            <defs><marker id="\(prefix)-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" \
            orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrow"/></marker></defs>

            """
        for edge in graph.edges {
            let path = edge.points.enumerated()
                .map { "\($0.offset == 0 ? "M" : "L")\(number($0.element.x)),\(number($0.element.y))" }
                .joined(separator: " ")
            var classes = ["edge"]
            if execution != nil { classes.append(edge.executed ? "executed" : "pending") }
            if edge.dashed { classes.append("dashed") }
            out += "<path class=\"\(classes.joined(separator: " "))\" d=\"\(path)\" marker-end=\"url(#\(prefix)-arrow)\"/>\n"
            if let label = edge.label, let position = edge.labelPosition {
                out += "<text class=\"edge-label anchor-\(position.anchor)\" x=\"\(number(position.x))\" "
                    + "y=\"\(number(position.y))\">\(Markup.escape(label))</text>\n"
            }
        }
        for vertex in graph.vertices {
            out += element(for: vertex, coloured: execution != nil)
        }
        out += legend(statuses, marksCompensation: marksCompensation, top: graph.height)
        out += "</svg>\n"
        return out
    }

    private func element(for vertex: FlowGraph.Vertex, coloured: Bool) -> String {
        var classes = ["vertex", "shape-\(vertex.shape)"]
        if let node = vertex.node { classes.append("kind-\(node.kind.rawValue)") }
        if coloured {
            if let status = vertex.status { classes.append("st-\(status.rawValue)") }
            classes.append(vertex.executed ? "executed" : "pending")
        }
        var attributes = "class=\"\(classes.joined(separator: " "))\""
        if let step = vertex.node?.stepName { attributes += " data-step=\"\(Markup.escape(step))\"" }
        var shape: String
        let (x, y, w, h) = (vertex.x, vertex.y, vertex.width, vertex.height)
        switch vertex.shape {
        case .box:
            shape = "<rect class=\"shape\" x=\"\(number(x))\" y=\"\(number(y))\" width=\"\(number(w))\" height=\"\(number(h))\" rx=\"6\"/>"
        case .stadium:
            shape = "<rect class=\"shape\" x=\"\(number(x))\" y=\"\(number(y))\" width=\"\(number(w))\" height=\"\(number(h))\" rx=\"\(number(h / 2))\"/>"
        case .decision:
            shape = polygon([(x, y + h / 2), (x + w / 2, y - 4), (x + w, y + h / 2), (x + w / 2, y + h + 4)])
        case .hexagon:
            shape = polygon([(x, y + h / 2), (x + 14, y), (x + w - 14, y), (x + w, y + h / 2), (x + w - 14, y + h), (x + 14, y + h)])
        case .dot:
            shape = "<circle class=\"shape\" cx=\"\(number(x + w / 2))\" cy=\"\(number(y + h / 2))\" r=\"\(number(w / 2))\"/>"
        }
        var label = vertex.label
        if vertex.node?.registersCompensation == true { label += " ⚠" }
        if !label.isEmpty {
            shape += "<text x=\"\(number(x + w / 2))\" y=\"\(number(y + h / 2 + 4.5))\">\(Markup.escape(label))</text>"
        }
        var title = vertex.label
        // The end of a failed or cancelled run is labelled with its status already.
        if coloured, let status = vertex.status, status.label != vertex.label { title += " — \(status.label)" }
        if vertex.node?.registersCompensation == true { title += " (registers a compensation)" }
        if !title.isEmpty { shape = "<title>\(Markup.escape(title))</title>" + shape }
        if let node = vertex.node, !vertex.activityIDs.isEmpty, let href = link?(node, vertex.activityIDs) {
            shape = "<a href=\"\(Markup.escape(href))\">\(shape)</a>"
        }
        return "<g \(attributes)>\(shape)</g>\n"
    }

    private static let legendRow = 16.0

    private static func statuses(in graph: FlowGraph) -> [FlowStatus] {
        let used = Set(graph.vertices.compactMap(\.status))
        return FlowStatus.allCases.filter(used.contains)
    }

    /// One swatch per status the diagram uses, below it.
    private func legend(_ statuses: [FlowStatus], marksCompensation: Bool, top: Double) -> String {
        guard !statuses.isEmpty || marksCompensation else { return "" }
        var out = "<g class=\"legend\">"
        var y = top + 4
        for status in statuses {
            out += "<rect class=\"st-\(status.rawValue) swatch\" x=\"\(number(FlowGraph.margin))\" y=\"\(number(y - 9))\" width=\"10\" height=\"10\" rx=\"2\"/>"
            out += "<text x=\"\(number(FlowGraph.margin + 15))\" y=\"\(number(y))\">\(status.label)</text>"
            y += Self.legendRow
        }
        if marksCompensation {
            out += "<text class=\"compensation-key\" x=\"\(number(FlowGraph.margin))\" y=\"\(number(y))\">"
                + "⚠ registers a compensation (undone if the workflow fails)</text>"
        }
        return out + "</g>\n"
    }

    private func polygon(_ points: [(Double, Double)]) -> String {
        "<polygon class=\"shape\" points=\"\(points.map { "\(number($0.0)),\(number($0.1))" }.joined(separator: " "))\"/>"
    }

    private func number(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    /// The stylesheet inside every SVG: shapes, edges, and the status palette for both themes.
    static let style: String = {
        func palette(_ dark: Bool, scope: String = "") -> String {
            FlowStatus.allCases.map { status in
                let colours = dark ? status.colours.dark : status.colours.light
                let name = status.rawValue
                return "\(scope).edda-flow .st-\(name) .shape, \(scope).edda-flow .swatch.st-\(name) "
                    + "{ fill: \(colours.fill); stroke: \(colours.stroke); }"
            }.joined(separator: "\n")
        }
        return """
            .edda-flow { --ink: #0f172a; --muted: #64748b; --line: #94a3b8; --plain: #ffffff; font: 13px system-ui, -apple-system, "Segoe UI", sans-serif; }
            .edda-flow text { fill: var(--ink); text-anchor: middle; }
            .edda-flow .legend text { text-anchor: start; font-size: 11px; fill: var(--muted); }
            .edda-flow text.anchor-start { text-anchor: start; } .edda-flow text.anchor-end { text-anchor: end; }
            .edda-flow text.edge-label { font-size: 11px; fill: var(--muted); paint-order: stroke; stroke: var(--plain); stroke-width: 4px; stroke-linejoin: round; }
            .edda-flow .shape { fill: var(--plain); stroke: var(--line); stroke-width: 1.5; }
            .edda-flow .shape-dot .shape { fill: var(--line); stroke: none; }
            .edda-flow .executed .shape { stroke-width: 3; }
            .edda-flow .st-compensated .shape { stroke-dasharray: 5 4; }
            .edda-flow .edge { fill: none; stroke: var(--line); stroke-width: 1.5; }
            .edda-flow .edge.dashed, .edda-flow .edge.pending { stroke-dasharray: 5 4; }
            .edda-flow .edge.executed { stroke: #10B981; stroke-width: 3; }
            .edda-flow .arrow { fill: var(--line); }
            .edda-flow a { cursor: pointer; }
            .edda-flow a:hover .shape { stroke-width: 4; }
            \(palette(false))
            @media (prefers-color-scheme: dark) {
            :root:not([data-theme="light"]) .edda-flow { --ink: #e2e8f0; --muted: #94a3b8; --line: #64748b; --plain: #0f172a; }
            \(palette(true, scope: ":root:not([data-theme=\"light\"]) "))
            }
            :root[data-theme="dark"] .edda-flow { --ink: #e2e8f0; --muted: #94a3b8; --line: #64748b; --plain: #0f172a; }
            \(palette(true, scope: ":root[data-theme=\"dark\"] "))
            """
    }()
}
