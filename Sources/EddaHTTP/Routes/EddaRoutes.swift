import Edda
import Foundation
import Hummingbird
import NIOCore

/// Edda's HTTP interface, mounted into your Hummingbird router at any path:
///
/// - `POST <path>/events` (and `POST <path>`): CloudEvents in structured, binary or batch mode.
///   `202 {"status": "accepted"}` once the events are stored; `400 {"error", "error_type",
///   "retryable": false}` for a malformed event, text that is not valid UTF-8, an invalid
///   identifier (with `"field"`) or data a handler workflow cannot take (nothing is stored);
///   `413` for a body over ``Configuration/maxBodySize``; `500 {…, "retryable": true}` when
///   storing failed.
/// - `POST <path>/cancel/{instance_id}`: `200 {"status": "cancelled", "instance_id"}`, or
///   `400 {"error": …}` when the instance is unknown or has ended, or the ID is invalid.
/// - `GET <path>/health/live` and `GET <path>/health/ready` (also `GET <path>/health`): liveness,
///   and readiness: the database commits a small write within ``Configuration/readinessTimeout``.
///
/// The events and cancel routes refuse requests from other sites' pages with `403`
/// (``Configuration/crossSiteProtection``, on by default), and the cancel route refuses the
/// content types an HTML form can send. Servers posting CloudEvents send no `Origin` and are
/// not affected.
///
/// ```swift
/// let router = Router()
/// EddaRoutes(app: edda).addRoutes(to: router.group("workflows"))
/// let server = Application(router: router, services: [edda])
/// ```
public struct EddaRoutes: Sendable {
    /// How the routes behave.
    public struct Configuration: Sendable {
        /// The largest request body accepted; larger ones get `413`. Default 1 MiB.
        public var maxBodySize = 1 << 20
        /// If set, the events and cancel routes require `Authorization: Bearer <token>` (`401`
        /// otherwise). Health routes stay open. Default `nil`.
        public var bearerToken: String?
        /// Stored as `cancelled_by` for cancellations through the cancel route. Default `api_user`,
        /// as the reference.
        public var cancelledBy = "api_user"
        /// Which browser pages may call the events and cancel routes. Default: pages served from
        /// the loopback names only (`localhost`, `127.0.0.1`, `[::1]`); requests without `Origin`
        /// and `Sec-Fetch-Site` (servers, scripts) are always accepted. Add your UI's origin to
        /// ``Edda/CrossSiteProtection/trustedOrigins`` if a browser page of yours calls these routes.
        public var crossSiteProtection = CrossSiteProtection()
        /// How long the readiness route waits for its probe write to commit before answering
        /// `503`. Default 2 seconds; give your orchestrator's probe a longer timeout.
        public var readinessTimeout: Duration = .seconds(2)

        /// The defaults documented on each property.
        public init() {}
    }

    /// The app events are delivered to.
    public let app: EddaApp
    /// The configuration.
    public let configuration: Configuration
    private let readinessProbe = ReadinessProbe()

    /// Routes for `app`.
    public init(app: EddaApp, configuration: Configuration = Configuration()) {
        self.app = app
        self.configuration = configuration
    }

    /// Adds the routes to `router` (a router or a group: the routes are relative to it).
    public func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.post { request, _ in try await self.events(request) }
        router.post("events") { request, _ in try await self.events(request) }
        router.post("cancel/:instance_id") { request, context in
            try await self.cancel(request, instanceID: context.parameters.get("instance_id"))
        }
        router.get("health") { _, _ in await self.readiness() }
        router.get("health/ready") { _, _ in await self.readiness() }
        router.get("health/live") { _, _ in Self.json(.ok, ["status": "ok"]) }
    }

    // MARK: - Handlers

    func events(_ request: Request) async throws -> Response {
        if let refusal = refuseCrossSite(request) ?? authorize(request) { return refusal }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: configuration.maxBodySize)
        } catch is NIOTooManyBytesError {
            return Self.error(
                .contentTooLarge, "The request body exceeds \(configuration.maxBodySize) bytes.", type: "PayloadTooLarge",
                retryable: false)
        }
        let headers = request.headers.map { (name: $0.name.canonicalName, value: $0.value) }
        let events: [CloudEvent]
        do {
            events = try CloudEventDecoder().decode(headers: headers, body: Array(buffer: body))
        } catch let error as CloudEventFormatError {
            return Self.error(.badRequest, error.message, type: error.kind.name, retryable: false)
        }
        for (index, event) in events.enumerated() {
            do {
                try Self.validateIdentifiers(of: event)
            } catch {
                return Self.invalidIdentifier(error, context: events.count > 1 ? "Event \(index) of the batch: " : "")
            }
        }
        do {
            try await app.handle(events)
        } catch let error as InvalidIdentifierError {
            return Self.invalidIdentifier(error)
        } catch let error as EventInputError {
            return Self.error(.badRequest, error.description, type: "EventInputError", retryable: false)
        } catch let error as EddaUsageError {
            return Self.error(.badRequest, error.message, type: "EddaUsageError", retryable: false)
        } catch {
            // The details (SQL, paths) go to the log, not to the caller.
            app.configuration.logger.error("Storing a CloudEvent failed: \(error)")
            return Self.error(
                .internalServerError, "The event could not be stored; send it again.",
                type: String(describing: Swift.type(of: error)), retryable: true)
        }
        return Self.json(.accepted, ["status": "accepted"])
    }

    /// Checks the identifiers an event brings (its type is the channel, its source and id the
    /// message's identity) before anything is stored. The core checks them again; checking here
    /// names the event's attribute and its place in a batch.
    static func validateIdentifiers(of event: CloudEvent) throws(InvalidIdentifierError) {
        let attributes = event.attributes
        try Identifier.validate(attributes.type, field: "type")
        try Identifier.validate(attributes.source, field: "source")
        try Identifier.validate(attributes.id, field: "id")
        try Identifier.validate(attributes.extensions["eddainstanceid"]?.stringValue, field: "eddainstanceid")
    }

    func cancel(_ request: Request, instanceID rawID: String?) async throws -> Response {
        if let refusal = refuseCrossSite(request) ?? refuseFormContent(request) ?? authorize(request) { return refusal }
        guard let instanceID = rawID?.removingPercentEncoding else {
            return Self.json(
                .badRequest,
                ["error": "instance_id is not valid percent-encoded UTF-8.", "error_type": "InvalidIdentifierError", "field": "instance_id"])
        }
        do {
            try Identifier.validate(instanceID, field: "instance_id")
            guard try await app.cancel(instanceID: instanceID, cancelledBy: configuration.cancelledBy) else {
                return Self.json(
                    .badRequest, ["error": "Cannot cancel workflow (not found or already completed/failed/cancelled)"])
            }
        } catch let error as InvalidIdentifierError {
            return Self.invalidIdentifier(error)
        } catch {
            app.configuration.logger.error("Cancelling \(instanceID.debugDescription) failed: \(error)")
            let type = String(describing: Swift.type(of: error))
            return Self.json(
                .internalServerError,
                ["error": "The cancellation could not be stored; try again.", "type": .string(type), "error_type": .string(type)])
        }
        return Self.json(.ok, ["status": "cancelled", "instance_id": .string(instanceID)])
    }

    func readiness() async -> Response {
        switch await readinessProbe.check(app: app, timeout: configuration.readinessTimeout) {
        case .ready:
            return Self.json(.ok, ["status": "ok"])
        case .unavailable(let reason):
            return Self.json(.serviceUnavailable, ["status": "unavailable", "reason": .string(reason)])
        }
    }

    /// `nil` if the request may proceed; a `401` otherwise.
    func authorize(_ request: Request) -> Response? {
        guard let token = configuration.bearerToken else { return nil }
        guard !BearerToken.accepts(authorization: request.headers[.authorization], token: token) else { return nil }
        var response = Self.json(.unauthorized, ["error": "A valid bearer token is required."])
        response.headers[.wwwAuthenticate] = "Bearer"
        return response
    }

    /// `nil` unless the request comes from an untrusted site's page; a `403` then.
    func refuseCrossSite(_ request: Request) -> Response? {
        let fetchSite = request.headers.first { $0.name.canonicalName == "sec-fetch-site" }?.value
        let reason = configuration.crossSiteProtection.refusal(origin: request.headers[.origin], fetchSite: fetchSite)
        guard let reason else { return nil }
        return Self.error(.forbidden, reason, type: "CrossSiteRequestRefused", retryable: false)
    }

    /// The content types an HTML form (or a script without a CORS preflight) can send. The
    /// cancel route takes no body, so a request carrying one of them is most likely a form on
    /// another site, from a browser that did not say where it came from.
    static let formContentTypes: Set<String> = ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"]

    /// `nil` unless the request carries a form content type; a `403` then.
    func refuseFormContent(_ request: Request) -> Response? {
        guard configuration.crossSiteProtection.isEnabled, let contentType = request.headers[.contentType],
              Self.formContentTypes.contains(CloudEventDecoder.mediaType(contentType))
        else { return nil }
        return Self.error(
            .forbidden,
            "The cancel route does not accept form submissions (Content-Type \(contentType)); send the request without a body "
                + "or as application/json.",
            type: "CrossSiteRequestRefused", retryable: false)
    }

    // MARK: - Responses

    static func error(_ status: HTTPResponse.Status, _ message: String, type: String, retryable: Bool) -> Response {
        json(status, ["error": .string(message), "error_type": .string(type), "retryable": .bool(retryable)])
    }

    /// `400` naming the refused field; `context` prefixes the message.
    static func invalidIdentifier(_ error: InvalidIdentifierError, context: String = "") -> Response {
        json(.badRequest, [
            "error": .string(context + error.description), "error_type": "InvalidIdentifierError",
            "field": .string(error.field), "retryable": false,
        ])
    }

    static func json(_ status: HTTPResponse.Status, _ body: [String: JSONValue]) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: JSONValue.object(body).jsonText)))
    }
}
