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

    /// A database given by URL, read as SQLAlchemy (and so Python Edda) reads it, so that one
    /// `EDDA_DB_URL` names the same database for a Python and a Swift worker:
    ///
    /// - `sqlite:///orders.db`: `orders.db`, relative to the working directory;
    /// - `sqlite:////var/data/orders.db`: the absolute path `/var/data/orders.db`;
    /// - other schemes by one of `drivers`, for example
    ///   `.url("postgresql://edda@db:5432/orders", drivers: [PostgresStore.self])`.
    ///
    /// A driver suffix is accepted and ignored (`sqlite+aiosqlite://`, `postgresql+asyncpg://`).
    /// A SQLite URL's query (`?mode=…`) is ignored.
    ///
    /// - Throws: ``EddaUsageError`` for a URL none of `drivers` opens, or a SQLite URL that
    ///   names no file.
    public static func url(_ url: String, drivers: [any DatabaseURLDriver.Type] = []) throws -> DatabaseLocation {
        guard let scheme = DatabaseURL.scheme(of: url) else {
            throw EddaUsageError(
                .invalidConfiguration, "Database URL '\(url)' has no scheme; use e.g. sqlite:///edda.db or sqlite:////var/data/edda.db.")
        }
        if scheme == "sqlite" {
            return .sqlite(path: try DatabaseURL.sqlitePath(of: url))
        }
        if let driver = drivers.first(where: { $0.urlSchemes.contains(scheme) }) {
            return try driver.location(url: url)
        }
        let known = (["sqlite"] + drivers.flatMap { $0.urlSchemes }).map { $0 + ":" }.joined(separator: ", ")
        throw EddaUsageError(
            .invalidConfiguration,
            "No database driver given opens '\(scheme):' URLs (these do: \(known)); for PostgreSQL, import EddaPostgres "
                + "and pass drivers: [PostgresStore.self].")
    }

    /// A SQLite file given by its path, or any database given by URL (see
    /// ``url(_:drivers:)``): what a command-line option or an environment variable such as
    /// `EDDA_DB_URL` holds.
    ///
    /// Anything that starts with a URL scheme (`letters:`) is read as a URL; anything else is a
    /// file path.
    public static func fileOrURL(_ given: String, drivers: [any DatabaseURLDriver.Type] = []) throws -> DatabaseLocation {
        DatabaseURL.scheme(of: given) == nil ? .sqlite(path: given) : try url(given, drivers: drivers)
    }
}

/// A database library that opens locations given by URL, for
/// ``DatabaseLocation/url(_:drivers:)``: passing it there is all it takes, with no
/// registration beforehand.
public protocol DatabaseURLDriver {
    /// The URL schemes it opens, lowercased and without a driver suffix (`postgresql`).
    static var urlSchemes: [String] { get }
    /// The location `url` names; `url`'s scheme is one of ``urlSchemes`` (possibly with a driver
    /// suffix, such as `postgresql+asyncpg`).
    static func location(url: String) throws -> DatabaseLocation
}
