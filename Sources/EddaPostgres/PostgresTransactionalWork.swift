import Edda
import PostgresNIO

/// Work on the user's own tables in an activity's commit transaction (PostgreSQL).
struct PostgresTransactionalWork: TransactionalWork {
    static var storeType: any WorkflowStore.Type { PostgresStore.self }
    let body: @Sendable (PostgresConnection) async throws -> Void
}

extension ActivityContext {
    /// Adds work on your own tables to this attempt's commit transaction (PostgreSQL).
    ///
    /// The closure runs after the activity's `run` returns, on the connection and inside the
    /// transaction that records the step: it commits if and only if the step commits. An error
    /// it throws fails the attempt (and rolls everything back); the attempt is retried like any
    /// other activity error.
    ///
    /// ```swift
    /// context.postgresTransaction { connection in
    ///     try await connection.query("INSERT INTO shipments (order_id) VALUES (\(order.id))", logger: logger)
    /// }
    /// ```
    public func postgresTransaction(_ work: @escaping @Sendable (PostgresConnection) async throws -> Void) {
        addTransactionalWork(PostgresTransactionalWork(body: work))
    }
}
