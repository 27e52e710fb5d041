/// Database URLs as SQLAlchemy reads them, which is how every member of the Edda family reads
/// `EDDA_DB_URL`.
package enum DatabaseURL {
    /// The lowercased scheme without a driver suffix (`postgresql+asyncpg://…` → `postgresql`),
    /// or `nil` if `url` has none.
    package static func scheme(of url: String) -> String? {
        guard let colon = url.firstIndex(of: ":"), colon > url.startIndex else { return nil }
        let scheme = url[..<colon].lowercased()
        guard scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) else { return nil }
        return String(scheme.split(separator: "+", maxSplits: 1).first ?? "")
    }

    /// Whether `url` is a SQLite URL (any driver suffix).
    package static func isSQLite(_ url: String) -> Bool {
        scheme(of: url) == "sqlite"
    }

    /// The file a SQLite URL names: what follows `sqlite:///`, so `sqlite:///orders.db` is
    /// `orders.db` in the working directory and `sqlite:////var/data/orders.db` is
    /// `/var/data/orders.db`. A query (`?mode=ro`) is ignored.
    ///
    /// - Throws: ``EddaUsageError`` (`.invalidConfiguration`) for a URL that is not of that form,
    ///   or names no file (SQLAlchemy's in-memory `sqlite://` has no meaning across processes).
    package static func sqlitePath(of url: String) throws -> String {
        guard isSQLite(url), let colon = url.firstIndex(of: ":") else {
            throw EddaUsageError(.invalidConfiguration, "'\(url)' is not a SQLite URL; use sqlite:///relative.db or sqlite:////absolute/path.db.")
        }
        var rest = url[url.index(after: colon)...]
        if let query = rest.firstIndex(of: "?") { rest = rest[..<query] }
        guard rest.hasPrefix("///") else {
            throw EddaUsageError(
                .invalidConfiguration,
                "SQLite URL '\(url)' is not of the form sqlite:///relative.db or sqlite:////absolute/path.db "
                    + "(three slashes, then the path, as SQLAlchemy and Python Edda read it).")
        }
        let path = String(rest.dropFirst(3))
        guard !path.isEmpty else {
            throw EddaUsageError(
                .invalidConfiguration, "SQLite URL '\(url)' names no file; use sqlite:///relative.db or sqlite:////absolute/path.db.")
        }
        return path
    }
}
