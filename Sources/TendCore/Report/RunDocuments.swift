public import TendSpec

/// `tend validate --json`: whether the repository is valid, and every problem at its position.
/// docs/json-output.md describes it.
public struct ValidationDocument: Encodable, Sendable {
    public var formatVersion = 1
    public var tendVersion: String
    public var sourceDescription: String
    public var valid: Bool
    /// The resources this host's catalog holds; 0 when the repository is invalid.
    public var resourceCount: Int
    public var diagnostics: [DiagnosticEntry]
    /// Why validation could not run or failed, when it did.
    public var error: RunError?

    public init(tendVersion: String, sourceDescription: String, resourceCount: Int, diagnostics: [Diagnostic], error: RunError?) {
        self.tendVersion = tendVersion
        self.sourceDescription = sourceDescription
        self.valid = error == nil && diagnostics.isEmpty
        self.resourceCount = resourceCount
        self.diagnostics = diagnostics.map(DiagnosticEntry.init)
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", tendVersion = "tend_version", sourceDescription = "source_description"
        case valid, resourceCount = "resource_count", diagnostics, error
    }
}

/// `tend validate --all-hosts --json`: each host of the hosts file, whether its catalog is valid,
/// and every problem in it.
public struct HostsValidationDocument: Encodable, Sendable {
    public struct Host: Encodable, Sendable {
        public var hostname: String
        public var labels: [String: String]
        public var valid: Bool
        public var resourceCount: Int
        public var diagnostics: [DiagnosticEntry]

        public init(hostname: String, labels: [String: String], resourceCount: Int, diagnostics: [Diagnostic]) {
            self.hostname = hostname
            self.labels = labels
            self.valid = diagnostics.isEmpty
            self.resourceCount = resourceCount
            self.diagnostics = diagnostics.map(DiagnosticEntry.init)
        }

        enum CodingKeys: String, CodingKey {
            case hostname, labels, valid, resourceCount = "resource_count", diagnostics
        }
    }

    public var formatVersion = 1
    public var tendVersion: String
    public var sourceDescription: String
    public var valid: Bool
    public var hosts: [Host]
    /// Problems of the hosts file itself.
    public var diagnostics: [DiagnosticEntry]
    public var error: RunError?

    public init(tendVersion: String, sourceDescription: String, hosts: [Host], diagnostics: [Diagnostic], error: RunError?) {
        self.tendVersion = tendVersion
        self.sourceDescription = sourceDescription
        self.valid = error == nil && hosts.allSatisfy(\.valid)
        self.hosts = hosts
        self.diagnostics = diagnostics.map(DiagnosticEntry.init)
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", tendVersion = "tend_version", sourceDescription = "source_description"
        case valid, hosts, diagnostics, error
    }
}

/// One problem of a repository: `file`, `line` and `column` are left out for a problem of the
/// repository as a whole.
public struct DiagnosticEntry: Encodable, Sendable {
    public var file: String?
    public var line: Int?
    public var column: Int?
    public var message: String

    init(_ diagnostic: Diagnostic) {
        file = diagnostic.location?.file
        line = diagnostic.location?.line
        column = diagnostic.location?.column
        message = diagnostic.message
    }
}

/// Why a run stopped: a code of docs/json-output.md's list and a sentence.
public struct RunError: Encodable, Sendable {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

/// `tend apply --json`: what the apply did to each resource of the plan, with the plan's typed
/// changes, so that a program reads results without parsing text.
public struct ApplyDocument: Encodable, Sendable {
    public var formatVersion = 1
    public var tendVersion: String
    public var source: SnapshotOrigin?
    public var sourceDescription: String
    public var root: String
    /// `converged` (nothing to do), `changed` (every step done), `failed` (a step failed or was
    /// skipped) or `error` (the run stopped: see `error`).
    public var result: String
    public var resourceCount: Int
    public var resources: [ResourceResult]
    public var diagnostics: [DiagnosticEntry]
    public var error: RunError?

    /// One step: `result` is `done`, `failed`, `skipped` or `not_run` (the apply stopped before it).
    public struct ResourceResult: Encodable, Sendable {
        public var id: ResourceID
        public var result: String
        public var reason: String?
        /// What a failed or skipped step is (`StepFailure.Code`, `StepSkip.code`).
        public var code: String?
        /// When trying it again can help (`StepRetry`).
        public var retry: StepRetry?
        public var change: Change?
        public var dependsOn: [ResourceID]

        enum CodingKeys: String, CodingKey {
            case id, result, reason, code, retry, change, dependsOn = "depends_on"
        }
    }

    public init(tendVersion: String, sourceDescription: String, root: String, resourceCount: Int, plan: Plan?,
                report: ApplyReport?, diagnostics: [Diagnostic], error: RunError?) {
        self.tendVersion = tendVersion
        self.source = plan?.source
        self.sourceDescription = sourceDescription
        self.root = plan?.root ?? root
        self.resourceCount = resourceCount
        self.diagnostics = diagnostics.map(DiagnosticEntry.init)
        self.error = error
        var outcomes: [ResourceID: StepResult.Outcome] = [:]
        for result in report?.results ?? [] { outcomes[result.id] = result.outcome }
        resources = (plan?.steps ?? []).map { step in
            let outcome = outcomes[step.id]
            return ResourceResult(id: step.id, result: outcome?.label ?? "not_run", reason: outcome?.reason ?? step.error,
                                  code: outcome?.code, retry: outcome?.retry, change: step.change, dependsOn: step.dependsOn)
        }
        if error != nil {
            result = "error"
        } else if report?.succeeded == false {
            result = "failed"
        } else {
            result = resources.isEmpty ? "converged" : "changed"
        }
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", tendVersion = "tend_version", source, sourceDescription = "source_description"
        case root, result, resourceCount = "resource_count", resources, diagnostics, error
    }
}
