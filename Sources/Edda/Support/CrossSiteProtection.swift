/// Protection of state-changing HTTP routes against requests made by other sites' pages:
/// cross-site request forgery (an HTML form on any website posting to your service through a
/// visitor's browser) and DNS rebinding (a hostile name resolved to your loopback address, so
/// that its pages look same-origin to the browser).
///
/// `EddaHTTP`'s routes and the viewer check every state-changing request with it, on by default.
/// Browsers send `Origin` with every cross-origin `POST` (and with same-origin ones too), and
/// modern browsers add `Sec-Fetch-Site`; servers and command-line tools send neither. So:
///
/// - a request with an `Origin` is allowed only if that origin is trusted: its host is in
///   ``trustedHosts`` (with any port, or the port given there) or the whole origin is in
///   ``trustedOrigins``. `Origin: null` (sandboxed frames, some redirects) is never trusted;
/// - a request without `Origin` whose `Sec-Fetch-Site` is `cross-site` or `same-site` is refused;
/// - a request with neither header (a server posting CloudEvents, `curl`) is allowed.
///
/// The request's own `Host` header is deliberately not trusted: under DNS rebinding it names the
/// attacker's domain, exactly like the attacker page's `Origin`.
///
/// ```swift
/// var protection = CrossSiteProtection()            // loopback pages only
/// protection.trustedOrigins = ["https://ops.example.com"]
/// protection.trustedHosts.append("orders.internal:8080")
/// ```
public struct CrossSiteProtection: Sendable, Hashable {
    /// Whether requests are checked at all. Turn it off only behind a proxy that performs the
    /// same check. Default `true`.
    public var isEnabled = true
    /// Host names (or addresses) whose pages are trusted, on any scheme: `"localhost"`,
    /// `"127.0.0.1"`, `"[::1]"`, `"ops.example.com"`. An entry with a port (`"ops.example.com:8443"`)
    /// trusts that port only; one without trusts every port. Default ``loopbackHosts``.
    public var trustedHosts: [String] = Self.loopbackHosts
    /// Whole origins whose pages are trusted (`"https://ops.example.com"`, scheme, host and
    /// port as the browser sends them in `Origin`). Default none.
    public var trustedOrigins: [String] = []

    /// The loopback names: `localhost`, `127.0.0.1` and `[::1]`.
    public static let loopbackHosts = ["localhost", "127.0.0.1", "[::1]"]

    /// The default: on, trusting pages served from the loopback names only.
    public init() {}

    /// Protection trusting `hosts` and `origins`.
    public init(trustedHosts: [String] = loopbackHosts, trustedOrigins: [String] = []) {
        self.trustedHosts = trustedHosts
        self.trustedOrigins = trustedOrigins
    }

    /// The default: on, trusting pages served from the loopback names only.
    public static var `default`: CrossSiteProtection { CrossSiteProtection() }

    /// No checks: for routes behind a proxy that refuses cross-site requests itself.
    public static var disabled: CrossSiteProtection {
        var protection = CrossSiteProtection()
        protection.isEnabled = false
        return protection
    }

    /// Why a request with these headers must be refused, or `nil` if it may proceed.
    ///
    /// - Parameters:
    ///   - origin: The request's `Origin` header, if any.
    ///   - fetchSite: The request's `Sec-Fetch-Site` header, if any.
    /// - Returns: A sentence for the refusal (`403`), naming the origin and how to trust it.
    public func refusal(origin: String?, fetchSite: String?) -> String? {
        guard isEnabled else { return nil }
        if let origin = origin?.trimmingASCIISpaces, !origin.isEmpty {
            if isTrusted(origin: origin) { return nil }
            return "The request came from a page on \(origin), which is not a trusted origin, so it was refused "
                + "(cross-site request protection). If that page is yours, add its origin to trustedOrigins "
                + "or its host to trustedHosts."
        }
        switch fetchSite?.trimmingASCIISpaces.lowercased() {
        case "cross-site", "same-site":
            return "The request came from another site's page (Sec-Fetch-Site: \(fetchSite ?? "")), so it was refused "
                + "(cross-site request protection)."
        default:
            return nil
        }
    }

    /// Whether `origin` (an `Origin` header value) is trusted.
    public func isTrusted(origin: String) -> Bool {
        guard let parsed = Origin(origin) else { return false }
        for entry in trustedOrigins {
            if let trusted = Origin(entry), trusted == parsed { return true }
        }
        for entry in trustedHosts {
            guard let host = HostEntry(entry) else { continue }
            if host.name == parsed.host && (host.port == nil || host.port == parsed.port) { return true }
        }
        return false
    }

    /// A parsed origin: scheme, lower-cased host (IPv6 in brackets) and effective port.
    struct Origin: Equatable {
        var scheme: String
        var host: String
        var port: Int?

        init?(_ text: String) {
            let text = text.trimmingASCIISpaces.lowercased()
            guard let separator = text.range(of: "://") else { return nil }
            scheme = String(text[..<separator.lowerBound])
            var authority = text[separator.upperBound...]
            // A configured origin may carry a trailing slash or path; an Origin header never does.
            if let slash = authority.firstIndex(of: "/") { authority = authority[..<slash] }
            guard !scheme.isEmpty, let parts = Self.split(authority), !parts.host.isEmpty else { return nil }
            host = parts.host
            port = parts.port ?? Self.defaultPort(scheme)
        }

        static func defaultPort(_ scheme: String) -> Int? {
            switch scheme {
            case "http", "ws": return 80
            case "https", "wss": return 443
            default: return nil
            }
        }

        /// `host[:port]` or `[v6]:port`; `nil` if the port is not a number.
        static func split(_ authority: Substring) -> (host: String, port: Int?)? {
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else { return nil }
                let host = String(authority[...close])
                let rest = authority[authority.index(after: close)...]
                if rest.isEmpty { return (host, nil) }
                guard rest.first == ":", let port = Int(rest.dropFirst()) else { return nil }
                return (host, port)
            }
            guard let colon = authority.lastIndex(of: ":") else { return (String(authority), nil) }
            guard let port = Int(authority[authority.index(after: colon)...]) else { return nil }
            return (String(authority[..<colon]), port)
        }
    }

    /// A ``trustedHosts`` entry: a host, and a port if one was given.
    struct HostEntry {
        var name: String
        var port: Int?

        init?(_ text: String) {
            var text = text.trimmingASCIISpaces.lowercased()
            if let separator = text.range(of: "://") { text = String(text[separator.upperBound...]) }
            if let slash = text.firstIndex(of: "/") { text = String(text[..<slash]) }
            // A bare IPv6 address (`::1`) is written in brackets in origins.
            if !text.hasPrefix("["), text.filter({ $0 == ":" }).count > 1 { text = "[\(text)]" }
            guard let parts = Origin.split(Substring(text)), !parts.host.isEmpty else { return nil }
            name = parts.host
            port = parts.port
        }
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (header value whitespace).
    fileprivate var trimmingASCIISpaces: String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }
}
