import Edda
import Foundation

/// The start form of one workflow, generated from its ``InputSchema``, and the reverse: the
/// submitted fields turned into the workflow's JSON input.
///
/// Object inputs get one control per field (`input.<field>`), and nested objects one level deep
/// a fieldset (`input.<field>.<subfield>`); strings, numbers, booleans and choices get their
/// natural controls; arrays, deeper objects and open shapes get a JSON text area. Any other
/// top-level schema is a single control named `input`.
struct StartForm {
    let schema: InputSchema

    /// A submitted form that cannot be turned into input; its message names the field.
    struct InvalidField: Error {
        let message: String
    }

    // MARK: Rendering

    func controls(values: [String: String]) -> String {
        if case .object(let fields) = schema.unwrapped {
            return fields.map {
                control(for: $0.schema, name: "input.\($0.name)", label: $0.name, depth: 1, values: values, inOptional: false)
            }.joined(separator: "\n")
        }
        return control(for: schema, name: "input", label: "input", depth: 1, values: values, inOptional: false)
    }

    /// `inOptional`: inside an optional object, whose fields the browser must not require
    /// (leaving them all empty leaves the object out).
    private func control(
        for schema: InputSchema, name: String, label: String, depth: Int, values: [String: String], inOptional: Bool
    ) -> String {
        let optional = schema.isOptional
        let required = optional || inOptional ? "" : " required"
        let caption = HTML.text(label) + (optional ? " <span class=\"muted\">(optional)</span>" : "")
        let value = values[name].map(HTML.text) ?? ""
        let field = HTML.text(name)
        switch schema.unwrapped {
        case .string:
            return "<label>\(caption)<input type=\"text\" name=\"\(field)\" value=\"\(value)\"\(required)></label>"
        case .integer:
            return "<label>\(caption)<input type=\"number\" step=\"1\" name=\"\(field)\" value=\"\(value)\"\(required)></label>"
        case .number:
            return "<label>\(caption)<input type=\"number\" step=\"any\" name=\"\(field)\" value=\"\(value)\"\(required)></label>"
        case .boolean:
            let checked = values[name] != nil ? " checked" : ""
            return "<label class=\"check\"><input type=\"checkbox\" name=\"\(field)\" value=\"true\"\(checked)> \(caption)</label>"
        case .choice(let choices):
            var options = optional ? "<option value=\"\"></option>" : ""
            for choice in choices {
                let selected = values[name] == choice ? " selected" : ""
                options += "<option value=\"\(HTML.text(choice))\"\(selected)>\(HTML.text(choice))</option>"
            }
            return "<label>\(caption)<select name=\"\(field)\"\(required)>\(options)</select></label>"
        case .object(let fields) where depth < 2:
            let inner = fields.map {
                control(
                    for: $0.schema, name: "\(name).\($0.name)", label: $0.name, depth: depth + 1, values: values,
                    inOptional: inOptional || optional)
            }
            return "<fieldset><legend>\(caption)</legend>\(inner.joined(separator: "\n"))</fieldset>"
        default:
            let placeholder = HTML.text(Self.example(schema.unwrapped).jsonText)
            return "<label>\(caption) <span class=\"muted\">(JSON)</span><textarea name=\"\(field)\" placeholder=\"\(placeholder)\"\(required)>\(value)</textarea></label>"
        }
    }

    /// A sample value shown as the placeholder of JSON fields.
    static func example(_ schema: InputSchema) -> JSONValue {
        switch schema {
        case .string: return "text"
        case .integer: return 1
        case .number: return 1.5
        case .boolean: return true
        case .choice(let choices): return .string(choices.first ?? "")
        case .array(let element): return [example(element.unwrapped)]
        case .optional(let wrapped): return example(wrapped)
        case .json: return [:]
        case .object(let fields):
            var object: [String: JSONValue] = [:]
            for field in fields { object[field.name] = example(field.schema.unwrapped) }
            return .object(object)
        }
    }

    // MARK: Parsing

    /// The input the submitted fields describe.
    func input(from values: [String: String]) throws(InvalidField) -> JSONValue {
        try value(for: schema, name: "input", depth: 0, values: values) ?? .null
    }

    private func value(for schema: InputSchema, name: String, depth: Int, values: [String: String]) throws(InvalidField) -> JSONValue? {
        // Text is taken as typed; other values without surrounding whitespace.
        let raw = schema.unwrapped == .string ? values[name] : values[name]?.trimmingCharacters(in: .whitespacesAndNewlines)
        let present = !(raw ?? "").isEmpty
        switch schema.unwrapped {
        case .object where depth < 2 && schema.isOptional
            && !values.contains(where: { $0.key.hasPrefix(name + ".") && !$0.value.isEmpty }):
            // An optional object with nothing filled in is left out.
            return nil
        case .object(let fields) where depth < 2:
            var object: [String: JSONValue] = [:]
            for field in fields {
                if let member = try value(for: field.schema, name: "\(name).\(field.name)", depth: depth + 1, values: values) {
                    object[field.name] = member
                }
            }
            return .object(object)
        case .boolean:
            return .bool(raw == "true" || raw == "on")
        default:
            guard present, let raw else {
                if schema.isOptional { return nil }
                throw InvalidField(message: "\(Self.label(name)) is required.")
            }
            return try parse(raw, as: schema.unwrapped, name: name)
        }
    }

    private func parse(_ raw: String, as schema: InputSchema, name: String) throws(InvalidField) -> JSONValue {
        switch schema {
        case .string:
            return .string(raw)
        case .integer:
            guard let number = Int(raw) else { throw InvalidField(message: "\(Self.label(name)) must be a whole number, not '\(raw)'.") }
            return .number(JSONNumber(number))
        case .number:
            guard let number = Double(raw), number.isFinite else {
                throw InvalidField(message: "\(Self.label(name)) must be a number, not '\(raw)'.")
            }
            // Exactly as typed when it is JSON number text (so 0.1 stays 0.1, and digits beyond a
            // Double's precision are kept), otherwise as read.
            return .number(JSONNumber(jsonText: raw) ?? JSONNumber(number) ?? 0)
        case .choice(let choices):
            guard choices.contains(raw) else {
                throw InvalidField(message: "\(Self.label(name)) must be one of \(choices.joined(separator: ", ")).")
            }
            return .string(raw)
        default:
            guard let json = JSONValue(jsonText: raw) else {
                throw InvalidField(message: "\(Self.label(name)) is not valid JSON.")
            }
            return json
        }
    }

    private static func label(_ name: String) -> String {
        name == "input" ? "The input" : "Field '\(name.dropFirst("input.".count))'"
    }
}
