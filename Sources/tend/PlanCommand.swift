import ArgumentParser
import FoundationEssentials
import TendAgent
import TendCore
import TendSpec
import SystemPackage
import Glibc

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what applying the configuration would change, without changing anything.",
        discussion: """
            Each change is shown with its symbol (+ create, ~ update, - delete, ± replace), the \
            attributes that change (old → new) and a unified diff of text content. Contents of \
            resources marked sensitive are never shown.

            Examples:
              tend plan examples/webhost --root /tmp/scratch
              tend plan examples/webhost --json
              tend plan examples/webhost --out plan.json && tend apply --plan plan.json
              tend plan examples/webhost --detailed-exitcode   # 0: no changes, 2: changes

            With --snapshot, the plan is for the host a snapshot (`tend snapshot`) was taken of, \
            from what it recorded, on any machine; with --snapshots, for every snapshot of a \
            folder, summarised: the fleet-wide preview of a commit before it is merged.
              tend plan --snapshots snapshots/ --repo https://git.example.com/ops/hosts.git --ref my-branch
            """
    )

    @OptionGroup var source: SourceOptions
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Print the plan as versioned JSON (docs/plan-format.md) instead of text.")
    var json = false

    @Option(help: "Also write the plan as JSON to this file, for `tend apply --plan`.", completion: .file(extensions: ["json"]))
    var out: String?

    @Flag(help: "Exit 2 when there are changes and 0 when there are none.")
    var detailedExitcode = false

    @Option(help: ArgumentHelp("Plan for the host this snapshot (from tend snapshot) was taken of, not for this machine.", valueName: "file"), completion: .file(extensions: ["json"]))
    var snapshot: String?

    @Option(help: ArgumentHelp("Plan for the host of every snapshot in this folder, and summarise (with --json, per host).", valueName: "dir"), completion: .directory)
    var snapshots: String?

    func validate() throws {
        guard snapshot != nil || snapshots != nil else { return }
        if snapshot != nil, snapshots != nil { throw ValidationError("give --snapshot or --snapshots, not both") }
        if root.givenRoot != nil { throw ValidationError("--root is for this machine; a snapshot is of its host's /") }
        if source.hostname != nil || !source.labels.isEmpty {
            throw ValidationError("--hostname and --label describe this machine; a snapshot brings its host's own")
        }
        // A saved plan is applied where it is given: one made for another host must not be.
        if out != nil { throw ValidationError("--out saves a plan to apply on this machine; a preview from a snapshot is for another host") }
    }

    func run() async throws {
        if let snapshots { try await preview(snapshots) }
        // One plan, then the exit (a fleet preview plans hundreds of hosts, and frees each).
        OneShot.start()
        var reconciler = try Console.reconciler(source, root: root.root, logger: output.logger())
        var taken: HostSnapshotFile?
        if let snapshot {
            do {
                taken = try HostSnapshotFile.read(snapshot)
            } catch {
                Console.error("tend: " + Printable.escaped(error.description))
                throw TendExit.unusableHost
            }
            reconciler.identity.machineID = taken?.machineID
        }
        let mode: Reconciler.Mode = taken.map { .preview($0) } ?? .plan
        let result = await reconciler.run(mode, events: Console.events(root: root.root, lockTimeout: source.lockTimeout))
        Console.progress.clear()
        if let failure = result.failure { try Console.exit(with: failure) }
        guard let plan = result.plan else { throw TendExit.unusableHost }
        if let taken, !json {
            Console.out("For \(Printable.escaped(taken.facts.hostname)), from its snapshot of \(taken.taken.formatted(Date.ISO8601FormatStyle())) (\(snapshot ?? ""))\n")
        }
        if !result.assumedAbsent.isEmpty {
            Console.error("tend: the snapshot recorded nothing of \(FleetPreview.list(result.assumedAbsent.map { Printable.escaped($0) })); taken as absent")
        }
        if json {
            Console.out(String(decoding: try PlanFile.encode(plan), as: UTF8.self) + "\n")
        } else {
            Console.out(plan.rendered(style: output.style))
        }
        if let out {
            try PlanFile.write(plan, to: out)
            if !json { Console.out("Saved the plan to \(out); apply exactly it with: tend apply --plan \(out)\n") }
        }
        let code = !plan.errors.isEmpty ? TendExit.failures : detailedExitcode && plan.hasChanges ? TendExit.changesPending : ExitCode.success
        // Everything is printed: end here rather than free the catalog and the plan one object at
        // a time (about a tenth of a no-op plan of 10,000 files, bench/RESULTS.md).
        Glibc.exit(code.rawValue)
    }
}

extension PlanCommand {
    /// `--snapshots DIR`: each host's plan, summarised; exits as a plan does, over the fleet.
    func preview(_ folder: String) async throws -> Never {
        let reconciler = try Console.reconciler(source, root: "/", logger: output.logger())
        let preview: FleetPreview
        do {
            preview = try await FleetPreview.of(folder, reconciler: reconciler, events: Console.events(root: "/", lockTimeout: source.lockTimeout))
        } catch {
            throw ValidationError(Printable.escaped(error.description))
        }
        Console.progress.clear()
        Console.out(json ? try preview.json() : preview.summary(style: output.style))
        let code = preview.hosts.contains { $0.result == .fails } ? TendExit.failures
            : detailedExitcode && preview.hosts.contains { $0.result == .changes } ? TendExit.changesPending : ExitCode.success
        Glibc.exit(code.rawValue)
    }
}

/// Plan files: versioned JSON.
enum PlanFile {
    static func encode(_ plan: Plan) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(plan)
    }

    /// Writes the plan atomically at mode 0600 (a plan names every managed path and its
    /// attributes), also over an existing file of another mode.
    static func write(_ plan: Plan, to path: String) throws {
        do {
            try AtomicFile.write(Array(try encode(plan)), toPath: path, mode: 0o600)
        } catch let error as AtomicFileError {
            Console.error("tend: cannot write the plan to \(path): \(error)")
            throw TendExit.unusableHost
        } catch {
            Console.error("tend: cannot encode the plan: \(error)")
            throw TendExit.unusableHost
        }
    }

    /// `steps[3].change` for a decoding path.
    private static func describe(_ path: [any CodingKey]) -> String {
        path.isEmpty ? "the top" : String(path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop(while: { $0 == "." }))
    }

    static func read(_ path: String) throws -> Plan {
        let data: Data
        do {
            let fd = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec, .nonBlocking])
            defer { try? fd.close() }
            let info = try fd.stat()
            guard info.type == .regular else {
                Console.error("tend: cannot read the plan file \(path): not a regular file")
                throw TendExit.unusableHost
            }
            data = Data(try fd.readToEnd(sizeHint: Int(info.size), limit: 256 << 20))
        } catch let error as Errno {
            Console.error("tend: cannot read the plan file \(path): \(error)")
            throw TendExit.unusableHost
        }
        struct Version: Decodable { var format_version: Int }
        guard let version = try? JSONDecoder().decode(Version.self, from: data) else {
            Console.error("tend: \(path) is not a tend plan file (no format_version)")
            throw TendExit.unusableHost
        }
        guard version.format_version == Plan.currentFormatVersion else {
            Console.error("tend: \(path) has plan format \(version.format_version); this tend reads format \(Plan.currentFormatVersion)")
            throw TendExit.unusableHost
        }
        do {
            return try JSONDecoder().decode(Plan.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            Console.error("tend: \(path) is not a valid plan file: '\(key.stringValue)' is missing at \(Self.describe(context.codingPath))")
            throw TendExit.unusableHost
        } catch {
            Console.error("tend: \(path) is not a valid plan file: a value has the wrong type or the JSON is malformed")
            throw TendExit.unusableHost
        }
    }
}
