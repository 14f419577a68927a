extension HostSnapshot {
    /// A service manager that answers from the snapshot: unit states as they were recorded, and
    /// a unit it was never asked about as systemd answers for a name it does not know.
    final class ReplayedServices: ServiceManager {
        let units: [String: UnitStatus]
        /// The units asked about that the snapshot does not hold.
        private(set) var missing: Set<String> = []

        init(_ units: [String: UnitStatus]) {
            self.units = units
        }

        func status(of names: [String]) throws(HostError) -> [String: UnitStatus] {
            var found: [String: UnitStatus] = [:]
            for name in names {
                if let unit = units[name] {
                    found[name] = unit
                } else {
                    missing.insert(name)
                    found[name] = UnitStatus(loadState: "not-found", activeState: "inactive", subState: "dead", unitFileState: "")
                }
            }
            return found
        }

        func daemonReload() throws(HostError) { throw Self.readOnly }
        func run(_ job: UnitJob, unit: String, timeout: Duration) throws(HostError) -> UnitJobResult { throw Self.readOnly }
        func queue(_ job: UnitJob, unit: String) throws(HostError) { throw Self.readOnly }
        func change(_ change: UnitFileChange, unit: String) throws(HostError) { throw Self.readOnly }
        func recentLog(of unit: String, count: Int) -> [String] { [] }
        func run(_ command: TransientCommand) throws(HostError) -> UnitJobResult { throw Self.readOnly }

        static let readOnly = HostError(path: "/", message: "a snapshot is planned against, never changed")
    }

    /// A service manager that passes reads to the real one and records what it answered.
    final class RecordingServices: ServiceManager {
        let manager: any ServiceManager
        let recorder: Recorder

        init(_ manager: any ServiceManager, recorder: Recorder) {
            self.manager = manager
            self.recorder = recorder
            recorder.update { $0.services = true }
        }

        func status(of names: [String]) throws(HostError) -> [String: UnitStatus] {
            let found = try manager.status(of: names)
            recorder.update { $0.units.merge(found) { _, new in new } }
            return found
        }

        func daemonReload() throws(HostError) { throw ReplayedServices.readOnly }
        func run(_ job: UnitJob, unit: String, timeout: Duration) throws(HostError) -> UnitJobResult { throw ReplayedServices.readOnly }
        func queue(_ job: UnitJob, unit: String) throws(HostError) { throw ReplayedServices.readOnly }
        func change(_ change: UnitFileChange, unit: String) throws(HostError) { throw ReplayedServices.readOnly }
        func recentLog(of unit: String, count: Int) -> [String] { manager.recentLog(of: unit, count: count) }
        func run(_ command: TransientCommand) throws(HostError) -> UnitJobResult { throw ReplayedServices.readOnly }
    }
}
