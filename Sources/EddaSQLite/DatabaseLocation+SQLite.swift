import Edda

extension DatabaseLocation {
    /// An SQLite database file, created if missing: the embedded default.
    ///
    /// ```swift
    /// let app = try await EddaApp(configuration: .init(serviceName: "orders", database: .sqlite(path: "orders.db")))
    /// ```
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
    /// must change nothing in it. Use it with `EddaApp.Configuration.migratesSchema` `false`.
    public static func sqliteReadOnly(path: String) -> DatabaseLocation {
        DatabaseLocation(description: "sqlite:\(path) (read-only)") {
            try SQLiteStore(path: path, readOnly: true)
        }
    }

    /// A SQLite file given by its path, or any database given by URL: what a command-line
    /// option or an environment variable such as `EDDA_DB_URL` holds.
    ///
    /// Anything that starts with a URL scheme (`letters:`) is read as a URL by
    /// `DatabaseLocation.url(_:drivers:)`, with ``SQLiteStore`` among the drivers
    /// (`sqlite:///orders.db` is `orders.db` in the working directory, `sqlite:////var/data/orders.db`
    /// an absolute path); anything else is a file path.
    ///
    /// ```swift
    /// let database = try DatabaseLocation.fileOrURL(environment["EDDA_DB_URL"] ?? "orders.db", drivers: [PostgresStore.self])
    /// ```
    public static func fileOrURL(_ given: String, drivers: [any DatabaseURLDriver.Type] = []) throws -> DatabaseLocation {
        DatabaseURL.scheme(of: given) == nil ? .sqlite(path: given) : try url(given, drivers: [SQLiteStore.self] + drivers)
    }
}

extension SQLiteStore: DatabaseURLDriver {
    /// `sqlite` (with any driver suffix, such as `sqlite+aiosqlite`).
    public static let urlSchemes = ["sqlite"]

    /// The file a `sqlite:` URL names, as SQLAlchemy reads it: `sqlite:///orders.db` is
    /// `orders.db` relative to the working directory, `sqlite:////var/data/orders.db` the
    /// absolute path. The URL's query (`?mode=…`) is ignored.
    ///
    /// - Throws: `EddaUsageError` for a URL that names no file.
    public static func location(url: String) throws -> DatabaseLocation {
        .sqlite(path: try DatabaseURL.sqlitePath(of: url))
    }
}
