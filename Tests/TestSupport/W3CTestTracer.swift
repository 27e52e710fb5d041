import InMemoryTracing
import Synchronization
import Tracing

/// swift-distributed-tracing's in-memory tracer with W3C trace context propagation: IDs of 32
/// and 16 hex digits, and `traceparent` injected and extracted as a W3C propagator (swift-otel's)
/// does, so that tests see the headers the family exchanges.
public struct W3CTestTracer: Tracer {
    public let recorder: InMemoryTracer

    public init() {
        recorder = InMemoryTracer(idGenerator: .init(nextTraceID: { Self.hex(digits: 32) }, nextSpanID: { Self.hex(digits: 16) }))
    }

    /// `digits` random hex digits.
    public static func hex(digits: Int) -> String {
        String((0..<digits).map { _ in "0123456789abcdef".randomElement()! })
    }

    /// The spans that ended.
    public var finishedSpans: [FinishedInMemorySpan] { recorder.finishedSpans }

    /// A `traceparent` of a sampled span.
    public static func traceparent(traceID: String, spanID: String) -> String {
        "00-\(traceID)-\(spanID)-01"
    }

    /// The trace and span IDs of a `traceparent`.
    public static func ids(of traceparent: String) -> (traceID: String, spanID: String)? {
        let parts = traceparent.split(separator: "-")
        guard parts.count == 4, parts[1].count == 32, parts[2].count == 16 else { return nil }
        return (String(parts[1]), String(parts[2]))
    }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> InMemorySpan {
        recorder.startSpan(operationName, context: context(), ofKind: kind, at: instant(), function: function, file: fileID, line: line)
    }

    public func forceFlush() {}

    public func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let span = context.inMemorySpanContext else { return }
        injector.inject(Self.traceparent(traceID: span.traceID, spanID: span.spanID), forKey: "traceparent", into: &carrier)
    }

    public func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let value = extractor.extract(key: "traceparent", from: carrier), let ids = Self.ids(of: value) else { return }
        context.inMemorySpanContext = InMemorySpanContext(traceID: ids.traceID, spanID: ids.spanID, parentSpanID: nil)
    }
}
