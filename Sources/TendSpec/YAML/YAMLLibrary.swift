internal import CYAML

/// The libyaml this process runs with, for `tend --version`. The corresponding C function is
/// `yaml_get_version_string`.
public enum YAMLLibrary {
    public static var version: String {
        "libyaml \(String(cString: yaml_get_version_string()))"
    }
}
