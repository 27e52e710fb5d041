import Edda
import EddaDiagram
import Foundation
import Testing

@Suite("Diagrams and input schemas")
struct DiagramTests {
    static let flow = WorkflowFlow(workflowName: "shop", steps: [
        .node(FlowNode(kind: .activity, label: "reserve", stepName: "reserve", registersCompensation: true)),
        .branch(FlowBranch(kind: .condition, label: "order.express", arms: [
            FlowArm(label: "Yes", steps: [.node(FlowNode(kind: .activity, label: "courier", stepName: "courier"))]),
            FlowArm(label: "No", steps: []),
        ])),
        .loop(FlowLoop(label: "for item in order.items", body: [
            .node(FlowNode(kind: .timer, label: "sleep(for: .seconds(1))", stepName: "sleep")),
        ])),
        .branch(FlowBranch(kind: .tryCatch, label: "do", arms: [
            FlowArm(label: "do", steps: [.node(FlowNode(kind: .activity, label: "charge", stepName: "charge"))]),
            FlowArm(label: "catch PaymentError", steps: [.node(FlowNode(kind: .activity, label: "notify", stepName: "notify"))], isErrorPath: true),
        ])),
    ])

    static var execution: FlowExecution {
        var execution = FlowExecution()
        execution.record(stepName: "reserve", activityID: "reserve:1", label: "reserve", kind: .activity, status: .completed)
        execution.record(stepName: "sleep", activityID: "sleep:1", label: "sleep", kind: .timer, status: .completed)
        execution.record(stepName: "sleep", activityID: "sleep:2", label: "sleep", kind: .timer, status: .completed)
        execution.record(stepName: "charge", activityID: "charge:1", label: "charge", kind: .activity, status: .failed)
        execution.record(stepName: "notify", activityID: "notify:1", label: "notify", kind: .activity, status: .completed)
        execution.recordCompensation(activityID: "compensation:1", label: "unreserve", status: .compensated)
        return execution
    }

    @Test("Mermaid: structure, reference icons and colours, executed edges solid and the rest dotted")
    func mermaid() {
        let text = MermaidRenderer().render(Self.flow, execution: Self.execution)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines[0] == "flowchart TD")
        #expect(lines[1] == "    %% ⚠ registers a compensation (undone if the workflow fails)")
        #expect(lines.contains("    N1([\"shop\"])"))
        #expect(lines.contains("    N2[\"✅ reserve ⚠\"]"))
        #expect(lines.contains("    N3{\"order.express\"}"))
        #expect(text.contains("[\"courier\"]"))  // not executed: no icon
        #expect(text.contains("{{\"for item in order.items\"}}"))
        #expect(text.contains("[\"✅ sleep(for: .seconds(1)) (2x)\"]"))
        #expect(text.contains("[\"❌ charge\"]"))
        #expect(text.contains("-.->|catch PaymentError|"))
        #expect(text.contains("-.->|loop|"))
        #expect(text.contains("-.->|rollback|"))
        #expect(text.contains("[\"🔄 Compensate: unreserve\"]"))
        #expect(text.contains("classDef compensated fill:#F3E8FF,stroke:#A855F7,stroke-width:3px,stroke-dasharray:5 5"))
        #expect(text.contains("linkStyle "))
        // Without an execution: a plain diagram, no classes.
        let plain = MermaidRenderer().render(Self.flow)
        #expect(!plain.contains("classDef"))
        #expect(plain.contains("N1 --> N2"))
    }

    @Test("SVG: laid out without overlaps, coloured by status, with a legend and links for executed steps")
    func svg() throws {
        let svg = SVGRenderer(link: { _, ids in "#\(ids[0])" }).render(Self.flow, execution: Self.execution)
        // The ⚠ on a step is explained in the legend, with or without an execution.
        #expect(svg.contains("⚠ registers a compensation (undone if the workflow fails)</text>"))
        #expect(SVGRenderer().render(Self.flow).contains("⚠ registers a compensation"))
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"edda-flow\""))
        #expect(svg.contains("class=\"vertex shape-box kind-activity st-completed executed\" data-step=\"reserve\""))
        #expect(svg.contains("class=\"vertex shape-box kind-activity st-not_executed pending\" data-step=\"courier\""))
        #expect(svg.contains("<a href=\"#charge:1\">"))
        #expect(!svg.contains("<a href=\"#courier"))
        #expect(svg.contains("class=\"edge executed\""))
        #expect(svg.contains("class=\"edge pending dashed\"") || svg.contains("class=\"edge pending\""))
        #expect(svg.contains(">Not executed</text>"))  // the legend
        #expect(svg.contains("@media (prefers-color-scheme: dark)"))
        // Boxes do not overlap.
        let boxes = Self.rectangles(in: svg)
        #expect(boxes.count >= 8)
        for (index, a) in boxes.enumerated() {
            for b in boxes[(index + 1)...] {
                let overlaps = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
                #expect(!overlaps, "\(a) overlaps \(b)")
            }
        }
    }

    static func rectangles(in svg: String) -> [(x: Double, y: Double, w: Double, h: Double)] {
        svg.components(separatedBy: "<rect class=\"shape\" ").dropFirst().compactMap { part in
            func value(_ name: String) -> Double? {
                guard let range = part.range(of: "\(name)=\"") else { return nil }
                return Double(part[range.upperBound...].prefix { $0 != "\"" })
            }
            guard let x = value("x"), let y = value("y"), let w = value("width"), let h = value("height") else { return nil }
            return (x, y, w, h)
        }
    }

    @Test("A run that failed in mid-flow leaves it at the failing step for its rollback and ends Failed; Complete is not reached")
    func failedInMidFlow() throws {
        let flow = WorkflowFlow(workflowName: "shop", steps: [
            .node(FlowNode(kind: .activity, label: "reserve", stepName: "reserve", registersCompensation: true)),
            .node(FlowNode(kind: .activity, label: "charge", stepName: "charge")),
            .node(FlowNode(kind: .activity, label: "ship", stepName: "ship")),
        ])
        var execution = FlowExecution()
        execution.record(stepName: "reserve", activityID: "reserve:1", label: "reserve", kind: .activity, status: .completed)
        execution.record(stepName: "charge", activityID: "charge:1", label: "charge", kind: .activity, status: .failed)
        execution.recordCompensation(activityID: "compensation_1", label: "unreserve", status: .compensated)
        execution.outcome = .failed
        let lines = MermaidRenderer().render(flow, execution: execution).split(separator: "\n").map(String.init)
        #expect(lines.contains("    N3[\"❌ charge\"]"))
        #expect(lines.contains("    N4[\"ship\"]"))
        #expect(lines.contains("    N5([\"Complete\"])"))
        #expect(lines.contains("    N6{{\"Compensation\"}}"))
        #expect(lines.contains("    N7[\"🔄 Compensate: unreserve\"]"))
        #expect(lines.contains("    N8([\"Failed\"])"))
        // Nothing executed reaches ship or Complete; the rollback leaves charge.
        #expect(lines.contains("    N3 -.-> N4"))
        #expect(lines.contains("    N4 -.-> N5"))
        #expect(lines.contains("    N3 -.->|rollback| N6"))
        #expect(lines.contains("    N7 --> N8"))
        #expect(lines.contains("    class N8 failed"))
        #expect(!lines.contains { $0.hasPrefix("    N5 ") })  // nothing leaves Complete

        let svg = SVGRenderer().render(flow, execution: execution)
        #expect(svg.contains("<g class=\"vertex shape-stadium pending\"><title>Complete</title>"))
        #expect(svg.contains("<g class=\"vertex shape-stadium st-failed executed\"><title>Failed</title>"))
        #expect(svg.contains(">rollback</text>"))
        let boxes = Self.rectangles(in: svg)
        for (index, a) in boxes.enumerated() {
            for b in boxes[(index + 1)...] {
                #expect(!(a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h), "\(a) overlaps \(b)")
            }
        }

        // Cancelled in the last step, nothing to compensate: straight on to Cancelled.
        var cancelled = FlowExecution()
        cancelled.record(stepName: "reserve", activityID: "reserve:1", label: "reserve", kind: .activity, status: .completed)
        cancelled.record(stepName: "charge", activityID: "charge:1", label: "charge", kind: .activity, status: .completed)
        cancelled.record(stepName: "ship", activityID: "ship:1", label: "ship", kind: .activity, status: .cancelled)
        cancelled.outcome = .cancelled
        let text = MermaidRenderer().render(flow, execution: cancelled)
        #expect(!text.contains("Complete"))
        #expect(text.contains("    N4 -.-> N5\n"))
        #expect(text.contains("    N5([\"Cancelled\"])\n"))
        #expect(text.contains("    class N5 cancelled\n"))
    }

    @Test("Labels cannot break out of SVG or Mermaid")
    func hostileLabels() {
        let flow = WorkflowFlow(workflowName: "<script>alert(1)</script>", steps: [
            .node(FlowNode(kind: .activity, label: #"a"] --> X[pwned & <b>"#, stepName: "x<y")),
        ])
        let svg = SVGRenderer().render(flow)
        #expect(!svg.contains("<script>"))
        #expect(!svg.contains("<b>"))
        #expect(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(svg.contains("data-step=\"x&lt;y\""))
        let mermaid = MermaidRenderer().render(flow)
        #expect(mermaid.contains("N2[\"a --#gt; X.pwned #amp; #lt;b#gt;\"]"))
        #expect(!mermaid.contains("<script>"))
        // A quote or a line break inside a combined character cannot break out either.
        let combined = WorkflowFlow(workflowName: "w", steps: [
            .node(FlowNode(kind: .activity, label: "a\"\u{301}] --> Y\r\nclick Y call x()", stepName: "a")),
        ])
        let combinedMermaid = MermaidRenderer().render(combined)
        #expect(combinedMermaid.contains("N2[\"a\u{301} --#gt; Y  click Y call x()\"]"))
        #expect(SVGRenderer().render(combined).contains("a&quot;\u{301}] --&gt; Y"))
    }

    @Test("History-only flows list the steps in the order they ran")
    func historyFlow() {
        let flow = Self.execution.historyFlow(workflowName: "shop")
        #expect(flow.nodes.map(\.stepName) == ["reserve", "sleep", "charge", "notify"])
        #expect(flow.nodes.map(\.kind) == [.activity, .timer, .activity, .activity])
    }

    struct Address: Codable {
        var city: String
        var zip: Int?
    }

    enum Priority: String, Codable, CaseIterable {
        case low, high
    }

    struct Input: Codable {
        var name: String
        var count: Int
        var ratio: Double
        var urgent: Bool
        var priority: Priority
        var address: Address
        var tags: [String]
        var extra: [String: Int]
        var when: Date
        var id: UUID?
    }

    final class TreeNode: Codable {
        var label: String
        var first: TreeNode?
        var second: TreeNode?
        var third: TreeNode?
        var rest: [TreeNode]
    }

    struct Validated: Codable {
        var code: String
        init(from decoder: any Decoder) throws {
            code = try decoder.singleValueContainer().decode(String.self)
            guard code.count == 3 else { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "3 letters")) }
        }
    }

    @Test("Input schemas are derived from Codable types, and fall back to JSON where the shape is hidden")
    func inputSchemas() {
        let schema = InputSchema.describing(Input.self)
        #expect(schema == .object([
            InputField("name", .string), InputField("count", .integer), InputField("ratio", .number),
            InputField("urgent", .boolean), InputField("priority", .choice(["low", "high"])),
            InputField("address", .object([InputField("city", .string), InputField("zip", .optional(.integer))])),
            InputField("tags", .array(.string)), InputField("extra", .json), InputField("when", .string),
            InputField("id", .optional(.string)),
        ]))
        #expect(InputSchema.describing(Int.self) == .integer)
        #expect(InputSchema.describing([Address].self) == .array(.object([InputField("city", .string), InputField("zip", .optional(.integer))])))
        #expect(InputSchema.describing(Validated.self) == .json)
        #expect(InputSchema.describing(NoValue.self) == .object([]))
        #expect(InputSchema.describing(Int?.self) == .optional(.integer))
        #expect(InputSchema.describing([String: Int].self) == .json)
        // A recursive type with several self-references is described within a bounded effort.
        #expect(InputSchema.describing(TreeNode.self).unwrapped != .string)
        let json = schema.jsonSchema
        #expect(json["type"] == "object")
        #expect(json["properties"]?["priority"]?["enum"] == ["low", "high"])
        #expect(json["required"]?.arrayValue?.contains("zip") == false)
        #expect(json["required"]?.arrayValue?.contains("name") == true)
    }
}
