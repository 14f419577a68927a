public import TendCore
public import TendSpec
public import FoundationEssentials
import SystemPackage

/// A host's snapshot file (`tend snapshot --out host.json`): what the host is (its facts, its
/// machine ID, what tend last applied and manages there) and what observing it read
/// (`HostSnapshot`). `tend plan --snapshot` plans any commit for that host from it, without the
/// host. docs/fleet.md describes the format; it is versioned like the plan file.
public struct HostSnapshotFile: Codable, Sendable {
    public static let currentFormatVersion = 1

    public var formatVersion = HostSnapshotFile.currentFormatVersion
    public var taken: Date
    public var tendVersion: String
    public var facts: HostFacts
    public var machineID: String
    /// The configuration observed for: its description and commit.
    public var source: String
    public var commit: String?
    /// What the last apply managed, for `prune:`.
    public var inventory: Inventory?
    public var observed: HostSnapshot

    public init(taken: Date, tendVersion: String, facts: HostFacts, machineID: String, source: String, commit: String?,
                inventory: Inventory?, observed: HostSnapshot) {
        self.taken = taken
        self.tendVersion = tendVersion
        self.facts = facts
        self.machineID = machineID
        self.source = source
        self.commit = commit
        self.inventory = inventory
        self.observed = observed
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", taken, tendVersion = "tend_version", facts, machineID = "machine_id", source, commit, inventory, observed
    }

    /// Writes the file atomically at mode 0600: it names every managed path, and the contents
    /// of files anyone on the host may read.
    public func write(to path: String) throws(HostSnapshotFileError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        do {
            try AtomicFile.write(Array(try encoder.encode(self)) + [UInt8(ascii: "\n")], toPath: path, mode: 0o600)
        } catch let error as AtomicFileError {
            throw HostSnapshotFileError(path: path, message: "cannot write it: \(error)")
        } catch {
            throw HostSnapshotFileError(path: path, message: "cannot encode it: \(error)")
        }
    }

    /// The largest snapshot file read: a host's dpkg database (up to 64 MiB) and what it manages.
    static let largestFile = 256 << 20

    /// Reads a snapshot file, saying what is wrong with one that cannot be used. Its contents
    /// come from a host, which may be hostile: they are kept within `HostSnapshot.largestText`.
    public static func read(_ path: String) throws(HostSnapshotFileError) -> HostSnapshotFile {
        let data: Data
        do {
            let fd = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec, .nonBlocking])
            defer { try? fd.close() }
            let info = try fd.stat()
            guard info.type == .regular else { throw HostSnapshotFileError(path: path, message: "not a regular file") }
            guard info.size <= largestFile else { throw HostSnapshotFileError(path: path, message: "larger than \(largestFile >> 20) MiB; not a snapshot tend wrote") }
            data = Data(try fd.readToEnd(sizeHint: Int(info.size), limit: largestFile))
        } catch let error as HostSnapshotFileError {
            throw error
        } catch {
            throw HostSnapshotFileError(path: path, message: "cannot read it: \(error)")
        }
        struct Version: Decodable { var format_version: Int }
        guard let version = try? JSONDecoder().decode(Version.self, from: data) else {
            throw HostSnapshotFileError(path: path, message: "not a tend snapshot (no format_version)")
        }
        guard version.format_version == currentFormatVersion else {
            throw HostSnapshotFileError(path: path, message: "snapshot format \(version.format_version); this tend reads format \(currentFormatVersion)")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            var file = try decoder.decode(HostSnapshotFile.self, from: data)
            file.observed = file.observed.bounded()
            return file
        } catch let DecodingError.keyNotFound(key, context) {
            let at = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            throw HostSnapshotFileError(path: path, message: "not a valid snapshot: '\(key.stringValue)' is missing at \(at.isEmpty ? "the top" : String(at.drop { $0 == "." }))")
        } catch {
            throw HostSnapshotFileError(path: path, message: "not a valid snapshot: a value has the wrong type or the JSON is malformed")
        }
    }
}

/// Why a snapshot file cannot be written or used.
public struct HostSnapshotFileError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String

    public var description: String { "\(path): \(message)" }
}
