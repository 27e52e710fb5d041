import Edda
import EddaHTTP
import EddaTesting
import Foundation
import Testing
import TestSupport

@Suite("Cross-site protection and identifiers on the Edda routes", .timeLimit(.minutes(2)))
struct CrossSiteTests {
    /// Registers a workflow that waits forever and starts one instance of it.
    static func waitingInstance(_ app: EddaApp) async throws -> String {
        let flow = app.register(workflow: "patient") { (_: NoValue, context) -> String in
            _ = try await context.waitEvent("never", as: NoValue.self)
            return "done"
        }
        return try await app.start(flow, input: NoValue())
    }

    @Test("Another site's page cannot cancel: untrusted Origin, Sec-Fetch-Site cross-site and form bodies get 403")
    func crossSiteCancel() async throws {
        try await withEddaServer { app, base, _ in
            let id = try await Self.waitingInstance(app)
            let refused: [[(String, String)]] = [
                // An HTML form on http://evil.example, as a browser sends it.
                [("Origin", "http://evil.example"), ("Content-Type", "application/x-www-form-urlencoded")],
                [("Origin", "http://evil.example")],
                [("Origin", "null")],
                // DNS rebinding: the attacker's name resolves to loopback; Host and Origin agree.
                [("Host", "evil.example"), ("Origin", "http://evil.example")],
                [("Sec-Fetch-Site", "cross-site")],
                // Form content types, even from a browser that did not say where it came from.
                [("Content-Type", "application/x-www-form-urlencoded")],
                [("Content-Type", "multipart/form-data; boundary=x")],
                [("Content-Type", "text/plain;charset=UTF-8")],
            ]
            for headers in refused {
                let reply = try await httpRequest("\(base)/cancel/\(id)", headers: headers, text: headers.isEmpty ? "" : "a=b")
                #expect(reply.status == 403, "\(headers)")
                #expect(reply.json?["error_type"] == "CrossSiteRequestRefused", "\(headers): \(reply.body)")
                #expect((reply.json?["error"]?.stringValue ?? "").isEmpty == false)
            }
            #expect(try await app.instance(id)?.status == .waitingForMessage)

            // The service's own pages (loopback, any port) and clients without Origin may cancel.
            let port = try #require(URL(string: base)?.port)
            let own = try await httpRequest(
                "\(base)/cancel/\(id)", headers: [("Origin", "http://127.0.0.1:\(port)"), ("Sec-Fetch-Site", "same-origin")])
            #expect(own.status == 200)
            #expect(try await app.instance(id)?.status == .cancelled)
            let other = try await Self.waitingInstance(app)
            let script = try await httpRequest("\(base)/cancel/\(other)", headers: [("Content-Type", "application/json")], text: "{}")
            #expect(script.status == 200)
        }
    }

    @Test("CloudEvents from servers (no Origin) keep working; pages of untrusted origins are refused and store nothing")
    func crossSiteEvents() async throws {
        try await withEddaServer { _, base, database in
            var reply = try await httpRequest("\(base)/events", headers: [structured], text: structuredEvent(type: "t", id: "server"))
            #expect(reply.status == 202)
            for headers in [[("Origin", "https://evil.example")], [("Sec-Fetch-Site", "cross-site")], [("Sec-Fetch-Site", "same-site")]] {
                reply = try await httpRequest(
                    "\(base)/events", headers: [structured] + headers, text: structuredEvent(type: "t", id: "page-\(headers)"))
                #expect(reply.status == 403, "\(headers)")
                #expect(reply.json?["error_type"] == "CrossSiteRequestRefused")
            }
            #expect(try count(database, "channel_messages") == 1)
            reply = try await httpRequest(
                "\(base)/events", headers: [structured, ("Origin", "http://localhost:3000")], text: structuredEvent(type: "t", id: "local"))
            #expect(reply.status == 202)
        }
    }

    @Test("Trusted hosts and origins are configurable, and protection can be turned off")
    func configuration() async throws {
        var routes = EddaRoutes.Configuration()
        routes.crossSiteProtection.trustedOrigins = ["https://ops.example.com"]
        routes.crossSiteProtection.trustedHosts = ["console.example.com:8443"]
        try await withEddaServer(routes: routes) { _, base, _ in
            let cases: [(origin: String, status: Int)] = [
                ("https://ops.example.com", 202), ("https://ops.example.com:443", 202), ("http://ops.example.com", 403),
                ("https://console.example.com:8443", 202), ("https://console.example.com", 403),
                ("http://127.0.0.1", 403),  // loopback is no longer listed
            ]
            for (index, item) in cases.enumerated() {
                let reply = try await httpRequest(
                    "\(base)/events", headers: [structured, ("Origin", item.origin)], text: structuredEvent(type: "t", id: "e\(index)"))
                #expect(reply.status == item.status, "\(item.origin)")
            }
        }
        var open = EddaRoutes.Configuration()
        open.crossSiteProtection = .disabled
        try await withEddaServer(routes: open) { _, base, _ in
            let reply = try await httpRequest(
                "\(base)/events", headers: [structured, ("Origin", "https://evil.example")], text: structuredEvent(type: "t", id: "x"))
            #expect(reply.status == 202)
        }
    }

    @Test("Origins are compared by scheme, host and port", arguments: [
        ("http://localhost:8080", nil as String?, true), ("HTTP://LOCALHOST", nil, true), ("http://[::1]:9000", nil, true),
        ("http://127.0.0.1.evil.example", nil, false), ("http://localhost.evil.example", nil, false),
        ("http://evil.example", "same-origin", false), ("null", nil, false), ("not an origin", nil, false),
        (nil, "cross-site", false), (nil, "same-site", false), (nil, "same-origin", true), (nil, "none", true), (nil, nil, true),
    ] as [(String?, String?, Bool)])
    func originRules(_ origin: String?, _ fetchSite: String?, _ allowed: Bool) {
        #expect((CrossSiteProtection().refusal(origin: origin, fetchSite: fetchSite) == nil) == allowed)
    }

    @Test("Invalid identifiers in the cancel path and in events are refused with 400 naming the field; nothing is stored")
    func invalidIdentifiers() async throws {
        try await withEddaServer { _, base, database in
            var reply = try await httpRequest("\(base)/cancel/a%0Ab")
            #expect(reply.status == 400)
            #expect(reply.json?["field"] == "instance_id")
            #expect(reply.json?["error"]?.stringValue?.contains("control characters") == true)
            reply = try await httpRequest("\(base)/cancel/\(String(repeating: "x", count: 256))")
            #expect(reply.status == 400)
            #expect(reply.json?["field"] == "instance_id")

            reply = try await httpRequest("\(base)/events", headers: [structured], text: structuredEvent(type: #"order\nshipped"#, id: "x"))
            #expect(reply.status == 400)
            #expect(reply.json?["field"] == "type")
            #expect(reply.json?["error_type"] == "InvalidIdentifierError")
            reply = try await httpRequest(
                "\(base)/events", headers: [structured],
                text: structuredEvent(type: "t", id: "y", extra: #""eddainstanceid":"a\u0000b""#))
            #expect(reply.status == 400)
            #expect(reply.json?["field"] == "eddainstanceid")
            reply = try await httpRequest(
                "\(base)/events", headers: [("Content-Type", "application/cloudevents-batch+json")],
                text: "[\(structuredEvent(type: "t", id: "ok")), \(structuredEvent(type: "t", id: String(repeating: "i", count: 300)))]")
            #expect(reply.status == 400)
            #expect(reply.json?["field"] == "id")
            #expect(reply.json?["error"]?.stringValue?.hasPrefix("Event 1 of the batch: ") == true)
            #expect(try count(database, "channel_messages") == 0)
        }
    }
}
