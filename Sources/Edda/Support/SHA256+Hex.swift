import Crypto
import Foundation

extension SHA256 {
    /// The lowercase hex digest of the UTF-8 bytes of `text` (workflow definitions'
    /// `source_hash`, event deduplication keys, cookie values).
    static func hexDigest(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
