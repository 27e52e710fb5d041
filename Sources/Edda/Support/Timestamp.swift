#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Conversions between `Date` and the text timestamps of the shared schema.
///
/// The schema stores timestamps as UTC text. Python Edda writes `YYYY-MM-DD HH:MM:SS` (SQLite
/// `datetime('now')`) or `YYYY-MM-DD HH:MM:SS.ffffff` (SQLAlchemy); this implementation always
/// writes the sub-second form, which sorts and compares correctly against both.
package enum Timestamp {
    /// `YYYY-MM-DD HH:MM:SS.ffffff` in UTC: the form written to the database.
    package static func database(_ date: Date) -> String {
        format(date, separator: UInt8(ascii: " "))
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`: the ISO 8601 form used in JSON payloads.
    package static func iso8601(_ date: Date) -> String {
        format(date, separator: UInt8(ascii: "T")) + "+00:00"
    }

    /// Writes `YYYY-MM-DD?HH:MM:SS.ffffff` (26 bytes) straight into the string's storage:
    /// every store operation writes one or more timestamps.
    private static func format(_ date: Date, separator: UInt8) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = Int(interval.rounded(.down))
        var micros = Int(((interval - Double(seconds)) * 1_000_000).rounded())
        if micros >= 1_000_000 {
            seconds += 1
            micros -= 1_000_000
        }
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        let year = max(Int(parts.tm_year) + 1900, 0)
        let yearWidth = year < 10_000 ? 4 : String(year).count
        return String(unsafeUninitializedCapacity: yearWidth + 22) { buffer in
            var end = 0
            func put(_ value: Int, width: Int, then separator: UInt8?) {
                var value = value
                for index in stride(from: end + width - 1, through: end, by: -1) {
                    buffer[index] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
                end += width
                if let separator {
                    buffer[end] = separator
                    end += 1
                }
            }
            put(year, width: yearWidth, then: UInt8(ascii: "-"))
            put(Int(parts.tm_mon) + 1, width: 2, then: UInt8(ascii: "-"))
            put(Int(parts.tm_mday), width: 2, then: separator)
            put(Int(parts.tm_hour), width: 2, then: UInt8(ascii: ":"))
            put(Int(parts.tm_min), width: 2, then: UInt8(ascii: ":"))
            put(Int(parts.tm_sec), width: 2, then: UInt8(ascii: "."))
            put(micros, width: 6, then: nil)
            return end
        }
    }

    /// Parses the forms the sibling implementations write: a space or `T` between date and time,
    /// optional fraction, and an optional `Z` or `±HH:MM` offset. Returns `nil` for anything else.
    package static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 19 else { return nil }
        func number(_ from: Int, _ count: Int) -> Int? {
            var value = 0
            for index in from..<(from + count) {
                let byte = bytes[index]
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard bytes[4] == 45, bytes[7] == 45, bytes[10] == 32 || bytes[10] == 84,
              bytes[13] == 58, bytes[16] == 58,
              let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2)
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < bytes.count, bytes[index] == 46 {
            index += 1
            var scale = 0.1
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                fraction += Double(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var offsetSeconds = 0
        if index < bytes.count {
            switch bytes[index] {
            case 90: // Z
                index += 1
            case 43, 45: // + or -
                guard bytes.count >= index + 6, bytes[index + 3] == 58,
                      let hours = number(index + 1, 2), let minutes = number(index + 4, 2)
                else { return nil }
                offsetSeconds = (hours * 3600 + minutes * 60) * (bytes[index] == 43 ? 1 : -1)
                index += 6
            default:
                return nil
            }
        }
        guard index == bytes.count else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let epoch = timegm(&parts)
        return Date(timeIntervalSince1970: Double(epoch - offsetSeconds) + fraction)
    }
}
