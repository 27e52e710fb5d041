import Edda
import EddaTesting
import EddaViewer
import Foundation
import Hummingbird
import TestSupport
import Testing

// Workflows of a small ticket shop, run for real to seed the databases the viewer tests read.
// The visualizer tests also read this file as source.

enum Tier: String, Codable, Sendable, CaseIterable {
    case standard, premium
}

struct Customer: Codable, Sendable {
    var id: String
    var name: String
}

struct TicketOrder: Codable, Sendable {
    var customer: Customer
    var seats: Int
    var tier: Tier
    var note: String?
    var giftFor: Customer?
}

struct BookSeats: CompensatableActivity {
    static let name = "book_seats"
    static let compensationName = "release_seats"

    func run(_ order: TicketOrder, context: ActivityContext) async throws -> String {
        guard order.seats <= 8 else { throw TerminalError("no block of \(order.seats) seats is free") }
        return "B-\(order.customer.id)"
    }

    func compensate(_ order: TicketOrder, output: String, context: CompensationContext) async throws {}
}

struct ChargeCard: CompensatableActivity {
    static let name = "charge_card"
    static let compensationName = "refund_card"

    func run(_ order: TicketOrder, context: ActivityContext) async throws -> Int {
        order.seats * (order.tier == .premium ? 80 : 30)
    }

    func compensate(_ order: TicketOrder, output: Int, context: CompensationContext) async throws {}
}

struct SendTickets: Activity {
    static let name = "send_tickets"

    func run(_ order: TicketOrder, context: ActivityContext) async throws -> String {
        if order.note?.contains("undeliverable") == true { throw TerminalError("the mail server refused \(order.customer.name)") }
        return "sent"
    }
}

/// Book, charge, (premium customers wait for a seat upgrade offer), send.
struct TicketWorkflow: Workflow {
    static let name = "ticket_order"

    func run(_ order: TicketOrder, context: WorkflowContext) async throws -> Int {
        _ = try await context.run(BookSeats(), input: order)
        let price = try await context.run(ChargeCard(), input: order)
        if order.tier == .premium {
            _ = try await context.waitEvent("upgrade.offered", as: JSONValue.self, timeout: .seconds(3600))
        }
        _ = try await context.run(SendTickets(), input: order)
        return price
    }
}

struct Greeting: Codable, Sendable {
    var name: String
}

struct Greet: Activity {
    static let name = "greet"

    func run(_ input: Greeting, context: ActivityContext) async throws -> String { "Hello, \(input.name)!" }
}

/// Waits for a payment, with nothing to compensate: cancelling it ends it at once.
struct AwaitPayment: Workflow {
    static let name = "await_payment"

    func run(_ input: Greeting, context: WorkflowContext) async throws -> String {
        _ = try await context.run(Greet(), input: input)
        let payment = try await context.waitEvent("payment.done", as: JSONValue.self)
        return payment.data.jsonText
    }
}

struct Nap: Workflow {
    static let name = "nap"

    func run(_ input: Greeting, context: WorkflowContext) async throws -> String {
        try await context.sleep(for: .seconds(3600))
        return "rested"
    }
}

struct Countdown: Workflow {
    static let name = "countdown"

    func run(_ left: Int, context: WorkflowContext) async throws -> String {
        _ = try await context.run(Greet(), input: Greeting(name: "round \(left)"))
        if left > 0 {
            try await context.recur(with: left - 1)
        }
        return "liftoff"
    }
}

struct GreetWorkflow: Workflow {
    static let name = "greet_workflow"

    func run(_ input: Greeting, context: WorkflowContext) async throws -> String {
        try await context.run(Greet(), input: input)
    }
}

/// An instance ID and an input made to break out of HTML, SQL and paths.
let hostileID = #"<script>alert("id")</script>' OR '1'='1 ../../etc/passwd"#
let hostileName = #"<img src=x onerror=alert(1)> & "quotes" 'single'"#

func registerShop(_ app: EddaApp) {
    app.register(TicketWorkflow())
    app.register(AwaitPayment())
    app.register(Nap())
    app.register(Countdown())
    app.register(GreetWorkflow())
}

func order(_ id: String, seats: Int = 2, tier: Tier = .standard, note: String? = nil) -> TicketOrder {
    TicketOrder(customer: Customer(id: id, name: "Customer \(id)"), seats: seats, tier: tier, note: note)
}

/// Seeds `app`'s database with instances in every interesting state and returns nothing; the
/// IDs are fixed: `ticket-ok` (completed), `ticket-failed` (failed after compensating),
/// `ticket-premium` (waiting for an event, compensations registered), `wait-1` (waiting, no
/// compensations), `nap-1` (waiting for a timer), `countdown-1` → successors (recur chain),
/// and the hostile ID (completed).
func seedShop(_ app: EddaApp) async throws {
    registerShop(app)
    _ = try await app.run(TicketWorkflow.self, input: order("c-1"), instanceID: "ticket-ok")
    await #expect(throws: WorkflowFailedError.self) {
        _ = try await app.run(TicketWorkflow.self, input: order("c-2", note: "undeliverable"), instanceID: "ticket-failed")
    }
    try await app.start(TicketWorkflow.self, input: order("c-3", tier: .premium), instanceID: "ticket-premium")
    try await app.start(AwaitPayment.self, input: Greeting(name: "Ada"), instanceID: "wait-1")
    try await app.start(Nap.self, input: Greeting(name: "Bob"), instanceID: "nap-1")
    _ = try await app.run(Countdown.self, input: 2, instanceID: "countdown-1")
    _ = try await app.run(GreetWorkflow.self, input: Greeting(name: hostileName), instanceID: hostileID)
    _ = try await app.waitForStatus("ticket-premium", in: [.waitingForMessage])
    _ = try await app.waitForStatus("wait-1", in: [.waitingForMessage])
    _ = try await app.waitForStatus("nap-1", in: [.waitingForTimer])
}

/// A seeded temporary database with the viewer served on loopback.
func withSeededViewer<T>(
    _ configuration: EddaViewer.Configuration = .init(),
    _ body: (_ app: EddaApp, _ baseURL: String, _ database: TemporaryDatabase) async throws -> T
) async throws -> T {
    try await TemporaryDatabase.with { database in
        try await database.withApp { app in
            try await seedShop(app)
            let router = Router()
            EddaViewer(app: app, configuration: configuration).addRoutes(to: router.group("viewer"), basePath: "/viewer")
            return try await withServer(router) { baseURL in
                try await body(app, baseURL + "/viewer", database)
            }
        }
    }
}

/// GET a page.
func get(_ url: String, headers: [(String, String)] = []) async throws -> HTTPReply {
    try await httpRequest(url, method: .GET, headers: headers)
}

/// POST a form (following the redirect that answers it, unless `followRedirects` is `false`).
func postForm(
    _ url: String, _ fields: [(String, String)], headers: [(String, String)] = [], followRedirects: Bool = true
) async throws -> HTTPReply {
    let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
    let body = fields.map {
        "\($0.0.addingPercentEncoding(withAllowedCharacters: allowed)!)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)"
    }.joined(separator: "&")
    return try await httpRequest(
        url, method: .POST, headers: [("Content-Type", "application/x-www-form-urlencoded")] + headers,
        body: Array(body.utf8), followRedirects: followRedirects)
}

/// The percent-encoded path segment for an instance ID.
func segment(_ id: String) -> String {
    id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))!
}
