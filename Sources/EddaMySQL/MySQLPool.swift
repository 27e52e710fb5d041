import Edda
import Foundation
import Synchronization

/// A small pool of ``MySQLConnection``s, opened on demand up to
/// ``MySQLConfiguration/maximumConnections``. A caller that finds every connection busy waits
/// for one, at most `acquireTimeout`.
final class MySQLPool: Sendable {
    private struct State {
        var idle: [MySQLConnection] = []
        var open = 0
        var waiters: [(id: Int, continuation: CheckedContinuation<MySQLConnection?, any Error>)] = []
        var nextWaiter = 0
        var closed = false
    }

    private let state = Mutex(State())
    let configuration: MySQLConfiguration
    let acquireTimeout: Duration

    init(configuration: MySQLConfiguration, acquireTimeout: Duration) {
        self.configuration = configuration
        self.acquireTimeout = acquireTimeout
    }

    /// Runs `body` on a pooled connection's thread.
    @discardableResult
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (MySQLConnection) throws -> T) async throws -> T {
        try await leasing { connection in try await connection.thread.run { try body(connection) } }
    }

    /// Holds a pooled connection while `body` runs (for work that spans several calls on one
    /// session, such as holding a named lock); `body` runs each call with
    /// `connection.thread.run`.
    func leasing<T: Sendable>(_ body: (MySQLConnection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        let result: Result<T, any Error>
        do {
            result = .success(try await body(connection))
        } catch {
            result = .failure(error)
        }
        await release(connection)
        return try result.get()
    }

    private enum Acquired {
        case connection(MySQLConnection)
        case mayOpen
        case wait(Int)
    }

    private func acquire() async throws -> MySQLConnection {
        let first = try state.withLock { state -> Acquired in
            guard !state.closed else { throw MySQLError(code: 2006, message: "the store is closed", statement: nil) }
            if let connection = state.idle.popLast() { return .connection(connection) }
            if state.open < configuration.maximumConnections {
                state.open += 1
                return .mayOpen
            }
            state.nextWaiter += 1
            return .wait(state.nextWaiter)
        }
        switch first {
        case .connection(let connection):
            // A connection idle for a while may have been closed by the server (a restart,
            // `wait_timeout`): checked first, and replaced in its place if so, so that the
            // operation does not fail on a stale connection.
            guard ContinuousClock.now - connection.returnedAt > Self.checkAfterIdle else { return connection }
            if (try? await connection.thread.run { connection.isAlive() }) == true { return connection }
            await connection.close()
            return try await openCounted()
        case .mayOpen:
            return try await openCounted()
        case .wait(let id):
            let timeout = acquireTimeout
            let timer = Task { [weak self] in
                try? await Task.sleep(for: timeout)
                guard !Task.isCancelled else { return }
                self?.expire(id)
            }
            defer { timer.cancel() }
            let handed = try await withCheckedThrowingContinuation { continuation in
                state.withLock { $0.waiters.append((id, continuation)) }
            }
            // `nil`: a broken connection was dropped, and this waiter may open its replacement.
            if let handed { return handed }
            return try await openCounted()
        }
    }

    /// Opens a connection already counted in `open`; uncounts it if opening fails.
    private func openCounted() async throws -> MySQLConnection {
        do {
            return try await MySQLConnection.open(configuration, name: "edda-mysql")
        } catch {
            handOn(nil)
            throw error
        }
    }

    private func expire(_ id: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<MySQLConnection?, any Error>? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index).continuation
        }
        waiter?.resume(throwing: MySQLError(
            code: 2013,
            message: "no MySQL connection became free within \(acquireTimeout); raise pool_size (now \(configuration.maximumConnections)) "
                + "or keep slow work out of mysqlTransaction blocks",
            statement: nil))
    }

    /// How long a connection may sit idle before it is checked on its next use.
    static let checkAfterIdle = Duration.seconds(2)

    private func release(_ connection: MySQLConnection) async {
        connection.returnedAt = .now
        if connection.isBroken {
            await connection.close()
            handOn(nil)
        } else {
            handOn(connection)
        }
    }

    /// Gives a returned connection (or, for `nil`, the right to open one) to the first waiter,
    /// or keeps it.
    private func handOn(_ connection: MySQLConnection?) {
        let (waiter, closing) = state.withLock { state -> (CheckedContinuation<MySQLConnection?, any Error>?, MySQLConnection?) in
            if state.closed {
                state.open -= 1
                return (nil, connection)
            }
            if !state.waiters.isEmpty { return (state.waiters.removeFirst().continuation, nil) }
            if let connection {
                state.idle.append(connection)
            } else {
                state.open -= 1
            }
            return (nil, nil)
        }
        waiter?.resume(returning: connection)
        if let closing { Task { await closing.close() } }
    }

    /// Closes every idle connection; busy ones close when returned.
    func close() async {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            defer {
                state.open -= state.idle.count
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters)
        }
        for waiter in waiters {
            waiter.continuation.resume(throwing: MySQLError(code: 2006, message: "the store is closed", statement: nil))
        }
        for connection in idle { await connection.close() }
    }
}
