import Testing
import TendProviders

/// systemd's rules for unit names, which decide what may become a path under --root.
@Suite("unit names")
struct UnitNameTests {
    @Test("names systemd accepts", arguments: ["nginx.service", "getty@tty1.service", "wpa_supplicant@.service",
                                                "sys-subsystem-net-devices-eth0.device", "a:b\\x2d-c_d.e.timer", "-.mount"])
    func valid(_ name: String) {
        #expect(UnitName.problem(in: name) == nil)
    }

    @Test("names systemd refuses, each with why", arguments: [
        ("../../victim.service", "'/' is not allowed"),
        ("nginx", "it has no type suffix"),
        ("nginx.conf", "'.conf' is not a unit type"),
        (".service", "nothing comes before the type"),
        ("a@b@c.service", "more than one '@'"),
        ("a b.service", "' ' is not allowed"),
        ("ev\u{0}il.service", "the byte '\\0' is not allowed"),
        (String(repeating: "a", count: 250) + ".service", "longer than 255 bytes"),
    ])
    func invalid(_ name: String, _ reason: String) throws {
        let problem = try #require(UnitName.problem(in: name))
        #expect(problem.contains(reason), "\(problem)")
    }

    @Test("[Install] names are split on any whitespace, with their positions, and specifiers are expanded from the unit's name")
    func installSection() throws {
        let text = Array("[Unit]\nDescription=x\n[Install]\nWantedBy=multi-user.target\tsys-subsystem-net-devices-%i.device\nAlias=%p-alias.service\n".utf8)
        let entries = UnitName.installEntries(of: text)
        #expect(entries.map(\.name) == ["multi-user.target", "sys-subsystem-net-devices-%i.device", "%p-alias.service"])
        #expect(entries.map(\.line) == [4, 4, 5])
        #expect(entries.map(\.column) == [10, 28, 7])
        #expect(try UnitName.expandingSpecifiers("sys-subsystem-net-devices-%i.device", unit: "wpa_supplicant@wlan0.service") == "sys-subsystem-net-devices-wlan0.device")
        #expect(try UnitName.expandingSpecifiers("%p-alias.service", unit: "getty@tty1.service") == "getty-alias.service")
        #expect(UnitName.installProblems(of: text, unit: "wpa_supplicant@wlan0.service").isEmpty)
        let home = Array("[Install]\nWantedBy=%h.target\n".utf8)
        #expect(UnitName.installProblems(of: home, unit: "a.service").first?.message.contains("the specifier '%h'") == true)
    }
}
