/// A request Edda refused before changing anything: an unknown workflow, an instance ID taken
/// by another workflow, input that does not decode, an invalid query.
///
/// Each case's description says what was wrong and what to do.
public struct EddaUsageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The family of mistake, for matching in `catch` clauses.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        let rawValue: String
        /// No workflow of that name is registered in this app.
        public static let unknownWorkflow = Kind(rawValue: "unknownWorkflow")
        /// The requested instance ID already belongs to an instance of another workflow.
        public static let instanceIDConflict = Kind(rawValue: "instanceIDConflict")
        /// Stored or supplied input cannot be decoded to the workflow's input type.
        public static let undecodableInput = Kind(rawValue: "undecodableInput")
        /// A value could not be encoded to JSON.
        public static let unencodableValue = Kind(rawValue: "unencodableValue")
        /// No instance has that ID.
        public static let unknownInstance = Kind(rawValue: "unknownInstance")
        /// A query filter or page token is malformed.
        public static let invalidQuery = Kind(rawValue: "invalidQuery")
        /// A workflow receives on a channel it has not subscribed to.
        public static let notSubscribed = Kind(rawValue: "notSubscribed")
        /// The database has no Edda schema, and the app was told not to create it
        /// (``EddaApp/Configuration/migratesSchema``).
        public static let schemaMissing = Kind(rawValue: "schemaMissing")
        /// A configuration value is out of range.
        public static let invalidConfiguration = Kind(rawValue: "invalidConfiguration")
        /// The app's database driver does not provide the capability the call needs (channels,
        /// the outbox); see ``WorkflowStore``.
        public static let unsupportedByStore = Kind(rawValue: "unsupportedByStore")
        public var description: String { rawValue }
    }

    /// What kind of mistake this is.
    public var kind: Kind
    /// A sentence that says what happened and what to do.
    public var message: String

    /// Creates an error of `kind` with a message that says what to do.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
