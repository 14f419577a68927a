import Foundation
import Testing

/// What the host's filesystem can be: full, holding special files where files are declared,
/// files where folders are needed, immutable files, names at the kernel's limits. Each gets a
/// clear error of its own resource, the rest converges, and nothing is half written.
@Suite("odd filesystem states")
struct FilesystemStateTests {
    @Test("a full disk during an apply: old files intact, an error naming the file, nothing half written; the next run converges once there is room",
          .enabled(if: isRoot, "needs root to mount a small tmpfs"))
    func diskFull() async throws {
        let root = try Scratch("tend-full-root")
        try await sh("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", root.path])
        defer { umount2(root.path, Int32(MNT_DETACH)) }
        try root.write(["etc/passwd": "root:x:0:0::/root:/bin/sh\n", "etc/group": "root:x:0:\n"])
        func config(_ size: Int, _ tag: String) throws -> Scratch {
            var manifest = "resources:\n"
            for index in 0..<8 { manifest += "  - file: /srv/f\(index)\n    source: files/f\(index)\n" }
            var files = ["site/a.yaml": manifest]
            for index in 0..<8 { files["site/files/f\(index)"] = String(repeating: tag, count: size) }
            let repo = try Scratch("tend-repo")
            try repo.write(files.merging(["tend.yaml": "hosts:\n  - apply: [site]\n"]) { a, _ in a })
            return repo
        }
        let small = try config(1000, "a"), large = try config(100_000, "b")
        #expect(try await tend(["apply", small.path, "--root", root.path]).status == 0)
        // Leave room for about three of the eight new files.
        try Data(count: 600_000).write(to: URL(fileURLWithPath: root.url("filler")))

        let full = try await tend(["apply", large.path, "--root", root.path])
        #expect(full.status == 5, "\(full)")
        #expect(full.stdout.contains(": No space left on device (write)"), "\(full)")
        #expect(full.stdout.range(of: #"✗ file:/srv/f\d: failed: /srv/f\d: No space left on device \(write\)"#, options: .regularExpression) != nil, "\(full)")
        for index in 0..<8 {
            let text = try #require(read(root.url("srv/f\(index)")))
            #expect(text == String(repeating: "a", count: 1000) || text == String(repeating: "b", count: 100_000), "f\(index) is half written")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.url("srv")).allSatisfy { !$0.contains(".tend-") }, "a temporary file was left")

        try FileManager.default.removeItem(atPath: root.url("filler"))
        try await sh("/usr/bin/mount", ["-o", "remount,size=16m", root.path])
        let again = try await tend(["apply", large.path, "--root", root.path])
        #expect(again.status == 0, "\(again)")
        #expect(try await tend(["plan", large.path, "--root", root.path, "--detailed-exitcode"]).status == 0)
    }

    @Test("a disk that fills while a long stretch is written in parts: the files of the part made durable are placed, the rest fail with their own error and leave the old files as they were, no temporary is left, and the next run converges",
          .enabled(if: isRoot, "needs root to mount a small tmpfs"))
    func diskFullInParts() async throws {
        // 1,600 files of one page each, a fifth of them already there with other content: the
        // first part (1,024 files) fits, and the disk fills while the second is written.
        let count = 1_600, firstPart = 1_024
        let root = try Scratch("tend-full-parts")
        try await sh("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=7m", "tmpfs", root.path])
        defer { umount2(root.path, Int32(MNT_DETACH)) }
        try root.write(["etc/passwd": "root:x:0:0::/root:/bin/sh\n", "etc/group": "root:x:0:\n"])
        let old = "old\n", new = String(repeating: "n", count: 4_000) + "\n"
        let path = { (index: Int) in "srv/d\(index % 10)/f\(index)" }
        for index in stride(from: 0, to: count, by: 5) { try root.write([path(index): old]) }
        var manifest = "resources:\n"
        for index in 0..<count { manifest += "  - file: /\(path(index))\n    source: files/new\n" }
        let repo = try repository(["a.yaml": manifest], extra: ["site/files/new": new])
        // The records go elsewhere, so that the run's own result is what this test reads.
        let state = try Scratch("tend-full-parts-state")

        let full = try await tend(["apply", repo.path, "--root", root.path, "--state-dir", state.path])
        #expect(full.status == 5, "\(full.stderr)")
        let failed = full.stdout.split(separator: "\n").filter { $0.contains("✗ file:") }
        let failedIndexes = Set(failed.compactMap { line in line.firstMatch(of: #/f(\d+): failed/#).map { Int($0.1)! } })
        #expect(failed.allSatisfy { $0.hasSuffix(": No space left on device (write)") }, "\(failed.prefix(3))")
        #expect(!failedIndexes.isEmpty && failedIndexes.allSatisfy { $0 >= firstPart },
                "the disk should fill in the second part, as this test means: failed \(failedIndexes.sorted().prefix(5))…")
        #expect(full.stdout.contains("; \(failedIndexes.count) failed, 0 skipped."), "\(full.stdout.suffix(300))")
        for index in 0..<count {
            let text = read(root.url(path(index)))
            let expected = failedIndexes.contains(index) ? (index % 5 == 0 ? old : nil) : new
            guard text == expected else {
                Issue.record("\(path(index)) holds \(text.map { "\($0.count) bytes" } ?? "nothing"), not what was \(failedIndexes.contains(index) ? "there" : "declared")")
                break
            }
        }
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: root.url("srv")).filter { $0.contains(".tend-") }
        #expect(leftovers.isEmpty, "temporaries left: \(leftovers.prefix(3))")

        // With its records in the root, filled to the last page, a run cannot keep them, and
        // says so without advice that only helps when permission was what failed.
        _ = try? await sh("/usr/bin/dd", ["if=/dev/zero", "of=" + root.url("filler"), "bs=4k"])
        let unrecorded = try await tend(["apply", repo.path, "--root", root.path])
        #expect(unrecorded.status == 1 && unrecorded.stderr.contains("cannot record it in the state directory: No space left on device"), "\(unrecorded.stderr)")
        #expect(!unrecorded.stderr.contains("run as root"), "\(unrecorded.stderr)")

        try FileManager.default.removeItem(atPath: root.url("filler"))
        try await sh("/usr/bin/mount", ["-o", "remount,size=16m", root.path])
        let again = try await tend(["apply", repo.path, "--root", root.path, "--state-dir", state.path])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("Apply: \(failedIndexes.filter { $0 % 5 != 0 }.count) created, \(failedIndexes.filter { $0 % 5 == 0 }.count) updated"), "\(again.stdout.suffix(300))")
        #expect(try await tend(["plan", repo.path, "--root", root.path, "--state-dir", state.path, "--detailed-exitcode"]).status == 0)
    }

    /// Whether `chattr +i` works on the file system the scratch roots are made in (tmpfs, for one,
    /// has no immutable flag): the tests that need it run only where it does, and say why not.
    static let chattrWorks: Bool = {
        guard isRoot, FileManager.default.isExecutableFile(atPath: "/usr/bin/chattr"), let probe = try? Scratch("tend-chattr") else { return false }
        let file = probe.url("probe")
        guard FileManager.default.createFile(atPath: file, contents: Data()) else { return false }
        let set = Process()
        set.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
        set.arguments = ["+i", file]
        set.standardError = FileHandle.nullDevice
        guard (try? set.run()) != nil else { return false }
        set.waitUntilExit()
        guard set.terminationStatus == 0 else { return false }
        let clear = Process()
        clear.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
        clear.arguments = ["-i", file]
        try? clear.run()
        clear.waitUntilExit()
        return true
    }()

    @Test("a FIFO, a socket or a device where a file is declared, a file where a folder is needed: each fails alone; names at 255 bytes and paths near 4096 work",
          .enabled(if: isRoot, "needs root for device nodes"))
    func specialFiles() async throws {
        let root = try makeRoot()
        try FileManager.default.createDirectory(atPath: root.url("srv"), withIntermediateDirectories: true)
        mkfifo(root.url("srv/fifo"), 0o644)
        try await sh("/usr/bin/mknod", [root.url("srv/device"), "c", "1", "3"])
        try await sh("/usr/bin/python3", ["-c", "import socket; socket.socket(socket.AF_UNIX).bind('\(root.url("srv/socket"))')"])
        try root.write(["srv/plain": "a file\n"])
        let name = String(repeating: "n", count: 255)
        let deep = "/srv/deep/" + Array(repeating: String(repeating: "d", count: 250), count: 15).joined(separator: "/") + "/file"
        let repo = try repository(["a.yaml": """
            resources:
              - file: /srv/fifo
                content: "x\\n"
              - file: /srv/device
                content: "x\\n"
              - file: /srv/socket
                content: "x\\n"
              - file: /srv/plain/child
                content: "x\\n"
              - file: /srv/frozen
                content: "new\\n"
              - file: /srv/\(name)
                content: "long name\\n"
              - file: \(deep)
                content: "deep\\n"
              - file: /srv/ok
                content: "ok\\n"
            """])
        let apply = try await tend(["apply", repo.path, "--root", root.path])
        #expect(apply.status == 5, "\(apply)")
        for path in ["/srv/fifo", "/srv/device", "/srv/socket"] {
            #expect(apply.stdout.contains("file:\(path): failed: \(path): is a special file (device, socket or FIFO); tend will not replace it"), "\(apply)")
        }
        #expect(apply.stdout.contains("file:/srv/plain/child: failed: /srv/plain: is a regular file, not a directory"), "\(apply)")
        #expect(read(root.url("srv/\(name)")) == "long name\n")
        #expect(read(root.url(String(deep.dropFirst()))) == "deep\n")
        #expect(read(root.url("srv/ok")) == "ok\n")
        #expect(try #require(status(root.url("srv/fifo"))).st_mode & S_IFMT == S_IFIFO)
        #expect(read(root.url("srv/plain")) == "a file\n")
    }

    @Test("an immutable file fails alone and keeps its content", .enabled(if: Self.chattrWorks, "needs root and a file system with chattr +i"))
    func immutableFile() async throws {
        let root = try makeRoot()
        try root.write(["srv/frozen": "old\n"])
        try await sh("/usr/bin/chattr", ["+i", root.url("srv/frozen")])
        let repo = try repository(["a.yaml": "resources:\n  - file: /srv/frozen\n    content: \"new\\n\"\n  - file: /srv/ok\n    content: \"ok\\n\"\n"])
        let apply: TendRun
        do {
            apply = try await tend(["apply", repo.path, "--root", root.path])
        } catch {
            _ = try? await sh("/usr/bin/chattr", ["-i", root.url("srv/frozen")])
            throw error
        }
        // Made mutable again at once, so that the scratch root can be removed whatever follows.
        try await sh("/usr/bin/chattr", ["-i", root.url("srv/frozen")])
        #expect(apply.status == 5, "\(apply)")
        #expect(apply.stdout.contains("file:/srv/frozen: failed: /srv/frozen: Operation not permitted"), "\(apply)")
        #expect(read(root.url("srv/frozen")) == "old\n")
        #expect(read(root.url("srv/ok")) == "ok\n")
    }

    @Test("200 files made durable together: the one that cannot be put in place fails alone, what requires it is skipped, the other 199 converge, no temporary is left",
          .enabled(if: Self.chattrWorks, "needs root and a file system with chattr +i"))
    func stagedStretch() async throws {
        let root = try makeRoot()
        try FileManager.default.createDirectory(atPath: root.url("srv/many"), withIntermediateDirectories: true)
        try root.write(["srv/many/f100": "old\n"])
        try await sh("/usr/bin/chattr", ["+i", root.url("srv/many/f100")])
        var manifest = "resources:\n"
        for index in 0..<200 { manifest += "  - file: /srv/many/f\(index)\n    content: \"file \(index)\\n\"\n" }
        manifest += "  - symlink: /srv/latest\n    target: /srv/many/f100\n    requires: [file:/srv/many/f100]\n"
        manifest += "  - symlink: /srv/first\n    target: /srv/many/f0\n    requires: [file:/srv/many/f0]\n"
        let repo = try repository(["a.yaml": manifest])
        let apply: TendRun
        do {
            apply = try await tend(["apply", repo.path, "--root", root.path])
        } catch {
            _ = try? await sh("/usr/bin/chattr", ["-i", root.url("srv/many/f100")])
            throw error
        }
        try await sh("/usr/bin/chattr", ["-i", root.url("srv/many/f100")])
        #expect(apply.status == 5, "\(apply)")
        #expect(apply.stdout.contains("file:/srv/many/f100: failed: /srv/many/f100: Operation not permitted"), "\(apply)")
        #expect(apply.stdout.contains("symlink:/srv/latest: skipped: requires file:/srv/many/f100, which did not converge"), "\(apply)")
        #expect(read(root.url("srv/many/f100")) == "old\n")
        for index in 0..<200 where index != 100 {
            #expect(read(root.url("srv/many/f\(index)")) == "file \(index)\n")
        }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root.url("srv/first")) == "/srv/many/f0")
        #expect(!FileManager.default.fileExists(atPath: root.url("srv/latest")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.url("srv/many")).allSatisfy { !$0.contains(".tend-") }, "a temporary file was left")

        let again = try await tend(["apply", repo.path, "--root", root.path])
        #expect(again.status == 0, "\(again)")
        #expect(again.stdout.contains("~ file:/srv/many/f100: updated") && again.stdout.contains("+ symlink:/srv/latest: created"), "\(again)")
        #expect(try await tend(["plan", repo.path, "--root", root.path, "--detailed-exitcode"]).status == 0)
    }
}
