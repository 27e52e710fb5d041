/// Renders a ``WorkflowFlow`` as Mermaid `flowchart TD` text, for export to any Mermaid tool.
///
/// With a ``FlowExecution``, nodes get the reference viewer's status icons and colours, executed
/// edges are drawn solid green and the rest dotted, and a failed or cancelled run leaves the flow
/// at the step it stopped at for its rollback chain (the compensations that ran) and its end.
public struct MermaidRenderer: Sendable {
    /// Creates a renderer.
    public init() {}

    /// The Mermaid text for `flow`, coloured by `execution` when given.
    public func render(_ flow: WorkflowFlow, execution: FlowExecution? = nil) -> String {
        let graph = FlowGraph(flow: flow, execution: execution)
        var lines = ["flowchart TD"]
        if graph.vertices.contains(where: { $0.node?.registersCompensation == true }) {
            lines.append("    %% ⚠ registers a compensation (undone if the workflow fails)")
        }
        for vertex in graph.vertices {
            lines.append("    " + declaration(of: vertex, execution: execution))
        }
        var executedLinks: [Int] = []
        for (index, edge) in graph.edges.enumerated() {
            let arrow = (execution != nil && !edge.executed) || edge.dashed ? "-.->" : "-->"
            let label = edge.label.map { "|\(Self.escape($0).isEmpty ? " " : Self.escape($0))|" } ?? ""
            lines.append("    \(edge.from) \(arrow)\(label) \(edge.to)")
            if execution != nil, edge.executed { executedLinks.append(index) }
        }
        if execution != nil {
            for status in FlowStatus.allCases {
                let colours = status.colours.light
                let dash = status == .compensated ? ",stroke-dasharray:5 5" : ""
                let width = status == .notExecuted ? "1px" : "3px"
                lines.append("    classDef \(status.rawValue) fill:\(colours.fill),stroke:\(colours.stroke),stroke-width:\(width)\(dash)")
            }
            // Steps, and the end of a run that failed or was cancelled.
            for vertex in graph.vertices where vertex.node != nil || vertex.status != nil {
                lines.append("    class \(vertex.id) \((vertex.status ?? .notExecuted).rawValue)")
            }
            if !executedLinks.isEmpty {
                lines.append("    linkStyle \(executedLinks.map(String.init).joined(separator: ",")) stroke:#10B981,stroke-width:3px")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func declaration(of vertex: FlowGraph.Vertex, execution: FlowExecution?) -> String {
        var label = vertex.label
        if vertex.node != nil, execution != nil, let icon = vertex.status?.icon { label = "\(icon) \(label)" }
        if vertex.node?.registersCompensation == true { label += " ⚠" }
        let text = Self.escape(label)
        switch vertex.shape {
        case .stadium: return "\(vertex.id)([\"\(text)\"])"
        case .box: return "\(vertex.id)[\"\(text)\"]"
        case .decision: return "\(vertex.id){\"\(text)\"}"
        case .hexagon: return "\(vertex.id){{\"\(text)\"}}"
        case .dot: return "\(vertex.id)(( ))"
        }
    }

    /// The reference's label escaping: `"` becomes `'`… then `'` is removed, `{`/`}` become
    /// parentheses, `[` a dot, `]` removed; plus `<`, `>`, `&`, `|`, `#` and `;` as Mermaid
    /// entity codes so that no label can break out of its node.
    static func escape(_ label: String) -> String {
        // Scalar by scalar, so that no combined character hides a quote or a line break.
        var result = String.UnicodeScalarView()
        for scalar in label.unicodeScalars {
            switch scalar {
            case "\"", "'", "]": continue
            case "{": result.append("(")
            case "}": result.append(")")
            case "[": result.append(".")
            case "<": result.append(contentsOf: "#lt;".unicodeScalars)
            case ">": result.append(contentsOf: "#gt;".unicodeScalars)
            case "&": result.append(contentsOf: "#amp;".unicodeScalars)
            case "|": result.append(contentsOf: "#124;".unicodeScalars)
            case "#": result.append(contentsOf: "#35;".unicodeScalars)
            case ";": result.append(contentsOf: "#59;".unicodeScalars)
            default:
                if scalar.properties.generalCategory == .control || scalar == "\u{2028}" || scalar == "\u{2029}" {
                    result.append(" ")
                } else {
                    result.append(scalar)
                }
            }
        }
        return String(result)
    }
}
