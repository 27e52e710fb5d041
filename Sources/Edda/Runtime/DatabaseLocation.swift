/// Where an ``EddaApp`` keeps its state.
///
/// ```swift
/// .sqlite(path: "orders.db")
/// ```
///
/// Other backends add their own static factories (e.g. `EddaPostgres`).
public struct DatabaseLocation: Sendable, CustomStringConvertible {
    /// Opens the store.
    public let makeStore: @Sendable () async throws -> any WorkflowStore
    /// A description for logs (no credentials).
    public let description: String

    /// A location whose store `makeStore` opens; for backend modules.
    public init(description: String, makeStore: @escaping @Sendable () async throws -> any WorkflowStore) {
        self.description = description
        self.makeStore = makeStore
    }

    /// An SQLite database file, created if missing.
    ///
    /// - Parameters:
    ///   - path: The file's path.
    ///   - durability: ``SQLiteStore/Durability/full`` (the default) survives power loss;
    ///     ``SQLiteStore/Durability/normal`` survives process crashes only, and is faster.
    public static func sqlite(path: String, durability: SQLiteStore.Durability = .full) -> DatabaseLocation {
        DatabaseLocation(description: "sqlite:\(path)") {
            try SQLiteStore(path: path, durability: durability)
        }
    }

    /// An existing SQLite file, opened for reading only (see
    /// ``SQLiteStore/init(path:durability:readOnly:)``): for tools that inspect a database and
    /// must change nothing in it. Use it with ``EddaApp/Configuration/migratesSchema`` `false`.
    public static func sqliteReadOnly(path: String) -> DatabaseLocation {
        DatabaseLocation(description: "sqlite:\(path) (read-only)") {
            try SQLiteStore(path: path, readOnly: true)
        }
    }

    /// A database given by URL: `sqlite:///absolute/path.db`, `sqlite://relative.db` or
    /// `sqlite:relative.db`. Other schemes need the module that provides them to register a
    /// factory (see ``registerScheme(_:factory:)``).
    ///
    /// - Throws: ``EddaUsageError`` for a URL no registered backend understands.
    public static func url(_ url: String) throws -> DatabaseLocation {
        guard let colon = url.firstIndex(of: ":") else {
            throw EddaUsageError(.invalidConfiguration, "Database URL '\(url)' has no scheme; use e.g. sqlite:///path/to/edda.db.")
        }
        let scheme = url[..<colon].lowercased()
        if let path = sqlitePath(ofURL: url) {
            guard !path.isEmpty else {
                throw EddaUsageError(.invalidConfiguration, "Database URL '\(url)' names no file; use e.g. sqlite:///path/to/edda.db.")
            }
            return .sqlite(path: path)
        }
        if let factory = schemeFactories.withValue({ $0[scheme] }) {
            return try factory(url)
        }
        throw EddaUsageError(
            .invalidConfiguration,
            "No database backend handles '\(scheme):' URLs; import the module that provides it (EddaPostgres for postgresql:).")
    }

    /// The file a `sqlite:` URL names (`sqlite:///abs.db` → `/abs.db`, `sqlite://rel.db` and
    /// `sqlite:rel.db` → `rel.db`), or `nil` for other URLs.
    package static func sqlitePath(ofURL url: String) -> String? {
        guard url.lowercased().hasPrefix("sqlite:") else { return nil }
        var path = String(url.dropFirst("sqlite:".count))
        if path.hasPrefix("//") { path.removeFirst(2) }
        return path
    }

    /// Lets a backend module handle URLs of `scheme` in ``url(_:)``.
    public static func registerScheme(_ scheme: String, factory: @escaping @Sendable (String) throws -> DatabaseLocation) {
        schemeFactories.withValue { $0[scheme.lowercased()] = factory }
    }

    private static let schemeFactories = LockedBox<[String: @Sendable (String) throws -> DatabaseLocation]>([:])
}
