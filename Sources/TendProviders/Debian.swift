import FoundationEssentials
import TendProcess
import SystemPackage
import TendCore
import TendSpec

/// One package as the dpkg status file records it.
struct DpkgPackage: Sendable, Hashable {
    var version: String
    /// `install`, `hold`, `deinstall`, `purge`.
    var want: String
    /// `installed`, `config-files`, `half-configured`, …
    var state: String

    var isInstalled: Bool { ["installed", "triggers-awaited", "triggers-pending"].contains(state) }
    var isHeld: Bool { want == "hold" }
}

/// What apt says of one package: the candidate and every version it can install.
struct AptPolicy: Sendable, Hashable, Codable {
    var candidate: String?
    var versions: [String]
}

/// Reading and changing the Debian package database of a root, with dpkg's and apt's own tools.
enum Debian {
    static let statusFile = "/var/lib/dpkg/status"

    /// Every package of the dpkg status file, read once: the bulk observation of packages.
    static func status(_ host: HostReader) throws(HostError) -> [String: DpkgPackage] {
        guard try host.status(statusFile) != nil else {
            throw HostError(path: statusFile, message: "no dpkg database here; packages need a Debian or Ubuntu root")
        }
        var packages: [String: DpkgPackage] = [:]
        for paragraph in String(decoding: try host.read(statusFile), as: UTF8.self).split(separator: "\n\n") {
            var name = "", version = "", status = ""
            for line in paragraph.split(separator: "\n") where !line.hasPrefix(" ") {
                if line.hasPrefix("Package: ") { name = String(line.dropFirst(9)) }
                else if line.hasPrefix("Version: ") { version = String(line.dropFirst(9)) }
                else if line.hasPrefix("Status: ") { status = String(line.dropFirst(8)) }
            }
            let words = status.split(separator: " ").map(String.init)
            guard !name.isEmpty, words.count == 3 else { continue }
            let package = DpkgPackage(version: version, want: words[0], state: words[2])
            // Multi-arch packages appear once per architecture: the installed one counts.
            if let known = packages[name], known.isInstalled, !package.isInstalled { continue }
            packages[name] = package
        }
        return packages
    }

    /// `apt-cache policy` for all of `names` in one call.
    static func policy(_ names: [String], root: String) async throws(HostError) -> [String: AptPolicy] {
        guard !names.isEmpty else { return [:] }
        let run = await Tool.run(["apt-cache", "policy"] + names, root: root)
        guard run.status == 0 else { throw HostError(path: "apt-cache", message: "apt-cache policy failed: \(run.errorLines)") }
        var result: [String: AptPolicy] = [:]
        var current: String?
        var inTable = false
        for line in run.output.split(separator: "\n") {
            if !line.hasPrefix(" "), line.hasSuffix(":") {
                current = String(line.dropLast())
                result[current!] = AptPolicy(candidate: nil, versions: [])
                inTable = false
                continue
            }
            guard let name = current else { continue }
            let text = line.trimmingWhitespace()
            if text.hasPrefix("Candidate: ") {
                let candidate = String(text.dropFirst("Candidate: ".count))
                result[name]?.candidate = candidate == "(none)" ? nil : candidate
            } else if text == "Version table:" {
                inTable = true
            } else if inTable {
                let tokens = text.split(separator: " ").filter { $0 != "***" }
                if tokens.count == 2, Int(tokens[1]) != nil { result[name]?.versions.append(String(tokens[0])) }
            }
        }
        return result
    }

    /// Who holds the dpkg frontend lock of the root: "process 1234 (apt-get)", from /proc/locks.
    static func lockHolder(_ host: HostReader) -> String? {
        guard let lock = try? host.status("/var/lib/dpkg/lock-frontend") else { return nil }
        return LockHolder.describe(inode: lock.inode)
    }

    /// The age of the package lists, or nil when there are none: the newer of the lists and the
    /// stamp Debian's apt touches after every successful update (apt.conf.d/15update-stamp), since
    /// an update that finds nothing new leaves the lists' times alone.
    static func listsAge(_ host: HostReader) -> Duration? {
        guard let updated = listsUpdated(host) else { return nil }
        let now = Int64(host.now.timeIntervalSince1970 * 1_000_000_000)
        let (age, overflow) = now.subtractingReportingOverflow(updated)
        return .nanoseconds(overflow ? Int64.max : max(0, age))
    }

    /// When the lists were last refreshed (nanoseconds since 1970), or nil when there are none.
    static func listsUpdated(_ host: HostReader) -> Int64? {
        let folder = "/var/lib/apt/lists"
        guard let names = try? host.entries(of: folder) else { return nil }
        let stamp = (try? host.status("/var/lib/apt/periodic/update-success-stamp"))?.modificationTime
        // Lists may be stored compressed (`_Packages.lz4` where apt is told to).
        return (names.filter { $0.contains("_Packages") || $0.hasSuffix("Release") }
            .compactMap { try? host.status(folder + "/" + $0)?.modificationTime } + [stamp].compactMap { $0 }).max()
    }

    /// apt's sources and pins: a change to any of them makes the lists stale.
    static let sourcesAndPins = ["/etc/apt/sources.list", "/etc/apt/sources.list.d", "/etc/apt/preferences", "/etc/apt/preferences.d"]
    /// Where the keys that sign apt sources are kept.
    static let keyrings = ["/etc/apt/trusted.gpg.d", "/etc/apt/keyrings", "/usr/share/keyrings"]

    /// When an apt source or pin file last changed (nanoseconds since 1970): the files, and the
    /// folders themselves, whose time changes when a file is added or removed.
    static func sourcesChanged(_ host: HostReader) -> Int64? {
        var times: [Int64] = []
        for path in sourcesAndPins {
            guard let status = try? host.status(path) else { continue }
            times.append(status.modificationTime)
            if status.type == .directory, let names = try? host.entries(of: path) {
                for name in names {
                    if let entry = try? host.status(path + "/" + name) { times.append(entry.modificationTime) }
                }
            }
        }
        return times.max()
    }

    /// Whether the lists must be refreshed before apt installs: there are none, they are older
    /// than `maxAge`, or an apt source or pin changed since they were refreshed.
    static func listsStale(_ host: HostReader, maxAge: Duration) -> Bool {
        guard let updated = listsUpdated(host) else { return true }
        if let changed = sourcesChanged(host), changed > updated { return true }
        return listsAge(host).map { $0 > maxAge } ?? true
    }
}

/// A tool run to completion; its exit status is a result to inspect, not an error.
struct Tool {
    var status: Int32
    var output: String
    var error: String

    /// apt's and dpkg's own error lines, kept verbatim.
    var errorLines: String {
        let lines = (output + "\n" + error).split(separator: "\n").filter {
            $0.hasPrefix("E: ") || $0.hasPrefix("dpkg: ") || $0.contains("error") || $0.hasPrefix("W: ")
        }
        return lines.isEmpty ? String((error.isEmpty ? output : error).suffix(2000)) : lines.joined(separator: "\n")
    }

    /// Runs `command` for `root`: directly for "/", through chroot for another root, with `input`
    /// on its standard input. Each line of its standard output is kept (up to 8 MiB) and, with
    /// `lines`, handed over as it comes.
    static func run(_ command: [String], root: String, environment: [String: String] = [:], input: String = "",
                    lines: (@Sendable (String) -> Void)? = nil) async -> Tool {
        let full = root == "/" ? command : ["/usr/sbin/chroot", root] + command
        let settings = ["LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
                        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"].merging(environment) { _, given in given }
        let finished = await ChildProcess(full, environment: settings, input: .text(input)).run(lines: lines)
        return Tool(status: finished.status, output: finished.output, error: finished.error)
    }
}
