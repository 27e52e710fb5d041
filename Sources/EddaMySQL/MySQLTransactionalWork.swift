import Edda

/// Work on the user's own tables in an activity's commit transaction (MySQL).
struct MySQLTransactionalWork: TransactionalWork {
    static var storeType: any WorkflowStore.Type { MySQLStore.self }
    let body: @Sendable (MySQLConnection) throws -> Void
}

extension ActivityContext {
    /// Adds work on your own tables to this attempt's commit transaction (MySQL and MariaDB).
    ///
    /// The closure runs after the activity's `run` returns, on the connection's own thread and
    /// inside the transaction that records the step: it commits if and only if the step
    /// commits. An error it throws fails the attempt (and rolls everything back); the attempt is
    /// retried like any other activity error. Values interpolated into a ``MySQLQuery`` are sent
    /// escaped.
    ///
    /// ```swift
    /// context.mysqlTransaction { connection in
    ///     try connection.execute("INSERT INTO shipments (order_id) VALUES (\(order.id))")
    /// }
    /// ```
    public func mysqlTransaction(_ work: @escaping @Sendable (MySQLConnection) throws -> Void) {
        addTransactionalWork(MySQLTransactionalWork(body: work))
    }
}
