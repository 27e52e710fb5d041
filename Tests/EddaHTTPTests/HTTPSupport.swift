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

/// A quiet logger for test servers.
let quietLogger: Logger = {
    var logger = Logger(label: "test-http")
    logger.logLevel = .error
    return logger
}()

/// Runs a Hummingbird server on a free loopback port for the duration of `body`.
func withServer<T>(
    _ router: Router<BasicRequestContext>, _ body: (_ baseURL: String) async throws -> T
) async throws -> T {
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    let server = Application(
        router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
        logger: quietLogger)
    let group = ServiceGroup(services: [server], logger: quietLogger)
    let running = Task { try await group.run() }
    var iterator = ports.makeAsyncIterator()
    guard let port = await iterator.next() else { throw TestFailure("the server did not start") }
    do {
        let result = try await body("http://127.0.0.1:\(port)")
        await group.triggerGracefulShutdown()
        try await running.value
        return result
    } catch {
        await group.triggerGracefulShutdown()
        try? await running.value
        throw error
    }
}

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

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// An HTTP response as the tests look at it.
struct HTTPReply {
    let status: Int
    let headers: [(String, String)]
    let body: String
    var json: JSONValue? { JSONValue(jsonText: body) }
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

/// Sends one request with the shared client.
func httpRequest(
    _ url: String, method: HTTPMethod = .POST, headers: [(String, String)] = [], body: [UInt8]? = nil
) async throws -> HTTPReply {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(20))
    let collected = try await response.body.collect(upTo: 1 << 24)
    return HTTPReply(
        status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
        body: String(buffer: collected))
}

func httpRequest(_ url: String, method: HTTPMethod = .POST, headers: [(String, String)] = [], text: String) async throws -> HTTPReply {
    try await httpRequest(url, method: method, headers: headers, body: Array(text.utf8))
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
