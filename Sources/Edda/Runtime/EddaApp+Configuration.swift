import CoreMetrics
import Tracing
import Logging

extension EddaApp {
    /// How an ``EddaApp`` runs.
    ///
    /// ```swift
    /// var configuration = EddaApp.Configuration(serviceName: "orders", database: .sqlite(path: "orders.db"))
    /// configuration.defaultRetryPolicy = .aggressive
    /// ```
    public struct Configuration: Sendable {
        /// The service's name, stored as each instance's `owner_service` and part of the worker ID.
        public var serviceName: String
        /// Where state is kept.
        public var database: DatabaseLocation
        /// The retry policy of activities that declare none. Default ``RetryPolicy/default``.
        public var defaultRetryPolicy: RetryPolicy = .default
        /// How long an executing instance's lock lasts without renewal. The worker renews it
        /// every third of this while the workflow runs, on a thread of its own that no load on
        /// Swift's cooperative pool can delay, so this only bounds how soon another worker takes
        /// over after this one dies. Default 30 s; at least 300 ms.
        public var lockTimeout: Duration = .seconds(30)
        /// How long steps in progress may take to finish and commit when the app shuts down
        /// through ``EddaApp/run()`` (graceful shutdown, e.g. SIGTERM); see
        /// ``EddaApp/shutdown(gracePeriod:)``. Default 10 s.
        public var shutdownGracePeriod: Duration = .seconds(10)
        /// Lifecycle callbacks. Default: none.
        public var hooks: any WorkflowHooks = NoHooks()
        /// Where the app's metrics go (see ``EddaMetricName`` for the list). Default `nil`: the
        /// process's `MetricsSystem`, which discards them until you bootstrap a backend
        /// (swift-prometheus, swift-otel, …).
        public var metricsFactory: (any MetricsFactory)?
        /// Where the app's spans go (see ``EddaSpanAttribute``). Default `nil`: the process's
        /// `InstrumentationSystem` tracer, a no-op until you bootstrap one (swift-otel, …).
        public var tracer: (any Tracer)?
        /// The logger; instance and activity IDs are attached as metadata.
        public var logger = Logger(label: "edda")
        /// How often to look for instances left unfinished (by a crashed worker, or resumable
        /// after a wait) when nothing wakes the app sooner. Default 1 s.
        public var recoveryInterval: Duration = .seconds(1)
        /// Where the workers of this host leave their liveness markers, so that after a crash a
        /// restarted (or any other) worker on the same host resumes the dead one's instances at
        /// once instead of when their leases lapse. Default: `edda-workers-<uid>` in the
        /// temporary directory; `nil` turns this off (instances then wait for their leases).
        /// It must be on a local file system. Workers it cannot see (another host, another
        /// user, another container) are never taken for dead.
        public var workerLivenessDirectory: String? = WorkerLiveness.defaultDirectory
        /// How many instances one recovery pass resumes at most. Default 10.
        public var resumeBatchSize = 10
        /// Whether the app runs its background services: resuming unfinished instances, ending
        /// due timers and receive timeouts, leader election. Default `true`; turn it off for
        /// tools that only read or start instances.
        public var runsBackgroundRecovery = true
        /// Whether opening the app creates or upgrades the shared schema. Default `true`.
        ///
        /// Tools that must not create tables in a database that is not Edda's turn it off: the
        /// app then checks the schema without writing and refuses a database that lacks it
        /// (``EddaUsageError/Kind/schemaMissing``).
        public var migratesSchema = true
        /// The clock of durable timers and receive timeouts. Default ``SystemClock``; tests can
        /// use `EddaTesting.ManualClock` to skip time.
        public var clock: any WorkflowClock = SystemClock()
        /// The `system_locks` row the workers of this implementation elect their leader with.
        /// Default `"edda_leader_swift"`.
        ///
        /// Python Edda and its siblings elect their leader on `"edda_leader"`, and only their
        /// leader fires their timers and recovers their crashed instances. A Swift worker holding
        /// that row would stop those duties in a database they share, so Swift workers, which
        /// need no leader for timers, use a row of their own.
        public var leaderLockName = "edda_leader_swift"
        /// How often this worker renews or tries to take the leader lease. Default 15 s.
        public var leaderHeartbeatInterval: Duration = .seconds(15)
        /// How long the leader lease lasts without renewal: how soon another worker takes over
        /// after the leader dies. Default 45 s.
        public var leaderLeaseDuration: Duration = .seconds(45)
        /// How long channel messages nobody consumed are kept (the leader deletes older ones).
        /// Default 7 days; `nil` keeps them forever.
        public var messageRetention: Duration? = .seconds(7 * 24 * 3600)
        /// How often the leader deletes expired channel messages and, with
        /// ``instanceRetention``, finished instances. Default 1 hour.
        public var messageCleanupInterval: Duration = .seconds(3600)
        /// How long finished instances (completed, failed, cancelled, recurred) of this framework
        /// are kept: the leader deletes older ones with everything recorded for them, in
        /// batches (see ``EddaApp/purgeInstances(_:dryRun:)``). Default `nil`: kept forever.
        public var instanceRetention: Duration?
        /// Where the outbox relayer sends events written with
        /// ``ActivityContext/sendEventTransactional(type:source:data:contentType:)``. Default
        /// `nil`: no relayer runs in this app (the events wait in `outbox_events` for a relayer
        /// elsewhere). `EddaHTTP`'s `HTTPOutboxPublisher` POSTs them to a CloudEvents broker.
        public var outboxPublisher: (any OutboxPublisher)?
        /// How the outbox relayer polls, retries and reclaims rows.
        public var outboxRelayer = OutboxRelayerConfiguration()

        /// A configuration with the defaults documented on each property.
        public init(serviceName: String, database: DatabaseLocation) {
            self.serviceName = serviceName
            self.database = database
        }

        func validate() throws {
            guard !serviceName.isEmpty else {
                throw EddaUsageError(.invalidConfiguration, "serviceName must not be empty.")
            }
            guard lockTimeout >= .milliseconds(300) else {
                throw EddaUsageError(.invalidConfiguration, "lockTimeout must be at least 300 ms; got \(lockTimeout).")
            }
            guard !leaderLockName.isEmpty else {
                throw EddaUsageError(.invalidConfiguration, "leaderLockName must not be empty.")
            }
            // The worker ID (`<service>-<pid>-<8 hex>`) is written to `locked_by`.
            do {
                try Identifier.validate(serviceName, field: "serviceName")
                try Identifier.validate(leaderLockName, field: "leaderLockName")
            } catch {
                throw EddaUsageError(.invalidConfiguration, error.description)
            }
            guard serviceName.utf8.count <= 200 else {
                throw EddaUsageError(.invalidConfiguration, "serviceName must be at most 200 bytes of UTF-8; got \(serviceName.utf8.count).")
            }
            guard leaderHeartbeatInterval > .zero, leaderLeaseDuration > leaderHeartbeatInterval,
                  messageCleanupInterval > .zero
            else {
                throw EddaUsageError(
                    .invalidConfiguration,
                    "leaderLeaseDuration (\(leaderLeaseDuration)) must be longer than leaderHeartbeatInterval "
                        + "(\(leaderHeartbeatInterval)), and both and messageCleanupInterval must be positive.")
            }
            try outboxRelayer.validate()
            guard recoveryInterval > .zero, resumeBatchSize > 0 else {
                throw EddaUsageError(
                    .invalidConfiguration,
                    "recoveryInterval and resumeBatchSize must be positive; got \(recoveryInterval) and \(resumeBatchSize).")
            }
        }
    }
}
