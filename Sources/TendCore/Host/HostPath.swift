/// Helpers for absolute paths on the managed host (`/etc/nginx/nginx.conf`).
public enum HostPath {
    /// Why `path` cannot name a managed file, or nil when it is a clean absolute path.
    public static func problem(in path: String) -> String? {
        guard path.utf8.first == slash else { return "'\(path)' is a relative path; paths must be absolute" }
        if path == "/" { return nil }
        for component in path.utf8.dropFirst().split(separator: slash, omittingEmptySubsequences: false) {
            if component.isEmpty { return "'\(path)' has an empty component or a trailing '/'" }
            if component.elementsEqual("..".utf8) { return "'\(path)' contains '..'" }
            if component.elementsEqual(".".utf8) { return "'\(path)' contains '.'" }
        }
        if path.utf8.contains(0) { return "'\(path)' contains a NUL byte" }
        return nil
    }

    private static let slash = UInt8(ascii: "/")

    /// The folder containing `path`, or nil for `/`.
    public static func parent(of path: String) -> String? {
        guard path != "/", let index = path.utf8.lastIndex(of: slash) else { return nil }
        return index == path.utf8.startIndex ? "/" : String(path.utf8[..<index])!
    }

    /// The last component of `path`.
    public static func name(of path: String) -> String {
        guard let index = path.utf8.lastIndex(of: slash) else { return path }
        return String(path.utf8[path.utf8.index(after: index)...])!
    }

    /// `parent` and `name` joined.
    public static func join(_ parent: String, _ name: String) -> String {
        parent == "/" ? "/" + name : parent + "/" + name
    }

    /// The components of an absolute path, without the empty first one.
    static func components(_ path: String) -> [Substring] {
        path.split(separator: "/")
    }
}
