/// Helpers for absolute paths on the managed host (`/etc/nginx/nginx.conf`).
public enum HostPath {
    /// Why `path` cannot name a managed file, or nil when it is a clean absolute path.
    public static func problem(in path: String) -> String? {
        guard path.hasPrefix("/") else { return "'\(path)' is a relative path; paths must be absolute" }
        let components = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        if path == "/" { return nil }
        if components.contains("..") { return "'\(path)' contains '..'" }
        if components.contains(".") { return "'\(path)' contains '.'" }
        if components.contains("") { return "'\(path)' has an empty component or a trailing '/'" }
        if path.utf8.contains(0) { return "'\(path)' contains a NUL byte" }
        return nil
    }

    /// The folder containing `path`, or nil for `/`.
    public static func parent(of path: String) -> String? {
        guard path != "/", let slash = path.lastIndex(of: "/") else { return nil }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The last component of `path`.
    public static func name(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
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
