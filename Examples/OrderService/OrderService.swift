// The order service: REST endpoints start an order saga; a CloudEvents endpoint starts the
// payment-received workflow and wakes waiting workflows.
//
//   swift run order-service                      serve on http://127.0.0.1:8080 with orders.db
//                                                (workflow viewer at http://127.0.0.1:8080/viewer/)
//   swift run order-service --port 0 --database /tmp/o.db --broker-url http://127.0.0.1:9000/events
import ArgumentParser
import Edda
import EddaHTTP
import EddaPostgres
import EddaViewer
import Foundation
import Hummingbird
import Logging

@main
struct OrderService: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order-service", abstract: "An order-processing service built on Edda and Hummingbird.")

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0 picks a free one).")
    var port = 8080

    @Option(help: "The SQLite file, or a database URL: sqlite:///path.db or postgresql://user@host:5432/orders.")
    var database = "orders.db"

    @Option(help: "A CloudEvents broker the outbox relayer sends order.shipped events to.")
    var brokerURL: String?

    @Option(help: "Require this bearer token on the Edda routes (/workflows/…).")
    var authToken: String?

    @Flag(help: "Print less.")
    var quiet = false

    func run() async throws {
        let level: Logger.Level = quiet ? .warning : .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        PostgresStore.registerURLScheme()
        let location = database.contains("://") ? try DatabaseLocation.url(database) : .sqlite(path: database)
        var configuration = EddaApp.Configuration(serviceName: "order-service", database: location)
        if let brokerURL { configuration.outboxPublisher = HTTPOutboxPublisher(brokerURL: brokerURL) }
        let edda = try await EddaApp(configuration: configuration)
        let effects = Effects(verbose: !quiet)
        edda.register(OrderSaga(effects: effects))
        edda.register(PaymentReceivedWorkflow(effects: effects), handlingEvents: "payment.received")

        let router = Router()
        OrderRoutes(edda: edda).addRoutes(to: router.group("api"))
        var routes = EddaRoutes.Configuration()
        routes.bearerToken = authToken
        EddaRoutes(app: edda, configuration: routes).addRoutes(to: router.group("workflows"))
        var viewer = EddaViewer.Configuration()
        viewer.title = "Order service workflows"
        viewer.bearerToken = authToken
        EddaViewer(app: edda, configuration: viewer).addRoutes(to: router.group("viewer"), basePath: "/viewer")

        let quiet = self.quiet
        let server = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "order-service"),
            services: [edda],
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
struct OrderRoutes: Sendable {
    let edda: EddaApp

    /// The body of `POST /api/orders`; `order_id` is generated when absent.
    struct NewOrder: Decodable {
        var orderID: String?
        var items: [LineItem]
        var amount: Int
        var address: String

        enum CodingKeys: String, CodingKey {
            case orderID = "order_id"
            case items, amount, address
        }
    }

    func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.post("orders") { request, context in try await self.create(request, context: context) }
        router.get("orders/:id/status") { _, context in try await self.status(orderID: context.parameters.require("id")) }
        router.get("payments/:order_id") { _, context in try await self.payment(orderID: context.parameters.require("order_id")) }
    }

    func create<Context: RequestContext>(_ request: Request, context: Context) async throws -> Response {
        let new: NewOrder
        do {
            new = try await request.decode(as: NewOrder.self, context: context)
        } catch {
            return json(.badRequest, ["error": .string("The order is not valid JSON of the expected shape: \(error)")])
        }
        guard !new.items.isEmpty, new.amount > 0 else {
            return json(.badRequest, ["error": "An order needs at least one item and a positive amount."])
        }
        let orderID = new.orderID ?? String(UUID().uuidString.prefix(8)).lowercased()
        let order = Order(orderID: orderID, items: new.items, amount: new.amount, address: new.address)
        let instanceID = try await edda.startDetached(OrderSaga.self, input: order, instanceID: "order-\(orderID)")
        return json(.accepted, [
            "order_id": .string(orderID), "instance_id": .string(instanceID),
            "status_url": .string("/api/orders/\(orderID)/status"),
        ])
    }

    func status(orderID: String) async throws -> Response {
        guard let instance = try await edda.instance("order-\(orderID)") else {
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
