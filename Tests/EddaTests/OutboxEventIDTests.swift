@testable import Edda
import Foundation
import Testing

@Suite("Outbox event IDs")
struct OutboxEventIDTests {
    @Test("IDs written here are version-8 UUIDs marked edda5f, unique, and match the claim pattern")
    func ownIDs() throws {
        let ids = (0..<2_000).map { _ in OutboxEventID.make() }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            let uuid = try #require(UUID(uuidString: id))
            #expect(uuid.uuidString.lowercased() == id)
            let characters = Array(id)
            #expect(characters[14] == "8", "version: \(id)")
            #expect("89ab".contains(characters[19]), "variant: \(id)")
            #expect(id.split(separator: "-").last?.hasPrefix("edda5f") == true)
            #expect(OutboxEventID.isWrittenHere(id))
        }
        #expect(OutboxEventID.likePattern.count == 36)
    }

    @Test("Python Edda's IDs (version-4 UUIDs) and other text never match")
    func foreignIDs() {
        for _ in 0..<2_000 {
            let pythonStyle = UUID().uuidString.lowercased()
            #expect(!OutboxEventID.isWrittenHere(pythonStyle))
        }
        // A version-4 UUID that happens to have the marker is still not ours.
        #expect(!OutboxEventID.isWrittenHere("3f2b8c1e-94d0-4a41-b2c7-edda5f03a9d2"))
        #expect(OutboxEventID.isWrittenHere("3f2b8c1e-94d0-8a41-b2c7-edda5f03a9d2"))
        #expect(!OutboxEventID.isWrittenHere("3f2b8c1e-94d0-8a41-b2c7-edda5f03a9d"))
        #expect(!OutboxEventID.isWrittenHere(""))
    }
}
