import Edda
import EddaTesting

struct Empty: Codable, Sendable, Equatable {}

struct Job: Codable, Sendable, Equatable {
    var number: Int
}

struct Purchase: Codable, Sendable, Equatable {
    var id: String
    var amount: Int
}

/// Books an item; its compensation undoes the booking.
struct Booking: CompensatableActivity {
    static let name = "conformance_book"
    let trail: Recorder
    func run(_ item: String, context: ActivityContext) async throws -> String {
        trail.record("book \(item)")
        return "booking-\(item)"
    }
    func compensate(_ item: String, output: String, context: CompensationContext) async throws {
        trail.record("undo \(output)")
    }
}

/// A compensation registered explicitly.
struct Refund: Compensation {
    static let name = "conformance_refund"
    let trail: Recorder
    func run(_ amount: Int, context: CompensationContext) async throws {
        trail.record("refund \(amount)")
    }
}

/// Notes its input in the trail and returns it.
func note(_ trail: Recorder) -> ActivityDefinition<String, String> {
    ActivityDefinition(name: "conformance_note") { input, _ in
        trail.record(input)
        return input
    }
}
