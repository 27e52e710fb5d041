import Edda
import Foundation

/// How to reach a MySQL or MariaDB server.
public struct MySQLConfiguration: Sendable, Hashable {
    /// The server's host name or address (ignored with ``unixSocket``).
    public var host: String
    /// The server's TCP port. Default 3306.
    public var port: Int
    /// The user to log in as.
    public var username: String
    /// The user's password, if it has one.
    public var password: String?
    /// The database holding the shared schema.
    public var database: String
    /// A Unix socket to connect through instead of TCP.
    public var unixSocket: String?
    /// Connections the store keeps open at most (each has a thread of its own). Default 10.
    public var maximumConnections: Int = 10
    /// How long connecting may take. Default 10 s.
    public var connectTimeout: Duration = .seconds(10)
    /// How long the server may take to answer one statement before the connection is given up
    /// (and the operation fails, to be retried by the engine). Default 30 s.
    public var readTimeout: Duration = .seconds(30)
    /// How long a statement waits for another transaction's row lock. Default 15 s.
    public var lockWaitTimeout: Duration = .seconds(15)
    /// Whether TLS is required (`?ssl=true` or `?ssl-mode=REQUIRED` in a URL).
    public var requiresTLS = false
    /// Whether the server's certificate is verified too (`?ssl-mode=VERIFY_CA` or
    /// `VERIFY_IDENTITY`); implies ``requiresTLS``.
    public var verifiesServerCertificate = false

    /// A server reached over TCP, with the defaults above for everything else.
    public init(host: String, port: Int = 3306, username: String, password: String? = nil, database: String) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// `mysql://user:password@host:3306/database` (also `mariadb://` and `mysql+aiomysql://`),
    /// with optional `?pool_size=N`, `connect_timeout=S`, `ssl=true`, `unix_socket=/path`.
    ///
    /// - Throws: ``Edda/EddaUsageError`` (`.invalidConfiguration`) for a URL that is not one.
    public init(url: String) throws {
        guard let components = URLComponents(string: url), let scheme = DatabaseURL.scheme(of: url),
              MySQLStore.urlSchemes.contains(scheme)
        else {
            throw EddaUsageError(
                .invalidConfiguration, "'\(url)' is not a MySQL URL; use mysql://user[:password]@host[:port]/database.")
        }
        let database = String(components.path.drop { $0 == "/" }).removingPercentEncoding ?? ""
        let items = components.queryItems ?? []
        let socket = items.first { $0.name == "unix_socket" }?.value
        guard let host = components.host, !host.isEmpty || socket != nil, !database.isEmpty else {
            throw EddaUsageError(
                .invalidConfiguration, "'\(url)' names no host or no database; use mysql://user[:password]@host[:port]/database.")
        }
        self.init(
            host: host.isEmpty ? "localhost" : host, port: components.port ?? 3306,
            username: components.user?.removingPercentEncoding ?? "root", password: components.password?.removingPercentEncoding,
            database: database)
        unixSocket = socket
        if let size = items.first(where: { $0.name == "pool_size" })?.value.flatMap(Int.init), size > 0 {
            maximumConnections = size
        }
        if let timeout = items.first(where: { $0.name == "connect_timeout" })?.value.flatMap(Int.init), timeout > 0 {
            connectTimeout = .seconds(timeout)
        }
        let ssl = items.first { $0.name == "ssl" || $0.name == "ssl-mode" || $0.name == "ssl_mode" }?.value?.lowercased()
        verifiesServerCertificate = ["verify_ca", "verify_identity"].contains(ssl ?? "")
        requiresTLS = verifiesServerCertificate || ["true", "1", "required", "require"].contains(ssl ?? "")
    }
}

/// A MySQL or MariaDB error, with the server's (or client library's) error number.
public struct MySQLError: Error, CustomStringConvertible, Sendable {
    /// The error number (`ER_DUP_ENTRY` is 1062; 2000–2999 are the client library's own).
    public let code: UInt32
    /// The server's or the client library's message.
    public let message: String
    /// The statement, with `?` for its values.
    public let statement: String?

    /// The number, the message and the statement.
    public var description: String {
        statement.map { "MySQL error \(code): \(message) (in: \($0.prefix(200)))" } ?? "MySQL error \(code): \(message)"
    }

    /// A duplicate key.
    public var isDuplicateKey: Bool { code == 1062 }
    /// The connection is unusable (the client library's errors: lost, gone, cannot connect).
    var breaksConnection: Bool { (2000..<3000).contains(code) }
}

/// A connection to MySQL or MariaDB, used by one operation at a time on a thread of its own.
///
/// Its calls block that thread until the server answers; they are made only from the closures
/// the store runs on the connection (``ActivityContext/mysqlTransaction(_:)`` for your own SQL),
/// never from Swift's cooperative thread pool.
public final class MySQLConnection: @unchecked Sendable {
    // Safe: `handle` is used only on `thread`, by one operation at a time (the pool hands a
    // connection to one caller until it is returned).
    let client: MariaDBClient
    private var handle: MariaDBClient.Handle?
    let thread: ConnectionThread
    /// Set when a call failed in a way that leaves the connection unusable.
    private(set) var isBroken = false
    /// When the pool last had it back.
    var returnedAt = ContinuousClock.now

    /// Whether the server still answers on this connection (`mysql_ping`); after a server
    /// restart or an idle timeout it does not, and the connection is marked broken.
    func isAlive() -> Bool {
        guard let handle, !isBroken else { return false }
        if client.ping(handle) == 0 { return true }
        isBroken = true
        return false
    }

    private init(client: MariaDBClient, thread: ConnectionThread) {
        self.client = client
        self.thread = thread
    }

    /// Connects on a new thread.
    static func open(_ configuration: MySQLConfiguration, name: String) async throws -> MySQLConnection {
        let client = try MariaDBClient.get()
        let thread = ConnectionThread(name: name, client: client)
        let connection = MySQLConnection(client: client, thread: thread)
        do {
            try await thread.run { try connection.connect(configuration) }
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    private func connect(_ configuration: MySQLConfiguration) throws {
        guard let handle = client.initialize(nil) else { throw MySQLError(code: 2008, message: "out of memory", statement: nil) }
        self.handle = handle
        func set(_ option: MariaDBClient.Option, seconds duration: Duration) {
            var value = UInt32(max(1, Int(duration.components.seconds)))
            _ = client.options(handle, option.rawValue, &value)
        }
        set(.connectTimeout, seconds: configuration.connectTimeout)
        set(.readTimeout, seconds: configuration.readTimeout)
        set(.writeTimeout, seconds: configuration.readTimeout)
        _ = "utf8mb4".withCString { client.options(handle, MariaDBClient.Option.charsetName.rawValue, $0) }
        if configuration.requiresTLS {
            var enforce: CChar = 1
            _ = client.options(handle, MariaDBClient.Option.sslEnforce.rawValue, &enforce)
        }
        if configuration.verifiesServerCertificate {
            var verify: CChar = 1
            _ = client.options(handle, MariaDBClient.Option.sslVerifyServerCert.rawValue, &verify)
        }
        let connected = configuration.host.withCString { host in
            configuration.username.withCString { user in
                withOptionalCString(configuration.password) { password in
                    withOptionalCString(configuration.database.isEmpty ? nil : configuration.database) { database in
                        withOptionalCString(configuration.unixSocket) { socket in
                            client.realConnect(
                                handle, configuration.unixSocket == nil ? host : nil, user, password, database,
                                UInt32(configuration.port), socket, MariaDBClient.Flag.foundRows | MariaDBClient.Flag.multiStatements)
                        }
                    }
                }
            }
        }
        guard connected != nil else { throw lastError(nil) }
        // UTC timestamps (the shared schema's), PostgreSQL's isolation level (each statement
        // sees what committed before it), and a bound on waiting for another transaction's row
        // lock below the read timeout.
        try execute("SET time_zone = '+00:00', innodb_lock_wait_timeout = \(unescaped: String(max(1, Int(configuration.lockWaitTimeout.components.seconds))))")
        try execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    }

    private func lastError(_ query: MySQLQuery?) -> MySQLError {
        guard let handle else { return MySQLError(code: 2006, message: "not connected", statement: query?.description) }
        let code = client.errno(handle)
        let message = client.error(handle).map { String(cString: $0) } ?? "unknown error"
        let error = MySQLError(code: code, message: message, statement: query?.description)
        if error.breaksConnection { isBroken = true }
        return error
    }

    /// Closes the connection and ends its thread.
    func close() async {
        _ = try? await thread.run {
            if let handle = self.handle { self.client.close(handle) }
            self.handle = nil
        }
        thread.stop()
    }

    // MARK: - Statements

    /// The text of `query` with its values escaped for this connection.
    func render(_ query: MySQLQuery) throws -> String {
        guard let handle else { throw lastError(query) }
        var text = ""
        func literal(_ value: MySQLValue) {
            switch value {
            case .null: text += "NULL"
            case .integer(let number): text += String(number)
            case .double(let number):
                text += number.isFinite ? "\(number)" : "NULL"
            case .timestamp(let date): text += "'" + MySQLValue.timestampText(date) + "'"
            case .bytes(let bytes):
                text += bytes.isEmpty ? "''" : "X'" + Self.hex(bytes) + "'"
            case .text(let string):
                var utf8 = Array(string.utf8)
                let length = utf8.count
                var escaped = [CChar](repeating: 0, count: length * 2 + 1)
                utf8.append(0)
                let written = utf8.withUnsafeBufferPointer { source in
                    source.withMemoryRebound(to: CChar.self) { source in
                        client.realEscapeString(handle, &escaped, source.baseAddress!, UInt(length))
                    }
                }
                text += "'"
                text += String(decoding: escaped[0..<Int(written)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                text += "'"
            }
        }
        for part in query.parts {
            switch part {
            case .sql(let sql): text += sql
            case .value(let value): literal(value)
            case .list(let values):
                text += "("
                if values.isEmpty { text += "NULL" }
                for (index, value) in values.enumerated() {
                    if index > 0 { text += ", " }
                    literal(value)
                }
                text += ")"
            }
        }
        return text
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// `bytes` as upper-case hexadecimal digits.
    static func hex(_ bytes: [UInt8]) -> String {
        var digits: [UInt8] = []
        digits.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            digits.append(hexDigits[Int(byte >> 4)])
            digits.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: digits, as: UTF8.self)
    }

    /// Runs a statement; returns how many rows it matched (changed, inserted or deleted).
    @discardableResult
    public func execute(_ query: MySQLQuery) throws -> Int {
        try run(query).affectedRows
    }

    /// Runs a statement and returns its rows.
    public func query(_ query: MySQLQuery) throws -> [MySQLRow] {
        try run(query).rows
    }

    /// Transactions begun with ``transaction(_:)`` (or by the store) and not yet ended.
    private var transactionDepth = 0

    /// Runs `body` in a transaction: committed if it returns, rolled back if it throws. Inside
    /// another transaction (your SQL in a step's transaction, ``ActivityContext/mysqlTransaction(_:)``)
    /// it is a savepoint of that one: rolled back alone if `body` throws, committed only with
    /// the outer transaction. (A `START TRANSACTION` of your own there would commit the step's
    /// transaction early; use this instead.)
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        let savepoint = transactionDepth == 0 ? nil : "edda_savepoint_\(transactionDepth)"
        try execute(savepoint.map { "SAVEPOINT \(unescaped: $0)" } ?? "START TRANSACTION")
        transactionDepth += 1
        defer { transactionDepth -= 1 }
        do {
            let result = try body()
            try execute(savepoint.map { "RELEASE SAVEPOINT \(unescaped: $0)" } ?? "COMMIT")
            return result
        } catch {
            rollBack(savepoint.map { "ROLLBACK TO SAVEPOINT \(unescaped: $0)" } ?? "ROLLBACK")
            throw error
        }
    }

    /// The rows a statement returned and how many it changed.
    struct Outcome {
        var rows: [MySQLRow] = []
        var affectedRows = 0
    }

    func run(_ query: MySQLQuery) throws -> Outcome {
        try runAll([query])[0]
    }

    /// Sends `statements` as one text, in one round trip, and returns each one's outcome. If
    /// one fails, the server runs none after it: the error is thrown (after the results before
    /// it are read), and a transaction the batch began is still open.
    func runAll(_ statements: [MySQLQuery]) throws -> [Outcome] {
        var text = ""
        for (index, statement) in statements.enumerated() {
            if index > 0 { text += ";\n" }
            text += try render(statement)
        }
        guard let handle else { throw lastError(statements.first) }
        // Escaped values hold no NUL byte, so the text is one C string.
        let status = text.withCString { client.realQuery(handle, $0, UInt(text.utf8.count)) }
        guard status == 0 else { throw lastError(statements.first) }
        var outcomes: [Outcome] = []
        while true {
            outcomes.append(try readResult(handle, statements[min(outcomes.count, statements.count - 1)]))
            let next = client.nextResult(handle)
            if next == -1 { break }
            if next > 0 { throw lastError(statements[min(outcomes.count, statements.count - 1)]) }
        }
        return outcomes
    }

    /// The current result of the last text sent.
    private func readResult(_ handle: MariaDBClient.Handle, _ query: MySQLQuery) throws -> Outcome {
        guard let result = client.storeResult(handle) else {
            if client.fieldCount(handle) != 0 { throw lastError(query) }
            return Outcome(affectedRows: Int(truncatingIfNeeded: client.affectedRows(handle)))
        }
        defer { client.freeResult(result) }
        let count = Int(client.numFields(result))
        var names: [String: Int] = [:]
        for index in 0..<count {
            // `MYSQL_FIELD` begins with `char *name` in every Connector/C version.
            if let field = client.fetchFieldDirect(result, UInt32(index)),
               let name = field.load(as: UnsafePointer<CChar>?.self) {
                names[String(cString: name)] = index
            }
        }
        let columns = MySQLRow.Columns(names: names)
        var outcome = Outcome()
        while let row = client.fetchRow(result) {
            guard let lengths = client.fetchLengths(result) else { break }
            var values: [[UInt8]?] = []
            values.reserveCapacity(count)
            for index in 0..<count {
                if let pointer = row[index] {
                    values.append(Array(UnsafeRawBufferPointer(start: pointer, count: Int(lengths[index]))))
                } else {
                    values.append(nil)
                }
            }
            outcome.rows.append(MySQLRow(columns: columns, values: values))
        }
        return outcome
    }

    /// Runs `statements` as one transaction: `START TRANSACTION` and the statements in one round
    /// trip, then, once every result has been read and `commits` accepted them, `COMMIT` in a
    /// second; otherwise `ROLLBACK`. Returns each statement's outcome. On an error the
    /// transaction is rolled back and the error thrown.
    ///
    /// `COMMIT` is never part of the batch. A server whose client disappears in the middle of a
    /// batch (a worker killed while it suspends) may go on to the batch's end without the
    /// batch's own guards holding: with `COMMIT` in the batch, MariaDB 10.11 committed a
    /// suspension's status change without the timer row that the same batch inserts only if the
    /// status change matched (`@edda_matched`), and the instance waited for a timer that did not
    /// exist. A transaction that only a live client that read every result can commit is rolled
    /// back whenever the client dies first.
    func transactionBatch(_ statements: [MySQLQuery], commitsIf commits: ([Outcome]) throws -> Bool = { _ in true }) throws -> [Outcome] {
        do {
            let outcomes = Array(try runAll(["START TRANSACTION"] + statements).dropFirst())
            try execute(try commits(outcomes) ? "COMMIT" : "ROLLBACK")
            return outcomes
        } catch {
            rollBack("ROLLBACK")
            throw error
        }
    }

    /// Rolls back after an error. A connection whose rollback failed is not used again: its
    /// transaction's state is unknown, and the next `START TRANSACTION` on it would commit
    /// whatever the failed transaction had written so far. Closing it makes the server roll
    /// that back.
    private func rollBack(_ statement: MySQLQuery) {
        guard !isBroken else { return }
        do {
            try execute(statement)
        } catch {
            isBroken = true
        }
    }
}

private func withOptionalCString<T>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> T) -> T {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}

/// A row a statement returned, its values as the server sent them (text, or bytes for binary
/// columns).
public struct MySQLRow: Sendable {
    final class Columns: Sendable {
        let names: [String: Int]
        init(names: [String: Int]) { self.names = names }
    }

    let columns: Columns
    let values: [[UInt8]?]

    /// Whether the result has a column named `column`.
    public func contains(_ column: String) -> Bool {
        columns.names[column] != nil
    }

    /// The raw value of `column`; `nil` for SQL `NULL`.
    public func bytes(_ column: String) throws -> [UInt8]? {
        guard let index = columns.names[column] else {
            throw MySQLError(code: 0, message: "no column '\(column)' in the result", statement: nil)
        }
        return values[index]
    }

    /// `column` as text; `nil` for `NULL`.
    public func string(_ column: String) throws -> String? {
        try bytes(column).map { String(decoding: $0, as: UTF8.self) }
    }

    /// `column` as an integer; `nil` for `NULL`.
    public func int(_ column: String) throws -> Int? {
        guard let text = try string(column) else { return nil }
        guard let value = Int(text) else {
            throw MySQLError(code: 0, message: "column '\(column)' holds '\(text.prefix(40))', not an integer", statement: nil)
        }
        return value
    }

    /// `column` (a `TIMESTAMP` or `DATETIME`, in the session's UTC) as a date; `nil` for `NULL`.
    public func date(_ column: String) throws -> Date? {
        guard let text = try string(column) else { return nil }
        guard let value = Timestamp.parse(text) else {
            throw MySQLError(code: 0, message: "column '\(column)' holds '\(text.prefix(40))', not a timestamp", statement: nil)
        }
        return value
    }

    /// A column that may not be `NULL`.
    func required<T>(_ column: String, _ read: (String) throws -> T?) throws -> T {
        guard let value = try read(column) else {
            throw MySQLError(code: 0, message: "column '\(column)' is NULL", statement: nil)
        }
        return value
    }
}

/// A MySQL row, read as the core reads stored rows.
struct MySQLStoredRow: StoredRow {
    let row: MySQLRow
    init(_ row: MySQLRow) { self.row = row }

    func text(_ column: String) throws -> String? { row.contains(column) ? try row.string(column) : nil }
    func integer(_ column: String) throws -> Int? { row.contains(column) ? try row.int(column) : nil }
    func timestamp(_ column: String) throws -> Date? { row.contains(column) ? try row.date(column) : nil }
    func bytes(_ column: String) throws -> [UInt8]? { row.contains(column) ? try row.bytes(column) : nil }
}

/// The thread a connection's blocking calls run on.
final class ConnectionThread: @unchecked Sendable {
    // Safe: `jobs` and `stopped` are read and written only while `condition` is locked.
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var stopped = false

    init(name: String, client: MariaDBClient) {
        let thread = Thread { [self] in
            _ = client.threadInit()
            loop()
            client.threadEnd()
        }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the thread and returns its result.
    @discardableResult
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            guard !stopped else {
                condition.unlock()
                continuation.resume(throwing: MySQLError(code: 2006, message: "connection closed", statement: nil))
                return
            }
            jobs.append { continuation.resume(with: Result { try body() }) }
            condition.signal()
            condition.unlock()
        }
    }

    /// Ends the thread once the jobs queued so far have run.
    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        condition.lock()
        while true {
            if !jobs.isEmpty {
                let batch = jobs
                jobs.removeAll()
                condition.unlock()
                for job in batch { job() }
                condition.lock()
                continue
            }
            if stopped { break }
            condition.wait()
        }
        condition.unlock()
    }
}
