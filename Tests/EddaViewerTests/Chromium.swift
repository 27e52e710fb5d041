#if canImport(Glibc)
import Glibc
#endif
import Edda
import Foundation
import Synchronization
import TestSupport

/// A real headless Chromium driven over the DevTools protocol on a pipe
/// (`--remote-debugging-pipe`: commands on the child's fd 3, replies on its fd 4, each message
/// ending with a NUL byte), so no WebSocket client is needed.
///
/// JavaScript dialogs (`confirm`) are accepted as a user clicking OK would, and recorded.
final class Chromium: @unchecked Sendable {
    private let pid: pid_t
    private let commands: Int32
    private let replies: Int32
    private let profile: String
    private var nextID = 0
    private var sessionID: String?
    private var buffer: [UInt8] = []
    /// The messages of the dialogs accepted so far.
    private(set) var dialogs: [String] = []

    /// Where Chromium is, installing Debian's package with the project's script if needed; fails
    /// loudly when it cannot be had.
    static func executable() throws -> String {
        let candidates = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
        if let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) { return found }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/install-chromium.sh").path
        do {
            try runCommand(["/bin/bash", script])
        } catch {
            throw TestFailure("Chromium is missing and scripts/install-chromium.sh could not install it: \(error)")
        }
        guard let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw TestFailure("scripts/install-chromium.sh ran, but no Chromium is at \(candidates.joined(separator: " or "))")
        }
        return found
    }

    init() throws {
        let executable = try Self.executable()
        profile = FileManager.default.temporaryDirectory.appendingPathComponent("edda-chromium-\(UUID().uuidString)").path
        var toChild: [Int32] = [0, 0]
        var fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { throw TestFailure("pipe() failed") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 3)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 4)
        closeInheritedDescriptors(from: 5, in: &actions)
        let argv = [
            executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-background-networking", "--disable-sync",
            "--remote-debugging-pipe", "--user-data-dir=\(profile)", "--window-size=1280,900", "about:blank",
        ]
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable, &actions, nil, &cArguments, environ)
        close(toChild[0])
        close(fromChild[1])
        guard spawned == 0 else { throw TestFailure("could not start \(executable): error \(spawned)") }
        self.pid = pid
        commands = toChild[1]
        replies = fromChild[0]
    }

    deinit {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        close(commands)
        close(replies)
        try? FileManager.default.removeItem(atPath: profile)
    }

    /// Opens a page and attaches to it; later commands go to that page.
    func openPage() throws {
        let target = try send("Target.createTarget", ["url": "about:blank"], toPage: false)
        guard let targetID = target["targetId"]?.stringValue else { throw TestFailure("no target: \(target)") }
        let attached = try send("Target.attachToTarget", ["targetId": .string(targetID), "flatten": true], toPage: false)
        sessionID = attached["sessionId"]?.stringValue
        _ = try send("Page.enable")
        _ = try send("Runtime.enable")
        _ = try send(
            "Emulation.setDeviceMetricsOverride", ["width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false])
    }

    /// Loads `url` and waits until it has loaded.
    func navigate(_ url: String) throws {
        try markPage()
        _ = try send("Page.navigate", ["url": .string(url)])
        try waitForNewPage()
    }

    /// The value of a JavaScript expression (run in the page).
    @discardableResult
    func evaluate(_ expression: String) throws -> JSONValue {
        let result = try send("Runtime.evaluate", ["expression": .string(expression), "returnByValue": true, "awaitPromise": true])
        if let exception = result["exceptionDetails"] { throw TestFailure("JavaScript failed: \(exception)") }
        return result["result"]?["value"] ?? .null
    }

    /// Clicks the element `selector` as a user would and waits for the page it leads to.
    func click(_ selector: String) throws {
        try markPage()
        let selectorJSON = JSONValue.string(selector).jsonText
        let found = try evaluate("(() => { const e = document.querySelector(\(selectorJSON)); if (!e) return false; e.click(); return true; })()")
        guard found == .bool(true) else { throw TestFailure("no element matches \(selector)") }
        try waitForNewPage()
    }

    /// Makes the page see `scheme` (`"dark"` or `"light"`) as the system's preferred colour scheme.
    func emulateColorScheme(_ scheme: String) throws {
        _ = try send("Emulation.setEmulatedMedia", ["features": [["name": "prefers-color-scheme", "value": .string(scheme)]]])
    }

    /// A PNG screenshot of the whole page, written to `path`.
    func screenshot(to path: String) throws {
        let shot = try send("Page.captureScreenshot", ["format": "png", "captureBeyondViewport": true])
        guard let base64 = shot["data"]?.stringValue, let data = Data(base64Encoded: base64) else {
            throw TestFailure("no screenshot data")
        }
        try FileManager.default.createDirectory(
            at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path))
    }

    // MARK: - Protocol

    private func send(_ method: String, _ parameters: [String: JSONValue] = [:], toPage: Bool = true) throws -> JSONValue {
        nextID += 1
        let id = nextID
        var message: [String: JSONValue] = ["id": .number(Double(id)), "method": .string(method), "params": .object(parameters)]
        if toPage, let sessionID { message["sessionId"] = .string(sessionID) }
        try write(JSONValue.object(message).jsonText)
        while true {
            let reply = try readMessage(timeout: 30)
            if reply["id"] == .number(Double(id)) {
                if let error = reply["error"] { throw TestFailure("\(method) failed: \(error)") }
                return reply["result"] ?? .null
            }
            if reply["method"]?.stringValue == "Page.javascriptDialogOpening" {
                dialogs.append(reply["params"]?["message"]?.stringValue ?? "")
                nextID += 1
                var accept: [String: JSONValue] = [
                    "id": .number(Double(nextID)), "method": "Page.handleJavaScriptDialog", "params": ["accept": true],
                ]
                if let sessionID { accept["sessionId"] = .string(sessionID) }
                try write(JSONValue.object(accept).jsonText)
                continue
            }
            // Other events are not needed: page loads are observed in the page itself.
        }
    }

    /// Marks the page shown now, so that ``waitForNewPage(timeout:)`` can tell the next one from it.
    private func markPage() throws {
        try evaluate("document.__eddaPreviousPage = true")
    }

    /// Waits until a page other than the marked one has loaded completely. (Load events are not
    /// enough: one left over from an earlier page, late on a loaded machine, would be taken for
    /// the next.)
    private func waitForNewPage(timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            // While the old page unloads, evaluation may fail: not loaded yet.
            let loaded = try? evaluate("document.readyState === 'complete' && document.__eddaPreviousPage === undefined")
            if loaded == .bool(true) { return }
            usleep(50_000)
        }
        throw TestFailure("no new page loaded within \(timeout) s")
    }

    private func write(_ text: String) throws {
        var bytes = Array(text.utf8) + [0]
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(commands, $0.baseAddress! + offset, $0.count - offset) }
            guard written > 0 else { throw TestFailure("writing to Chromium failed (errno \(errno))") }
            offset += written
        }
    }

    private func readMessage(timeout: Double) throws -> JSONValue {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let end = buffer.firstIndex(of: 0) {
                let text = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeSubrange(...end)
                guard let message = JSONValue(jsonText: text) else { throw TestFailure("Chromium sent invalid JSON: \(text.prefix(200))") }
                return message
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw TestFailure("Chromium did not answer within \(timeout) s") }
            var poller = pollfd(fd: replies, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(remaining, 1) * 1000))
            if ready <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let count = read(replies, &chunk, chunk.count)
            guard count > 0 else { throw TestFailure("Chromium closed its pipe (it exited)") }
            buffer += chunk[..<count]
        }
    }
}
