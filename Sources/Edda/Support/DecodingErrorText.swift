/// Plain-language text for a decoding failure, for messages that reach users and HTTP clients:
/// where in the input it happened and what was wrong, without the decoder's internal type dump.
package func readableDecodingFailure(_ error: any Error) -> String {
    guard let error = error as? DecodingError else { return "\(error)" }
    func path(_ context: DecodingError.Context, appending key: (any CodingKey)? = nil) -> String {
        let keys = context.codingPath + (key.map { [$0] } ?? [])
        let text = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        let trimmed = text.hasPrefix(".") ? String(text.dropFirst()) : text
        return trimmed.isEmpty ? "the input" : "'\(trimmed)'"
    }
    switch error {
    case .typeMismatch(let type, let context):
        return "\(path(context)) must be \(readableTypeName(type)): \(context.debugDescription)"
    case .valueNotFound(let type, let context):
        return "\(path(context)) must be \(readableTypeName(type)), not null"
    case .keyNotFound(let key, let context):
        return "\(path(context, appending: key)) is missing"
    case .dataCorrupted(let context):
        return "\(path(context)) is invalid: \(context.debugDescription)"
    @unknown default:
        return "\(error)"
    }
}

private func readableTypeName(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: return "a string"
    case is Bool.Type: return "true or false"
    case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is UInt64.Type: return "an integer"
    case is Double.Type, is Float.Type: return "a number"
    default:
        let name = "\(type)"
        if name.hasPrefix("Array<") || name.hasPrefix("[") { return "an array" }
        if name.hasPrefix("Dictionary<") { return "an object" }
        return "a \(name) value"
    }
}
