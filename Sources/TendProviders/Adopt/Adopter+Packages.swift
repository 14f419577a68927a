import TendCore
import TendSpec

extension Adopter {
    /// One installed package as dpkg's status file and apt's marks record it.
    struct Installed {
        var name: String
        var version: String
        var priority: String
        var essential: Bool
        var held: Bool
        /// Its conffiles and dpkg's MD5 of each as the package shipped it (obsolete ones left out).
        var conffiles: [(path: String, md5: String)]
    }

    /// What the packages part found: every installed package (for the files part), and the
    /// var file it wrote, if any.
    struct Packages {
        var database: [String: Installed]
        var vars: String
    }

    /// The packages installed on purpose: apt's manual marks, minus what a minimal Debian brings
    /// (Priority required, Essential: what `debootstrap --variant=minbase`, and so `make image`,
    /// installs), written as one loop over a var; held ones with their version.
    func adoptPackages(into result: inout Result) throws(HostError) -> Packages {
        let installed = try readInstalled()
        let automatic = readAutomatic()
        var manual: [Installed] = []
        for package in installed.values.sorted(by: { $0.name < $1.name }) {
            guard !automatic.contains(package.name) else { continue }
            if package.essential || package.priority == "required" {
                if package.held {
                    result.leftOut.append(LeftOut(path: "package:\(package.name)", why: "held, but part of a minimal Debian (Priority \(package.priority)); hold it again by hand if it must stay at \(package.version)"))
                }
                continue
            }
            manual.append(package)
        }
        guard !manual.isEmpty else { return Packages(database: installed, vars: "") }
        let loose = manual.filter { !$0.held }
        var vars = "# Installed on purpose (apt's manual marks), beyond a minimal Debian (Priority required).\npackages:\n"
        vars += loose.map { "  - \(YAMLText.quoted($0.name))" }.joined(separator: "\n") + "\n"
        var manifest = "resources:\n"
        if !loose.isEmpty {
            manifest += "  # Installed on purpose: apt marks them manual; a minimal Debian does not bring them.\n"
            manifest += "  - for_each: packages\n    package: \"{{item}}\"\n"
        }
        for package in manual where package.held {
            manifest += "  # Held at \(YAMLText.comment(package.version)) (apt-mark hold).\n"
            manifest += "  - package: \(YAMLText.quoted(package.name))\n    version: \(YAMLText.quoted(package.version))\n"
        }
        for package in manual {
            result.taken.append(Taken(id: "package:\(package.name)", why: package.held ? "installed on purpose, held at \(package.version)" : "installed on purpose (apt-mark showmanual)"))
        }
        result.counts["packages"] = manual.count
        result.files["vars/packages.yaml"] = Array(vars.utf8)
        result.files["\(Self.manifests)/packages.yaml"] = Array(manifest.utf8)
        return Packages(database: installed, vars: loose.isEmpty ? "" : "vars/packages.yaml")
    }

    /// Every installed package of the root's dpkg status file.
    func readInstalled() throws(HostError) -> [String: Installed] {
        guard try host.status(Debian.statusFile) != nil else {
            throw HostError(path: Debian.statusFile, message: "no dpkg database here; tend adopt reads Debian and Ubuntu hosts")
        }
        var packages: [String: Installed] = [:]
        for paragraph in String(decoding: try host.read(Debian.statusFile), as: UTF8.self).split(separator: "\n\n") {
            var fields: [String: String] = [:]
            var conffiles: [(String, String)] = []
            var inConffiles = false
            for line in paragraph.split(separator: "\n") {
                if line.hasPrefix(" ") {
                    guard inConffiles else { continue }
                    let words = line.split(separator: " ")
                    if words.count >= 2, words.count < 3 || words[2] != "obsolete" { conffiles.append((String(words[0]), String(words[1]))) }
                    continue
                }
                inConffiles = false
                guard let colon = line.firstIndex(of: ":") else { continue }
                let key = String(line[..<colon])
                if key == "Conffiles" { inConffiles = true }
                fields[key] = String(line[line.index(after: colon)...].drop { $0 == " " })
            }
            let status = (fields["Status"] ?? "").split(separator: " ")
            guard let name = fields["Package"], status.count == 3, ["installed", "triggers-awaited", "triggers-pending"].contains(status[2]) else { continue }
            packages[name] = Installed(name: name, version: fields["Version"] ?? "", priority: fields["Priority"] ?? "optional",
                                       essential: fields["Essential"] == "yes", held: status[0] == "hold", conffiles: conffiles)
        }
        return packages
    }

    /// The packages apt installed as dependencies (`Auto-Installed: 1` in extended_states).
    func readAutomatic() -> Set<String> {
        guard let bytes = try? host.read("/var/lib/apt/extended_states") else { return [] }
        var automatic: Set<String> = []
        for paragraph in String(decoding: bytes, as: UTF8.self).split(separator: "\n\n") {
            var name: String?
            var auto = false
            for line in paragraph.split(separator: "\n") {
                if line.hasPrefix("Package: ") { name = String(line.dropFirst(9)) }
                if line == "Auto-Installed: 1" { auto = true }
            }
            if auto, let name { automatic.insert(name) }
        }
        return automatic
    }
}
