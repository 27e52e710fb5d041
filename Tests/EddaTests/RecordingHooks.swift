import Edda
import Foundation

/// Hooks that record what fired, as short strings.
final class RecordingHooks: WorkflowHooks {
    private let recorder = Recorder()
    var events: [String] { recorder.all }

    func workflowStarted(instanceID: String, workflowName: String, inputJSON: String) async {
        recorder.record("started \(instanceID)")
    }
    func workflowCompleted(instanceID: String, workflowName: String, resultJSON: String) async {
        recorder.record("completed \(instanceID) \(resultJSON)")
    }
    func workflowFailed(instanceID: String, workflowName: String, error: any Error) async {
        recorder.record("failed \(instanceID)")
    }
    func workflowCancelled(instanceID: String, workflowName: String) async {
        recorder.record("cancelled \(instanceID)")
    }
    func activityStarted(instanceID: String, activityID: String, activityName: String, isReplaying: Bool) async {
        recorder.record("activity \(activityID) replay=\(isReplaying)")
    }
    func activityCompleted(instanceID: String, activityID: String, activityName: String, resultJSON: String, cacheHit: Bool) async {
        recorder.record("done \(activityID) cache=\(cacheHit)")
    }
    func activityFailed(instanceID: String, activityID: String, activityName: String, error: any Error) async {
        recorder.record("activity failed \(activityID)")
    }
    func eventReceived(instanceID: String, eventType: String, dataJSON: String) async {
        recorder.record("event \(eventType) \(instanceID) \(dataJSON)")
    }
    func activityRetrying(instanceID: String, activityID: String, activityName: String, error: any Error, attempt: Int, delay: Duration) async {
        recorder.record("retry \(activityID) attempt \(attempt) delay \(delay.seconds)")
    }
}
