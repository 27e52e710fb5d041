import Tracing

/// A trace context kept in the database, so that work done later, by another worker or by
/// another member of the family, joins the trace it belongs to.
///
/// The family stores it as the reference does: a JSON object under the key `_trace_context`
/// holding the propagation fields (`traceparent` and `tracestate` with a W3C propagator, such
/// as swift-otel's) — in an instance's input (the reference's default CloudEvent handler puts
/// it there, and its OpenTelemetry hooks read it back) and, here, in a channel message's
/// metadata. A message that came from a CloudEvent carries its `traceparent` in the
/// `ce_extensions` of its metadata instead.
struct TraceCarrier: Sendable, Equatable {
    /// The key of the carrier in an input object or in a message's metadata.
    static let key = "_trace_context"

    /// The propagation fields, by name.
    var fields: [String: String]

    init(fields: [String: String]) {
        self.fields = fields
    }

    /// What `tracer` propagates of `context`; `nil` if nothing (no span, or a no-op tracer).
    init?(injecting context: ServiceContext, with tracer: any Tracer) {
        var fields: [String: String] = [:]
        tracer.inject(context, into: &fields, using: FieldsInjector())
        guard !fields.isEmpty else { return nil }
        self.fields = fields
    }

    /// The carrier in a JSON object's text (an input), if it has one.
    init?(inObject text: String) {
        guard text.contains("\"\(Self.key)\""), let member = RawJSON.member(Self.key, in: text) else { return nil }
        self.init(member: JSONValue(jsonText: member))
    }

    /// The carrier in a message's metadata: its own, or the `traceparent`/`tracestate` of the
    /// CloudEvent it came from.
    init?(metadata: [String: JSONValue]) {
        if let own = TraceCarrier(member: metadata[Self.key]) {
            self = own
        } else if case .object(let extensions)? = metadata["ce_extensions"] {
            self.init(member: .object(extensions.filter { $0.key == "traceparent" || $0.key == "tracestate" }))
        } else {
            return nil
        }
    }

    private init?(member: JSONValue?) {
        guard case .object(let members)? = member else { return nil }
        let fields = members.compactMapValues(\.stringValue)
        guard !fields.isEmpty else { return nil }
        self.fields = fields
    }

    /// The fields as a JSON value, for storing.
    var json: JSONValue {
        .object(fields.mapValues(JSONValue.string))
    }

    /// The context `tracer` reads from the fields; `nil` if it reads nothing from them.
    func context(with tracer: any Tracer) -> ServiceContext? {
        var context = ServiceContext.topLevel
        tracer.extract(fields, into: &context, using: FieldsExtractor())
        return context.isEmpty ? nil : context
    }

    /// `object` (an input, a message's metadata) with this carrier added, unless it holds one
    /// already or is not a JSON object.
    func added(toObject object: String) -> String {
        let trimmed = object.drop { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard trimmed.hasPrefix("{"), TraceCarrier(inObject: object) == nil else { return object }
        let rest = trimmed.dropFirst().drop { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        let separator = rest.hasPrefix("}") ? "" : ","
        return "{\"\(Self.key)\":\(json.jsonText)\(separator)\(rest)"
    }

    /// `inputJSON` without its carrier, as the workflow's input type decodes it.
    static func removed(from inputJSON: String) -> String {
        guard inputJSON.contains("\"\(key)\"") else { return inputJSON }
        return RawJSON.removingMember(key, from: inputJSON) ?? inputJSON
    }
}

private struct FieldsInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

private struct FieldsExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}

extension OutgoingMessage {
    /// The message with `carrier` in its metadata (see ``TraceCarrier``), if there is one.
    func tracing(_ carrier: TraceCarrier?) -> OutgoingMessage {
        guard let carrier else { return self }
        var message = self
        message.metadataJSON = carrier.added(toObject: metadataJSON)
        return message
    }
}
