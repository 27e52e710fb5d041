import Edda
import GRDB

extension ActivityContext {
    /// Adds work on your own tables to this attempt's commit transaction (SQLite).
    ///
    /// The closure runs after the activity's `run` returns, on the writer connection, inside
    /// the transaction that records the step. It commits if and only if the step commits, so
    /// "record the step" and "change my tables" never disagree, even across crashes. Do no
    /// slow work in it: SQLite has one writer.
    ///
    /// ```swift
    /// context.transaction { db in
    ///     try db.execute(sql: "INSERT INTO shipments (order_id) VALUES (?)", arguments: [order.id])
    /// }
    /// ```
    ///
    /// An error thrown by the closure fails the attempt (and rolls everything back); it is
    /// retried like any other activity error.
    public func transaction(_ work: @escaping @Sendable (Database) throws -> Void) {
        addTransactionalWork(SQLiteTransactionalWork(body: work))
    }
}
