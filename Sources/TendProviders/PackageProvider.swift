public import TendCore
public import TendSpec
import FoundationEssentials

/// `package`: a Debian package installed (at apt's candidate, the latest, or a pinned version,
/// held while pinned) or absent (removed, or purged).
///
/// Observing reads the dpkg status file once for all packages and asks `apt-cache policy` once for
/// all of them. Applying hands every ready package step to apt as one transaction, without
/// prompts and keeping existing configuration files, waiting for the dpkg lock up to a timeout.
public struct PackageProvider: ResourceProvider {
    /// How long to wait for the dpkg lock held by another process.
    public var lockTimeout: Int
    /// Package lists older than this are refreshed (`apt-get update`) before a transaction that
    /// installs or upgrades.
    public var listsMaxAge: Duration

    public init(lockTimeout: Int = 300, listsMaxAge: Duration = .seconds(3600)) {
        self.lockTimeout = lockTimeout
        self.listsMaxAge = listsMaxAge
    }

    public var kind: String { "package" }
    public var appliesInBatches: Bool { true }
    /// A package's files and maintainer scripts make paths and accounts of their own.
    public var changesOtherResources: Bool { true }
    public var prefetches: Bool { true }

    public enum State: String, Sendable, Hashable {
        case installed, latest, absent
    }

    public struct Desired: DesiredState {
        var name: String
        var state: State
        var version: String?
        var purge: Bool

        public var id: ResourceID { ResourceID(kind: "package", name: name) }
        /// apt's sources, pins and keys that the same apply writes are in place before apt runs
        /// (not apt.conf.d, whose files often belong to a package, such as unattended-upgrades').
        public var implicitFolderDependencies: [String] { Debian.sourcesAndPins + Debian.keyrings }
        public var isRemoval: Bool { state == .absent }

        public func digest(into digest: inout Digest) {
            digest.add("name", name)
            digest.add("state", state.rawValue)
            digest.add("version", version)
            digest.add("purge", purge ? "true" : "false")
        }
    }

    public struct Observed: ObservedState {
        var package: DpkgPackage?
        var policy: AptPolicy?
        var listsStale: Bool
        /// Planned from a snapshot that holds no apt candidate for it (a package new to the
        /// host's configuration).
        var candidateUnrecorded = false
        /// Packages the whole transaction would also install or remove (on the first package only).
        var extras: [String]

        public func fingerprint(into digest: inout Digest) {
            digest.add("package", package.map { "\($0.version) \($0.want) \($0.state)" })
            digest.add("candidate", policy?.candidate)
        }

        var installed: String? { package?.isInstalled == true ? package?.version : nil }
    }

    // MARK: Decoding

    public func decode(_ declaration: ResourceDeclaration, context: inout DecodeContext) -> Desired? {
        var declaration = declaration
        let name = declaration.name
        let valid = name.count >= 2 && name.first.map { $0.isLowercase || $0.isNumber } == true
            && name.allSatisfy { $0.isLowercase || $0.isNumber || "+-.".contains($0) } && name.allSatisfy(\.isASCII)
        guard valid else {
            context.diagnostics.error("\(Printable.quoted(name)) is not a Debian package name (lowercase letters, digits, + - and .)", at: declaration.nameLocation)
            return nil
        }
        defer { declaration.attributes.finish(&context.diagnostics, context: "a package") }
        var desired = Desired(name: name, state: .installed, version: nil, purge: false)
        if let node = declaration.attributes.take("state"), let text = node.string("'state'", &context.diagnostics) {
            if let state = State(rawValue: text) {
                desired.state = state
            } else {
                context.diagnostics.error("'state' of a package must be installed, latest or absent, found '\(text)'", at: node.location)
            }
        }
        if let node = declaration.attributes.take("version"), let version = node.string("'version'", &context.diagnostics) {
            // Debian's version syntax ([epoch:]upstream[-revision]): it goes on apt's command line.
            let allowed = version.utf8.allSatisfy { byte in
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || ".+~:-".utf8.contains(byte)
            }
            guard !version.isEmpty, allowed, version.first?.isNumber == true || version.contains(":") else {
                context.diagnostics.error("'version' \(Printable.quoted(version)) is not a Debian version (digits first, then letters, digits and . + ~ : -)", at: node.location)
                return nil
            }
            desired.version = version
            if desired.state != .installed {
                context.diagnostics.error("a pinned 'version' needs 'state: installed' (it is the default)", at: node.location)
            }
        }
        if let node = declaration.attributes.take("purge"), let purge = node.bool("'purge'", &context.diagnostics) {
            desired.purge = purge
            if purge, desired.state != .absent {
                context.diagnostics.error("'purge: true' goes with 'state: absent'", at: node.location)
            }
        }
        return desired
    }

    // MARK: Refreshing

    /// `apt-get update`, once, before `tend apply` plans: only when a package is to be installed or
    /// kept at the latest version and the lists are older than `listsMaxAge`.
    public func refresh(_ desired: [Desired], host: HostWriter) async throws(HostError) {
        // A policy-rc.d a killed tend left in an image would keep every service of it from
        // starting on upgrades, once booted: gone before anything else.
        if host.reader.root != "/", try host.reader.status(Self.policyPath)?.type == .regular,
           (try? host.reader.read(Self.policyPath)) == Array(Self.policyText.utf8) {
            try host.remove(Self.policyPath, expected: .regular, recursive: false)
        }
        let status = try Self.dpkgStatus(host.reader)
        let installing = desired.filter { $0.state == .latest || ($0.state == .installed && status[$0.name]?.isInstalled != true) }
        guard !installing.isEmpty else { return }
        var refresh = Debian.listsStale(host.reader, maxAge: listsMaxAge)
        if !refresh, Self.mayRefreshForUnknown(host.reader) {
            let policy = try await Debian.policy(installing.map(\.name), root: host.reader.root)
            refresh = installing.contains { policy[$0.name]?.candidate == nil && $0.version == nil }
        }
        if refresh { try await update(host) }
    }

    /// A package apt knows no candidate for is refreshed for within `--apt-max-age`, but not
    /// more often than this: a name that no source has (a typo) must not cost the mirrors an
    /// update on every run of the agent.
    static let unknownRefreshInterval: Duration = .seconds(900)

    static func mayRefreshForUnknown(_ host: HostReader) -> Bool {
        Debian.listsAge(host).map { $0 > unknownRefreshInterval } ?? true
    }

    /// `apt-get update`, remembered for the rest of the run. apt exits 0 when a source could not
    /// be fetched, keeping that source's old lists (or none): each such source is said as a
    /// warning of the run, and returned, so that a package with no candidate can name them.
    @discardableResult
    private func update(_ host: HostWriter) async throws(HostError) -> [String] {
        let update = await Tool.run(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=\(lockTimeout)"], root: host.reader.root, lines: host.toolOutput)
        guard update.status == 0 else {
            throw HostError(path: "apt-get update", message: "refreshing the package lists failed:\n" + update.errorLines)
        }
        let failed = Self.unfetchedSources(update.output + "\n" + update.error)
        if !failed.isEmpty {
            host.warn("apt-get update could not fetch \(failed.joined(separator: ", ")): apt keeps what it had of \(failed.count == 1 ? "it" : "them") (or nothing), and a package only \(failed.count == 1 ? "it" : "they") offer has no candidate")
        }
        // The stamp Debian's apt touches after each update (apt.conf.d/15update-stamp), where an
        // image left that hook out: a list apt kept has its mirror's time, not the update's, and
        // an apt source written since would otherwise look newer than the lists for good.
        let stamp = "/var/lib/apt/periodic/update-success-stamp"
        try host.makeParentDirectories(of: stamp)
        try host.writeFile(stamp, contents: [], mode: 0o644, owner: 0, group: 0, replacing: try host.reader.status(stamp)?.type)
        return failed
    }

    /// The sources apt-get update said it could not fetch (`W: Failed to fetch URL  reason`),
    /// by URL, each once, in order.
    static func unfetchedSources(_ output: String) -> [String] {
        var sources: [String] = []
        for line in output.split(separator: "\n") where line.hasPrefix("W: Failed to fetch ") || line.hasPrefix("E: Failed to fetch ") {
            let url = String(line.dropFirst("W: Failed to fetch ".count).prefix { $0 != " " })
            if !url.isEmpty, !sources.contains(url) { sources.append(url) }
        }
        return sources
    }

    // MARK: Observing

    /// dpkg's record of each package, read once a run (and again after apt ran).
    static let dpkgStatus = BulkRead<[String: DpkgPackage]>("package.dpkg-status")
    /// apt's candidates of the packages that need one.
    private static let aptPolicy = BulkRead<[String: AptPolicy]>("package.apt-policy")
    /// What the whole transaction would also do, by the first package it changes.
    private static let transactionExtras = BulkRead<(owner: String, extras: [String])>("package.transaction-extras")
    private static let listsStale = BulkRead<Bool>("package.lists-stale")
    /// The key a snapshot keeps apt's candidates under (`HostReader.record`).
    private static let policyRecord = "package.apt-policy"

    /// dpkg's record of each package, as this run read it, or read now.
    static func dpkgStatus(_ host: HostReader) throws(HostError) -> [String: DpkgPackage] {
        if let known = host[dpkgStatus] { return known }
        let status = try Debian.status(host)
        host[dpkgStatus] = status
        return status
    }

    public func prefetch(_ desired: [Desired], host: HostReader) async throws(HostError) {
        let status = try Self.dpkgStatus(host)
        host[Self.listsStale] = Debian.listsStale(host, maxAge: listsMaxAge)
        // A snapshot's preview runs no tools: apt's answers are the ones recorded on the host.
        if host.replaysSnapshot {
            let recorded = host.recordedValue(Self.policyRecord).flatMap { try? JSONDecoder().decode([String: AptPolicy].self, from: Data($0.utf8)) }
            host[Self.aptPolicy] = recorded ?? [:]
            return
        }
        // apt's candidates only for the packages that need one: to install, to upgrade, to pin;
        // for a snapshot, of every package, for the commits it will preview.
        let wanted = desired.filter { package in
            let installed = status[package.name].flatMap { $0.isInstalled ? $0.version : nil }
            switch package.state {
            case .absent: return false
            case .latest: return true
            case .installed: return installed == nil || (package.version != nil && installed != package.version) || host.recorder != nil
            }
        }.map(\.name)
        let policy = try await Debian.policy(wanted, root: host.root)
        host[Self.aptPolicy] = policy
        if host.recorder != nil, let json = try? JSONEncoder().encode(policy) {
            host.record(Self.policyRecord, value: String(decoding: json, as: UTF8.self))
        }
        // Ask apt, without changing anything, what the whole transaction would also do.
        let changing = desired.compactMap { package in
            Self.argument(for: package, installed: status[package.name], candidate: policy[package.name]?.candidate).map { (package.name, $0) }
        }
        guard let first = changing.first else { return }
        let arguments = changing.map(\.1)
        let simulation = await Tool.run(["apt-get", "-s", "-q", "--allow-downgrades", "--allow-change-held-packages", "install"] + arguments, root: host.root)
        let declared = Set(desired.map(\.name))
        var extras: [String] = []
        for line in simulation.output.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard words.count >= 2, words[0] == "Inst" || words[0] == "Remv", !declared.contains(String(words[1])) else { continue }
            let version = line.firstRange(of: "(").map { String(line[$0.upperBound...].prefix { $0 != " " && $0 != ")" }) }
            extras.append((words[0] == "Inst" ? "installs " : "removes ") + String(words[1]) + (version.map { " (\($0))" } ?? ""))
        }
        host[Self.transactionExtras] = (first.0, extras)
    }

    public func observe(_ desired: Desired, host: HostReader) throws(HostError) -> Observed {
        let packages = try Self.dpkgStatus(host)
        let policy = host[Self.aptPolicy]?[desired.name]
        let stale = host[Self.listsStale] ?? Debian.listsStale(host, maxAge: listsMaxAge)
        var observed = Observed(package: packages[desired.name], policy: policy, listsStale: stale, extras: [])
        observed.candidateUnrecorded = policy == nil && host.replaysSnapshot
        if let (owner, extras) = host[Self.transactionExtras], owner == desired.name {
            observed.extras = extras
        }
        if let version = desired.version, let policy, !policy.versions.isEmpty, !policy.versions.contains(version), observed.installed != version {
            throw HostError(path: desired.name, message: "version \(version) is not available (apt knows \(policy.versions.joined(separator: ", ")))")
        }
        // No candidate is not an error yet: an apt source this apply adds may bring one. Applying
        // refreshes the lists first, and fails the package if apt still knows none.
        return observed
    }

    // MARK: Planning

    public func plan(_ desired: Desired, observed: Observed, context: PlanContext) -> Change? {
        let installed = observed.installed
        let held = observed.package?.isHeld ?? false
        var attributes: [AttributeChange] = []
        var notes: [String] = []
        switch desired.state {
        case .absent:
            if let installed {
                attributes.append(AttributeChange("version", before: installed, after: nil, afterNote: "absent"))
                if desired.purge { notes.append("purge its configuration files") }
            } else if desired.purge, observed.package?.state == "config-files" {
                notes.append("purge the configuration files it left")
            } else {
                return nil
            }
            return Change(.delete, attributes: attributes, notes: notes + Self.extrasNote(observed))
        case .installed, .latest:
            let target = desired.version ?? (desired.state == .latest || installed == nil ? observed.policy?.candidate : installed)
            if installed != target || installed == nil {
                let unknown = observed.candidateUnrecorded ? "apt's candidate on the host (not in its snapshot)" : "apt's candidate once the lists are refreshed"
                attributes.append(AttributeChange("version", before: installed, after: target, beforeNote: installed == nil ? "absent" : nil,
                                                 afterNote: target == nil ? unknown : nil))
            }
            if (desired.version != nil) != held {
                attributes.append(AttributeChange("held", before: held, after: desired.version != nil))
            }
            guard !attributes.isEmpty else { return nil }
            if observed.listsStale, installed != target {
                notes.append("the package lists are old, or an apt source or pin changed since: tend apply refreshes them first (apt-get update)")
            } else if target == nil, !observed.candidateUnrecorded {
                notes.append("apt knows no candidate now: tend apply refreshes the lists first, and fails if there is still none")
            }
            return Change(installed == nil ? .create : .update, attributes: attributes, notes: notes + Self.extrasNote(observed))
        }
    }

    private static func extrasNote(_ observed: Observed) -> [String] {
        observed.extras.isEmpty ? [] : ["the transaction also " + observed.extras.joined(separator: ", ")]
    }

    /// The `apt-get install` argument that brings the package to its state, or nil if none is needed.
    static func argument(for desired: Desired, installed package: DpkgPackage?, candidate: String?) -> String? {
        let installed = package?.isInstalled == true ? package?.version : nil
        switch desired.state {
        case .absent:
            return installed != nil || (desired.purge && package?.state == "config-files") ? desired.name + "-" : nil
        case .installed:
            if let version = desired.version { return installed == version ? nil : "\(desired.name)=\(version)" }
            return installed == nil ? desired.name : nil
        case .latest:
            return installed == nil || (candidate != nil && installed != candidate) ? desired.name : nil
        }
    }

    // MARK: Applying

    /// Debian's hook that lets maintainer scripts start services or not (invoke-rc.d asks it).
    static let policyPath = "/usr/sbin/policy-rc.d"
    /// What tend writes there: every start refused. Its own text, so that one left by a killed
    /// tend is known as tend's and removed by the next apply of packages to that root (`refresh`).
    static let policyText = "#!/bin/sh\n# Written by tend while apt runs in this root (tend apply --root): no service starts here.\nexit 101\n"

    /// Under a root other than /, keeps the maintainer scripts of what apt installs from starting
    /// services on the machine that builds the image. invoke-rc.d asks policy-rc.d first; without
    /// one, whether a service starts in a chroot depends on what the root's tools can tell of a
    /// runlevel (Debian 12's cannot, and start nothing), and a script that starts its daemon by
    /// other means is not asked at all. The root gets the policy-rc.d that refuses every start
    /// (as debootstrap and mmdebstrap do) for the length of apt's run. Returns whether tend put
    /// it there (and must remove it); a root that has a policy of its own keeps it.
    static func holdServices(_ host: HostWriter) throws(HostError) -> Bool {
        guard host.reader.root != "/" else { return false }
        let found = try host.reader.status(policyPath)
        if let found {
            guard found.type == .regular, (try? host.reader.read(policyPath)) == Array(policyText.utf8) else { return false }
            return true
        }
        try host.writeFile(policyPath, contents: Array(policyText.utf8), mode: 0o755, owner: 0, group: 0, replacing: nil)
        return true
    }

    public func apply(_ change: Change, desired: Desired, host: HostWriter) throws(HostError) {
        throw HostError(path: desired.name, message: "packages are applied in batches")
    }

    /// One apt transaction for every ready package, then holds for pins, then a check of each
    /// package against the dpkg database.
    public func apply(batch: [(change: Change, desired: Desired)], host: HostWriter) async -> [StepFailure?] {
        let root = host.reader.root
        let status: [String: DpkgPackage]
        do {
            status = try Self.dpkgStatus(host.reader)
        } catch {
            return batch.map { _ in StepFailure(error) }
        }
        var failure: String?
        let wanted = batch.map(\.desired)
        var policy: [String: AptPolicy]
        do {
            policy = try await Debian.policy(wanted.filter { $0.state != .absent }.map(\.name), root: root)
        } catch {
            // Without apt's candidates every missing package would look unknown: say why instead.
            return batch.map { _ in StepFailure(error) }
        }
        // An apt source or pin that this apply wrote, or a package without a candidate not yet
        // refreshed for: the lists are refreshed once, here, before apt installs.
        let installing = wanted.filter { $0.state != .absent && (status[$0.name]?.isInstalled != true || Self.argument(for: $0, installed: status[$0.name], candidate: policy[$0.name]?.candidate) != nil) }
        let sourcesChanged = Debian.sourcesChanged(host.reader).map { changed in Debian.listsUpdated(host.reader).map { changed > $0 } ?? true } ?? false
        let unknown = installing.contains { policy[$0.name]?.candidate == nil && $0.version == nil }
        var unfetched: [String] = []
        if !installing.isEmpty, sourcesChanged || (unknown && Self.mayRefreshForUnknown(host.reader)) {
            do throws(HostError) {
                unfetched = try await update(host)
                host.reader[Self.listsStale] = nil
                policy = (try? await Debian.policy(wanted.filter { $0.state != .absent }.map(\.name), root: root)) ?? policy
            } catch {
                failure = error.message
            }
        }
        let unknownNames = wanted.filter { $0.state != .absent && $0.version == nil && status[$0.name]?.isInstalled != true && policy[$0.name]?.candidate == nil }
        if failure == nil, !unknownNames.isEmpty {
            // apt-get would refuse the whole transaction for one unknown name: the others go on.
            let names = Set(unknownNames.map(\.name))
            var others = await apply(batch: batch.filter { !names.contains($0.desired.name) }, host: host)[...]
            return batch.map { item in
                names.contains(item.desired.name)
                    ? StepFailure(.changeFailed, "apt has no installation candidate for \(item.desired.name), with package lists at most 15 minutes old; "
                        + (unfetched.isEmpty ? "is its repository in the sources?" : "apt-get update could not fetch \(unfetched.joined(separator: ", "))"))
                    : others.popFirst() ?? nil
            }
        }
        let purges = wanted.filter { $0.state == .absent && $0.purge }
        var arguments: [String] = []
        for desired in wanted where !(desired.state == .absent && desired.purge) {
            if let argument = Self.argument(for: desired, installed: status[desired.name], candidate: policy[desired.name]?.candidate) {
                arguments.append(argument)
            }
        }
        let common = ["-y", "-q", "--allow-downgrades", "--allow-change-held-packages",
                      "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
                      "-o", "DPkg::Lock::Timeout=\(lockTimeout)"]
        var servicesHeld = false
        if failure == nil, !arguments.isEmpty || !purges.isEmpty {
            do throws(HostError) {
                servicesHeld = try Self.holdServices(host)
            } catch {
                failure = error.description
            }
        }
        defer { if servicesHeld { try? host.remove(Self.policyPath, expected: .regular, recursive: false) } }
        if failure == nil, !arguments.isEmpty {
            let install = await Tool.run(["apt-get", "install"] + common + arguments, root: root, lines: host.toolOutput)
            if install.status != 0 {
                failure = "apt-get exited \(install.status):\n" + install.errorLines
                if install.errorLines.contains("lock"), let holder = Debian.lockHolder(host.reader) {
                    failure! += "\nthe dpkg lock is held by \(holder); waited \(lockTimeout) s (--lock-timeout)"
                }
            }
        }
        if failure == nil, !purges.isEmpty {
            let purge = await Tool.run(["apt-get", "purge"] + common + purges.map(\.name), root: root, lines: host.toolOutput)
            if purge.status != 0 { failure = "apt-get purge exited \(purge.status):\n" + purge.errorLines }
        }
        // Pins are held, released pins unheld.
        let hold = wanted.filter { $0.version != nil && $0.state == .installed }.map(\.name)
        let unhold = wanted.filter { $0.version == nil && $0.state != .absent && status[$0.name]?.isHeld == true }.map(\.name)
        for (verb, names) in [("hold", hold), ("unhold", unhold)] where !names.isEmpty {
            let mark = await Tool.run(["apt-mark", verb] + names, root: root)
            if mark.status != 0, failure == nil { failure = "apt-mark \(verb) failed:\n" + mark.errorLines }
        }
        // Maintainer scripts add system users and groups (systemd-journal): names read before are stale.
        host.reader.forgetAccounts()
        // Each package is judged by what dpkg now records, so the ones that made it are done.
        // What was read before apt is stale whatever happens: later steps read it anew.
        host.reader[Self.dpkgStatus] = nil
        guard let after = try? Debian.status(host.reader) else {
            return batch.map { _ in StepFailure(.changeFailed, failure ?? "cannot read the dpkg database") }
        }
        host.reader[Self.dpkgStatus] = after
        let refreshed = (try? await Debian.policy(wanted.filter { $0.state != .absent }.map(\.name), root: root)) ?? policy
        host.reader[Self.aptPolicy] = refreshed
        host.reader[Self.transactionExtras] = nil
        return wanted.map { desired in
            let reached = Self.argument(for: desired, installed: after[desired.name], candidate: refreshed[desired.name]?.candidate) == nil
            if reached { return nil }
            return failure.map { StepFailure(.changeFailed, $0) } ?? StepFailure(.inconsistent, "\(desired.name) did not reach its state")
        }
    }
}
