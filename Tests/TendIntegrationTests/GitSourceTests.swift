import Foundation
import Testing

/// tend reading its configuration from Git repositories served over every transport.
@Suite("Git sources")
struct GitSourceTests {
    /// plan and apply `--repo url` into a fresh root; returns the apply run.
    func applyFrom(_ url: String, state: Scratch, extra: [String] = []) async throws -> (TendRun, Scratch) {
        let root = try makeRoot()
        let run = try await tend(["apply", "--repo", url, "--state-dir", state.path, "--root", root.path] + extra)
        return (run, root)
    }

    @Test("a plain path and file:// are planned and applied, and the plan names the commit")
    func localTransports() async throws {
        let repo = try await GitRepo()
        let id = try await repo.commit(appConfig("port = 80\n"), "Serve on port 80")
        for url in [repo.path, "file://" + repo.path] {
            let state = try Scratch("tend-state")
            let root = try makeRoot()
            let plan = try await tend(["plan", "--repo", url, "--state-dir", state.path, "--root", root.path])
            #expect(plan.status == 0, "\(plan)")
            #expect(plan.stdout.contains("\(url) (default branch) at \(id.prefix(7)) \"Serve on port 80\" by Alice Admin"), "\(plan)")
            let json = try await tend(["plan", "--repo", url, "--state-dir", state.path, "--root", root.path, "--json"])
            #expect(json.stdout.contains("\"commit\" : \"\(id)\""))
            let (apply, applied) = try await applyFrom(url, state: state)
            #expect(apply.status == 0, "\(apply)")
            #expect(read(applied.url("etc/app.conf")) == "port = 80\n")
        }
    }

    @Test("git:// from git daemon on 127.0.0.1")
    func gitDaemon() async throws {
        let repo = try await GitRepo()
        try await repo.commit(appConfig("daemon\n"), "First")
        let state = try Scratch("tend-state")
        let (run, root) = try await withGitDaemon(serving: repo.path) { url in
            try await self.applyFrom(url, state: state)
        }
        #expect(run.status == 0, "\(run)")
        #expect(read(root.url("etc/app.conf")) == "daemon\n")
    }

    @Test("https:// through git http-backend, with a token read from a file and never printed; over plain http:// the token is not sent",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), "needs openssl to make a certificate"))
    func httpsWithToken() async throws {
        let repo = try await GitRepo()
        try await repo.commit(appConfig("over https\n"), "First")
        let base = URL(fileURLWithPath: repo.path).deletingLastPathComponent().path
        let name = URL(fileURLWithPath: repo.path).lastPathComponent
        let secrets = try Scratch("tend-secret")
        let token = "tok-\(UUID().uuidString)"
        try secrets.write(["token": token + "\n", "wrong": "nope\n"])
        let (certificate, key) = (secrets.url("cert.pem"), secrets.url("key.pem"))
        try await sh("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "1",
                                          "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"])
        let state = try Scratch("tend-state")
        let trust = ["GIT_SSL_CAINFO": certificate]
        @Sendable func apply(_ url: String, _ extra: [String] = []) async throws -> (TendRun, Scratch) {
            let root = try makeRoot()
            let run = try await tend(["apply", "--repo", url, "--state-dir", state.path, "--root", root.path] + extra, environment: trust)
            return (run, root)
        }
        try await withServer("/usr/bin/python3", [gitHTTPServer, "--tls", certificate, key, base, secrets.url("token")], printsPort: true) { port in
            let url = "https://localhost:\(port)/\(name)"
            let (anonymous, _) = try await apply(url)
            #expect(anonymous.status == 4, "\(anonymous)")
            #expect(anonymous.stderr.contains("cannot fetch \(url) over https"), "\(anonymous)")
            #expect(anonymous.stderr.contains("--token-file"), "\(anonymous)")
            let (wrong, _) = try await apply(url, ["--token-file", secrets.url("wrong")])
            #expect(wrong.status == 4, "\(wrong)")
            #expect(wrong.stderr.contains("authentication failed"), "\(wrong)")
            let (good, root) = try await apply(url, ["--token-file", secrets.url("token"), "-v"])
            #expect(good.status == 0, "\(good)")
            #expect(read(root.url("etc/app.conf")) == "over https\n")
            for output in [anonymous, wrong, good].flatMap({ [$0.stdout, $0.stderr] }) {
                #expect(!output.contains(token))
            }
            // A server that redirects elsewhere (here to the real one, which would take the
            // token) does not get it sent on: with a token, no redirect is followed.
            let redirector = """
                import http.server, ssl, sys
                class Redirect(http.server.BaseHTTPRequestHandler):
                    def do_GET(self):
                        self.send_response(302)
                        self.send_header("Location", "https://localhost:\(port)" + self.path)
                        self.end_headers()
                    def log_message(self, *args): pass
                server = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(sys.argv[1], sys.argv[2])
                server.socket = context.wrap_socket(server.socket, server_side=True)
                print(server.server_address[1], flush=True)
                server.serve_forever()
                """
            try await withServer("/usr/bin/python3", ["-c", redirector, certificate, key], printsPort: true) { redirectPort in
                let (redirected, root) = try await apply("https://localhost:\(redirectPort)/\(name)", ["--token-file", secrets.url("token")])
                #expect(redirected.status == 4, "a redirect was followed with the token: \(redirected)")
                #expect(redirected.stderr.contains("https://localhost:\(port) asked for the token, which goes only to https://localhost:\(redirectPort)"), "\(redirected)")
                #expect(read(root.url("etc/app.conf")) == nil)
            }
        }
        try await withServer("/usr/bin/python3", [gitHTTPServer, base, secrets.url("token")], printsPort: true) { port in
            let (plain, _) = try await apply("http://127.0.0.1:\(port)/\(name)", ["--token-file", secrets.url("token")])
            #expect(plain.status == 4, "\(plain)")
            #expect(plain.stderr.contains("the token is sent over https:// only"), "\(plain)")
        }
    }

    @Test("https_proxy is honoured for an https:// source (a CONNECT tunnel), and no_proxy skips it, as Git users expect",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"), "needs openssl to make a certificate"))
    func proxy() async throws {
        let repo = try await GitRepo()
        try await repo.commit(appConfig("through a proxy\n"), "First")
        let base = URL(fileURLWithPath: repo.path).deletingLastPathComponent().path
        let name = URL(fileURLWithPath: repo.path).lastPathComponent
        let scratch = try Scratch("tend-proxy")
        let (certificate, key, log) = (scratch.url("cert.pem"), scratch.url("key.pem"), scratch.url("requests"))
        try await sh("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "1",
                                          "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"])
        let proxyScript = URL(fileURLWithPath: gitHTTPServer).deletingLastPathComponent().appendingPathComponent("http-proxy.py").path
        try await withServer("/usr/bin/python3", [gitHTTPServer, "--tls", certificate, key, base], printsPort: true) { port in
            try await withServer("/usr/bin/python3", [proxyScript, log], printsPort: true) { proxyPort in
                let url = "https://localhost:\(port)/\(name)"
                let trust = ["GIT_SSL_CAINFO": certificate, "https_proxy": "http://127.0.0.1:\(proxyPort)"]
                let root = try makeRoot()
                let proxied = try await tend(["apply", "--repo", url, "--root", root.path, "--state-dir", try Scratch("tend-state").path],
                                             environment: trust.merging(["no_proxy": ""]) { _, new in new })
                #expect(proxied.status == 0, "\(proxied)")
                #expect(read(root.url("etc/app.conf")) == "through a proxy\n")
                #expect((read(log) ?? "").contains("CONNECT localhost:\(port)"), "the fetch did not go through the proxy: \(read(log) ?? "")")
                try Data().write(to: URL(fileURLWithPath: log))
                let direct = try await tend(["plan", "--repo", url, "--root", root.path, "--state-dir", try Scratch("tend-state").path],
                                            environment: trust.merging(["no_proxy": "localhost"]) { _, new in new })
                #expect(direct.status == 0, "\(direct)")
                #expect((read(log) ?? "").isEmpty, "no_proxy was not honoured: \(read(log) ?? "")")
            }
        }
    }

    @Test("a moved branch is planned at its new commit; tag and commit pins hold")
    func branchesTagsAndPins() async throws {
        let repo = try await GitRepo()
        let first = try await repo.commit(appConfig("v1\n"), "Version 1")
        try await repo.git("tag", "-a", "v1", "-m", "release 1")
        let state = try Scratch("tend-state")
        let root = try makeRoot()
        func apply(_ extra: [String]) async throws -> TendRun {
            try await tend(["apply", "--repo", repo.path, "--state-dir", state.path, "--root", root.path, "--allow-rewind"] + extra)
        }
        #expect(try await apply([]).status == 0)
        let second = try await repo.commit(appConfig("v2\n"), "Version 2")
        let plan = try await tend(["plan", "--repo", repo.path, "--ref", "main", "--state-dir", state.path, "--root", root.path])
        #expect(plan.stdout.contains("at \(second.prefix(7)) \"Version 2\""), "\(plan)")
        #expect(plan.stdout.contains("-v1"))
        #expect(plan.stdout.contains("+v2"))
        #expect(try await apply([]).status == 0)
        #expect(read(root.url("etc/app.conf")) == "v2\n")

        #expect(try await apply(["--ref", "v1"]).status == 0)
        #expect(read(root.url("etc/app.conf")) == "v1\n", "the annotated tag pins the first commit")
        try await repo.commit(appConfig("v3\n"), "Version 3")
        #expect(try await apply(["--ref", first]).status == 0)
        #expect(read(root.url("etc/app.conf")) == "v1\n", "a commit id pins even after the branch moved")
        #expect(try await apply(["--ref", "v1"]).status == 0)
        #expect(read(root.url("etc/app.conf")) == "v1\n")
    }

    @Test("a rewound branch is refused without --allow-rewind, naming both commits")
    func rewindRefused() async throws {
        let repo = try await GitRepo()
        let first = try await repo.commit(appConfig("one\n"), "One")
        let second = try await repo.commit(appConfig("two\n"), "Two")
        let state = try Scratch("tend-state")
        let (applied, root) = try await applyFrom(repo.path, state: state)
        #expect(applied.status == 0, "\(applied)")
        try await repo.git("reset", "-q", "--hard", first)
        try await repo.commit(appConfig("rewritten\n"), "Rewritten history")
        let refused = try await tend(["apply", "--repo", repo.path, "--state-dir", state.path, "--root", root.path])
        #expect(refused.status == 7, "\(refused)")
        #expect(refused.stderr.contains("does not descend from \(second.prefix(7))"), "\(refused)")
        #expect(read(root.url("etc/app.conf")) == "two\n")
        let allowed = try await tend(["apply", "--repo", repo.path, "--state-dir", state.path, "--root", root.path, "--allow-rewind"])
        #expect(allowed.status == 0, "\(allowed)")
        #expect(read(root.url("etc/app.conf")) == "rewritten\n")
    }

    @Test("an unreachable remote exits 4 naming it; with a cache, --offline plans from the cached commit")
    func unreachableAndOffline() async throws {
        let repo = try await GitRepo()
        let id = try await repo.commit(appConfig("cached\n"), "Cached")
        let state = try Scratch("tend-state")
        let port = try freePort()
        let url = "git://127.0.0.1:\(port)/\(URL(fileURLWithPath: repo.path).lastPathComponent)"
        try await withGitDaemon(serving: repo.path, port: port) { _ in
            let first = try await tend(["plan", "--repo", url, "--state-dir", state.path, "--root", "/tmp"])
            #expect(first.status == 0, "\(first)")
        }
        let down = try await tend(["plan", "--repo", url, "--state-dir", state.path, "--root", "/tmp"])
        #expect(down.status == 4, "\(down)")
        #expect(down.stderr.contains("cannot fetch \(url) over git"), "\(down)")
        let root = try makeRoot()
        let offline = try await tend(["plan", "--repo", url, "--state-dir", state.path, "--root", root.path, "--offline"])
        #expect(offline.status == 0, "\(offline)")
        #expect(offline.stdout.contains("at \(id.prefix(7))"))
        #expect(offline.stdout.contains("+ file:/etc/app.conf"))
        let noCache = try await tend(["plan", "--repo", url, "--state-dir", try Scratch().path, "--offline"])
        #expect(noCache.status == 4)
        #expect(noCache.stderr.contains("there is no cache of \(url)"))
    }

    @Test("a server that accepts and never answers is given up after --fetch-timeout")
    func fetchTimeout() async throws {
        let silent = "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\nprint(s.getsockname()[1], flush=True)\nc = s.accept()\ntime.sleep(120)\n"
        try await withServer("/usr/bin/python3", ["-c", silent], printsPort: true) { port in
            let started = Date()
            let run = try await tend(["plan", "--repo", "git://127.0.0.1:\(port)/x", "--state-dir", try Scratch().path, "--fetch-timeout", "2"])
            #expect(run.status == 4, "\(run)")
            #expect(run.stderr.contains("timed out after 2 s"), "\(run)")
            #expect(Date().timeIntervalSince(started) < 60, "the fetch must not hang")
        }
    }

    @Test("a commit whose file unpacks past 64 MiB, or that holds over 50,000 entries, is refused naming the object, its size and the limit, before any of it is read; the agent keeps the last good commit and takes the next good one; a repository on this machine is checked before it is fetched")
    func commitLimits() async throws {
        let repo = try await GitRepo()
        let good = try await repo.commit(appConfig("good\n"), "good")
        let state = try Scratch("tend-state")
        let root = try makeRoot()
        let work = repo.path
        // 65 MiB of zeros: a pack of a few KiB that unpacks past the limit of one file.
        let sparse = work + "/site/files/sparse.img"
        #expect(truncate(sparse, 65 << 20) == 0 || (FileManager.default.createFile(atPath: sparse, contents: nil) && truncate(sparse, 65 << 20) == 0))
        try await repo.git("add", "-A")
        try await repo.git("commit", "-q", "-m", "a sparse file")
        let big = try await repo.head()
        let settings = try Scratch("tend-agent-yaml")
        try await withGitDaemon(serving: work) { url in
            try settings.write(["agent.yaml": "repo: \(url)\nstate_dir: \(state.path)\nroot: \(root.path)\n"])
            let refused = try await tend(["plan", "--repo", url, "--state-dir", state.path, "--root", root.path])
            #expect(refused.status == 7, "\(refused)")
            #expect(refused.stderr.contains("commit \(big.prefix(7)) of \(url) is refused: 'site/files/sparse.img' is 65 MiB (object "), "\(refused)")
            #expect(refused.stderr.contains("more than 64 MiB, the most tend unpacks of one file"), "\(refused)")
            // The agent: the last good commit, applied by hand before, stays enforced.
            let pinned = try await tend(["apply", "--repo", url, "--ref", good, "--state-dir", state.path, "--root", root.path])
            #expect(pinned.status == 0, "\(pinned)")
            try "drifted\n".write(toFile: root.url("etc/app.conf"), atomically: false, encoding: .utf8)
            let agent = try await tend(["agent", "--once", "--config", settings.url("agent.yaml")])
            #expect(agent.status == 7 && agent.stderr.contains("is refused: 'site/files/sparse.img' is 65 MiB"), "\(agent)")
            #expect(read(root.url("etc/app.conf")) == "good\n", "the last good commit was not enforced")
            // The next commit without the file applies.
            try FileManager.default.removeItem(atPath: sparse)
            try "fixed\n".write(toFile: work + "/site/files/app.conf", atomically: false, encoding: .utf8)
            _ = try await sh("/usr/bin/git", ["-C", work, "add", "-A"])
            _ = try await sh("/usr/bin/git", ["-C", work, "-c", "user.name=Alice Admin", "-c", "user.email=alice@example.com", "commit", "-q", "-m", "without the sparse file"])
            let fixed = try await sh("/usr/bin/git", ["-C", work, "rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let next = try await tend(["agent", "--once", "--config", settings.url("agent.yaml")])
            #expect(next.status == 0, "\(next)")
            #expect(read(root.url("etc/app.conf")) == "fixed\n")
            #expect(try await tend(["status", "--state-dir", state.path, "--root", root.path]).stdout.contains(fixed.prefix(7)))
        }
        // 50,001 small files in one commit: refused by their count.
        let many = try await GitRepo()
        var files = appConfig("many\n")
        for index in 0...50_000 { files["site/files/many/\(index % 100)/\(index)"] = "\(index)\n" }
        try await many.commit(files, "many files")
        try await withGitDaemon(serving: many.path) { url in
            let run = try await tend(["plan", "--repo", url, "--state-dir", state.path, "--root", root.path])
            #expect(run.status == 7 && run.stderr.contains("it has more than 50000 files and folders, the most tend unpacks of one commit"), "\(run)")
        }
        // From a path, libgit2 would read the file whole to pack it: checked before the fetch.
        let local = try await tend(["plan", "--repo", work, "--ref", big, "--state-dir", try Scratch("tend-state").path, "--root", root.path])
        #expect(local.status == 7 && local.stderr.contains("is not fetched: 'site/files/sparse.img' of commit \(big.prefix(7)) is 65 MiB"), "\(local)")
    }

    @Test("a submodule named in apply: or on a source: path is said to be one, whose files tend does not fetch")
    func submodule() async throws {
        let inner = try await GitRepo()
        try await inner.commit(["f": "x\n"], "inner")
        let outer = try await GitRepo()
        try await outer.commit(["tend.yaml": "hosts:\n  - apply: [site, vendor]\n", "site/a.yaml": "resources:\n  - file: /etc/x\n    source: ../vendor/f\n"], "outer")
        try await outer.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", inner.path, "vendor")
        try await outer.git("commit", "-q", "-m", "vendor")
        let run = try await tend(["validate", "--repo", outer.path, "--state-dir", try Scratch("tend-state").path])
        #expect(run.status == 3, "\(run)")
        #expect(run.stderr.contains("site/a.yaml:3:13: source file 'vendor/f': vendor is a Git submodule, whose files are in another repository that tend does not fetch"), "\(run)")
        #expect(run.stderr.contains("tend.yaml:2:19: 'vendor' in 'apply' is a Git submodule"), "\(run)")
    }

    @Test("the cache is packed once what fetches added weighs half its largest pack: what nothing reaches is pruned, and every commit of the history and the last applied one, rewritten away, stay readable")
    func cacheIsPacked() async throws {
        let repo = try await GitRepo()
        let state = try Scratch("tend-state")
        let root = try makeRoot()
        try await repo.commit(appConfig("0\n"), "0")
        let applied = try await tend(["apply", "--repo", repo.path, "--state-dir", state.path, "--root", root.path])
        #expect(applied.status == 0, "\(applied)")
        let first = try await repo.head()
        // A branch fetched once, then deleted: what only it reached is pruned at the next repack.
        try await repo.git("checkout", "-q", "-b", "temporary")
        let temporary = try await repo.commit(["site/files/app.conf": "temporary\n"], "temporary")
        #expect(try await tend(["plan", "--repo", repo.path, "--state-dir", state.path, "--root", root.path, "--ref", "temporary", "--allow-rewind"]).status == 0)
        try await repo.git("checkout", "-q", "main")
        try await repo.git("branch", "-D", "temporary")
        // History rewritten: the applied commit is on no branch any more.
        try await repo.git("checkout", "-q", "--orphan", "rewritten")
        try await repo.git("branch", "-D", "main")
        try await repo.git("branch", "-m", "main")
        var commits: [String] = []
        for index in 1...20 {
            commits.append(try await repo.commit(appConfig("\(index)\n"), "\(index)"))
            let run = try await tend(["plan", "--repo", repo.path, "--state-dir", state.path, "--root", root.path, "--allow-rewind"])
            #expect(run.status == 0, "\(run)")
        }
        let cache = try #require(try FileManager.default.contentsOfDirectory(atPath: state.url("cache")).first { $0.hasSuffix(".git") })
        let packs = try FileManager.default.contentsOfDirectory(atPath: state.url("cache/\(cache)/objects/pack")).filter { $0.hasSuffix(".pack") }
        #expect(packs.count < 20, "the cache was never packed: \(packs.count) packs")
        for commit in [first, commits[0], commits[10], commits[19]] {
            let plan = try await tend(["plan", "--repo", repo.path, "--ref", commit, "--offline", "--state-dir", state.path, "--root", root.path, "--allow-rewind"])
            #expect(plan.status == 0 && plan.stdout.contains("at \(commit.prefix(7))"), "\(commit): \(plan)")
        }
        let fsck = try await sh("/usr/bin/git", ["-C", state.url("cache/\(cache)"), "fsck", "--no-dangling"])
        #expect(!fsck.contains("missing"), "\(fsck)")
        let kept = try? await sh("/usr/bin/git", ["-C", state.url("cache/\(cache)"), "cat-file", "-e", temporary])
        #expect(kept == nil, "the commit of the deleted branch is still in the cache")
    }

    @Test("a remote that sends more than --fetch-max-size is given up with a message that says so, keeping nothing of it, and the next fetch with room starts afresh")
    func fetchMaxSize() async throws {
        let repo = try await GitRepo()
        // 3 MiB of random bytes (4 MiB as base64), which compression cannot shrink below the limit.
        let random = (0..<(3 << 20)).map { _ in UInt8.random(in: 0...255) }
        try await repo.commit(appConfig(Data(random).base64EncodedString() + "\n"), "large")
        let state = try Scratch("tend-state")
        let root = try makeRoot()
        let work = repo.path
        try await withGitDaemon(serving: work) { url in
            let refused = try await tend(["plan", "--repo", url, "--state-dir", state.path, "--root", root.path, "--fetch-max-size", "1"])
            #expect(refused.status == 4, "\(refused)")
            #expect(refused.stderr.contains("the remote sent more than 1 MiB, the most tend fetches at once"), "\(refused)")
            let kept = try await sh("/usr/bin/du", ["-sb", state.path]).split(separator: "\t").first.flatMap { Int($0) } ?? .max
            #expect(kept < 2 << 20, "the state directory keeps \(kept) bytes of the refused fetch")
            // The agent takes the limit from agent.yaml.
            let settings = try Scratch("tend-agent-yaml")
            try settings.write(["agent.yaml": "repo: \(url)\nstate_dir: \(state.path)\nroot: \(root.path)\nfetch_max_size: 1\n"])
            let agent = try await tend(["agent", "--once", "--config", settings.url("agent.yaml")])
            #expect(agent.status != 0 && agent.stderr.contains("the remote sent more than 1 MiB"), "\(agent)")
            let fetched = try await tend(["plan", "--repo", url, "--state-dir", state.path, "--root", root.path])
            #expect(fetched.status == 0, "\(fetched)")
            #expect(fetched.stdout.contains("+ file:/etc/app.conf"), "\(fetched)")
            // Into a cache that holds a commit: a refused fetch leaves it as it was.
            let size = { try await sh("/usr/bin/du", ["-sb", state.path]).split(separator: "\t").first.flatMap { Int($0) } ?? .max }
            let before = try await size()
            try Data((0..<(3 << 20)).map { _ in UInt8.random(in: 0...255) }).base64EncodedData().write(to: URL(fileURLWithPath: work + "/site/files/more"))
            _ = try await sh("/usr/bin/git", ["-C", work, "add", "-A"])
            _ = try await sh("/usr/bin/git", ["-C", work, "-c", "user.name=Alice Admin", "-c", "user.email=alice@example.com", "commit", "-q", "-m", "larger"])
            let again = try await tend(["plan", "--repo", url, "--state-dir", state.path, "--root", root.path, "--fetch-max-size", "1"])
            #expect(again.status == 4 && again.stderr.contains("the remote sent more than 1 MiB"), "\(again)")
            #expect(try await size() == before, "the refused fetch left something in the cache")
        }
        let invalid = try await tend(["plan", "--repo", "git://127.0.0.1:1/x", "--fetch-max-size", "0"])
        #expect(invalid.status == 64 && invalid.stderr.contains("--fetch-max-size must be from 1 to 1048576 (MiB), found 0"), "\(invalid)")
    }

    @Test("what a fetch writes to the cache (the pack, its index, the refs and their folders) is fsynced before tend goes on; a fetch that brings nothing syncs nothing",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/strace"), "needs strace (installed by make test)"))
    func fetchIsDurable() async throws {
        let repo = try await GitRepo()
        try await repo.commit(appConfig("durable\n"), "First")
        let state = try Scratch("tend-state")
        let root = try makeRoot()
        let trace = try Scratch("tend-strace")
        let cache = state.path + "/cache/"
        try await withGitDaemon(serving: repo.path) { url in
            // Each fsync of the cache, with the path of what it synced (-y), from every thread of
            // tend (a call another thread interrupts is printed "fsync(5</path> <unfinished ...>").
            func synced(_ log: String) async throws -> [String] {
                let out = trace.url(log)
                _ = try await sh("/usr/bin/strace", ["-f", "-y", "-e", "trace=fsync,fdatasync", "-o", out, tendBinary,
                                                     "plan", "--repo", url, "--state-dir", state.path, "--root", root.path])
                return try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
                    .compactMap { line in line.firstMatch(of: #/sync\(\d+<([^>]*)>/#).map { String($0.1) } }
                    .filter { $0.hasPrefix(cache) }
            }
            let first = try await synced("first")
            for (what, pattern) in [("the pack", #/objects/pack/pack_git2_[0-9A-Za-z]+$/#), ("its index", #/objects/pack/.*idx\.lock$/#),
                                    ("the pack folder", #/objects/pack$/#), ("the branch", #/refs/remotes/origin/main\.lock$/#)] {
                #expect(first.contains { $0.contains(pattern) }, "\(what) was not fsynced: \(first)")
            }
            #expect(try await synced("again").isEmpty, "a fetch that brought nothing synced something")
        }
    }

    @Test("a missing ref, commit or folder exits 4 and says what exists")
    func notFound() async throws {
        let repo = try await GitRepo()
        try await repo.commit(appConfig("x\n"), "Only")
        let state = try Scratch("tend-state")
        let ref = try await tend(["plan", "--repo", repo.path, "--ref", "release", "--state-dir", state.path])
        #expect(ref.status == 4)
        #expect(ref.stderr.contains("'release' is neither a branch nor a tag of \(repo.path) (branches: main; tags: none)"), "\(ref)")
        let commit = try await tend(["plan", "--repo", repo.path, "--ref", String(repeating: "a", count: 40), "--state-dir", state.path])
        #expect(commit.status == 4)
        #expect(commit.stderr.contains("commit aaaaaaaaaa"), "\(commit)")
        let path = try await tend(["plan", "--repo", repo.path, "--path", "hosts/prod", "--state-dir", state.path])
        #expect(path.status == 4)
        #expect(path.stderr.contains("the folder 'hosts/prod' does not exist in \(repo.path)"), "\(path)")
    }

    @Test("--path reads tend.yaml from a folder of the repository; errors name the path in the repository")
    func subfolder() async throws {
        let repo = try await GitRepo()
        try await repo.commit(appConfig("sub\n").mapKeys { "hosts/prod/" + $0 }, "Prod hosts")
        let state = try Scratch("tend-state")
        let (run, root) = try await applyFrom(repo.path, state: state, extra: ["--path", "hosts/prod"])
        #expect(run.status == 0, "\(run)")
        #expect(read(root.url("etc/app.conf")) == "sub\n")
        try await repo.commit(["hosts/prod/site/app.yaml": "resources:\n  - file: etc/relative\n"], "Broken")
        let broken = try await tend(["validate", "--repo", repo.path, "--path", "hosts/prod", "--state-dir", state.path])
        #expect(broken.status == 3)
        #expect(broken.stderr.contains("hosts/prod/site/app.yaml:2:11: 'etc/relative' is a relative path"), "\(broken)")
    }

    @Test("a damaged cache is moved aside and fetched again")
    func corruptCacheHealed() async throws {
        let repo = try await GitRepo()
        try await repo.commit(appConfig("healthy\n"), "First")
        let state = try Scratch("tend-state")
        #expect(try await tend(["plan", "--repo", repo.path, "--state-dir", state.path, "--root", "/tmp"]).status == 0)
        let cache = try #require(try FileManager.default.contentsOfDirectory(atPath: state.url("cache")).first)
        // Lose every object: the refs now point at nothing.
        let objects = state.url("cache/\(cache)/objects")
        for entry in try FileManager.default.contentsOfDirectory(atPath: objects) where entry != "info" {
            try FileManager.default.removeItem(atPath: objects + "/" + entry)
        }
        let root = try makeRoot()
        let healed = try await tend(["apply", "--repo", repo.path, "--state-dir", state.path, "--root", root.path])
        #expect(healed.status == 0, "\(healed)")
        #expect(read(root.url("etc/app.conf")) == "healthy\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: state.url("cache")).contains { $0.contains(".damaged-") })

        // A cache whose first fetch never finished is also started again.
        try FileManager.default.removeItem(atPath: state.url("cache/\(cache)/tend-cache-complete"))
        #expect(try await tend(["plan", "--repo", repo.path, "--state-dir", state.path, "--root", root.path]).status == 0)
    }

    @Test("apply --plan made from a Git source applies that exact commit, even after the branch moved")
    func savedPlanFromGit() async throws {
        let repo = try await GitRepo()
        try await repo.commit(appConfig("planned\n"), "Planned")
        let state = try Scratch("tend-state")
        let root = try makeRoot()
        let planFile = state.url("plan.json")
        #expect(try await tend(["plan", "--repo", repo.path, "--state-dir", state.path, "--root", root.path, "--out", planFile]).status == 0)
        try await repo.commit(appConfig("later\n"), "Later")
        let apply = try await tend(["apply", "--plan", planFile, "--state-dir", state.path])
        #expect(apply.status == 0, "\(apply)")
        #expect(read(root.url("etc/app.conf")) == "planned\n")
    }
}
