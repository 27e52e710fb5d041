import Edda
import Foundation

/// An error as a failed step or instance stored it (`error_type`, `error_message` or the legacy
/// `error`, `stack_trace`), split into what is worth showing.
///
/// Python rows store a real traceback under `stack_trace`. Swift errors carry no stack, so the
/// Swift engine stores the error's own `Type: message` line there, followed by the errors that
/// caused it (`  caused by Type: message`): the viewer shows that chain as causes and offers a
/// stack only when there is one, never a second copy of the message.
struct StoredError {
    /// The error's type name, if stored.
    var type: String?
    /// The message, if stored.
    var message: String?
    /// A stack to show: stored text that says more than the type and message.
    var stack: String?
    /// The causes the Swift engine appended to its `Type: message` line, outermost first.
    var causes: [String] = []

    init(_ data: JSONValue) {
        type = data["error_type"]?.stringValue
        message = data["error_message"]?.stringValue ?? data["error"]?.stringValue
        let trace = (data["stack_trace"]?.stringValue ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        var rest = Substring(trace)
        let summaries = [type.map { "\($0): \(message ?? "")" }, message].compactMap { $0 }.filter { !$0.isEmpty }
        if let summary = summaries.first(where: { rest.hasPrefix($0) }) {
            rest = rest.dropFirst(summary.count)
        }
        let remainder = rest.trimmingCharacters(in: .whitespacesAndNewlines)
        let causePrefix = "caused by "
        if remainder.isEmpty {
            stack = nil
        } else if remainder.hasPrefix(causePrefix) {
            causes = ("\n  " + remainder).components(separatedBy: "\n  " + causePrefix).dropFirst().map {
                $0.trimmingCharacters(in: .whitespacesAndNewlines)
            }
        } else {
            stack = trace
        }
    }
}
