import Edda
import Foundation

// The order-processing saga and the payment-received event handler.

struct LineItem: Codable, Sendable, Equatable {
    var sku: String
    var quantity: Int
}

struct Order: Codable, Sendable, Equatable {
    var orderID: String
    var items: [LineItem]
    var amount: Int
    var address: String

    enum CodingKeys: String, CodingKey {
        case orderID = "order_id"
        case items, amount, address
    }
}

struct OrderResult: Codable, Sendable, Equatable {
    var orderID: String
    var reservationID: String
    var chargeID: String
    var trackingNumber: String

    enum CodingKeys: String, CodingKey {
        case orderID = "order_id"
        case reservationID = "reservation_id"
        case chargeID = "charge_id"
        case trackingNumber = "tracking_number"
    }
}

/// Where the service's side effects go; prints them so a reader can follow along.
struct Effects: Sendable {
    let verbose: Bool
    func log(_ line: String) {
        if verbose { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
    }
}

/// Reserves the items; releases them if the order fails later.
struct ReserveInventory: CompensatableActivity {
    static let name = "reserve_inventory"
    static let compensationName = "release_inventory"
    let effects: Effects

    func run(_ order: Order, context: ActivityContext) async throws -> String {
        effects.log("[\(order.orderID)] reserving \(order.items.map { "\($0.quantity)×\($0.sku)" }.joined(separator: ", "))")
        return "RSV-\(order.orderID)"
    }

    func compensate(_ order: Order, output reservation: String, context: CompensationContext) async throws {
        effects.log("[\(order.orderID)] releasing reservation \(reservation)")
    }
}

/// Charges the customer; refunds the charge if the order fails later.
struct ChargePayment: CompensatableActivity {
    static let name = "charge_payment"
    static let compensationName = "refund_payment"
    let effects: Effects

    func run(_ order: Order, context: ActivityContext) async throws -> String {
        effects.log("[\(order.orderID)] charging \(order.amount) (idempotency key \(context.idempotencyKey))")
        return "CHG-\(order.orderID)"
    }

    func compensate(_ order: Order, output charge: String, context: CompensationContext) async throws {
        effects.log("[\(order.orderID)] refunding charge \(charge)")
    }
}

/// Ships the order and announces it through the transactional outbox. Addresses containing
/// "unreachable" cannot be shipped to: that failure is final, so the saga rolls back.
struct ShipOrder: Activity {
    static let name = "ship_order"
    let effects: Effects

    func run(_ order: Order, context: ActivityContext) async throws -> String {
        guard !order.address.lowercased().contains("unreachable") else {
            effects.log("[\(order.orderID)] cannot ship to \(order.address)")
            throw TerminalError("no carrier delivers to '\(order.address)'")
        }
        let tracking = "TRK-\(order.orderID)"
        try context.sendEventTransactional(
            type: "order.shipped", source: "/order-service",
            data: ["order_id": order.orderID, "tracking_number": tracking])
        effects.log("[\(order.orderID)] shipped, tracking \(tracking)")
        return tracking
    }
}

/// Reserve, charge, ship; on failure the completed steps are undone in reverse order.
struct OrderSaga: Workflow {
    static let name = "order_saga"
    let effects: Effects

    func run(_ order: Order, context: WorkflowContext) async throws -> OrderResult {
        let reservation = try await context.run(ReserveInventory(effects: effects), input: order)
        let charge = try await context.run(ChargePayment(effects: effects), input: order)
        let tracking = try await context.run(ShipOrder(effects: effects), input: order)
        return OrderResult(orderID: order.orderID, reservationID: reservation, chargeID: charge, trackingNumber: tracking)
    }
}

/// The data of a `payment.received` CloudEvent.
struct PaymentReceived: Codable, Sendable {
    var orderID: String
    var amount: Int
    var method: String?

    enum CodingKeys: String, CodingKey {
        case orderID = "order_id"
        case amount, method
    }
}

struct RecordPayment: Activity {
    static let name = "record_payment"
    let effects: Effects

    func run(_ payment: PaymentReceived, context: ActivityContext) async throws -> String {
        effects.log("[\(payment.orderID)] payment of \(payment.amount) received via \(payment.method ?? "unknown")")
        return "PAY-\(payment.orderID)"
    }
}

/// Started by every `payment.received` CloudEvent, with the event's data as input.
struct PaymentReceivedWorkflow: Workflow {
    static let name = "payment_received"
    let effects: Effects

    func run(_ payment: PaymentReceived, context: WorkflowContext) async throws -> [String: String] {
        let receipt = try await context.run(RecordPayment(effects: effects), input: payment)
        return ["order_id": payment.orderID, "receipt": receipt]
    }
}
