import EddaDiagram
import Foundation
import SwiftParser
import SwiftSyntax

/// Finds the workflows in Swift source and describes each as a ``WorkflowFlow``: its durable
/// steps in program order and the control flow (`if`, `guard`, `switch`, loops, `do`/`catch`)
/// around them.
///
/// The analysis is static: the source is parsed with swift-syntax, never compiled or run, so it
/// works on any Swift text, including files that do not type-check or do not parse completely
/// (the parser recovers, and whatever can be recognised is reported).
///
/// ## What is a workflow
///
/// - A type conforming to `Workflow` (directly, through an extension, or through a protocol that
///   refines `Workflow`), with a `run` method taking a `WorkflowContext` parameter. Its name is
///   the string literal of `static let name`, or the type name when there is none.
/// - A closure registered with `register(workflow: "name") { input, context in … }` (trailing
///   closure or last argument). Its name is the string literal; its context is the closure's
///   second parameter (`$1` when the closure declares none).
///
/// ## What becomes a node
///
/// Calls on the context variable, wherever they appear in a statement: `run` and `start`
/// (activities), `sleep(for:)` and `sleep(until:)`, `waitEvent`, `receive`, `publish`, `sendTo`,
/// `subscribe`, `unsubscribe`, `registerCompensation` and `recur`. The activity passed to `run`
/// is resolved to its durable name when it is an instance of an `Activity` or
/// `CompensatableActivity` type declared in the analyzed sources, or a binding (`let`, stored
/// property, `static let`) of an `ActivityDefinition` with a literal `name:`, or of such a type.
/// `now()`, `uuid()` and `random(…)` are not shown.
///
/// ## Control flow
///
/// - `if`/`else` becomes a ``FlowBranch`` of kind ``FlowBranch/Kind/condition`` labelled with the
///   condition, with arms `Yes` and `No` (an `if` without `else` has an empty `No` arm). An
///   `else if` chain becomes one branch labelled `if` whose arms are labelled with their
///   conditions, the last one `else` (empty when the chain has no final `else`). An `else if`
///   whose condition itself contains a durable call is kept as a nested branch in an `else` arm,
///   so that the call is shown where it runs.
/// - `guard c else { … }` becomes a condition branch labelled `c` with an empty `Yes` arm (the
///   flow continues after the `guard`) and a `No` arm holding the `else` body.
/// - `switch` becomes a ``FlowBranch/Kind/switch`` branch labelled with the subject, one arm per
///   case (`case .a, .b where x`, `default`).
/// - `for`, `while` and `repeat` become a ``FlowLoop`` labelled with their header.
/// - `do` with `catch` clauses becomes a ``FlowBranch/Kind/tryCatch`` branch labelled `do`, with a
///   `do` arm and one error-path arm per `catch` clause.
/// - Durable calls in a condition, a switch subject or a `for` sequence come before the branch or
///   loop they decide; `defer` bodies come at the end of their block.
/// - Branches and loops with no durable operation anywhere inside are left out, to keep the
///   diagram about durable steps.
///
/// Nested function declarations and the bodies of `ActivityDefinition`s are not descended into,
/// nor are closures that declare a parameter with the context variable's name.
///
/// Labels are the source text, trimmed, with comments removed and whitespace collapsed, cut to
/// 60 characters (ending in `...`). They are not escaped: renderers do that.
public struct WorkflowAnalyzer: Sendable {
    /// Creates an analyzer.
    public init() {}

    /// Workflows found in one source text, in source order.
    ///
    /// - Parameter source: Swift source text.
    /// - Returns: One flow per workflow, in the order their bodies appear in the source.
    public func analyze(source: String) -> [WorkflowFlow] {
        analyze(sources: [source])
    }

    /// Workflows found in several sources; activity/workflow declarations in any of them resolve
    /// names in all.
    ///
    /// - Parameter sources: Swift source texts, such as the files of one module.
    /// - Returns: One flow per workflow: the sources in the given order, each in source order.
    public func analyze(sources: [String]) -> [WorkflowFlow] {
        let files = sources.map { Parser.parse(source: $0) }
        let index = DeclarationIndex(files: files)
        return files.flatMap { WorkflowFinder.flows(in: $0, index: index) }
    }

    /// Reads the files (a directory is searched recursively for .swift files) and analyzes them;
    /// throws a clear error (a public error type with a message naming the path) for unreadable
    /// paths.
    ///
    /// Directories are searched for files ending in `.swift`, in lexicographic order of their
    /// paths; hidden files and directories (such as `.build`) are skipped. A file named
    /// explicitly is read whatever its extension. All files are analyzed together, as with
    /// ``analyze(sources:)``.
    ///
    /// - Parameter paths: Files and directories.
    /// - Returns: The workflows of all the files, in the order the files were read.
    /// - Throws: ``WorkflowAnalyzerError`` when a path does not exist, a directory cannot be
    ///   listed, or a file cannot be read as UTF-8 text.
    public func analyze(paths: [String]) throws -> [WorkflowFlow] {
        var sources: [String] = []
        for path in paths {
            for file in try SourceFiles.list(path) {
                sources.append(try SourceFiles.read(file))
            }
        }
        return analyze(sources: sources)
    }
}

/// A path that ``WorkflowAnalyzer/analyze(paths:)`` could not read.
public struct WorkflowAnalyzerError: Error, CustomStringConvertible, LocalizedError, Sendable, Hashable {
    /// The path that could not be read.
    public var path: String
    /// What went wrong, naming the path.
    public var message: String

    /// Creates an error for `path`.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// The message.
    public var description: String { message }

    /// The message, for `localizedDescription`.
    public var errorDescription: String? { message }
}

/// Listing and reading source files.
enum SourceFiles {
    /// `path` itself if it is a file; the `.swift` files under it, sorted, if it is a directory.
    static func list(_ path: String) throws -> [String] {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw WorkflowAnalyzerError(path: path, message: "Cannot read '\(path)': no such file or directory.")
        }
        guard isDirectory.boolValue else { return [path] }
        var files: [String] = []
        try collect(directory: path, into: &files)
        return files.sorted()
    }

    private static func collect(directory: String, into files: inout [String]) throws {
        let manager = FileManager.default
        let entries: [String]
        do {
            entries = try manager.contentsOfDirectory(atPath: directory)
        } catch {
            throw WorkflowAnalyzerError(
                path: directory, message: "Cannot list directory '\(directory)': \(reason(error)).")
        }
        for entry in entries.sorted() where !entry.hasPrefix(".") {
            let child = (directory as NSString).appendingPathComponent(entry)
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: child, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                try collect(directory: child, into: &files)
            } else if entry.hasSuffix(".swift") {
                files.append(child)
            }
        }
    }

    /// The file's text, decoded as UTF-8.
    static func read(_ path: String) throws -> String {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw WorkflowAnalyzerError(path: path, message: "Cannot read '\(path)': \(reason(error)).")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw WorkflowAnalyzerError(path: path, message: "Cannot read '\(path)': the file is not UTF-8 text.")
        }
        return text
    }

    private static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError {
            return underlying.localizedDescription
        }
        return nsError.localizedDescription
    }
}
