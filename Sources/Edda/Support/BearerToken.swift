import Crypto

/// Checks of a shared secret sent by a client, for the HTTP routes and the viewer.
package enum BearerToken {
    /// Whether an `Authorization` header value is `Bearer <token>` for `token`. The scheme is
    /// case-insensitive (RFC 7235).
    package static func accepts(authorization header: String?, token: String) -> Bool {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return false }
        return matches(String(header.dropFirst(7)), token: token)
    }

    /// Whether `given` equals `token`. The comparison runs over the length of what was sent,
    /// without an early exit, so the time taken reveals neither the token nor its length.
    package static func matches(_ given: String, token: String) -> Bool {
        let given = Array(given.utf8)
        let expected = Array(token.utf8)
        guard !expected.isEmpty else { return false }
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        for index in given.indices { difference |= given[index] ^ expected[index % expected.count] }
        return difference == 0
    }

    /// A value derived from `token` to keep in a browser cookie instead of the token: the
    /// cookie jar never holds the token itself, and a leaked cookie is not the bearer token
    /// other routes (such as `EddaRoutes`) accept. `purpose` separates the values of different
    /// cookies. Compare a presented cookie with ``matches(_:token:)`` against this value.
    package static func cookieValue(for token: String, purpose: String) -> String {
        SHA256.hexDigest("edda-cookie-v1\u{0}\(purpose)\u{0}\(token)")
    }
}
