import Edda
import EddaSQLite
import EddaTesting
import Foundation
import GRDB
import Testing
import TestSupport

/// The Quickstart's README, run exactly as written, in a fresh folder.
@Suite("Quickstart walk-through", .timeLimit(.minutes(2)))
struct QuickstartTests {
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("edda-quickstart").path

    /// The `swift run edda-quickstart …` lines of the Quickstart README, as argument lists.
    static func readmeRuns() throws -> [[String]] {
        let readme = try String(
            contentsOf: packageRoot.appendingPathComponent("Examples/Quickstart/README.md"), encoding: .utf8)
        return readme.split(separator: "\n").compactMap { line -> [String]? in
            guard line.hasPrefix("swift run edda-quickstart") else { return nil }
            let command = line.split(separator: "#").first ?? ""
            return command.split(separator: " ").dropFirst(3).map(String.init)
        }
    }

    @Test("The crash demo dies after a completed step, and the next run replays that step and runs the rest")
    func crashDemo() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "edda-quickstart not built at \(Self.binary)")
        let runs = try Self.readmeRuns()
        try #require(runs == [[], ["--crash"], []], "the README's walk-through changed: \(runs)")
        let folder = try TemporaryDatabase()
        defer { folder.remove() }
        let directory = URL(fileURLWithPath: folder.path).deletingLastPathComponent()
        var results: [CommandResult] = []
        for arguments in runs {
            results.append(try await onOwnThread { try runProgram(Self.binary, arguments, directory: directory) })
        }

        #expect(results[0].status == 0, "\(results[0].errors)")
        #expect(results[0].output.contains("itinerary: FL-LIS-1, HT-LIS, CAR-1"))

        let crash = results[1]
        #expect(crash.status != 0)
        #expect(crash.output.contains("▶ book_flight runs: flight to Porto"))
        #expect(crash.output.contains("✖ crashing inside book_hotel"))
        #expect(!crash.output.contains("▶ book_hotel runs"))

        let resume = results[2]
        #expect(resume.status == 0, "\(resume.errors)")
        #expect(resume.output.contains("↺ book_flight replayed from history (done before the crash; not run again): \"FL-POR-1\""))
        #expect(!resume.output.contains("▶ book_flight runs: flight to Porto"), "\(resume.output)")
        #expect(resume.output.contains("▶ book_hotel runs: hotel in Porto"))
        #expect(resume.output.contains("itinerary: FL-POR-1, HT-POR, CAR-1"))
        // The finished trips of the first run were read back, not run again.
        #expect(!resume.output.contains("▶ book_flight runs: flight to Lisbon"))

        // One history row per step, nothing recorded twice.
        let queue = try DatabaseQueue(path: directory.appendingPathComponent("quickstart.db").path)
        let rows = try await queue.read { database in
            try String.fetchAll(
                database,
                sql: "SELECT activity_id FROM workflow_history WHERE instance_id LIKE 'trip-porto-%' ORDER BY id")
        }
        #expect(rows == ["book_flight:1", "book_hotel:1", "rent_car:1"])
    }
}
