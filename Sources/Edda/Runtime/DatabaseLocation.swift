/// Where an ``EddaApp`` keeps its state.
///
/// The core opens no database itself: each database module adds its own factories, such as
/// `.sqlite(path: "orders.db")` (EddaSQLite) and `.postgres(url:)` (EddaPostgres).
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

    /// A database given by URL, opened by the first of `drivers` that knows its scheme:
    ///
    /// ```swift
    /// try .url("postgresql://edda@db:5432/orders", drivers: [SQLiteStore.self, PostgresStore.self])
    /// ```
    ///
    /// URLs are read as SQLAlchemy (and so Python Edda) reads them, so that one `EDDA_DB_URL`
    /// names the same database for a Python and a Swift worker: `sqlite:///orders.db` is
    /// `orders.db` relative to the working directory, `sqlite:////var/data/orders.db` the
    /// absolute path. A driver suffix is accepted and ignored (`sqlite+aiosqlite://`,
    /// `postgresql+asyncpg://`).
    ///
    /// - Throws: ``EddaUsageError`` for a URL none of `drivers` opens, or one its driver refuses
    ///   (a SQLite URL that names no file).
    public static func url(_ url: String, drivers: [any DatabaseURLDriver.Type]) throws -> DatabaseLocation {
        guard let scheme = DatabaseURL.scheme(of: url) else {
            throw EddaUsageError(
                .invalidConfiguration, "Database URL '\(url)' has no scheme; use e.g. sqlite:///edda.db or sqlite:////var/data/edda.db.")
        }
        if let driver = drivers.first(where: { $0.urlSchemes.contains(scheme) }) {
            return try driver.location(url: url)
        }
        let known = drivers.flatMap { $0.urlSchemes }.map { $0 + ":" }.joined(separator: ", ")
        throw EddaUsageError(
            .invalidConfiguration,
            "No database driver given opens '\(scheme):' URLs (\(known.isEmpty ? "none was given" : "these do: " + known)); "
                + "pass the driver's store type, e.g. drivers: [SQLiteStore.self] (EddaSQLite) or [PostgresStore.self] (EddaPostgres).")
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
