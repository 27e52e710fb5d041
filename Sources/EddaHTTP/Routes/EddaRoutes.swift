import Edda
import Foundation
import Hummingbird
import NIOCore

/// Edda's HTTP interface, mounted into your Hummingbird router at any path:
///
/// - `POST <path>/events` (and `POST <path>`): CloudEvents in structured, binary or batch mode.
///   `202 {"status": "accepted"}` once the events are stored; `400 {"error", "error_type",
///   "retryable": false}` for a malformed event or data a handler workflow cannot take (nothing
///   is stored); `413` for a body over ``Configuration/maxBodySize``; `500 {…, "retryable": true}`
///   when storing failed.
/// - `POST <path>/cancel/{instance_id}`: `200 {"status": "cancelled", "instance_id"}`, or
///   `400 {"error": …}` when the instance is unknown or has ended.
/// - `GET <path>/health/live` and `GET <path>/health/ready` (also `GET <path>/health`): liveness,
///   and readiness (the database answers).
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

        /// The defaults documented on each property.
        public init() {}
    }

    /// The app events are delivered to.
    public let app: EddaApp
    /// The configuration.
    public let configuration: Configuration

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
        if let refusal = authorize(request) { return refusal }
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
        do {
            try await app.handle(events)
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

    func cancel(_ request: Request, instanceID: String?) async throws -> Response {
        if let refusal = authorize(request) { return refusal }
        guard let instanceID = instanceID?.removingPercentEncoding, !instanceID.isEmpty else {
            return Self.json(.badRequest, ["error": "Missing instance_id"])
        }
        do {
            guard try await app.cancel(instanceID: instanceID, cancelledBy: configuration.cancelledBy) else {
                return Self.json(
                    .badRequest, ["error": "Cannot cancel workflow (not found or already completed/failed/cancelled)"])
            }
        } catch {
            app.configuration.logger.error("Cancelling \(instanceID) failed: \(error)")
            let type = String(describing: Swift.type(of: error))
            return Self.json(
                .internalServerError,
                ["error": "The cancellation could not be stored; try again.", "type": .string(type), "error_type": .string(type)])
        }
        return Self.json(.ok, ["status": "cancelled", "instance_id": .string(instanceID)])
    }

    func readiness() async -> Response {
        if await app.isReady() {
            return Self.json(.ok, ["status": "ok"])
        }
        return Self.json(.serviceUnavailable, ["status": "unavailable"])
    }

    /// `nil` if the request may proceed; a `401` otherwise.
    func authorize(_ request: Request) -> Response? {
        guard let token = configuration.bearerToken else { return nil }
        guard !BearerToken.accepts(authorization: request.headers[.authorization], token: token) else { return nil }
        var response = Self.json(.unauthorized, ["error": "A valid bearer token is required."])
        response.headers[.wwwAuthenticate] = "Bearer"
        return response
    }

    // MARK: - Responses

    static func error(_ status: HTTPResponse.Status, _ message: String, type: String, retryable: Bool) -> Response {
        json(status, ["error": .string(message), "error_type": .string(type), "retryable": .bool(retryable)])
    }

    static func json(_ status: HTTPResponse.Status, _ body: [String: JSONValue]) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: JSONValue.object(body).jsonText)))
    }
}
