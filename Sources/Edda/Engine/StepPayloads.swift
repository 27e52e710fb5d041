import Foundation

/// The JSON the engine writes into `event_data`, `output_data` and compensation `args`, in the
/// shapes the sibling implementations read.
///
/// Values already encoded (an activity's result, its input) are spliced in as JSON text rather
/// than re-encoded, so each value is encoded exactly once.
package enum StepPayloads {
    /// `{"activity_name", "result", "input": {"args", "kwargs"}, "retry_metadata"?}`
    static func activityCompleted(name: String, resultJSON: String, inputJSON: String?, retry: RetryMetadata?) -> String {
        var writer = JSONObjectWriter()
        writer.add("activity_name", string: name)
        writer.add("result", raw: resultJSON)
        if let inputJSON { writer.add("input", raw: activityInput(inputJSON)) }
        if let retry { writer.add("retry_metadata", raw: (try? JSON.encode(retry)) ?? "null") }
        return writer.finish()
    }

    /// `{"activity_name", "error_type", "error_message", "stack_trace", "input", "retry_metadata"?}`
    static func activityFailed(name: String, error: any Error, inputJSON: String, retry: RetryMetadata?, reason: String?) -> String {
        var writer = JSONObjectWriter()
        writer.add("activity_name", string: name)
        writer.add("error_type", string: ErrorDescription.typeName(error))
        writer.add("error_message", string: ErrorDescription.message(error))
        writer.add("stack_trace", string: ErrorDescription.trace(error))
        writer.add("input", raw: activityInput(inputJSON))
        if let retry { writer.add("retry_metadata", raw: (try? JSON.encode(retry)) ?? "null") }
        if let reason { writer.add("exhausted_reason", string: reason) }
        return writer.finish()
    }

    /// `{"error_message", "error_type", "stack_trace"}`: the `WorkflowFailed` row and the failed
    /// instance's `output_data`.
    static func workflowFailed(_ error: any Error) -> String {
        var writer = JSONObjectWriter()
        writer.add("error_message", string: ErrorDescription.message(error))
        writer.add("error_type", string: ErrorDescription.typeName(error))
        writer.add("stack_trace", string: ErrorDescription.trace(error))
        return writer.finish()
    }

    /// `{"result": …}`: a completed instance's `output_data`.
    static func completedOutput(resultJSON: String) -> String {
        var writer = JSONObjectWriter()
        writer.add("result", raw: resultJSON)
        return writer.finish()
    }

    /// The reference's `{"args": […], "kwargs": {…}}`: an object input becomes the kwargs, any
    /// other value the single positional argument.
    static func activityInput(_ inputJSON: String) -> String {
        if inputJSON.utf8.first == UInt8(ascii: "{") {
            return "{\"args\":[],\"kwargs\":\(inputJSON)}"
        }
        return "{\"args\":[\(inputJSON)],\"kwargs\":{}}"
    }

    /// A compensation row's `args`: `{"name", "args": [], "kwargs": {"input", "output"?}}`.
    static func compensationArgs(name: String, inputJSON: String, outputJSON: String?) -> String {
        var kwargs = JSONObjectWriter()
        kwargs.add("input", raw: inputJSON)
        if let outputJSON { kwargs.add("output", raw: outputJSON) }
        var writer = JSONObjectWriter()
        writer.add("name", string: name)
        writer.add("args", raw: "[]")
        writer.add("kwargs", raw: kwargs.finish())
        return writer.finish()
    }

    /// `CompensationExecuted {activity_name, compensation_id, args, kwargs}`.
    static func compensationExecuted(name: String, id: Int64, argsJSON: String) -> String {
        let stored = JSONValue(jsonText: argsJSON)
        var writer = JSONObjectWriter()
        writer.add("activity_name", string: name)
        writer.add("compensation_id", raw: String(id))
        writer.add("args", raw: stored?["args"]?.jsonText ?? "[]")
        writer.add("kwargs", raw: stored?["kwargs"]?.jsonText ?? "{}")
        return writer.finish()
    }

    /// `TimerExpired {result: null, timer_id, expires_at}`.
    package static func timerExpired(timerID: String, expiresAt: Date) -> String {
        var writer = JSONObjectWriter()
        writer.add("result", raw: "null")
        writer.add("timer_id", string: timerID)
        writer.add("expires_at", string: Timestamp.iso8601(expiresAt))
        return writer.finish()
    }

    /// `MessageTimeout {_error: true, error_type: "TimeoutError", error_message, channel, timeout_at}`:
    /// a receive on `channel` whose timeout passed.
    package static func messageTimeout(channel: String, timeoutAt: Date) -> String {
        var writer = JSONObjectWriter()
        writer.add("_error", raw: "true")
        writer.add("error_type", string: "TimeoutError")
        writer.add("error_message", string: "Message on channel '\(channel)' did not arrive within timeout")
        writer.add("channel", string: channel)
        writer.add("timeout_at", string: Timestamp.iso8601(timeoutAt))
        return writer.finish()
    }

    /// The input of a publish step, recorded as its kwargs: `{"channel", "target_instance_id"?}`.
    static func publishInput(channel: String, target: String?) -> String {
        var kwargs = JSONObjectWriter()
        kwargs.add("channel", string: channel)
        if let target { kwargs.add("target_instance_id", string: target) }
        return kwargs.finish()
    }

    /// `CompensationFailed {activity_name, compensation_id, error_type, error_message}`.
    static func compensationFailed(name: String, id: Int64, error: any Error) -> String {
        var writer = JSONObjectWriter()
        writer.add("activity_name", string: name)
        writer.add("compensation_id", raw: String(id))
        writer.add("error_type", string: ErrorDescription.typeName(error))
        writer.add("error_message", string: ErrorDescription.message(error))
        return writer.finish()
    }
}

/// Builds a JSON object from keys and values that are either strings or JSON text.
struct JSONObjectWriter {
    private var text = "{"

    mutating func add(_ key: String, raw json: String) {
        if text.utf8.count > 1 { text.append(",") }
        text.append(JSONObjectWriter.quoted(key))
        text.append(":")
        text.append(json)
    }

    mutating func add(_ key: String, string value: String) {
        add(key, raw: JSONObjectWriter.quoted(value))
    }

    func finish() -> String { text + "}" }

    /// `value` as a JSON string literal.
    static func quoted(_ value: String) -> String {
        var out = "\""
        out.reserveCapacity(value.utf8.count + 2)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out.append("\"")
        return out
    }
}

/// Retry details recorded with an activity's result or failure (`retry_metadata`).
struct RetryMetadata: Codable, Sendable {
    struct Attempt: Codable, Sendable {
        var attempt: Int
        var errorType: String
        var message: String
        var timestampMs: Int64
        enum CodingKeys: String, CodingKey {
            case attempt, message
            case errorType = "error_type"
            case timestampMs = "timestamp_ms"
        }
    }

    struct LastError: Codable, Sendable {
        var errorType: String
        var message: String
        enum CodingKeys: String, CodingKey {
            case message
            case errorType = "error_type"
        }
    }

    var totalAttempts = 0
    var totalDurationMs: Int64 = 0
    var exhausted = false
    var errors: [Attempt] = []
    var lastError: LastError?

    enum CodingKeys: String, CodingKey {
        case exhausted, errors
        case totalAttempts = "total_attempts"
        case totalDurationMs = "total_duration_ms"
        case lastError = "last_error"
    }

    mutating func record(attempt: Int, error: any Error, at date: Date) {
        let type = ErrorDescription.typeName(error)
        let message = ErrorDescription.message(error)
        errors.append(Attempt(attempt: attempt, errorType: type, message: message, timestampMs: Int64(date.timeIntervalSince1970 * 1000)))
        lastError = LastError(errorType: type, message: message)
        totalAttempts = attempt
    }
}

/// How errors are described in stored JSON.
enum ErrorDescription {
    /// The error's type name without module or generic noise, e.g. `PaymentDeclined`.
    static func typeName(_ error: any Error) -> String {
        if let failure = error as? ActivityFailure { return failure.errorType }
        if let wrapped = error as? TransactionalWorkError { return typeName(wrapped.underlying) }
        return String(describing: type(of: error))
    }

    static func message(_ error: any Error) -> String {
        switch error {
        case let failure as ActivityFailure: return failure.message
        case let terminal as TerminalError: return terminal.message
        case let wrapped as TransactionalWorkError: return message(wrapped.underlying)
        case let error as CustomStringConvertible: return error.description
        default: return String(describing: error)
        }
    }

    /// A readable chain of the error and its causes (Swift errors carry no stack).
    static func trace(_ error: any Error) -> String {
        var lines = ["\(typeName(error)): \(message(error))"]
        var current: any Error = error
        while let exhausted = current as? RetryExhaustedError {
            current = exhausted.cause
            lines.append("  caused by \(typeName(current)): \(message(current))")
        }
        return lines.joined(separator: "\n")
    }
}

/// An error thrown by the user's transactional work inside a step's commit. Stores wrap the
/// error in it so the engine counts it as a failed attempt of the activity (retried like any
/// other), not as a failure of the store.
public struct TransactionalWorkError: Error, Sendable {
    /// The error the user's work threw.
    public let underlying: any Error

    /// Wraps `underlying`.
    public init(underlying: any Error) {
        self.underlying = underlying
    }
}
