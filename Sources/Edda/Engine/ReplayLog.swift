import Foundation

/// The recorded history of an instance as replay sees it: results by durable ID, and which of
/// them the current execution has consumed.
struct ReplayLog {
    struct Entry {
        let eventType: String
        let payload: HistoryPayload
    }

    private var entries: [String: Entry] = [:]
    private var consumed: Set<String> = []
    private var consumedStepCount = 0
    /// IDs of the step kinds replay must consume (see ``isStep(_:)``).
    private var stepIDs: [String] = []
    /// `compensation_<id>` rows already recorded.
    private(set) var executedCompensationIDs: Set<String> = []
    /// The recorded `WorkflowCancelled` details, if a cancellation was requested.
    private(set) var cancellation: CancellationDetails?

    init(history: [HistoryEvent]) {
        for event in history {
            entries[event.activityID] = Entry(eventType: event.eventType, payload: event.payload)
            switch event.eventType {
            case _ where Self.isStep(event.eventType):
                stepIDs.append(event.activityID)
            case HistoryEventType.compensationExecuted, HistoryEventType.compensationFailed:
                executedCompensationIDs.insert(event.activityID)
            case HistoryEventType.workflowCancelled:
                if case .json(let text) = event.payload {
                    cancellation = try? JSON.decode(CancellationDetails.self, from: text)
                }
            default:
                break
            }
        }
    }

    var isEmpty: Bool { stepIDs.isEmpty }

    /// The recorded entry for `id`, marked consumed.
    mutating func take(_ id: String) -> Entry? {
        guard let entry = entries[id] else { return nil }
        if consumed.insert(id).inserted, Self.isStep(entry.eventType) {
            consumedStepCount += 1
        }
        return entry
    }

    /// The event types recorded for steps of the body, which replay must reach in order:
    /// activities, deterministic values, publishes, timers and receives.
    static func isStep(_ eventType: String) -> Bool {
        switch eventType {
        case HistoryEventType.activityCompleted, HistoryEventType.activityFailed, HistoryEventType.timerExpired,
             HistoryEventType.channelMessageReceived, HistoryEventType.messageTimeout, HistoryEventType.eventReceived:
            return true
        default:
            return false
        }
    }

    /// Whether some recorded step has not been reached yet.
    var hasUnconsumedSteps: Bool { consumedStepCount < stepIDs.count }

    /// Recorded steps this execution never reached: a sign the code lost a step.
    var unconsumedSteps: [String] {
        stepIDs.filter { !consumed.contains($0) }
    }
}

/// The recorded shape of an `ActivityCompleted` row, decoded together with its result.
struct CompletedEnvelope<Output: Decodable>: Decodable {
    let activityName: String?
    let result: Output

    init(activityName: String?, result: Output) {
        self.activityName = activityName
        self.result = result
    }

    /// Decodes an envelope; a ``JSONValue`` result is read by ``JSONValue``'s own parser (linear
    /// time, exact numbers) rather than through `JSONDecoder`.
    static func decode(from text: String) throws -> CompletedEnvelope {
        if JSON.isJSONValue(Output.self), case .object(let members)? = try? JSONValue(parsing: text),
           let result = (members["result"] ?? .null).converted(to: Output.self) {
            return CompletedEnvelope(activityName: members["activity_name"]?.stringValue, result: result)
        }
        return try JSON.decode(CompletedEnvelope.self, from: text)
    }

    enum CodingKeys: String, CodingKey {
        case activityName = "activity_name"
        case result
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        activityName = try container.decodeIfPresent(String.self, forKey: .activityName)
        if let value = try? container.decode(Output.self, forKey: .result) {
            result = value
        } else {
            // A `null` or missing result decodes through a nil-tolerant path (e.g. NoValue).
            result = try Output(from: NullDecoder(codingPath: container.codingPath + [CodingKeys.result]))
        }
    }
}

/// The recorded shape of an `ActivityFailed` row.
struct FailedEnvelope: Decodable {
    let activityName: String?
    let errorType: String?
    let errorMessage: String?
    let retryMetadata: RetryMetadata?
    let exhaustedReason: String?

    enum CodingKeys: String, CodingKey {
        case activityName = "activity_name"
        case errorType = "error_type"
        case errorMessage = "error_message"
        case retryMetadata = "retry_metadata"
        case exhaustedReason = "exhausted_reason"
    }

    /// The error a live execution threw, rebuilt with its type.
    func rebuiltError(activityName fallbackName: String) -> any Error {
        let type = errorType ?? "Error"
        let message = errorMessage ?? ""
        if let retry = retryMetadata, retry.exhausted {
            return RetryExhaustedError(
                activityName: activityName ?? fallbackName, attempts: retry.totalAttempts,
                reason: exhaustedReason ?? "retries exhausted",
                cause: ActivityFailure(errorType: type, message: message))
        }
        if type == "TerminalError" { return TerminalError(message) }
        return ActivityFailure(errorType: type, message: message)
    }
}

/// A decoder that holds a single JSON `null`; lets types like ``NoValue`` decode a missing result.
private struct NullDecoder: Decoder {
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "null"))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "null"))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { NullContainer(codingPath: codingPath) }

    private struct NullContainer: SingleValueDecodingContainer {
        var codingPath: [any CodingKey]
        func decodeNil() -> Bool { true }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            throw DecodingError.valueNotFound(type, .init(codingPath: codingPath, debugDescription: "null"))
        }
    }
}
