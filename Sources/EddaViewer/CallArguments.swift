import Edda

/// The arguments a step was called with, read back from the shared schema's
/// `{"args": […], "kwargs": {…}}` wrapper: what the viewer shows as a step's input.
///
/// The Swift engine stores an object input as the keyword arguments and any other value as the
/// single positional argument, so both unwrap to the value the workflow passed. Rows of the
/// Python implementation may hold several positional arguments, or positional and keyword
/// arguments together; those stay apart. A value without the wrapper is shown as stored.
enum CallArguments: Equatable {
    /// One value: the input as the caller wrote it.
    case value(JSONValue)
    /// Positional arguments (more than one, or alongside keyword arguments) and keyword
    /// arguments, possibly none.
    case several(positional: [JSONValue], keyword: [String: JSONValue])

    /// The arguments in `stored`: an activity row's `input`, or a compensation's `args` (whose
    /// `name` is ignored).
    init(stored: JSONValue) {
        guard let positional = stored["args"]?.arrayValue, case .object(let keyword)? = stored["kwargs"] else {
            self = .value(stored)
            return
        }
        if positional.isEmpty {
            self = .value(.object(keyword))
        } else if positional.count == 1 && keyword.isEmpty {
            self = .value(positional[0])
        } else {
            self = .several(positional: positional, keyword: keyword)
        }
    }
}
