import Crypto
@testable import Edda
import Testing

@Suite("Digests")
struct DigestTests {
    @Test("source_hash digests are SHA-256 in lowercase hex, as Python's hashlib writes them")
    func sha256Hex() {
        #expect(SHA256.hexDigest("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hexDigest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hexDigest("café") == "850f7dc43910ff890f8879c0ed26fe697c93a067ad93a7d50f466a7028a9bf4e")
    }
}
