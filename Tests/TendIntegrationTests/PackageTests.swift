import Foundation
import Testing

/// Small .deb packages built by the test, published as a local apt repository inside a test host.
struct DebRepository: Sendable {
    let folder: Scratch

    struct Package: Sendable {
        var name: String
        var version: String
        var depends: String? = nil
        var postinst: String? = nil
        var conffile: String? = nil
        /// A unit file the package installs as /lib/systemd/system/NAME.service, with no
        /// maintainer script that tells systemd: tend must.
        var unit: String? = nil
    }

    static let packages = [
        Package(name: "tend-test-lib", version: "1.0-1"),
        Package(name: "tend-test-app", version: "1.0-1", depends: "tend-test-lib"),
        Package(name: "tend-test-app", version: "2.0-1", depends: "tend-test-lib"),
        Package(name: "tend-test-conf", version: "1.0-1", conffile: "/etc/tend-test-conf.conf"),
        Package(name: "tend-test-broken", version: "1.0-1", postinst: "#!/bin/sh\necho tend-test-postinst-failure >&2\nexit 1\n"),
        Package(name: "tend-test-other", version: "1.0-1"),
        Package(name: "tend-test-svc", version: "1.0-1",
                unit: "[Unit]\nDescription=a service a test package brings\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n"),
        // Brings a conffile, and its postinst adds a group and writes a file of its own.
        Package(name: "tend-test-maker", version: "1.0-1",
                postinst: "#!/bin/sh\nset -e\ngetent group tend-maker >/dev/null || groupadd --system tend-maker\necho made > /etc/tend-maker.stamp\n",
                conffile: "/etc/tend-maker.conf"),
        // Published later, to see whether tend refreshes the package lists.
        Package(name: "tend-test-app", version: "3.0-1", depends: "tend-test-lib"),
    ]

    init() async throws {
        folder = try Scratch("tend-debs")
        for package in Self.packages {
            if package.version == "3.0-1" {
                // The index as first published lacks it; Packages.later has it.
                let index = try await sh("/usr/bin/dpkg-scanpackages", ["-m", ".", "/dev/null"], in: folder.url("repo"))
                try folder.write(["repo/Packages": index])
            }
            let build = "build/\(package.name)-\(package.version)"
            var control = "Package: \(package.name)\nVersion: \(package.version)\nArchitecture: all\nMaintainer: tend tests <tests@example.com>\nDescription: a package built by tend's tests\n"
            if let depends = package.depends { control += "Depends: \(depends)\n" }
            var files = ["\(build)/DEBIAN/control": control, "\(build)/usr/share/tend-test/\(package.name)": "\(package.version)\n"]
            if let postinst = package.postinst { files["\(build)/DEBIAN/postinst"] = postinst }
            if let unit = package.unit { files["\(build)/lib/systemd/system/\(package.name).service"] = unit }
            if let conffile = package.conffile {
                files["\(build)\(conffile)"] = "setting = default\n"
                files["\(build)/DEBIAN/conffiles"] = conffile + "\n"
            }
            try folder.write(files)
            if package.postinst != nil { chmod(folder.url("\(build)/DEBIAN/postinst"), 0o755) }
            try FileManager.default.createDirectory(atPath: folder.url("repo"), withIntermediateDirectories: true)
            try await sh("/usr/bin/dpkg-deb", ["--build", "--root-owner-group", folder.url(build), folder.url("repo/\(package.name)_\(package.version)_all.deb")])
        }
        let later = try await sh("/usr/bin/dpkg-scanpackages", ["-m", ".", "/dev/null"], in: folder.url("repo"))
        try folder.write(["repo/Packages.later": later])
    }

    /// Publishes the repository in `host` as its only apt source and refreshes the lists.
    func publish(in host: TestHost) async throws {
        try FileManager.default.copyItem(atPath: folder.url("repo"), toPath: host.outside("/srv/debs"))
        let setup = try await host.run(["sh", "-c", """
            rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* &&
            echo 'deb [trusted=yes] file:/srv/debs ./' > /etc/apt/sources.list.d/tend-test.list &&
            apt-get update -q
            """])
        #expect(setup.status == 0, "\(setup)")
    }
}

@Suite("packages", .enabled(if: TestHost.available && FileManager.default.isExecutableFile(atPath: "/usr/bin/dpkg-scanpackages"),
                            "needs test hosts and dpkg-scanpackages (dpkg-dev)"))
struct PackageTests {
    func configure(_ host: TestHost, _ resources: String) throws {
        try host.write(["/srv/config/tend.yaml": "hosts:\n  - apply: [site]\n", "/srv/config/site/packages.yaml": "resources:\n" + resources])
    }

    func installed(_ host: TestHost, _ name: String) async throws -> String {
        try await host.run(["dpkg-query", "-W", "-f", "${Version} ${Status}", name]).stdout
    }

    @Test("install with a dependency, pin a downgrade (held), release the pin to latest, remove, purge; each second plan is empty")
    func lifecycle() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            try self.configure(host, "  - package: tend-test-app\n  - package: tend-test-conf\n")
            let plan = try await host.tend(["plan", "/srv/config"])
            #expect(plan.stdout.contains("+ package:tend-test-app"), "\(plan)")
            #expect(plan.stdout.contains("version: (absent) → 2.0-1"))
            #expect(plan.stdout.contains("the transaction also installs tend-test-lib (1.0-1)"))
            var apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 0, "\(apply)")
            #expect(try await self.installed(host, "tend-test-app") == "2.0-1 install ok installed")
            #expect(try await self.installed(host, "tend-test-lib") == "1.0-1 install ok installed")
            #expect(try await host.tend(["plan", "/srv/config", "--detailed-exitcode"]).status == 0)

            try self.configure(host, "  - package: tend-test-app\n    version: \"1.0-1\"\n  - package: tend-test-conf\n")
            let pin = try await host.tend(["plan", "/srv/config"])
            #expect(pin.stdout.contains("version: 2.0-1 → 1.0-1"), "\(pin)")
            #expect(pin.stdout.contains("held:    false → true"))
            apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 0, "\(apply)")
            #expect(try await self.installed(host, "tend-test-app") == "1.0-1 hold ok installed")
            #expect(try await host.tend(["plan", "/srv/config", "--detailed-exitcode"]).status == 0)

            try self.configure(host, "  - package: tend-test-app\n    state: latest\n  - package: tend-test-conf\n")
            apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 0, "\(apply)")
            #expect(try await self.installed(host, "tend-test-app") == "2.0-1 install ok installed")

            try self.configure(host, "  - package: tend-test-app\n    state: absent\n  - package: tend-test-conf\n    state: absent\n")
            apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 0, "\(apply)")
            let removed = try await self.installed(host, "tend-test-app")
            #expect(!removed.contains("ok installed"), "\(removed)")
            #expect(try await self.installed(host, "tend-test-conf").hasSuffix("deinstall ok config-files"), "a removed package keeps its conffiles")
            #expect(try await host.tend(["plan", "/srv/config", "--detailed-exitcode"]).status == 0)

            try self.configure(host, "  - package: tend-test-conf\n    state: absent\n    purge: true\n")
            apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 0, "\(apply)")
            #expect(!FileManager.default.fileExists(atPath: host.outside("/etc/tend-test-conf.conf")), "purged with its configuration")
            #expect(try await host.tend(["plan", "/srv/config", "--detailed-exitcode"]).status == 0)
        }
    }

    @Test("a package whose postinst fails: its dependents are skipped, the rest converge, and apt's own lines say why")
    func failingPostinst() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            try self.configure(host, """
                  - package: tend-test-broken
                  - package: tend-test-other
                  - file: /etc/needs-broken
                    content: "x\\n"
                    requires: [package:tend-test-broken]
                  - file: /etc/independent
                    content: "y\\n"
                """)
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 5, "\(apply)")
            #expect(apply.stdout.contains("✗ package:tend-test-broken: failed"), "\(apply)")
            #expect(apply.stdout.contains("tend-test-broken"))
            #expect(apply.stdout.contains("post-installation script subprocess returned error exit status 1"))
            #expect(apply.stdout.contains("+ package:tend-test-other: created"))
            #expect(apply.stdout.contains("↷ file:/etc/needs-broken: skipped"))
            #expect(apply.stdout.contains("+ file:/etc/independent: created"))
            #expect(try await self.installed(host, "tend-test-other") == "1.0-1 install ok installed")
        }
    }

    @Test("the dpkg lock held by another process: tend waits and proceeds, or gives up after its timeout naming the holder")
    func dpkgLock() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            try self.configure(host, "  - package: tend-test-lib\n")
            let holdLock = "import fcntl, sys, time\nf = open('/var/lib/dpkg/lock-frontend', 'w')\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(float(sys.argv[1]))\n"
            try host.write(["/srv/hold-lock.py": holdLock])
            // Held for 60 s, tend waits 2 s: it gives up, says who holds the lock, changes nothing.
            _ = try await host.run(["systemd-run", "--unit", "tend-test-lock", "--quiet", "python3", "/srv/hold-lock.py", "60"])
            try await Task.sleep(for: .milliseconds(500))
            let refused = try await host.tend(["apply", "/srv/config", "--lock-timeout", "2"])
            #expect(refused.status == 5, "\(refused)")
            #expect(refused.stdout.contains("E: Unable to acquire the dpkg frontend lock"), "\(refused)")
            #expect(refused.stdout.contains("the dpkg lock is held by process"), "\(refused)")
            #expect(refused.stdout.contains("(python3); waited 2 s"), "\(refused)")
            _ = try await host.run(["systemctl", "stop", "tend-test-lock"])
            // Held for 3 s, tend waits up to 60 s: it proceeds once the lock is free.
            _ = try await host.run(["systemd-run", "--unit", "tend-test-lock2", "--quiet", "python3", "/srv/hold-lock.py", "3"])
            try await Task.sleep(for: .milliseconds(500))
            let waited = try await host.tend(["apply", "/srv/config", "--lock-timeout", "60"])
            #expect(waited.status == 0, "\(waited)")
            #expect(try await self.installed(host, "tend-test-lib") == "1.0-1 install ok installed")
        }
    }

    @Test("with --root, packages go into that root through a chroot; the host's own packages stay as they were")
    func intoARoot() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            try await self.mountImage(host)
            try self.configure(host, "  - package: tend-test-app\n")
            let plan = try await host.tend(["plan", "/srv/config", "--root", "/srv/image"])
            #expect(plan.stdout.contains("version: (absent) → 2.0-1"), "\(plan)")
            let apply = try await host.tend(["apply", "/srv/config", "--root", "/srv/image"])
            #expect(apply.status == 0, "\(apply)")
            let inImage = try await host.run(["chroot", "/srv/image", "dpkg-query", "-W", "-f", "${Version} ${Status}", "tend-test-app"])
            #expect(inImage.stdout == "2.0-1 install ok installed", "\(inImage)")
            let onHost = try await host.run(["dpkg-query", "-W", "-f", "${Status}", "tend-test-app"])
            #expect(!onHost.stdout.contains("ok installed"), "the host itself is untouched: \(onHost)")
            #expect(try await host.tend(["plan", "/srv/config", "--root", "/srv/image", "--detailed-exitcode"]).status == 0)
        }
    }

    @Test("an apt source and a package from it in one apply: the source is written first, the lists refreshed once, the package installed; a name apt never knows fails alone and costs no update on the next run")
    func sourceAndPackageInOneApply() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            // The repository is on the host but in no apt source; the lists are fresh.
            try FileManager.default.copyItem(atPath: repo.folder.url("repo"), toPath: host.outside("/srv/debs"))
            // Debian's own stamp hook (apt.conf.d/15update-stamp), which this machine's image left out.
            try host.write(["/etc/apt/apt.conf.d/15update-stamp": "APT::Update::Post-Invoke-Success {\"touch /var/lib/apt/periodic/update-success-stamp 2>/dev/null || true\";};\n"])
            // One source, empty, so that the host has fresh lists, none of which knows the packages.
            let setup = try await host.run(["sh", "-c", """
                rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* && mkdir -p /srv/empty && : > /srv/empty/Packages &&
                echo 'deb [trusted=yes] file:/srv/empty ./' > /etc/apt/sources.list.d/empty.list && apt-get update -q
                """])
            #expect(setup.status == 0, "\(setup)")
            // apt's own hook counts every update from here on.
            try host.write(["/etc/apt/apt.conf.d/99count-updates": "APT::Update::Pre-Invoke { \"echo update >> /run/apt-updates\"; };\n"])
            func updates() -> Int { ((try? String(contentsOfFile: host.outside("/run/apt-updates"), encoding: .utf8)) ?? "").split(separator: "\n").count }
            try self.configure(host, """
                  - package: tend-test-app
                  - package: tend-test-missing
                  - package: tend-test-other
                  - file: /etc/apt/sources.list.d/tend-test.list
                    content: "deb [trusted=yes] file:/srv/debs ./\\n"

                """)
            let plan = try await host.tend(["plan", "/srv/config", "--apt-max-age", "86400"])
            #expect(plan.status == 0, "\(plan)")
            #expect(plan.stdout.contains("version: (absent) → (apt's candidate once the lists are refreshed)"), "\(plan)")
            let apply = try await host.tend(["apply", "/srv/config", "--apt-max-age", "86400"])
            #expect(apply.status == 5, "\(apply)")
            #expect(try await self.installed(host, "tend-test-app") == "2.0-1 install ok installed", "\(apply)")
            #expect(try await self.installed(host, "tend-test-other") == "1.0-1 install ok installed", "\(apply)")
            #expect(apply.stdout.contains("apt has no installation candidate for tend-test-missing"), "\(apply)")
            #expect(updates() == 1, "the lists are refreshed once, after the source is written: \(apply)")
            let file = apply.stdout.range(of: "file:/etc/apt/sources.list.d/tend-test.list: created")
            let package = apply.stdout.range(of: "package:tend-test-app: created")
            #expect(file != nil && package != nil && file!.lowerBound < package!.lowerBound, "the source must be written before apt runs: \(apply)")

            // Without the unknown name, a second plan is empty.
            try self.configure(host, """
                  - package: tend-test-app
                  - package: tend-test-other
                  - file: /etc/apt/sources.list.d/tend-test.list
                    content: "deb [trusted=yes] file:/srv/debs ./\\n"

                """)
            let again = try await host.tend(["plan", "/srv/config", "--detailed-exitcode"])
            #expect(again.status == 0, "\(again)")
            // A name no source has does not make every run refresh the lists.
            try self.configure(host, "  - package: tend-test-missing\n")
            #expect(try await host.tend(["apply", "/srv/config"]).status == 5)
            #expect(updates() == 1, "an unknown name refreshed the lists again within 15 minutes")
        }
    }

    @Test("a package, its unit enabled and running, and its configuration file with a notify, from an empty host in one apply; a second plan is empty")
    func packageUnitAndConfig() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            try self.configure(host, """
                  - file: /etc/tend-test-svc.conf
                    content: "workers = 2\\n"
                    notify: [unit:tend-test-svc.service]
                  - unit: tend-test-svc.service
                    enabled: true
                    state: running
                  - package: tend-test-svc

                """)
            let plan = try await host.tend(["plan", "/srv/config"])
            #expect(plan.status == 0, "\(plan)")
            #expect(plan.stdout.contains("(installed by package:tend-test-svc) → true"), "\(plan)")
            #expect(plan.stdout.contains("(installed by package:tend-test-svc) → running"), "\(plan)")
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 0, "\(apply)")
            let package = apply.stdout.range(of: "package:tend-test-svc: created")
            let unit = apply.stdout.range(of: "unit:tend-test-svc.service")
            #expect(package != nil && unit != nil && package!.lowerBound < unit!.lowerBound, "the unit's step must come after its package: \(apply)")
            let state = try await host.unit("tend-test-svc.service")
            #expect(state["ActiveState"] == "active" && state["UnitFileState"] == "enabled", "\(state)")
            let again = try await host.tend(["plan", "/srv/config", "--detailed-exitcode"])
            #expect(again.status == 0, "a second plan is not empty: \(again)")
        }
    }

    @Test("an apt source that cannot be fetched is said as a warning, and a package no other source has names it")
    func unreachableSource() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            // Nothing listens on port 9 in the host's own network: the fetch is refused at once.
            try self.configure(host, """
                  - file: /etc/apt/sources.list.d/unreachable.list
                    content: "deb [trusted=yes] http://127.0.0.1:9/debian ./\\n"
                  - package: tend-test-elsewhere

                """)
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 5, "\(apply)")
            #expect(apply.stderr.contains("tend: apt-get update could not fetch http://127.0.0.1:9/debian/./"), "no warning: \(apply)")
            #expect(apply.stdout.contains("apt has no installation candidate for tend-test-elsewhere, with package lists at most 15 minutes old; apt-get update could not fetch http://127.0.0.1:9/debian/./"),
                    "the failure does not name the source: \(apply)")
        }
    }

    @Test("a file a package also ships, declared after it without requires, is replaced in the same run rather than refused as appeared since planned")
    func createdByAnUnrelatedPackage() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            try self.configure(host, """
                  - package: tend-test-maker
                  - file: /etc/tend-maker.conf
                    content: "setting = ours\\n"

                """)
            let plan = try await host.tend(["plan", "/srv/config"])
            #expect(plan.stdout.contains("+ file:/etc/tend-maker.conf"), "planned as a creation: \(plan)")
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 0, "\(apply)")
            #expect(apply.stdout.contains("~ file:/etc/tend-maker.conf: updated"), "the package's file is replaced, not refused: \(apply)")
            #expect(read(host.outside("/etc/tend-maker.conf")) == "setting = ours\n")
            let again = try await host.tend(["plan", "/srv/config", "--detailed-exitcode"])
            #expect(again.status == 0, "a second plan is not empty: \(again)")
        }
    }

    @Test("into an image root: a package that ships a conffile the configuration also declares converges in the first apply")
    func conffileIntoARoot() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            try await self.mountImage(host)
            try self.configure(host, """
                  - package: tend-test-conf
                  - file: /etc/tend-test-conf.conf
                    content: "setting = ours\\n"

                """)
            let apply = try await host.tend(["apply", "/srv/config", "--root", "/srv/image"])
            #expect(apply.status == 0, "\(apply)")
            #expect(read(host.outside("/srv/image/etc/tend-test-conf.conf")) == "setting = ours\n")
            #expect(!FileManager.default.fileExists(atPath: host.outside("/etc/tend-test-conf.conf")), "the host itself is untouched")
            let again = try await host.tend(["plan", "/srv/config", "--root", "/srv/image", "--detailed-exitcode"])
            #expect(again.status == 0, "a second plan is not empty: \(again)")
        }
    }

    /// An image root at /srv/image in `host` that looks like its Debian system, its writes kept
    /// apart in /run.
    func mountImage(_ host: TestHost) async throws {
        let image = try await host.run(["sh", "-c", """
            mkdir -p /run/image-upper /run/image-work /srv/image &&
            mount -t overlay overlay -o lowerdir=/,upperdir=/run/image-upper,workdir=/run/image-work /srv/image &&
            mount --rbind /dev /srv/image/dev && mount -t proc proc /srv/image/proc
            """])
        try #require(image.status == 0, "\(image)")
    }

    @Test("tend reads dpkg's status file once a run: a plan and an apply whose packages are in place read it once, an apply that installs reads it again only after apt ran",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/strace"), "needs strace (installed by make test)"))
    func dpkgStatusReadOnce() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            /// How often tend itself (not the apt and dpkg it runs) opened the status file.
            func reads(_ arguments: [String]) async throws -> (run: TendRun, reads: Int) {
                let run = try await host.run(["strace", "-f", "-y", "-qq", "-e", "trace=openat,execve", "-o", "/run/tend.trace", "/usr/local/bin/tend"] + arguments)
                let lines = try String(contentsOfFile: host.outside("/run/tend.trace"), encoding: .utf8).split(separator: "\n")
                // The first execve is tend's own; every other process that executes a program is a tool.
                let execs = lines.filter { $0.contains(" execve(") }.compactMap { $0.split(separator: " ").first }
                let tools = Set(execs.dropFirst())
                let opened = lines.filter { line in
                    guard let pid = line.split(separator: " ").first, !tools.contains(pid) else { return false }
                    return line.contains(#/= \d+</var/lib/dpkg/status>$/#)
                }
                return (run, opened.count)
            }
            func configure(_ content: String) throws {
                try self.configure(host, "  - package: tend-test-lib\n  - file: /etc/tend-probe\n    content: \"\(content)\\n\"\n")
            }
            try configure("one")
            let install = try await reads(["apply", "/srv/config"])
            #expect(install.run.status == 0, "\(install.run)")
            #expect(try await self.installed(host, "tend-test-lib") == "1.0-1 install ok installed")
            #expect(install.reads == 2, "read \(install.reads) times by an apply that installs: once to plan, once after apt")
            try configure("two")
            let update = try await reads(["apply", "/srv/config"])
            #expect(update.run.status == 0 && update.run.stdout.contains("~ file:/etc/tend-probe: updated"), "\(update.run)")
            #expect(update.reads == 1, "read \(update.reads) times by an apply whose package is in place")
            let plan = try await reads(["plan", "/srv/config", "--detailed-exitcode"])
            #expect(plan.run.status == 0, "\(plan.run)")
            #expect(plan.reads == 1, "read \(plan.reads) times by a plan")
        }
    }

    @Test("what a package brings is planned again once it is in: its conffile replaced, a file its postinst made removed, a folder owned by the group it added; a second plan is empty")
    func packageBringsFilesAndGroups() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            try self.configure(host, """
                  - package: tend-test-maker
                  - file: /etc/tend-maker.conf
                    content: "setting = ours\\n"
                    requires: [package:tend-test-maker]
                  - file: /etc/tend-maker.stamp
                    state: absent
                    requires: [package:tend-test-maker]
                  - directory: /srv/maker
                    group: tend-maker
                    mode: "0750"
                    requires: [package:tend-test-maker]

                """)
            let plan = try await host.tend(["plan", "/srv/config"])
            #expect(plan.status == 0, "\(plan)")
            #expect(plan.stdout.contains("→ tend-maker (created by package:tend-test-maker)"), "\(plan)")
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 0, "\(apply)")
            #expect(apply.stdout.contains("~ file:/etc/tend-maker.conf: updated"), "the package's conffile is replaced, not refused: \(apply)")
            #expect(apply.stdout.contains("- file:/etc/tend-maker.stamp: deleted"), "\(apply)")
            #expect(read(host.outside("/etc/tend-maker.conf")) == "setting = ours\n")
            #expect(!FileManager.default.fileExists(atPath: host.outside("/etc/tend-maker.stamp")), "the postinst's file is declared absent")
            let group = try await host.run(["getent", "group", "tend-maker"]).stdout.split(separator: ":")
            let folder = try #require(status(host.outside("/srv/maker")))
            #expect(group.count > 2 && folder.st_gid == UInt32(group[2]) ?? 0 && folder.st_mode & 0o7777 == 0o750, "\(group) \(folder.st_gid)")
            let again = try await host.tend(["plan", "/srv/config", "--detailed-exitcode"])
            #expect(again.status == 0, "a second plan is not empty: \(again)")
        }
    }

    /// A unit `name`.service that sleeps, enabled and running, with more attributes in `extra`
    /// (lines of the resource, each indented by four spaces and ending in a newline).
    static func sleepingUnit(_ name: String, _ extra: String = "") -> String {
        "  - unit: \(name).service\n    content: |\n      [Service]\n      ExecStart=/bin/sleep infinity\n      [Install]\n      WantedBy=multi-user.target\n    enabled: true\n    state: running\n" + extra
    }

    @Test("a file that a package's postinst overwrote is put back after it, the unit it notifies is restarted, and the unit that one notifies too, though none was in the plan")
    func latePassNotifies() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            // tend-late notifies tend-late-next: a restart of the one restarts the other, as in a
            // plan. Once the package is declared, tend-late also requires it (as nginx.service
            // would nginx), which must not stop its restart.
            func unit(requires: String = "") -> String {
                Self.sleepingUnit("tend-late", "    notify: [unit:tend-late-next.service]\n" + requires) + Self.sleepingUnit("tend-late-next")
            }
            // First the unit and the file, which already holds what is declared.
            try self.configure(host, unit() + "  - file: /etc/tend-maker.stamp\n    content: \"ours\\n\"\n")
            #expect(try await host.tend(["apply", "/srv/config"]).status == 0)
            let before = try await host.unit("tend-late.service", ["ActiveState", "InvocationID"])
            let nextBefore = try await host.unit("tend-late-next.service", ["ActiveState", "InvocationID"])
            #expect(before["ActiveState"] == "active" && nextBefore["ActiveState"] == "active", "\(before) \(nextBefore)")
            // Then the package whose postinst writes the file: the plan has only the package.
            try self.configure(host, unit(requires: "    requires: [package:tend-test-maker]\n") + """
                  - package: tend-test-maker
                  - file: /etc/tend-maker.stamp
                    content: "ours\\n"
                    requires: [package:tend-test-maker]
                    notify: [unit:tend-late.service]

                """)
            let plan = try await host.tend(["plan", "/srv/config"])
            #expect(plan.stdout.contains("package:tend-test-maker") && !plan.stdout.contains("file:/etc/tend-maker.stamp") && !plan.stdout.contains("unit:tend-late.service"), "\(plan)")
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 0, "\(apply)")
            #expect(apply.stdout.contains("file:/etc/tend-maker.stamp: updated"), "\(apply)")
            #expect(read(host.outside("/etc/tend-maker.stamp")) == "ours\n")
            let after = try await host.unit("tend-late.service", ["ActiveState", "InvocationID"])
            #expect(after["ActiveState"] == "active" && after["InvocationID"] != before["InvocationID"], "not restarted: \(before) → \(after)\n\(apply)")
            let nextAfter = try await host.unit("tend-late-next.service", ["ActiveState", "InvocationID"])
            #expect(nextAfter["ActiveState"] == "active" && nextAfter["InvocationID"] != nextBefore["InvocationID"],
                    "the unit tend-late notifies was not restarted: \(nextBefore) → \(nextAfter)\n\(apply)")
            let again = try await host.tend(["plan", "/srv/config", "--detailed-exitcode"])
            #expect(again.status == 0, "a second plan is not empty: \(again)")
        }
    }

    @Test("a unit a late change notifies is still skipped when its own package failed")
    func lateNotifyKeepsDependencies() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            let unit = Self.sleepingUnit
            try self.configure(host, unit("tend-late-a", "") + unit("tend-late-b", "") + "  - file: /etc/tend-maker.stamp\n    content: \"ours\\n\"\n")
            #expect(try await host.tend(["apply", "/srv/config"]).status == 0)
            let before = try await host.unit("tend-late-b.service", ["ActiveState", "InvocationID"])
            // The stamp notifies both units; b now requires a package whose postinst fails.
            try self.configure(host, unit("tend-late-a", "") + unit("tend-late-b", "    requires: [package:tend-test-broken]\n") + """
                  - package: tend-test-broken
                  - package: tend-test-maker
                  - file: /etc/tend-maker.stamp
                    content: "ours\\n"
                    requires: [package:tend-test-maker]
                    notify: [unit:tend-late-a.service, unit:tend-late-b.service]

                """)
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status != 0, "\(apply)")
            #expect(apply.stdout.contains("unit:tend-late-a.service"), "a is restarted: \(apply)")
            #expect(apply.stdout.contains("requires package:tend-test-broken, which did not converge"), "b is skipped: \(apply)")
            let after = try await host.unit("tend-late-b.service", ["ActiveState", "InvocationID"])
            #expect(after["InvocationID"] == before["InvocationID"], "b was restarted though its package failed: \(before) → \(after)")
        }
    }

    @Test("a late step waits for a failed step of the plan reached through a converged resource, as a planned one would")
    func lateStepKeepsIndirectDependencies() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            let stamp = "  - file: /etc/tend-maker.stamp\n    content: \"ours\\n\"\n"
            try self.configure(host, stamp + "  - directory: /etc/tend-gate\n")
            #expect(try await host.tend(["apply", "/srv/config"]).status == 0)
            // The stamp now requires the folder, which requires a package whose postinst fails;
            // the folder itself is converged, so only the packages are in the plan.
            try self.configure(host, """
                  - package: tend-test-broken
                  - package: tend-test-maker
                  - directory: /etc/tend-gate
                    requires: [package:tend-test-broken]
                \(stamp)    requires: [package:tend-test-maker, directory:/etc/tend-gate]

                """)
            let apply = try await host.tend(["apply", "/srv/config"])
            #expect(apply.status == 5, "\(apply)")
            #expect(apply.stdout.contains("file:/etc/tend-maker.stamp: skipped: requires package:tend-test-broken, which did not converge"), "\(apply)")
            #expect(read(host.outside("/etc/tend-maker.stamp")) == "made\n", "the stamp was put back though what it requires failed")
        }
    }

    @Test("on a terminal, apt's own progress lines show while it installs; in a pipe they do not")
    func aptProgressOnTerminal() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            try self.configure(host, "  - package: tend-test-other\n  - package: tend-test-lib\n")
            let shown = try await host.run(["script", "-q", "-e", "-c", "tend apply /srv/config --no-color", "/dev/null"])
            #expect(shown.status == 0, "\(shown)")
            #expect(shown.stdout.contains("Setting up tend-test-other (1.0-1)"), "\(shown)")
            #expect(shown.stdout.contains("+ package:tend-test-other: created"), "\(shown)")
            try self.configure(host, "  - package: tend-test-other\n    state: absent\n")
            let piped = try await host.tend(["apply", "/srv/config"])
            #expect(piped.status == 0, "\(piped)")
            #expect(!piped.stdout.contains("Removing tend-test-other") && !piped.stderr.contains("Removing tend-test-other"), "\(piped)")
            let after = try await self.installed(host, "tend-test-other")
            #expect(!after.contains("install ok installed"), "\(after)")
        }
    }

    @Test("package lists are refreshed once when older than --apt-max-age, and not when fresh")
    func refreshesLists() async throws {
        let repo = try await DebRepository()
        try await withTestHost { host in
            try await repo.publish(in: host)
            try self.configure(host, "  - package: tend-test-app\n    state: latest\n")
            let first = try await host.tend(["apply", "/srv/config"])
            #expect(first.status == 0, "\(first)")
            #expect(try await self.installed(host, "tend-test-app") == "2.0-1 install ok installed", "\(first)")
            // A new version is published; lists younger than the maximum age are kept.
            try FileManager.default.removeItem(atPath: host.outside("/srv/debs/Packages"))
            try FileManager.default.copyItem(atPath: host.outside("/srv/debs/Packages.later"), toPath: host.outside("/srv/debs/Packages"))
            #expect(try await host.tend(["apply", "/srv/config", "--apt-max-age", "86400"]).status == 0)
            #expect(try await self.installed(host, "tend-test-app") == "2.0-1 install ok installed")
            // Older than the maximum age: apply refreshes them and upgrades to the new candidate.
            let plan = try await host.tend(["plan", "/srv/config", "--apt-max-age", "0"])
            #expect(plan.stdout.contains("No changes."), "tend plan never refreshes the lists: \(plan)")
            let apply = try await host.tend(["apply", "/srv/config", "--apt-max-age", "0"])
            #expect(apply.status == 0, "\(apply)")
            #expect(apply.stdout.contains("~ package:tend-test-app: updated"), "\(apply)")
            #expect(try await self.installed(host, "tend-test-app") == "3.0-1 install ok installed", "the refreshed lists brought 3.0-1")
        }
    }
}
