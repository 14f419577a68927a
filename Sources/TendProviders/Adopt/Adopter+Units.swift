import Glibc
import TendCore
import TendSpec

extension Adopter {
    static let unitSuffixes = [".service", ".timer", ".socket", ".path", ".mount", ".automount", ".target", ".slice", ".swap"]
    static let systemFolder = "/etc/systemd/system"
    /// Where deb-systemd-helper records the units that packages enabled.
    static let packageEnabled = "/var/lib/systemd/deb-systemd-helper-enabled"

    /// Units as their administrator left them: local unit files (with their enablement), drop-ins,
    /// masks, and units enabled or disabled unlike their package left them.
    func adoptUnits(into result: inout Result) throws(HostError) {
        guard try host.status(Self.systemFolder) != nil else { return }
        var localFiles: [String: FileStatus] = [:]
        var masked: [String] = []
        var dropins: [String: [(name: String, source: String)]] = [:]
        var enabledNow: Set<String> = []
        for name in try host.entries(of: Self.systemFolder).sorted() {
            let path = Self.systemFolder + "/" + name
            guard let status = try host.status(path) else { continue }
            if status.type == .directory {
                if name.hasSuffix(".wants") || name.hasSuffix(".requires") || name.hasSuffix(".upholds") {
                    for link in try host.entries(of: path) where (try? host.status(path + "/" + link))??.type == .symlink { enabledNow.insert(link) }
                } else if name.hasSuffix(".d") {
                    let unit = String(name.dropLast(2))
                    for file in try host.entries(of: path).sorted() where file.hasSuffix(".conf") {
                        guard let found = try host.status(path + "/" + file), found.type == .regular, found.size <= 1 << 20 else { continue }
                        // A unit's files are readable by every user: one that is not was kept private on purpose.
                        guard found.permissions & 0o004 != 0 else {
                            result.leftOut.append(LeftOut(path: path + "/" + file, why: "a private drop-in: units hold no secrets in tend; move the secret to an EnvironmentFile= or LoadCredential= file"))
                            continue
                        }
                        let source = "files" + path + "/" + file
                        result.files["\(Self.manifests)/\(source)"] = try host.read(path + "/" + file)
                        dropins[unit, default: []].append((file, source))
                    }
                }
                continue
            }
            guard Self.unitSuffixes.contains(where: name.hasSuffix) else { continue }
            if status.type == .symlink {
                if try host.readLink(path) == "/dev/null" { masked.append(name) }
            } else if status.type == .regular {
                guard status.permissions & 0o004 != 0 else {
                    result.leftOut.append(LeftOut(path: path, why: "a private unit file: units hold no secrets in tend; move the secret to an EnvironmentFile= or LoadCredential= file"))
                    continue
                }
                localFiles[name] = status
            }
        }
        let presets = readPresets()
        // What a fresh install enables: packages (deb-systemd-helper's records) and the presets.
        // deb-systemd-helper mirrors each link it made in /etc/systemd/system in its own folder.
        var recorded: [String] = []
        for folder in (try? host.entries(of: Self.packageEnabled)) ?? [] where folder.hasSuffix(".wants") || folder.hasSuffix(".requires") {
            recorded += (try? host.entries(of: Self.packageEnabled + "/" + folder)) ?? []
        }
        let enabledByPackages = Set(recorded).union(enabledNow.filter { presets.enables($0) == true })
        var manifest = ""
        var count = 0
        for (name, _) in localFiles.sorted(by: { $0.key < $1.key }) {
            let source = "files" + Self.systemFolder + "/" + name
            result.files["\(Self.manifests)/\(source)"] = try host.read(Self.systemFolder + "/" + name)
            manifest += "  # A unit file written by hand\(enabledNow.contains(name) ? ", enabled" : "").\n"
            manifest += "  - unit: \(YAMLText.quoted(name))\n    source: \(YAMLText.quoted(source))\n"
            if enabledNow.contains(name) { manifest += "    enabled: true\n" }
            manifest += dropinLines(dropins.removeValue(forKey: name))
            result.taken.append(Taken(id: "unit:\(name)", why: "a unit file no package owns" + (enabledNow.contains(name) ? ", enabled" : "")))
            count += 1
        }
        for name in masked {
            manifest += "  # Masked by hand.\n  - unit: \(YAMLText.quoted(name))\n    masked: true\n"
            result.taken.append(Taken(id: "unit:\(name)", why: "masked"))
            count += 1
        }
        // Package units: enabled or disabled unlike their package left them, and their drop-ins.
        let packageUnits = Set(enabledByPackages).union(enabledNow).union(dropins.keys).subtracting(localFiles.keys).subtracting(masked)
        for name in packageUnits.sorted() where !ProtectedPaths.isTendUnit(name) {
            let byPackage = enabledByPackages.contains(name), now = enabledNow.contains(name)
            let extra = dropinLines(dropins[name])
            guard byPackage != now || !extra.isEmpty else { continue }
            // An alias that a package's unit makes for itself (dbus-org.…, sshd.service) is not a unit to adopt.
            if now, !byPackage, try host.status(Self.systemFolder + "/" + name)?.type == .symlink { continue }
            var why: [String] = []
            var entry = "  - unit: \(YAMLText.quoted(name))\n"
            if byPackage != now {
                entry += "    enabled: \(now)\n"
                why.append(now ? "enabled by hand" : "disabled by hand; its package enables it")
            }
            if !extra.isEmpty {
                entry += extra
                why.append("drop-ins written by hand")
            }
            let said = why.joined(separator: "; ")
            manifest += "  # " + said.prefix(1).uppercased() + said.dropFirst() + ".\n" + entry
            result.taken.append(Taken(id: "unit:\(name)", why: why.joined(separator: "; ")))
            count += 1
        }
        guard !manifest.isEmpty else { return }
        result.counts["units"] = count
        result.files["\(Self.manifests)/units.yaml"] = Array(("resources:\n" + manifest).utf8)
    }

    /// The preset files of the root, first match winning, as `systemctl preset` reads them.
    struct Presets {
        var rules: [(enable: Bool, pattern: String)]

        /// Whether the presets enable `unit` (an instance by its template), or nil if none says.
        func enables(_ unit: String) -> Bool? {
            var template = unit
            if let at = unit.firstIndex(of: "@"), let dot = unit.lastIndex(of: "."), at < dot {
                template = String(unit[...at]) + String(unit[dot...])
            }
            for rule in rules where fnmatch(rule.pattern, unit, 0) == 0 || fnmatch(rule.pattern, template, 0) == 0 { return rule.enable }
            return nil
        }
    }

    /// As systemd reads them: every folder's files sorted by name together, a file in /etc
    /// hiding one of the same name in /usr/lib.
    func readPresets() -> Presets {
        var rules: [(Bool, String)] = []
        var files: [String: String] = [:]
        for folder in ["/usr/lib/systemd/system-preset", "/etc/systemd/system-preset"] {
            for name in (try? host.entries(of: folder)) ?? [] where name.hasSuffix(".preset") { files[name] = folder + "/" + name }
        }
        for (_, path) in files.sorted(by: { $0.key < $1.key }) {
            let text = String(decoding: (try? host.read(path)) ?? [], as: UTF8.self)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                guard words.count >= 2, words[0] == "enable" || words[0] == "disable" else { continue }
                rules.append((words[0] == "enable", String(words[1])))
            }
        }
        return Presets(rules: rules)
    }

    /// A unit's `dropins:` attribute for these drop-in files, or nothing.
    private func dropinLines(_ dropins: [(name: String, source: String)]?) -> String {
        guard let dropins, !dropins.isEmpty else { return "" }
        return "    dropins:\n" + dropins.map { "      \(YAMLText.quoted($0.name)): { source: \(YAMLText.quoted($0.source)) }\n" }.joined()
    }
}
