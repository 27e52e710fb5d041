#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation
import Synchronization

/// Proof that a worker on this host has ended, so that its instances resume at once instead of
/// when its lease lapses.
///
/// Each app holds an exclusive `flock` on a file named after its worker ID, in a directory the
/// workers of one host share, for as long as its process lives. The kernel releases that lock
/// when the process ends, however it ends (`kill -9` included), and never while it runs. So a
/// worker that can take another's lock has proof that the other's process is gone: PID reuse
/// cannot fool it, and two workers on one host each keep their own lock. A file appears under
/// its final name only once its owner holds the lock (it is locked under a temporary name and
/// renamed), so a worker that is just starting is never taken for dead.
///
/// What the proof does not reach stays safe: a worker on another host, or one whose directory
/// this process cannot see (another user, another container's `/tmp`), is never taken for
/// dead; its instances resume when its lease lapses, as before. Markers live in a subdirectory
/// per boot of the host and per database (`<boot ID>-<digest of the database>`), so a worker
/// never acts on a marker of another host that shares the folder, of an earlier boot, or of an
/// app on another database (which would find none of its instances and delete the marker the
/// right app needs). The folder is created private (0700) and refused if anyone else can write
/// to it. It must be on a local file system.
final class WorkerLiveness: Sendable {
    /// The directory of the markers.
    let directory: String
    private let ownPath: String
    private let ownDescriptor: Mutex<Int32?>
    private static let suffix = ".alive"

    /// The default directory: one per user in the temporary directory.
    static var defaultDirectory: String {
        let temporary = FileManager.default.temporaryDirectory.path
        return temporary + (temporary.hasSuffix("/") ? "" : "/") + "edda-workers-\(getuid())"
    }

    /// The markers' directory for workers of `database` under `base`: one per boot of this host
    /// and per database.
    static func directory(base: String, database: String) -> String {
        let boot = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "host"
        return base + "/" + boot + "-" + String(SHA256.hexDigest(database).prefix(16))
    }

    /// Creates and locks this worker's marker in `directory` (created private if missing).
    init(directory: String, workerID: String) throws {
        try Self.preparePrivate(directory)
        self.directory = directory
        ownPath = directory + "/" + Self.fileName(workerID)
        let temporary = directory + "/." + UUID().uuidString + ".starting"
        let descriptor = open(temporary, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Self.error("create", temporary) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let error = Self.error("lock", temporary)
            close(descriptor)
            unlink(temporary)
            throw error
        }
        guard rename(temporary, ownPath) == 0 else {
            let error = Self.error("rename into place", temporary)
            close(descriptor)
            unlink(temporary)
            throw error
        }
        ownDescriptor = Mutex(descriptor)
    }

    deinit {
        if let descriptor = ownDescriptor.withLock({ $0 }) { close(descriptor) }
    }

    /// Removes this worker's marker (at a clean shutdown).
    func remove() {
        guard let descriptor = ownDescriptor.withLock({ descriptor -> Int32? in
            defer { descriptor = nil }
            return descriptor
        }) else { return }
        unlink(ownPath)
        close(descriptor)
    }

    /// Creates `path` (and its parents) with mode 0700 where missing, and refuses it, or its
    /// parent unless that is the temporary directory, if it is a symbolic link, belongs to another
    /// user, or others may write to it: whoever can write there could plant a marker under a live
    /// worker's name.
    private static func preparePrivate(_ path: String) throws {
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let parent = (path as NSString).deletingLastPathComponent
        let temporary = FileManager.default.temporaryDirectory.standardizedFileURL.path
        for folder in [path] + ([temporary, "/", ""].contains(parent) ? [] : [parent]) {
            var info = stat()
            guard lstat(folder, &info) == 0 else { throw error("inspect", folder) }
            guard (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == getuid(), info.st_mode & 0o022 == 0 else {
                throw EddaUsageError(
                    .invalidConfiguration,
                    "The worker marker folder \(folder) is not a private folder of this user (a link, another owner, or "
                        + "writable by others). Set workerLivenessDirectory to a folder of your own, or to nil to turn "
                        + "takeover on restart off.")
            }
        }
    }

    /// Workers whose marker is here but whose process has ended. Each marker so found stays
    /// locked by this process until ``forget(_:)``, so no other worker acts on the same one.
    func endedWorkers() -> [EndedWorker] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var ended: [EndedWorker] = []
        for name in names where name.hasSuffix(Self.suffix) && !name.hasPrefix(".") {
            let path = directory + "/" + name
            guard path != ownPath else { continue }
            let descriptor = open(path, O_RDWR | O_CLOEXEC)
            guard descriptor >= 0 else { continue }
            if flock(descriptor, LOCK_EX | LOCK_NB) == 0 {
                let encoded = String(name.dropLast(Self.suffix.count))
                let workerID = encoded.removingPercentEncoding ?? encoded
                ended.append(EndedWorker(workerID: workerID, path: path, descriptor: descriptor))
            } else {
                close(descriptor)
            }
        }
        return ended
    }

    /// Deletes an ended worker's marker, once its instances are released.
    func forget(_ worker: EndedWorker) {
        unlink(worker.path)
        close(worker.descriptor)
    }

    /// Lets go of an ended worker's marker without deleting it (its takeover failed; a later
    /// pass finds it again).
    func letGo(_ worker: EndedWorker) {
        close(worker.descriptor)
    }

    /// A worker ID as a file name (IDs may hold any character but NUL).
    private static func fileName(_ workerID: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-_.@")
        return (workerID.addingPercentEncoding(withAllowedCharacters: allowed) ?? workerID) + suffix
    }

    private static func error(_ action: String, _ path: String) -> EddaUsageError {
        EddaUsageError(
            .invalidConfiguration,
            "Could not \(action) the worker marker \(path): \(String(cString: strerror(errno))). "
                + "Set workerLivenessDirectory to a writable local folder, or to nil to turn takeover on restart off.")
    }
}

/// A worker whose process has ended, with its marker still locked by this process.
struct EndedWorker: Sendable {
    let workerID: String
    let path: String
    let descriptor: Int32
}
