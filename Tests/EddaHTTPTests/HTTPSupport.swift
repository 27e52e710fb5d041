import AsyncHTTPClient
import Edda
import EddaHTTP
import EddaTesting
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import NIOHTTP1
import Testing
import TestSupport

/// Runs an Edda app on a temporary database with its routes mounted at `path`.
func withEddaServer<T>(
    path: String = "workflows", routes: EddaRoutes.Configuration = .init(),
    configure: (inout EddaApp.Configuration) -> Void = { _ in },
    _ body: (_ app: EddaApp, _ baseURL: String, _ database: TemporaryDatabase) async throws -> T
) async throws -> T {
    try await TemporaryDatabase.with { database in
        try await database.withApp(configure: configure) { app in
            let router = Router()
            EddaRoutes(app: app, configuration: routes).addRoutes(to: router.group(RouterPath(path)))
            return try await withServer(router) { baseURL in
                try await body(app, baseURL + (path.isEmpty ? "" : "/" + path), database)
            }
        }
    }
}

let structured = ("Content-Type", "application/cloudevents+json")

/// A structured-mode event body.
func structuredEvent(type: String, id: String, source: String = "/test", data: String? = nil, extra: String = "") -> String {
    var text = #"{"specversion":"1.0","id":"\#(id)","source":"\#(source)","type":"\#(type)""#
    if let data { text += #","data":\#(data)"# }
    if !extra.isEmpty { text += "," + extra }
    return text + "}"
}

/// A local CloudEvents broker: records what it receives and answers with the statuses it is
/// given, in turn (the last one repeats).
final class TestBroker: Sendable {
    struct Received: Sendable {
        let contentType: String
        let body: String
        var json: JSONValue? { JSONValue(jsonText: body) }
    }

    private let state: Mutex<(received: [Received], statuses: [Int])>
    private let replyBody: String

    init(statuses: [Int] = [202], replyBody: String? = nil) {
        state = Mutex(([], statuses))
        self.replyBody = replyBody ?? ""
    }

    var received: [Received] { state.withLock { $0.received } }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("events") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let status = self.state.withLock { state -> Int in
                state.received.append(Received(
                    contentType: request.headers[.contentType] ?? "", body: String(buffer: body)))
                return state.statuses.count > 1 ? state.statuses.removeFirst() : state.statuses[0]
            }
            let text = self.replyBody.isEmpty ? "status \(status)" : self.replyBody
            return Response(status: .init(code: status), body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        return router
    }
}

extension Array where Element == UInt8 {
    init(_ text: String) { self = Array(text.utf8) }
}
