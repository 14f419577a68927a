internal import CSystemd
import Glibc
import SystemPackage
import TendSpec

/// The libsystemd this process runs with, for `tend --version`. libsystemd has no function that
/// says its version, so this names the file the dynamic linker mapped it from (/proc/self/maps,
/// whose paths have their links resolved): `libsystemd.so.0.35.0` is systemd 252's.
public enum SystemdLibrary {
    public static var version: String {
        _ = sd_booted  // linked in, so that it is mapped
        let prefix = "libsystemd.so."
        guard let descriptor = try? FileDescriptor.open("/proc/self/maps", .readOnly),
              let maps = try? descriptor.closeAfter({ try descriptor.readToEnd(sizeHint: 16384) }),
              let line = String(decoding: maps, as: UTF8.self).split(separator: "\n").first(where: { $0.contains("/\(prefix)") }),
              let file = line.split(separator: "/").last
        else { return "libsystemd (version unknown)" }
        return "libsystemd \(file.dropFirst(prefix.count))"
    }
}
