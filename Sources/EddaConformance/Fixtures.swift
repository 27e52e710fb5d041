import Edda
import Synchronization

/// Records what activities and compensations did, in order.
final class Trail: Sendable {
    private let events = Mutex<[String]>([])
    func record(_ event: String) { events.withLock { $0.append(event) } }
    var all: [String] { events.withLock { $0 } }
    func count(_ event: String) -> Int { all.filter { $0 == event }.count }
}

/// Holds a step until opened, or until its task is cancelled (as an app's shutdown cancels the
/// steps it runs): lets a check stop an app in the middle of a step.
final class Latch: Sendable {
    private struct State {
        var open = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextID = 0
    }
    private let state = Mutex(State())

    /// Returns once the latch is open (at once if it is) or the calling task is cancelled.
    func wait() async {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.open || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }
}

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
    let trail: Trail
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
    let trail: Trail
    func run(_ amount: Int, context: CompensationContext) async throws {
        trail.record("refund \(amount)")
    }
}

/// Notes its input in the trail and returns it.
func note(_ trail: Trail) -> ActivityDefinition<String, String> {
    ActivityDefinition(name: "conformance_note") { input, _ in
        trail.record(input)
        return input
    }
}
