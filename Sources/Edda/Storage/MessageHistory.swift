import Foundation

/// How a received message is written to `workflow_history` (`ChannelMessageReceived`), for
/// every store.
package enum MessageHistory {
    /// Always a JSON row `{"id", "channel", "data", "metadata", "published_at"}`, the reference's
    /// shape, which every member of the family loads.
    ///
    /// Binary data cannot be JSON:
    /// - for this implementation's instances it is `"data": null, "data_base64": "…"`, so that
    ///   replay gets the bytes and the metadata back;
    /// - for another framework's instances it is `"data": {"_binary": true, "data": "<base64>"}`,
    ///   the shape the reference's history archive gives binary rows. Python Edda 0.16.2 writes
    ///   binary messages as raw-bytes rows, but cannot load them (its history loading fails
    ///   with `'bytes' object has no attribute 'get'` and the instance stays stuck); this shape it
    ///   loads, and its workflow receives that object as the message's data.
    package static func payload(_ message: StoredMessage, ownInstance: Bool) -> HistoryPayload {
        var writer = JSONObjectWriter()
        writer.add("id", string: message.messageID)
        writer.add("channel", string: message.channel)
        switch message.payload {
        case .json(let text):
            writer.add("data", raw: text)
        case .binary(let bytes):
            let base64 = Data(bytes).base64EncodedString()
            if ownInstance {
                writer.add("data", raw: "null")
                writer.add("data_base64", string: base64)
            } else {
                var data = JSONObjectWriter()
                data.add("_binary", raw: "true")
                data.add("data", string: base64)
                writer.add("data", raw: data.finish())
            }
        }
        writer.add("metadata", raw: message.metadataJSON ?? "{}")
        writer.add("published_at", string: Timestamp.iso8601(message.publishedAt))
        return .json(writer.finish())
    }
}
