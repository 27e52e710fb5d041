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

    init(type: String, json: String?, binary: ByteBuffer?) {
        if type == "binary" {
            self = .binary(binary.map { Array($0.readableBytesView) } ?? [])
        } else {
            self = .json(json ?? "null")
        }
    }
}
