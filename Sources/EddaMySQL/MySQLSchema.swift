import Edda

/// What is MySQL's own about the shared schema (``Edda/SharedSchema`` writes its DDL).
///
/// The `TIMESTAMP` columns hold whole seconds (no fractional part) and UTC (the store's sessions
/// use `time_zone = '+00:00'`); see ``MySQLStore`` for what that means for leases and timers.
enum MySQLSchema {
    /// The name of the lock (`GET_LOCK`) that serialises the migrations of one database across
    /// workers: `edda_migration:<database>` (hashed when longer than MySQL's 64 characters).
    ///
    /// MySQL's named locks are server-wide. The reference takes `edda_migration` for any
    /// database, and while that is held, Python Edda 0.16.2 skips its own migration (and fails);
    /// a lock per database keeps this library from ever making it skip, and from queueing
    /// behind migrations of other databases on the server. A Python worker migrating the same
    /// database at the same moment is harmless: both create tables `IF NOT EXISTS`, both take
    /// an index that exists already as created, and the version is recorded once.
    static func migrationLockName(database: String) -> String {
        let name = "edda_migration:" + database
        if name.utf8.count <= 64 { return name }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in database.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return "edda_migration:" + String(hash, radix: 16)
    }
}
