// The order service: REST endpoints start an order saga; a CloudEvents endpoint starts the
// payment-received workflow and wakes waiting workflows.
//
//   swift run order-service                      serve on http://127.0.0.1:8080 with orders.db
//                                                (workflow viewer at http://127.0.0.1:8080/viewer/)
//   swift run order-service --port 0 --database /tmp/o.db --broker-url http://127.0.0.1:9000/events
//   swift run order-service --prometheus         also serve the metrics on GET /metrics
//                                                (or ORDER_SERVICE_PROMETHEUS=1)
//   swift run --traits OpenTelemetry order-service --otel
//                                                export traces and metrics over OTLP (or
//                                                ORDER_SERVICE_OTEL=1; the collector from
//                                                OTEL_EXPORTER_OTLP_ENDPOINT, default localhost:4318)
import ArgumentParser
import Edda
import EddaSQLite
import EddaHTTP
import EddaMySQL
import EddaPostgres
import EddaViewer
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
#if OpenTelemetry
import OTel
#endif

@main
struct OrderService: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order-service", abstract: "An order-processing service built on Edda and Hummingbird.")

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0 picks a free one).")
    var port = 8080

    @Option(help: "The SQLite file, or a database URL: sqlite:///relative.db, sqlite:////absolute/path.db, postgresql://user@host:5432/orders or mysql://user:password@host:3306/orders.")
    var database = "orders.db"

    @Option(help: "A CloudEvents broker the outbox relayer sends order.shipped events to.")
    var brokerURL: String?

    @Option(help: "Require this bearer token on the Edda routes (/workflows/…) and for changes in the viewer.")
    var authToken: String?

    @Option(help: """
        An origin (https://ops.example.com) whose browser pages may cancel, start or post events, besides pages \
        served from localhost, 127.0.0.1, [::1] and --host. Repeatable.
        """)
    var trustedOrigin: [String] = []

    @Flag(help: "Serve the app's metrics (workflows, activities, commits, waits, outbox, HTTP requests) on GET /metrics in Prometheus' text format. Also switched on by ORDER_SERVICE_PROMETHEUS=1.")
    var prometheus = false

    @Flag(help: "Export the app's traces and metrics over OTLP with swift-otel (configured by the OTEL_* environment variables). Needs a build with the OpenTelemetry trait: swift run --traits OpenTelemetry order-service --otel. Also switched on by ORDER_SERVICE_OTEL=1.")
    var otel = false

    @Flag(help: "Print less.")
    var quiet = false

    func run() async throws {
        let level: Logger.Level = quiet ? .warning : .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        // Metrics through swift-metrics: bootstrapped with a Prometheus registry when asked, else
        // discarded. Traces through swift-distributed-tracing: the HTTP middleware below makes a
        // span of each request (joining an incoming `traceparent`) and the workflows it starts
        // join it; a tracer bootstrapped at start-up (swift-otel's `OTel.bootstrap()`) exports them.
        let environment = ProcessInfo.processInfo.environment
        let exportsOTLP = otel || environment["ORDER_SERVICE_OTEL"] == "1"
        let servesPrometheus = prometheus || environment["ORDER_SERVICE_PROMETHEUS"] == "1"
        if exportsOTLP && servesPrometheus {
            throw ValidationError("Choose one metrics backend: --otel exports metrics over OTLP, --prometheus serves them on /metrics.")
        }
        var observability: [any Service] = []
        if exportsOTLP {
            #if OpenTelemetry
            var otel = OTel.Configuration.default
            otel.serviceName = "order-service"
            otel.logs.enabled = false  // logs stay on standard error
            observability.append(try OTel.bootstrap(configuration: otel))
            #else
            throw ValidationError(
                "This order-service was built without OpenTelemetry; build it with the trait: swift run --traits OpenTelemetry order-service --otel")
            #endif
        }
        let metricsRegistry = servesPrometheus ? PrometheusCollectorRegistry() : nil
        if let metricsRegistry { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metricsRegistry)) }

        let location = try DatabaseLocation.fileOrURL(database, drivers: [PostgresStore.self, MySQLStore.self])
        var configuration = EddaApp.Configuration(serviceName: "order-service", database: location)
        if let brokerURL { configuration.outboxPublisher = HTTPOutboxPublisher(brokerURL: brokerURL) }
        let edda = try await EddaApp(configuration: configuration)
        let effects = Effects(verbose: !quiet)
        edda.register(OrderSaga(effects: effects))
        edda.register(PaymentReceivedWorkflow(effects: effects), handlingEvents: "payment.received")

        // Browser pages may change things only if served from here: the loopback names, the
        // address the service listens on, and the origins given with --trusted-origin.
        var crossSite = CrossSiteProtection()
        crossSite.trustedOrigins = trustedOrigin
        if !["0.0.0.0", "::", "[::]", ""].contains(host) { crossSite.trustedHosts.append(host) }

        let router = Router()
        router.add(middleware: TracingMiddleware())
        router.add(middleware: MetricsMiddleware())
        if let metricsRegistry {
            router.get("metrics") { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: metricsRegistry.emitToBuffer())))
            }
        }
        OrderRoutes(edda: edda).addRoutes(to: router.group("api"))
        var routes = EddaRoutes.Configuration()
        routes.bearerToken = authToken
        routes.crossSiteProtection = crossSite
        EddaRoutes(app: edda, configuration: routes).addRoutes(to: router.group("workflows"))
        var viewer = EddaViewer.Configuration()
        viewer.title = "Order service workflows"
        viewer.bearerToken = authToken
        viewer.crossSiteProtection = crossSite
        EddaViewer(app: edda, configuration: viewer).addRoutes(to: router.group("viewer"), basePath: "/viewer")

        let quiet = self.quiet
        let server = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "order-service"),
            services: [edda] + observability,
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                // The first line is read by tests to find the port (written unbuffered).
                var banner = "Order service listening on http://\(host):\(port)\n"
                if !quiet {
                    banner += """
                        Viewer: http://\(host):\(port)/viewer/
                        Try:
                          curl -s -X POST http://\(host):\(port)/api/orders -H 'Content-Type: application/json' \\
                               -d '{"items": [{"sku": "book", "quantity": 2}], "amount": 40, "address": "1 Main St"}'
                          curl -s http://\(host):\(port)/api/orders/<order_id>/status
                          curl -s -X POST http://\(host):\(port)/workflows/events -H 'Content-Type: application/cloudevents+json' \\
                               -d '{"specversion": "1.0", "id": "p-1", "source": "/bank", "type": "payment.received",
                                    "data": {"order_id": "<order_id>", "amount": 40}}'

                        """
                }
                FileHandle.standardOutput.write(Data(banner.utf8))
            },
            logger: Logger(label: "order-service"))
        try await server.runService()
    }
}

/// `POST /api/orders`, `GET /api/orders/{id}/status`, `GET /api/payments/{order_id}`.
///
/// Refusals are `400 {"error", "field"}` (`413` for a body over ``maxBodySize``); any other
/// failure is logged with the request and answered `500 {"error"}`.
struct OrderRoutes: Sendable {
    let edda: EddaApp

    /// The largest `POST /api/orders` body accepted: 2 MiB.
    static let maxBodySize = 2 << 20

    /// The body of `POST /api/orders`: ``OrderFields`` with `order_id` optional.
    struct NewOrder: Decodable {
        var fields: OrderFields

        init(from decoder: any Decoder) throws {
            fields = try OrderFields(from: decoder, requiresOrderID: false)
        }
    }

    func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.post("orders") { request, _ in await self.respond(request) { try await self.create(request) } }
        router.get("orders/:id/status") { request, context in
            await self.respond(request) { try await self.status(orderID: try Self.orderID(context.parameters.get("id"))) }
        }
        router.get("payments/:order_id") { request, context in
            await self.respond(request) { try await self.payment(orderID: try Self.orderID(context.parameters.get("order_id"))) }
        }
    }

    /// Runs a handler; answers refusals with `400` naming the field, and anything else with a
    /// logged `500` and a JSON body.
    func respond(_ request: Request, _ handler: () async throws -> Response) async -> Response {
        do {
            return try await handler()
        } catch let error as InvalidOrderError {
            var body: [String: JSONValue] = ["error": .string(error.message)]
            if let field = error.field { body["field"] = .string(field) }
            return json(.badRequest, body)
        } catch let error as InvalidIdentifierError {
            return json(.badRequest, ["error": .string(error.description), "field": .string(error.field)])
        } catch let error as EddaUsageError where error.kind == .instanceIDConflict {
            return json(.conflict, ["error": .string(error.message)])
        } catch {
            edda.configuration.logger.error(
                "\(request.method) \(request.uri.path) failed: \(error)",
                metadata: ["http.method": "\(request.method)", "http.path": "\(request.uri.path)"])
            return json(.internalServerError, ["error": "The request failed on the server; its log has the details. Try again."])
        }
    }

    /// An order ID from the path: the router passes segments as sent, so it is percent-decoded
    /// here (`caf%C3%A9` is `café`, `a%2Fb` is `a/b`) and checked.
    static func orderID(_ raw: String?) throws -> String {
        guard let decoded = raw?.removingPercentEncoding else {
            throw InvalidOrderError(field: "order_id", message: "order_id is not valid percent-encoded UTF-8.")
        }
        return try OrderFields.orderID(decoded)
    }

    /// `order_id` as one path segment of a URL.
    static func pathSegment(_ orderID: String) -> String {
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return orderID.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    func create(_ request: Request) async throws -> Response {
        var body = ByteBuffer()
        for try await var chunk in request.body {
            guard body.readableBytes + chunk.readableBytes <= Self.maxBodySize else {
                return json(.contentTooLarge, ["error": .string("The order is larger than \(Self.maxBodySize) bytes.")])
            }
            body.writeBuffer(&chunk)
        }
        let fields: OrderFields
        do {
            fields = try JSONDecoder().decode(NewOrder.self, from: Data(body.readableBytesView)).fields
        } catch let error as DecodingError {
            // Only malformed JSON gets here (the fields' own checks throw InvalidOrderError); the
            // decoder's internals stay out of the answer.
            return json(.badRequest, ["error": .string("The body is not valid JSON\(Self.reason(error)).")])
        }
        let orderID = fields.orderID ?? String(UUID().uuidString.prefix(8)).lowercased()
        let order = Order(orderID: orderID, items: fields.items, amount: fields.amount, address: fields.address)
        let instanceID = try await edda.startDetached(
            OrderSaga.self, input: order, instanceID: OrderFields.instancePrefix + orderID)
        return json(.accepted, [
            "order_id": .string(orderID), "instance_id": .string(instanceID),
            "status_url": .string("/api/orders/\(Self.pathSegment(orderID))/status"),
        ])
    }

    /// `: <what the JSON parser said>`, when it said something readable.
    static func reason(_ error: DecodingError) -> String {
        guard case .dataCorrupted(let context) = error else { return "" }
        let underlying = (context.underlyingError as? NSError)?.userInfo[NSDebugDescriptionErrorKey] as? String
        let text = underlying ?? context.debugDescription
        return text.isEmpty || text == "The given data was not valid JSON." ? "" : ": " + text
    }

    func status(orderID: String) async throws -> Response {
        guard let instance = try await edda.instance(OrderFields.instancePrefix + orderID) else {
            return json(.notFound, ["error": .string("No order '\(orderID)'.")])
        }
        var body: [String: JSONValue] = [
            "order_id": .string(orderID), "instance_id": .string(instance.instanceID),
            "status": .string(instance.status.rawValue),
        ]
        switch instance.status {
        case .completed: body["result"] = instance.outputData?["result"] ?? .null
        case .failed: body["error"] = instance.outputData?["error_message"] ?? .null
        default: break
        }
        let compensations = try await edda.history(of: instance.instanceID)
            .filter { $0.eventType == "CompensationExecuted" }
            .compactMap { $0.data?["activity_name"] }
        body["compensations"] = .array(compensations)
        return json(.ok, body)
    }

    func payment(orderID: String) async throws -> Response {
        var query = InstanceQuery()
        query.workflowName = PaymentReceivedWorkflow.name
        query.inputFilters = ["order_id": .string(orderID)]
        guard let instance = try await edda.findInstances(query).instances.first else {
            return json(.notFound, ["error": .string("No payment received for order '\(orderID)'.")])
        }
        return json(.ok, [
            "order_id": .string(orderID), "instance_id": .string(instance.instanceID),
            "status": .string(instance.status.rawValue), "result": instance.outputData?["result"] ?? .null,
        ])
    }

    func json(_ status: HTTPResponse.Status, _ body: [String: JSONValue]) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: JSONValue.object(body).jsonText)))
    }
}
