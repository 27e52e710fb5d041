import Edda
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// MariaDB Connector/C (`libmariadb.so.3`), the client library this driver speaks to MySQL and
/// MariaDB servers with, loaded when the first MySQL store opens.
///
/// Loading it at run time (instead of linking it) keeps every other user of the package free of
/// it: `swift build` and `swift test` need neither its headers nor the library, and only an app
/// that opens a `mysql://` database needs it installed (Debian and Ubuntu: `libmariadb3`; macOS
/// Homebrew: `mariadb-connector-c`). The functions used are the stable C API every Connector/C
/// 3.x exports; their signatures are declared here as that API documents them.
struct MariaDBClient: @unchecked Sendable {
    // Safe: immutable function pointers into a library that is never unloaded.

    typealias Handle = OpaquePointer
    typealias Result = OpaquePointer

    let initialize: @convention(c) (Handle?) -> Handle?
    let options: @convention(c) (Handle, UInt32, UnsafeRawPointer?) -> Int32
    let realConnect: @convention(c) (
        Handle, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UInt32,
        UnsafePointer<CChar>?, UInt
    ) -> Handle?
    let realQuery: @convention(c) (Handle, UnsafePointer<CChar>, UInt) -> Int32
    let storeResult: @convention(c) (Handle) -> Result?
    let fieldCount: @convention(c) (Handle) -> UInt32
    let numFields: @convention(c) (Result) -> UInt32
    let fetchFieldDirect: @convention(c) (Result, UInt32) -> UnsafeMutableRawPointer?
    let fetchRow: @convention(c) (Result) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    let fetchLengths: @convention(c) (Result) -> UnsafeMutablePointer<UInt>?
    let freeResult: @convention(c) (Result) -> Void
    let affectedRows: @convention(c) (Handle) -> UInt64
    let errno: @convention(c) (Handle) -> UInt32
    let error: @convention(c) (Handle) -> UnsafePointer<CChar>?
    let close: @convention(c) (Handle) -> Void
    let realEscapeString: @convention(c) (Handle, UnsafeMutablePointer<CChar>, UnsafePointer<CChar>, UInt) -> UInt
    let nextResult: @convention(c) (Handle) -> Int32
    let ping: @convention(c) (Handle) -> Int32
    let threadInit: @convention(c) () -> CChar
    let threadEnd: @convention(c) () -> Void

    /// `mysql_option` values.
    enum Option: UInt32 {
        case connectTimeout = 0
        case initCommand = 3
        case charsetName = 7
        case readTimeout = 11
        case writeTimeout = 12
        case sslVerifyServerCert = 21
        case sslEnforce = 38
    }

    /// Client flags for `mysql_real_connect`.
    enum Flag {
        /// `UPDATE` reports the rows it matched, not only those it changed: a compare-and-set
        /// that writes the values a row already has still counts as having matched.
        static let foundRows: UInt = 2
        /// A text may hold several statements, sent in one round trip (the store's writes are
        /// batched so). Values are escaped in every statement all the same.
        static let multiStatements: UInt = 1 << 16
    }

    /// The library, loaded once; the error says how to install it.
    static let shared: Swift.Result<MariaDBClient, EddaUsageError> = load()

    private static let libraryNames = [
        "libmariadb.so.3", "libmariadb.so", "libmariadb.3.dylib", "libmariadb.dylib",
        "/opt/homebrew/lib/mariadb/libmariadb.3.dylib", "/usr/local/lib/mariadb/libmariadb.3.dylib",
    ]

    private static func load() -> Swift.Result<MariaDBClient, EddaUsageError> {
        var handle: UnsafeMutableRawPointer?
        for name in libraryNames {
            handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL)
            if handle != nil { break }
        }
        guard let handle else {
            return .failure(EddaUsageError(
                .invalidConfiguration,
                "MySQL and MariaDB databases need MariaDB Connector/C (libmariadb.so.3), which is not installed. "
                    + "Install it: `apt-get install libmariadb3` (Debian, Ubuntu) or `brew install mariadb-connector-c` (macOS)."))
        }
        func symbol<T>(_ name: String) throws -> T {
            guard let pointer = dlsym(handle, name) else {
                throw EddaUsageError(
                    .invalidConfiguration,
                    "The MariaDB Connector/C library found lacks \(name); install Connector/C 3.x (libmariadb3).")
            }
            return unsafeBitCast(pointer, to: T.self)
        }
        let client: MariaDBClient
        do {
            client = MariaDBClient(
                initialize: try symbol("mysql_init"), options: try symbol("mysql_options"),
                realConnect: try symbol("mysql_real_connect"), realQuery: try symbol("mysql_real_query"),
                storeResult: try symbol("mysql_store_result"), fieldCount: try symbol("mysql_field_count"),
                numFields: try symbol("mysql_num_fields"), fetchFieldDirect: try symbol("mysql_fetch_field_direct"),
                fetchRow: try symbol("mysql_fetch_row"), fetchLengths: try symbol("mysql_fetch_lengths"),
                freeResult: try symbol("mysql_free_result"), affectedRows: try symbol("mysql_affected_rows"),
                errno: try symbol("mysql_errno"), error: try symbol("mysql_error"),
                close: try symbol("mysql_close"), realEscapeString: try symbol("mysql_real_escape_string"),
                nextResult: try symbol("mysql_next_result"), ping: try symbol("mysql_ping"), threadInit: try symbol("mysql_thread_init"),
                threadEnd: try symbol("mysql_thread_end"))
        } catch let error as EddaUsageError {
            return .failure(error)
        } catch {
            return .failure(EddaUsageError(.invalidConfiguration, "\(error)"))
        }
        // Initialises the library's global state once, before any thread uses it.
        if let serverInit = dlsym(handle, "mysql_server_init") {
            typealias ServerInit = @convention(c) (Int32, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32
            _ = unsafeBitCast(serverInit, to: ServerInit.self)(0, nil, nil)
        }
        return .success(client)
    }

    /// The library, or the error that says how to install it.
    static func get() throws -> MariaDBClient {
        try shared.get()
    }
}
