import Edda
import Foundation
import Logging
import PostgresNIO

/// Reading rows and building queries.
extension PostgresConnection {
    /// The rows of `query`.
    func rows(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRandomAccessRow] {
        try await self.query(query, logger: logger).collect().map { $0.makeRandomAccess() }
    }

    /// Runs `query` and returns how many rows it returned (use `RETURNING 1` to count changes).
    @discardableResult
    func count(_ query: PostgresQuery, logger: Logger) async throws -> Int {
        try await self.query(query, logger: logger).collect().count
    }
}

extension PostgresRandomAccessRow {
    func value<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        try self[column].decode(T.self)
    }
}

/// A PostgreSQL row, read as the core reads stored rows.
struct PostgresStoredRow: StoredRow {
    let row: PostgresRandomAccessRow
    init(_ row: PostgresRandomAccessRow) { self.row = row }

    func text(_ column: String) throws -> String? { row.contains(column) ? try row[column].decode(String?.self) : nil }
    func integer(_ column: String) throws -> Int? { row.contains(column) ? try row[column].decode(Int?.self) : nil }
    func timestamp(_ column: String) throws -> Date? { row.contains(column) ? try row[column].decode(Date?.self) : nil }
    func bytes(_ column: String) throws -> [UInt8]? {
        row.contains(column) ? try row[column].decode(ByteBuffer?.self).map { Array($0.readableBytesView) } : nil
    }
}

/// A query whose text is assembled piece by piece, every value a bound parameter.
struct QueryBuilder {
    var sql = ""
    var bindings = PostgresBindings()

    /// A placeholder for `value`.
    mutating func bind<Value: PostgresEncodable>(_ value: Value) -> String {
        try? bindings.append(value)
        return "$\(bindings.count)"
    }

    mutating func bind<Value: PostgresEncodable>(_ value: Value?) -> String {
        if let value { return bind(value) }
        bindings.appendNull()
        return "$\(bindings.count)"
    }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: bindings) }
}

extension MessagePayload {
    /// `(data_type, JSON text, bytes)` for the shared schema's json/binary column pairs.
    var columns: (type: String, json: String?, binary: ByteBuffer?) {
        switch self {
        case .json(let text): return ("json", text, nil)
        case .binary(let bytes): return ("binary", nil, ByteBuffer(bytes: bytes))
        }
    }
}
