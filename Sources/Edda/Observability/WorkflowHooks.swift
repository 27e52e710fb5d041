/// Callbacks at each point of a workflow's life, for metrics, tracing and audit logs.
///
/// Every method has a default implementation that does nothing; implement the ones you need.
/// Hooks run on the engine's path and are awaited, so keep them quick; an error thrown by a
/// hook is not possible by design (they are non-throwing).
///
/// ```swift
/// struct Metrics: WorkflowHooks {
///     func workflowCompleted(instanceID: String, workflowName: String, resultJSON: String) async {
///         completedCounter.increment()
///     }
/// }
/// ```
public protocol WorkflowHooks: Sendable {
    /// A new instance starts (not on resume).
    func workflowStarted(instanceID: String, workflowName: String, inputJSON: String) async
    /// An instance completed; `resultJSON` is its stored result.
    func workflowCompleted(instanceID: String, workflowName: String, resultJSON: String) async
    /// An instance failed, after its compensations ran.
    func workflowFailed(instanceID: String, workflowName: String, error: any Error) async
    /// An instance was cancelled, after its compensations ran. Fires on the worker that finished
    /// the cancellation, whether it came from ``EddaApp/cancel(instanceID:cancelledBy:)`` here,
    /// from another process, or was noticed by the running workflow.
    func workflowCancelled(instanceID: String, workflowName: String) async
    /// An activity is about to run or to be replayed from history.
    func activityStarted(instanceID: String, activityID: String, activityName: String, isReplaying: Bool) async
    /// An activity returned a result, live (`cacheHit == false`, after its commit) or from history.
    func activityCompleted(instanceID: String, activityID: String, activityName: String, resultJSON: String, cacheHit: Bool) async
    /// An activity failed for good (terminal error or retries exhausted), live or on replay.
    func activityFailed(instanceID: String, activityID: String, activityName: String, error: any Error) async
    /// An activity attempt failed and will be retried after `delay`.
    func activityRetrying(instanceID: String, activityID: String, activityName: String, error: any Error, attempt: Int, delay: Duration) async
    /// An event was sent (transactional outbox or immediate send).
    func eventSent(eventType: String, eventSource: String, dataJSON: String) async
    /// An event or message was delivered to a waiting instance.
    func eventReceived(instanceID: String, eventType: String, dataJSON: String) async
}

extension WorkflowHooks {
    public func workflowStarted(instanceID: String, workflowName: String, inputJSON: String) async {}
    public func workflowCompleted(instanceID: String, workflowName: String, resultJSON: String) async {}
    public func workflowFailed(instanceID: String, workflowName: String, error: any Error) async {}
    public func workflowCancelled(instanceID: String, workflowName: String) async {}
    public func activityStarted(instanceID: String, activityID: String, activityName: String, isReplaying: Bool) async {}
    public func activityCompleted(instanceID: String, activityID: String, activityName: String, resultJSON: String, cacheHit: Bool) async {}
    public func activityFailed(instanceID: String, activityID: String, activityName: String, error: any Error) async {}
    public func activityRetrying(instanceID: String, activityID: String, activityName: String, error: any Error, attempt: Int, delay: Duration) async {}
    public func eventSent(eventType: String, eventSource: String, dataJSON: String) async {}
    public func eventReceived(instanceID: String, eventType: String, dataJSON: String) async {}
}

/// Hooks that do nothing: the default.
public struct NoHooks: WorkflowHooks {
    /// Hooks that do nothing.
    public init() {}
}
