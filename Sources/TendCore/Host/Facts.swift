public import TendSpec
internal import Glibc

/// What tend knows about the host it plans for (`HostFacts`), gathered once a run: its name,
/// labels and operating system, and what a fleet sizes and places by (memory, CPUs,
/// architecture, addresses, domain, virtualization). Nothing here runs a program or asks the
/// network: files under /proc and /sys, two sockets that send nothing, and uname.
public enum Facts {
    /// The facts of the host under `host`'s root. The hostname is the machine's own unless given.
    /// What belongs to the installed system (os-release, machine ID) is read under the root;
    /// what belongs to the machine (memory, CPUs, architecture, addresses, virtualization) is the
    /// machine's tend runs on, which for an image root is the machine that builds it.
    public static func gather(host: HostReader, hostname: String? = nil, labels: [String: String] = [:]) -> HostFacts {
        var facts = HostFacts(hostname: hostname ?? systemHostname(), labels: labels)
        let release = (try? host.read("/etc/os-release")) ?? (try? host.read("/usr/lib/os-release")) ?? []
        for line in String(decoding: release, as: UTF8.self).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals]
            var value = String(line[line.index(after: equals)...])
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            switch key {
            case "ID": facts.os = value
            case "ID_LIKE": facts.osLike = value.split(separator: " ").map(String.init)
            case "VERSION_ID": facts.osVersion = value
            case "VERSION_CODENAME": facts.codename = value
            default: break
            }
        }
        facts.architecture = architecture()
        facts.memoryMB = memoryMB()
        let cpus = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        facts.cpus = cpus > 0 ? cpus : nil
        facts.ipv4 = sourceAddress(family: AF_INET)
        facts.ipv6 = sourceAddress(family: AF_INET6)
        let machine = host.machineID
        facts.machineID = machine.isEmpty ? nil : machine
        facts.domain = domain(of: facts.hostname, host: host)
        facts.virtualization = virtualization()
        return facts
    }

    private static func systemHostname() -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let ok = buffer.withUnsafeMutableBytes { gethostname($0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) } == 0
        return ok ? String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self) : "localhost"
    }

    /// Debian's name for the kernel's machine (`x86_64` is `amd64`).
    static func architecture() -> String? {
        var names = utsname()
        guard uname(&names) == 0 else { return nil }
        let machine = withUnsafeBytes(of: names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let debian = ["x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "armv6l": "armel", "i686": "i386", "i586": "i386",
                      "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64", "mips64": "mips64el", "loongarch64": "loong64"]
        return debian[machine] ?? machine
    }

    /// MemTotal of /proc/meminfo, in MiB.
    static func memoryMB() -> Int? {
        guard let text = readSmall("/proc/meminfo") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemTotal:") {
            let number = line.dropFirst("MemTotal:".count).split(separator: " ").first.flatMap { Int($0) }
            return number.map { $0 / 1024 }
        }
        return nil
    }

    /// The local address the kernel would send from to a documentation address
    /// (192.0.2.1, 2001:db8::1): the default route's source. A UDP socket's connect sends
    /// nothing. Nil without such a route.
    static func sourceAddress(family: Int32) -> String? {
        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(family == AF_INET ? "192.0.2.1" : "2001:db8::1", "9", &hints, &found) == 0, let target = found?.pointee else { return nil }
        defer { freeaddrinfo(found) }
        let socket = Glibc.socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { return nil }
        defer { close(socket) }
        guard connect(socket, target.ai_addr, target.ai_addrlen) == 0 else { return nil }
        var local = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var name = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let named = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                getsockname(socket, address, &length) == 0 && getnameinfo(address, length, &name, socklen_t(name.count), nil, 0, NI_NUMERICHOST) == 0
            }
        }
        guard named else { return nil }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The host name's domain, else the root's resolv.conf `domain` or first `search`.
    static func domain(of hostname: String, host: HostReader) -> String? {
        if let dot = hostname.firstIndex(of: "."), hostname.index(after: dot) < hostname.endIndex {
            return String(hostname[hostname.index(after: dot)...])
        }
        let resolv = String(decoding: (try? host.read("/etc/resolv.conf")) ?? [], as: UTF8.self)
        var search: String?
        for line in resolv.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2 else { continue }
            if words[0] == "domain" { return String(words[1]) }
            if words[0] == "search", search == nil { search = String(words[1]) }
        }
        return search
    }

    /// What the machine runs in, by systemd-detect-virt's names: a container first (what
    /// systemd, Docker and Podman leave in /run and /), then a hypervisor from the firmware's
    /// vendor (DMI) or the CPU's hypervisor flag; `none` on bare metal.
    static func virtualization() -> String {
        if let container = readSmall("/run/systemd/container")?.trimmingWhitespace(), !container.isEmpty { return container }
        if access("/.dockerenv", F_OK) == 0 { return "docker" }
        if access("/run/.containerenv", F_OK) == 0 { return "podman" }
        let vendor = [readSmall("/sys/class/dmi/id/sys_vendor"), readSmall("/sys/class/dmi/id/product_name"),
                      readSmall("/sys/class/dmi/id/board_vendor")].compactMap { $0 }.joined(separator: " ")
        let vendors: [(String, String)] = [("KVM", "kvm"), ("QEMU", "qemu"), ("VMware", "vmware"), ("Microsoft Corporation", "microsoft"),
                                           ("innotek GmbH", "oracle"), ("VirtualBox", "oracle"), ("Xen", "xen"), ("Amazon EC2", "amazon"),
                                           ("Google", "google"), ("Parallels", "parallels"), ("BHYVE", "bhyve"), ("Bochs", "bochs")]
        if let found = vendors.first(where: { vendor.contains($0.0) }) { return found.1 }
        if let type = readSmall("/sys/hypervisor/type")?.trimmingWhitespace(), type == "xen" { return "xen" }
        if let cpuinfo = readSmall("/proc/cpuinfo", limit: 1 << 20), cpuinfo.split(separator: "\n").contains(where: { $0.hasPrefix("flags") && $0.split(separator: " ").contains("hypervisor") }) {
            return "vm"
        }
        return "none"
    }

    /// A small file of the machine (not of the root), or nil.
    private static func readSmall(_ path: String, limit: Int = 64 << 10) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes += chunk.prefix(count)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
