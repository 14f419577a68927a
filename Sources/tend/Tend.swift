import ArgumentParser
import Glibc
import TendGit
import TendSpec
import TendSystemd

/// The `tend` command: GitOps for Linux hosts.
@main
struct Tend: AsyncParsableCommand {
    /// tend's version from Git (scripts/version.sh, run by the build), then the C libraries it runs
    /// with, for bug reports: `tend 0.3.0+5.g1a2b3c4` over `libgit2 1.5.1 (https, ssh)` and so on.
    ///
    /// Only `--version` shows it: finding libsystemd's version reads /proc/self/maps, a few
    /// milliseconds that every other command would pay, since the configuration holding this
    /// string is built before the arguments are parsed.
    static var version: String {
        guard CommandLine.arguments.contains("--version") else { return "tend \(tendVersion)" }
        return [
            "tend \(tendVersion)",
            GitLibrary.version,
            YAMLLibrary.version,
            SystemdLibrary.version,
        ].joined(separator: "\n")
    }

    static let configuration = CommandConfiguration(
        commandName: "tend",
        abstract: "Keep Linux hosts in the state a configuration repository declares.",
        discussion: """
            tend reads YAML manifests (tend.yaml plus the manifest folders it applies), works out \
            what differs between that declared state and this machine (a plan), and shows it or \
            applies it.

            Examples:
              tend validate examples/webhost
              tend plan examples/webhost --root /tmp/image
              tend plan --repo https://git.example.com/ops/hosts.git --ref production --token-file /etc/tend/token
              tend apply --repo git@git.example.com:ops/hosts.git --ssh-key /etc/tend/id_ed25519 \\
                --known-hosts /etc/tend/known_hosts --verify /etc/tend/allowed_signers
              tend plan examples/webhost --out plan.json --detailed-exitcode
              tend apply --plan plan.json
              tend apply examples/webhost --root /mnt/image

            Exit codes:
              0  success; for plan, the plan was made (with --detailed-exitcode: no changes)
              1  the root or a plan file could not be used
              2  plan --detailed-exitcode: changes are pending; apply --detailed-exitcode: changes were applied
              3  the configuration is invalid (every problem is printed as path:line:col)
              4  the source could not be read (folder missing, remote unreachable, ref or path not found)
              5  some resources failed (apply), or could not be planned (plan)
              6  apply --plan: the host or the configuration changed since the plan was made
              7  the commit was refused: unsigned or badly signed, or not a descendant of the last applied commit
              8  apply: another tend run held the lock of the root for longer than --lock-timeout
              9  status: something needs attention (the last run failed, a refused commit, failing fetches, ...)
              10 status: the agent is suspended, and nothing else is wrong
              64 the command line is wrong
            """,
        version: version,
        subcommands: [Validate.self, PlanCommand.self, ApplyCommand.self, AgentCommand.self, StatusCommand.self, RolloutCommand.self, SnapshotCommand.self,
                      SuspendCommand.self, ResumeCommand.self, BlameCommand.self, FactsCommand.self, SecretsCommand.self, AdoptCommand.self]
    )

    /// SIGPIPE is ignored, so that a write to a closed socket fails with EPIPE instead of killing
    /// tend: libgit2 writes to its Git sockets without MSG_NOSIGNAL, and the fetch's watchdog shuts
    /// them down when its time is up (a fetch that overran killed the agent with signal 13).
    static func main() async {
        signal(SIGPIPE, SIG_IGN)
        await main(nil)
    }
}
