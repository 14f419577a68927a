import Testing
@testable import TendGit

@Suite("Git source helpers")
struct GitSourceUnitTests {
    @Test("transports and ports are read from the URL forms tend accepts")
    func transports() {
        #expect(GitSource.transport(of: "https://git.example.com/ops.git") == "https")
        #expect(GitSource.transport(of: "git://127.0.0.1:9418/x") == "git")
        #expect(GitSource.transport(of: "git@git.example.com:ops/hosts.git") == "ssh")
        #expect(GitSource.transport(of: "/srv/git/hosts") == "local path")
        #expect(GitSource.port(of: "ssh://git@host:2222/repo") == 2222)
        #expect(GitSource.port(of: "ssh://host/repo") == 22)
        #expect(GitSource.port(of: "git@host:repo") == 22)
        #expect(GitSource.port(of: "https://host/repo") == nil)
    }

    @Test("the origin a token may go to: scheme, host and port, with default ports, without user names, paths or case")
    func origins() {
        #expect(GitSource.origin(of: "https://git.example.com/ops/hosts.git") == "https://git.example.com:443")
        #expect(GitSource.origin(of: "https://tend@Git.Example.com:8443/ops/hosts.git/info/refs?service=git-upload-pack") == "https://git.example.com:8443")
        #expect(GitSource.origin(of: "http://127.0.0.1/x") == "http://127.0.0.1:80")
        #expect(GitSource.origin(of: "https://[::1]:9000/x") == "https://[::1]:9000")
        #expect(GitSource.origin(of: "https://git.example.com.evil.net/x") != GitSource.origin(of: "https://git.example.com/x"))
        #expect(GitSource.origin(of: "ssh://git@example.com/x") == nil)
        #expect(GitSource.origin(of: "git@example.com:x") == nil)
    }

    @Test("object ids are exactly 40 lowercase hex digits")
    func objectIDs() {
        let hex = "0123456789abcdef0123456789abcdef01234567"
        #expect(GitObjectID(hex: hex)?.description == hex)
        #expect(GitObjectID(hex: hex)?.short == "0123456")
        #expect(GitObjectID(hex: "main") == nil)
        #expect(GitObjectID(hex: String(hex.dropLast())) == nil)
        #expect(GitObjectID(hex: hex.uppercased()) == nil)
    }

    @Test("known_hosts lines give host patterns and raw keys, hashed names and @revoked keys; @cert-authority lines are skipped")
    func knownHosts() {
        let hosts = KnownHost.parse("""
            # comment
            git.example.com,10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0=
            [127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0= test
            |1|c2FsdA==|aGFzaA== ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0=
            @revoked bad.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0=
            @cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0=
            """)
        #expect(hosts.count == 4)
        #expect(hosts[0].matches("10.0.0.1"))
        #expect(hosts[1].matches("[127.0.0.1]:2222"))
        #expect(!hosts[1].matches("127.0.0.1"))
        #expect(hosts[2].hashed != nil && !hosts[2].matches("git.example.com"), "a hashed name matches only the name it hashes")
        #expect(hosts[3].revoked && hosts[3].matches("bad.example.com"))
    }
}

@Suite("known_hosts patterns")
struct KnownHostPatternTests {
    @Test("* and ? are wildcards and brackets are literal, as in OpenSSH's match_pattern")
    func wildcards() {
        func matches(_ pattern: String, _ name: String) -> Bool { KnownHost.wildcard(Array(pattern.utf8), matches: Array(name.utf8)) }
        #expect(matches("[127.0.0.1]:2222", "[127.0.0.1]:2222"))
        #expect(!matches("[127.0.0.1]:2222", "1"))
        #expect(matches("*.example.com", "git.example.com"))
        #expect(!matches("*.example.com", "example.com"))
        #expect(matches("git?.example.com", "git1.example.com"))
        #expect(matches("*", ""))
        #expect(matches("a*b*c", "aXXbYYc"))
        #expect(!matches("a*b*c", "aXXbYY"))
    }
}
