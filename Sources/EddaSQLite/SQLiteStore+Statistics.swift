import Edda
import GRDB

extension SQLiteStore: StatisticsStore {
    public func statistics() async throws -> StoreStatistics {
        try await pool.read { database in
            let row = try Row.fetchOne(database, sql: StoreStatistics.query)
            return StoreStatistics(
                waitingForTimer: row?["timers"] ?? 0, waitingForMessage: row?["messages"] ?? 0,
                waitingForEvent: row?["events"] ?? 0, outboxBacklog: row?["outbox"] ?? 0)
        }
    }
}

extension SQLiteStore: InstrumentedStore {
    public func report(to instruments: StoreInstruments) {
        writer.instruments.withLock { $0 = instruments }
    }
}
