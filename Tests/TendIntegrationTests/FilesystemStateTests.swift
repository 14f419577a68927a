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
        let again = try await tend(["apply", large.path, "--root", root.path])
        #expect(again.status == 0, "\(again)")
        #expect(try await tend(["plan", large.path, "--root", root.path, "--detailed-exitcode"]).status == 0)
    }

    @Test("a FIFO, a socket or a device where a file is declared, a file where a folder is needed, an immutable file: each fails alone; names at 255 bytes and paths near 4096 work",
          .enabled(if: isRoot, "needs root for device nodes and chattr"))
    func specialFiles() async throws {
        let root = try makeRoot()
        try FileManager.default.createDirectory(atPath: root.url("srv"), withIntermediateDirectories: true)
        mkfifo(root.url("srv/fifo"), 0o644)
        try await sh("/usr/bin/mknod", [root.url("srv/device"), "c", "1", "3"])
        try await sh("/usr/bin/python3", ["-c", "import socket; socket.socket(socket.AF_UNIX).bind('\(root.url("srv/socket"))')"])
        try root.write(["srv/plain": "a file\n", "srv/frozen": "old\n"])
        let immutable = (try? await sh("/usr/bin/chattr", ["+i", root.url("srv/frozen")])) != nil
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
        let apply: TendRun
        do {
            apply = try await tend(["apply", repo.path, "--root", root.path])
        } catch {
            if immutable { _ = try? await sh("/usr/bin/chattr", ["-i", root.url("srv/frozen")]) }
            throw error
        }
        // Made mutable again at once, so that the scratch root can be removed whatever follows.
        if immutable { try await sh("/usr/bin/chattr", ["-i", root.url("srv/frozen")]) }
        #expect(apply.status == 5, "\(apply)")
        for path in ["/srv/fifo", "/srv/device", "/srv/socket"] {
            #expect(apply.stdout.contains("file:\(path): failed: \(path): is a special file (device, socket or FIFO); tend will not replace it"), "\(apply)")
        }
        #expect(apply.stdout.contains("file:/srv/plain/child: failed: /srv/plain: is a regular file, not a directory"), "\(apply)")
        if immutable {
            #expect(apply.stdout.contains("file:/srv/frozen: failed: /srv/frozen: Operation not permitted"), "\(apply)")
            #expect(read(root.url("srv/frozen")) == "old\n")
        } else {
            print("chattr +i is not supported on \(root.path)'s filesystem: the immutable case was not tried")
        }
        #expect(read(root.url("srv/\(name)")) == "long name\n")
        #expect(read(root.url(String(deep.dropFirst()))) == "deep\n")
        #expect(read(root.url("srv/ok")) == "ok\n")
        #expect(try #require(status(root.url("srv/fifo"))).st_mode & S_IFMT == S_IFIFO)
        #expect(read(root.url("srv/plain")) == "a file\n")
    }

    @Test("200 files made durable together: the one that cannot be put in place fails alone, what requires it is skipped, the other 199 converge, no temporary is left",
          .enabled(if: isRoot, "needs root for chattr"))
    func stagedStretch() async throws {
        let root = try makeRoot()
        try FileManager.default.createDirectory(atPath: root.url("srv/many"), withIntermediateDirectories: true)
        try root.write(["srv/many/f100": "old\n"])
        guard (try? await sh("/usr/bin/chattr", ["+i", root.url("srv/many/f100")])) != nil else {
            print("chattr +i is not supported on \(root.path)'s filesystem: the staged failure was not tried")
            return
        }
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
