#if canImport(Glibc)
import Glibc
#endif
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

/// Sends `request` byte for byte over a new TCP connection to the loopback server at `baseURL`
/// and returns the response's status and text: for requests no HTTP client would send, such as
/// header values that are not UTF-8. The request should say `Connection: close`.
func rawHTTPExchange(_ baseURL: String, _ request: [UInt8]) throws -> (status: Int, text: String) {
    guard let port = URL(string: baseURL)?.port else { throw TestFailure("no port in \(baseURL)") }
    #if canImport(Glibc)
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let descriptor = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard descriptor >= 0 else { throw TestFailure("socket() failed") }
    defer { close(descriptor) }
    var timeout = timeval(tv_sec: 20, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw TestFailure("connect() to port \(port) failed") }
    var sent = 0
    while sent < request.count {
        let count = request[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { throw TestFailure("send() failed") }
        sent += count
    }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        response += buffer[..<count]
    }
    let text = String(decoding: response, as: UTF8.self)
    let statusLine = text.split(separator: "\r\n", maxSplits: 1).first ?? ""
    let parts = statusLine.split(separator: " ")
    guard parts.count >= 2, let status = Int(parts[1]) else { throw TestFailure("no HTTP response: \(text)") }
    return (status, text)
}
