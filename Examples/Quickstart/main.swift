// The quickstart: a trip-booking saga on an embedded SQLite file.
//
//   swift run edda-quickstart            finish any trip a crash interrupted, then book a trip
//                                        (and watch a failed one roll back)
//   swift run edda-quickstart --crash    start a new trip and kill the process once its first
//                                        step is recorded; run again without the flag to finish
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
        print("  ▶ book_flight runs: flight to \(trip.destination) for \(trip.traveller)")
        return "FL-\(trip.destination.prefix(3).uppercased())-\(context.attempt)"
    }
    func compensate(_ trip: Trip, output: String, context: CompensationContext) async throws {
        print("  cancelling flight \(output)")
    }
}

struct BookHotel: CompensatableActivity {
    static let name = "book_hotel"
    func run(_ trip: Trip, context: ActivityContext) async throws -> String {
        if context.instanceID == Demo.crashingTripID {
            // The flight's step is committed; this one never will be.
            print("  ✖ crashing inside book_hotel (the process dies now, as with kill -9)")
            print("    run `swift run edda-quickstart` to finish the trip")
            exit(1)
        }
        print("  ▶ book_hotel runs: hotel in \(trip.destination)")
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
        print("  ▶ rent_car runs: car in \(trip.destination)")
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

/// Says which steps were read back from history instead of running (a resumed trip's).
struct ReplayReporter: WorkflowHooks {
    func activityCompleted(instanceID: String, activityID: String, activityName: String, resultJSON: String, cacheHit: Bool) async {
        if cacheHit { print("  ↺ \(activityName) replayed from history (done before the crash; not run again): \(resultJSON)") }
    }
}

/// With `--crash`, the trip this run starts and crashes (a new one each time, so the crash
/// always comes after a completed step, whatever the folder holds).
enum Demo {
    static let crashingTripID: String? =
        CommandLine.arguments.contains("--crash") ? "trip-porto-\(Int(Date().timeIntervalSince1970))" : nil
}

let path = ProcessInfo.processInfo.environment["EDDA_DB"] ?? "quickstart.db"
var configuration = EddaApp.Configuration(serviceName: "quickstart", database: .sqlite(path: path))
// A short lease, so that after `--crash` the next run takes the trip over within seconds.
configuration.lockTimeout = .seconds(3)
configuration.hooks = ReplayReporter()
let app = try await EddaApp(configuration: configuration)
app.register(BookTrip())

if let tripID = Demo.crashingTripID {
    print("Trip \(tripID): Porto (this run crashes after the flight is booked)")
    _ = try await app.run(BookTrip.self, input: Trip(traveller: "Grace", destination: "Porto", carAvailable: true), instanceID: tripID)
}

// Trips a crash interrupted: this app resumes them once the dead process's lease lapses.
var interrupted = InstanceQuery()
interrupted.workflowName = BookTrip.name
interrupted.status = .running
for trip in try await app.findInstances(interrupted).instances {
    print("Resuming \(trip.instanceID), interrupted by a crash (its lease lapses within \(configuration.lockTimeout))")
    let itinerary = try await app.result(of: trip.instanceID, as: Itinerary.self)
    print("  itinerary: \(itinerary.flight), \(itinerary.hotel), \(itinerary.car)")
}

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
