// The quickstart: a trip-booking saga on an embedded SQLite file.
//
//   swift run edda-quickstart            book a trip (and watch a failed one roll back)
//   swift run edda-quickstart --crash    stop the process in the middle; run again to finish
import Edda
import EddaSQLite
import Foundation

struct Trip: Codable, Sendable {
    var traveller: String
    var destination: String
    var carAvailable: Bool
}

struct Itinerary: Codable, Sendable {
    var flight: String
    var hotel: String
    var car: String
}

/// Books a flight; cancels it if the trip falls through later.
struct BookFlight: CompensatableActivity {
    static let name = "book_flight"
    func run(_ trip: Trip, context: ActivityContext) async throws -> String {
        print("  booking flight to \(trip.destination) for \(trip.traveller)")
        if CommandLine.arguments.contains("--crash") {
            print("  -- crashing now; run `swift run edda-quickstart` again to finish the trip --")
            exit(1)
        }
        return "FL-\(trip.destination.prefix(3).uppercased())-\(context.attempt)"
    }
    func compensate(_ trip: Trip, output: String, context: CompensationContext) async throws {
        print("  cancelling flight \(output)")
    }
}

struct BookHotel: CompensatableActivity {
    static let name = "book_hotel"
    func run(_ trip: Trip, context: ActivityContext) async throws -> String {
        print("  booking hotel in \(trip.destination)")
        return "HT-\(trip.destination.prefix(3).uppercased())"
    }
    func compensate(_ trip: Trip, output: String, context: CompensationContext) async throws {
        print("  cancelling hotel \(output)")
    }
}

struct RentCar: Activity {
    static let name = "rent_car"
    func run(_ trip: Trip, context: ActivityContext) async throws -> String {
        guard trip.carAvailable else { throw TerminalError("no cars left in \(trip.destination)") }
        print("  renting a car in \(trip.destination)")
        return "CAR-1"
    }
}

struct BookTrip: Workflow {
    static let name = "book_trip"
    func run(_ trip: Trip, context: WorkflowContext) async throws -> Itinerary {
        let flight = try await context.run(BookFlight(), input: trip)
        let hotel = try await context.run(BookHotel(), input: trip)
        let car = try await context.run(RentCar(), input: trip)
        return Itinerary(flight: flight, hotel: hotel, car: car)
    }
}

let path = ProcessInfo.processInfo.environment["EDDA_DB"] ?? "quickstart.db"
var configuration = EddaApp.Configuration(serviceName: "quickstart", database: .sqlite(path: path))
// A short lease, so that after `--crash` the next run takes the trip over within seconds.
configuration.lockTimeout = .seconds(3)
let app = try await EddaApp(configuration: configuration)
app.register(BookTrip())

print("Trip 1: Lisbon")
let itinerary = try await app.run(BookTrip.self, input: Trip(traveller: "Ada", destination: "Lisbon", carAvailable: true), instanceID: "trip-lisbon")
print("  itinerary: \(itinerary.flight), \(itinerary.hotel), \(itinerary.car)")

print("Trip 2: Reykjavik (no cars: the saga rolls back)")
do {
    _ = try await app.run(BookTrip.self, input: Trip(traveller: "Alan", destination: "Reykjavik", carAvailable: false), instanceID: "trip-reykjavik")
} catch let error as WorkflowFailedError {
    print("  failed as expected: \(error.message)")
}

let history = try await app.history(of: "trip-reykjavik").map { "\($0.activityID) \($0.eventType)" }
print("History of trip-reykjavik:\n  " + history.joined(separator: "\n  "))
print("State is in \(path); run again and the finished trips are returned from it, not re-run.")
await app.shutdown()
