import AsyncHTTPClient
import Edda
import Foundation
import NIOCore

/// Sends outbox events to a CloudEvents broker over HTTP: each event is POSTed in structured
/// mode with its stored content type as `datacontenttype`.
///
/// - 2xx: published.
/// - 4xx: refused for good (`invalid`), never retried — except 408 and 429, which are retried.
/// - 5xx, connection and timeout errors: `failed`, retried by the relayer.
///
/// ```swift
/// configuration.outboxPublisher = HTTPOutboxPublisher(brokerURL: "http://broker.local/events")
/// ```
public struct HTTPOutboxPublisher: OutboxPublisher {
    /// Where events are POSTed.
    public let brokerURL: String
    /// How long one request may take. Default 30 s.
    public let timeout: Duration
    private let client: CloudEventClient

    /// Creates a publisher that POSTs to `brokerURL` with `httpClient`.
    ///
    /// The default client gives up on a broker it cannot connect to at once (connection
    /// refused) or within 5 s (no answer), instead of retrying the connection until the
    /// request's timeout: the relayer records the failure and retries the event on its own
    /// schedule, and a broker that is down shows in the logs within seconds.
    public init(brokerURL: String, httpClient: HTTPClient = HTTPOutboxPublisher.brokerClient, timeout: Duration = .seconds(30)) {
        self.brokerURL = brokerURL
        self.timeout = timeout
        self.client = CloudEventClient(brokerURL: brokerURL, httpClient: httpClient, timeout: timeout)
    }

    /// The default client: one per process, never shut down (as `HTTPClient.shared`), without
    /// retries of a failed connection and with a 5 s connect timeout.
    public static let brokerClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(5)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    public func publish(_ event: OutboxEvent) async -> OutboxOutcome {
        do {
            try await client.send(CloudEvent(outboxEvent: event))
            return .published
        } catch let error as CloudEventSendError where error.isPermanent {
            return .invalid(error.description)
        } catch let error as CloudEventSendError {
            return .failed(error.description)
        } catch where Task.isCancelled {
            // The app is shutting down: not an attempt the broker answered.
            return .postponed
        } catch {
            return .failed("Network error: \(error)")
        }
    }
}

/// Sends CloudEvents to a broker at once, without the outbox (the reference's `send_event`).
///
/// Use it where losing the event on a crash is acceptable; inside activities prefer
/// ``Edda/ActivityContext/sendEventTransactional(type:source:data:contentType:)``.
public struct CloudEventClient: Sendable {
    /// Where events are POSTed.
    public let brokerURL: String
    /// How long one request may take.
    public let timeout: Duration
    let httpClient: HTTPClient
    let hooks: (any WorkflowHooks)?

    /// Creates a client that POSTs to `brokerURL`.
    ///
    /// - Parameter hooks: If given, its `eventSent` is called for every event accepted.
    public init(
        brokerURL: String, httpClient: HTTPClient = .shared, timeout: Duration = .seconds(10), hooks: (any WorkflowHooks)? = nil
    ) {
        self.brokerURL = brokerURL
        self.httpClient = httpClient
        self.timeout = timeout
        self.hooks = hooks
    }

    /// POSTs `event` in structured mode.
    ///
    /// - Throws: ``CloudEventSendError`` for a response other than 2xx; the client's error when
    ///   the broker cannot be reached.
    public func send(_ event: CloudEvent) async throws {
        var request = HTTPClientRequest(url: brokerURL)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: CloudEventEncoder.structuredContentType)
        request.body = .bytes(ByteBuffer(string: try CloudEventEncoder().structured(event)))
        let response = try await httpClient.execute(request, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000
            + Int64(timeout.components.attoseconds / 1_000_000_000)))
        guard (200..<300).contains(Int(response.status.code)) else {
            throw CloudEventSendError(status: Int(response.status.code), body: await Self.start(of: response.body))
        }
        if let hooks {
            await hooks.eventSent(
                eventType: event.attributes.type, eventSource: event.attributes.source, dataJSON: event.jsonData ?? "null")
        }
    }

    /// The first 4 KiB of a response body (the rest is not read), for error messages.
    static func start(of body: HTTPClientResponse.Body) async -> String {
        var collected = ByteBuffer()
        do {
            for try await chunk in body {
                var chunk = chunk
                collected.writeBuffer(&chunk)
                if collected.readableBytes >= 4096 { break }
            }
        } catch {
            // A body cut short still says something.
        }
        return String(buffer: collected)
    }

    /// Sends an event of `type` from `source` with `data` (JSON, or `Data` as bytes).
    public func send<Payload: Encodable & Sendable>(
        type: String, source: String, data: Payload, dataContentType: String = "application/json"
    ) async throws {
        try await send(CloudEvent(
            attributes: CloudEventAttributes(type: type, source: source, dataContentType: dataContentType), encoding: data))
    }
}

/// The broker answered a CloudEvent with a status other than 2xx.
public struct CloudEventSendError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status code.
    public let status: Int
    /// The start of the response body.
    public let body: String

    public var description: String { "HTTP \(status): \(body.prefix(500))" }

    /// Whether sending again cannot help: a 4xx other than 408 (timeout) and 429 (rate limit).
    public var isPermanent: Bool {
        (400..<500).contains(status) && status != 408 && status != 429
    }
}
