import AsyncHTTPClient
import Edda
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// A quiet logger for test servers.
public let quietLogger: Logger = {
    var logger = Logger(label: "test-http")
    logger.logLevel = .error
    return logger
}()

/// Runs a Hummingbird server on a free loopback port for the duration of `body`.
public func withServer<T>(
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

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An HTTP response as the tests look at it.
public struct HTTPReply: Sendable {
    public let status: Int
    public let headers: [(String, String)]
    public let body: String
    public var json: JSONValue? { JSONValue(jsonText: body) }
    public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

/// A client that returns redirects instead of following them (to read a redirect's headers,
/// such as a `Set-Cookie`). Lives as long as the test process.
private let nonRedirectingClient = HTTPClient(
    eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))

/// Sends one request with the shared client (which follows redirects, unless
/// `followRedirects` is `false`).
public func httpRequest(
    _ url: String, method: HTTPMethod = .POST, headers: [(String, String)] = [], body: [UInt8]? = nil,
    followRedirects: Bool = true
) async throws -> HTTPReply {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
    let client = followRedirects ? HTTPClient.shared : nonRedirectingClient
    let response = try await client.execute(request, timeout: .seconds(20))
    let collected = try await response.body.collect(upTo: 1 << 24)
    return HTTPReply(
        status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
        body: String(buffer: collected))
}

public func httpRequest(_ url: String, method: HTTPMethod = .POST, headers: [(String, String)] = [], text: String) async throws -> HTTPReply {
    try await httpRequest(url, method: method, headers: headers, body: Array(text.utf8))
}

