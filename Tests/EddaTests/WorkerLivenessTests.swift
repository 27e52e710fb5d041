@testable import Edda
import Foundation
import Testing

@Suite("Worker liveness markers")
struct WorkerLivenessTests {
    @Test("A live worker's marker is never taken for ended, in this process or another; an unlocked one is, once")
    func markers() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edda-liveness-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try WorkerLiveness(directory: directory, workerID: "orders-41-aa")
        let second = try WorkerLiveness(directory: directory, workerID: "orders/42 bb")
        #expect(first.endedWorkers().isEmpty)
        #expect(second.endedWorkers().isEmpty)

        // A marker nobody holds: its process has ended.
        _ = FileManager.default.createFile(atPath: directory + "/orders-40-cc.alive", contents: nil)
        let ended = first.endedWorkers()
        #expect(ended.map(\.workerID) == ["orders-40-cc"])
        // While the first holds it, no one else acts on it.
        #expect(second.endedWorkers().isEmpty)
        first.forget(ended[0])
        #expect(second.endedWorkers().isEmpty)

        // A clean shutdown leaves nothing to take over.
        second.remove()
        #expect(first.endedWorkers().isEmpty)
        first.remove()
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }
}
