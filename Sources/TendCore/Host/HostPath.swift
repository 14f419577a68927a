import TendSpec

/// Helpers for absolute paths on the managed host (`/etc/nginx/nginx.conf`).
public enum HostPath {
    /// The longest name of one component (`NAME_MAX`) and of a whole path (`PATH_MAX` less its NUL).
    public static let maximumNameLength = 255
    public static let maximumPathLength = 4095

    /// Why `path` cannot name a managed file, or nil when it is a clean absolute path: absolute,
    /// no empty, `.` or `..` component, no control character or NUL, within the kernel's lengths.
    public static func problem(in path: String) -> String? {
        if let problem = structuralProblem(in: path) { return problem }
        if Printable.hasControlCharacters(path) { return "\(Printable.quoted(path)) contains a control character" }
        if path.utf8.count > maximumPathLength { return "the path is longer than \(maximumPathLength) bytes" }
        for component in path.utf8.split(separator: slash) where component.count > maximumNameLength {
            return "\(Printable.quoted(path)) has a component longer than \(maximumNameLength) bytes"
        }
        return nil
    }

    /// Why `path` cannot be walked from the root one component at a time without leaving it, or
    /// nil. Weaker than `problem(in:)`: names found on the host (which purge removes) may hold any
    /// byte but `/` and NUL.
    public static func structuralProblem(in path: String) -> String? {
        guard path.utf8.first == slash else { return "\(Printable.quoted(path)) is a relative path; paths must be absolute" }
        if path == "/" { return nil }
        for component in path.utf8.dropFirst().split(separator: slash, omittingEmptySubsequences: false) {
            if component.isEmpty { return "\(Printable.quoted(path)) has an empty component or a trailing '/'" }
            if component.elementsEqual("..".utf8) { return "\(Printable.quoted(path)) contains '..'" }
            if component.elementsEqual(".".utf8) { return "\(Printable.quoted(path)) contains '.'" }
        }
        if path.utf8.contains(0) { return "\(Printable.quoted(path)) contains a NUL byte" }
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
