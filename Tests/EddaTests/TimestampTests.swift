import Foundation
import Testing

@testable import Edda

@Suite("Timestamps of the shared schema")
struct TimestampTests {
    @Test("The database form and the ISO 8601 form, to the microsecond, in UTC")
    func formats() {
        let date = Date(timeIntervalSince1970: 1_764_601_080.012_345)  // 2025-12-01 14:58:00.012345 UTC
        #expect(Timestamp.database(date) == "2025-12-01 14:58:00.012345")
        #expect(Timestamp.iso8601(date) == "2025-12-01T14:58:00.012345+00:00")
        #expect(Timestamp.database(Date(timeIntervalSince1970: 0)) == "1970-01-01 00:00:00.000000")
        #expect(Timestamp.database(Date(timeIntervalSince1970: 86_399.999_999_7)) == "1970-01-02 00:00:00.000000")
        #expect(Timestamp.database(Date(timeIntervalSince1970: 253_402_300_799)) == "9999-12-31 23:59:59.000000")
        #expect(Timestamp.database(Date(timeIntervalSince1970: 253_402_300_800)) == "10000-01-01 00:00:00.000000")
    }

    @Test("What is written parses back to the same microsecond")
    func roundTrip() throws {
        for interval in [0, 1.5, 1_764_601_080.012_345, 4_102_444_800.999_999] {
            let date = Date(timeIntervalSince1970: interval)
            let parsed = try #require(Timestamp.parse(Timestamp.database(date)))
            #expect(abs(parsed.timeIntervalSince1970 - interval) < 0.000_001)
            #expect(Timestamp.parse(Timestamp.iso8601(date)) == parsed)
        }
    }
}
