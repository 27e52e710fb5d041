@testable import Edda
@testable import EddaSQLite
@testable import EddaPostgres
import Foundation
import Testing

@Suite("Database URLs, read as SQLAlchemy reads them")
struct DatabaseURLTests {
    @Test("sqlite:/// is relative to the working directory, sqlite://// absolute; driver suffixes and queries are ignored")
    func sqliteForms() throws {
        #expect(try DatabaseURL.sqlitePath(of: "sqlite:///orders.db") == "orders.db")
        #expect(try DatabaseURL.sqlitePath(of: "sqlite:///data/orders.db") == "data/orders.db")
        #expect(try DatabaseURL.sqlitePath(of: "sqlite:////var/data/orders.db") == "/var/data/orders.db")
        #expect(try DatabaseURL.sqlitePath(of: "sqlite+aiosqlite:///orders.db") == "orders.db")
        #expect(try DatabaseURL.sqlitePath(of: "SQLite:////tmp/x.db?mode=ro") == "/tmp/x.db")
        // The Python peer of the interop tests writes f"sqlite:///{absolute_path}".
        let absolute = "/tmp/edda-interop/shared.db"
        #expect(try DatabaseURL.sqlitePath(of: "sqlite:///" + absolute) == absolute)
    }

    @Test("SQLite URLs that name no file, or not in SQLAlchemy's form, are refused with the forms to use", arguments: [
        "sqlite://", "sqlite:///", "sqlite:///?mode=ro", "sqlite://host/orders.db", "sqlite:orders.db", "sqlite:/orders.db",
    ])
    func sqliteRefused(_ url: String) {
        let error = #expect(throws: EddaUsageError.self) { try DatabaseLocation.url(url, drivers: [SQLiteStore.self]) }
        #expect(error?.kind == .invalidConfiguration)
        #expect(error?.message.contains("sqlite:////absolute") == true, "\(error?.message ?? "")")
    }

    @Test("schemes lose their driver suffix; a file path has none")
    func schemes() {
        #expect(DatabaseURL.scheme(of: "postgresql+asyncpg://edda@db:5432/orders") == "postgresql")
        #expect(DatabaseURL.scheme(of: "mysql+aiomysql://edda@db/orders") == "mysql")
        #expect(DatabaseURL.scheme(of: "POSTGRES://edda@db/orders") == "postgres")
        #expect(DatabaseURL.scheme(of: "orders.db") == nil)
        #expect(DatabaseURL.scheme(of: "./backup:1.db") == nil)
        #expect(DatabaseURL.scheme(of: ":memory:") == nil)
    }

    @Test("a path or a URL: the same file either way")
    func fileOrURL() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edda-url-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("orders.db").path
        #expect(try DatabaseLocation.fileOrURL(path).description == "sqlite:\(path)")
        #expect(try DatabaseLocation.fileOrURL("sqlite:///" + path).description == "sqlite:\(path)")
        #expect(try DatabaseLocation.fileOrURL("sqlite+aiosqlite:///" + path).description == "sqlite:\(path)")
        #expect(throws: EddaUsageError.self) { try DatabaseLocation.fileOrURL("mysql+aiomysql://edda@db/orders") }
        // The core opens nothing by itself: even a SQLite URL needs its driver.
        let error = #expect(throws: EddaUsageError.self) { try DatabaseLocation.url("sqlite:///" + path, drivers: []) }
        #expect(error?.message.contains("none was given") == true, "\(error?.message ?? "")")
    }

    @Test("PostgreSQL URLs with Python's driver suffix name the same server and database")
    func postgresSuffix() throws {
        let configuration = try PostgresURL.configuration(from: "postgresql+asyncpg://edda@db.local:5433/orders")
        #expect(configuration.host == "db.local")
        #expect(configuration.port == 5433)
        #expect(configuration.username == "edda")
        #expect(configuration.database == "orders")
        let location = try DatabaseLocation.url("postgresql+asyncpg://edda@db.local:5433/orders", drivers: [PostgresStore.self])
        #expect(location.description == "postgresql://edda@db.local:5433/orders")
        // Without the driver: a clear error, no hidden registration that a test could leave behind.
        let error = #expect(throws: EddaUsageError.self) {
            try DatabaseLocation.url("postgresql://edda@db.local/orders", drivers: [SQLiteStore.self])
        }
        #expect(error?.message.contains("[PostgresStore.self]") == true)
        #expect(error?.message.contains("these do: sqlite:") == true, "\(error?.message ?? "")")
    }
}
