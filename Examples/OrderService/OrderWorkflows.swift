import Edda
import Foundation

// The order-processing saga and the payment-received event handler.

struct LineItem: Codable, Sendable, Equatable {
    var sku: String
    var quantity: Int

    init(sku: String, quantity: Int) {
        self.sku = sku
        self.quantity = quantity
    }

    init(from decoder: any Decoder) throws {
        let field = OrderFields.path(decoder.codingPath)
        let container = try OrderFields.object(decoder, CodingKeys.self, field: field, shape: #"{"sku", "quantity"}"#)
        sku = try OrderFields.text(container, .sku, field: "\(field).sku")
        quantity = try OrderFields.positiveInteger(container, .quantity, field: "\(field).quantity", rule: "a positive integer")
    }
}

/// The saga's input. Decoding it checks it (see ``OrderFields``), so every way of starting the
/// saga — the REST route, the viewer's start form, a tool — refuses the same orders before
/// anything is stored.
struct Order: Codable, Sendable, Equatable {
    var orderID: String
    var items: [LineItem]
    var amount: Int
    var address: String

    enum CodingKeys: String, CodingKey {
        case orderID = "order_id"
        case items, amount, address
    }

    init(orderID: String, items: [LineItem], amount: Int, address: String) {
        self.orderID = orderID
        self.items = items
        self.amount = amount
        self.address = address
    }

    init(from decoder: any Decoder) throws {
        let fields = try OrderFields(from: decoder, requiresOrderID: true)
        self.init(orderID: fields.orderID ?? "", items: fields.items, amount: fields.amount, address: fields.address)
    }
}

/// An order refused before anything started: the field (`nil` for the whole order) and what is
/// wrong with it.
struct InvalidOrderError: Error, CustomStringConvertible {
    var field: String?
    var message: String
    var description: String { message }
}

/// The fields of an order as a client sends them, checked with messages that name the field:
/// `items` a non-empty list of `{"sku", "quantity"}` with positive quantities, `amount` a
/// positive integer number of cents, `address` non-empty text, and `order_id` (optional for the
/// REST route, which generates one) an identifier short enough for the instance ID
/// `order-<order_id>`.
struct OrderFields {
    /// The instance ID of an order's saga is `order-<order_id>`.
    static let instancePrefix = "order-"
    /// The longest `order_id`, in bytes of UTF-8: what fits in an instance ID after the prefix.
    static let maximumOrderIDLength = Identifier.maximumLength - instancePrefix.utf8.count

    var orderID: String?
    var items: [LineItem]
    var amount: Int
    var address: String

    init(from decoder: any Decoder, requiresOrderID: Bool) throws {
        let container = try Self.object(decoder, Order.CodingKeys.self, field: nil, shape: #"{"items", "amount", "address"}"#)
        if requiresOrderID || ((try? container.decodeNil(forKey: .orderID)) == false) {
            orderID = try Self.orderID(try Self.text(container, .orderID, field: "order_id"))
        }
        guard container.contains(.items), (try? container.decodeNil(forKey: .items)) == false else {
            throw InvalidOrderError(field: "items", message: "items is required.")
        }
        do {
            items = try container.decode([LineItem].self, forKey: .items)
        } catch DecodingError.typeMismatch(_, let context) where context.codingPath.count <= 1 {
            throw InvalidOrderError(field: "items", message: #"items must be a list of {"sku", "quantity"} objects."#)
        }
        guard !items.isEmpty else { throw InvalidOrderError(field: "items", message: "items must list at least one item.") }
        amount = try Self.positiveInteger(
            container, .amount, field: "amount", rule: "a positive integer number of cents (4050 for 40.50)")
        address = try Self.text(container, .address, field: "address")
    }

    /// Checks an `order_id`: an identifier (no control characters, not empty) whose instance
    /// ID `order-<order_id>` fits the schema.
    static func orderID(_ value: String) throws -> String {
        try Identifier.validate(value, field: "order_id")
        guard value.utf8.count <= maximumOrderIDLength else {
            throw InvalidOrderError(
                field: "order_id",
                message: "order_id must be at most \(maximumOrderIDLength) bytes of UTF-8 (the instance ID is "
                    + "\(instancePrefix)<order_id>, at most \(Identifier.maximumLength)); got \(value.utf8.count).")
        }
        return value
    }

    /// `items[0]` for the coding path `items`, `0`.
    static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.reduce("") { path, key in
            key.intValue.map { "\(path)[\($0)]" } ?? (path.isEmpty ? key.stringValue : "\(path).\(key.stringValue)")
        }
    }

    /// The object at `decoder`; `field` is `nil` for the whole order.
    static func object<Key: CodingKey>(
        _ decoder: any Decoder, _ keys: Key.Type, field: String?, shape: String
    ) throws -> KeyedDecodingContainer<Key> {
        do {
            return try decoder.container(keyedBy: keys)
        } catch DecodingError.typeMismatch {
            throw InvalidOrderError(field: field, message: "\(field ?? "The order") must be a JSON object \(shape).")
        }
    }

    static func text<Key: CodingKey>(_ container: KeyedDecodingContainer<Key>, _ key: Key, field: String) throws -> String {
        guard container.contains(key), (try? container.decodeNil(forKey: key)) == false else {
            throw InvalidOrderError(field: field, message: "\(field) is required.")
        }
        guard let value = try? container.decode(String.self, forKey: key) else {
            throw InvalidOrderError(field: field, message: "\(field) must be a string.")
        }
        guard !value.allSatisfy(\.isWhitespace) else {
            throw InvalidOrderError(field: field, message: "\(field) must not be empty.")
        }
        return value
    }

    static func positiveInteger<Key: CodingKey>(
        _ container: KeyedDecodingContainer<Key>, _ key: Key, field: String, rule: String
    ) throws -> Int {
        guard container.contains(key), (try? container.decodeNil(forKey: key)) == false else {
            throw InvalidOrderError(field: field, message: "\(field) is required.")
        }
        guard let value = try? container.decode(Int.self, forKey: key), value > 0 else {
            throw InvalidOrderError(field: field, message: "\(field) must be \(rule).")
        }
        return value
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

    /// Declared: the checks in ``Order``'s decoding hide its shape from the derivation.
    static var inputSchema: InputSchema {
        .object([
            InputField("order_id", .string),
            InputField("items", .array(.object([InputField("sku", .string), InputField("quantity", .integer)]))),
            InputField("amount", .integer),
            InputField("address", .string),
        ])
    }

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
