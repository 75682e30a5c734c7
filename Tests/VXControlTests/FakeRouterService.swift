// A `RouterService` without a router: tables in memory, the calls it received recorded, so the
// endpoint's routes can be tested in process — no root, no TAP, no control thread.
import Synchronization
import VXCapture
import VXConfig
import VXControlAPI
import VXRouter
import VXWire

final class FakeRouterService: RouterService {
    struct State {
        var fdb: [VNI: [MACAddress: IPAddress]] = [:]
        var flood: [VNI: [IPAddress]] = [:]
        var stations: [VNI: [LocalStation]] = [:]
        var capture: CaptureParameters?
        var calls: [String] = []
        var stopping = false
        var subscribers = 0
        var maxEntries = 4
        /// `GET /v1/cluster`'s answer; nil: cluster mode off (the protocol's default answer).
        var cluster: ClusterInfo?
        /// What `reload` answers.
        var reload: Result<ReloadResult, ServiceError> = .success(ReloadResult(changes: []))
    }

    let servedVNIs: [VNI]
    let underlayLocal: IPAddress
    let state: Mutex<State>

    init(served: [Int] = [42, 43], local: String = "198.18.0.1") {
        servedVNIs = served.map { VNI($0)! }
        underlayLocal = IPAddress(local)!
        var initial = State()
        for vni in servedVNIs { (initial.fdb[vni], initial.flood[vni]) = ([:], []) }
        state = Mutex(initial)
    }

    var calls: [String] { state.withLock { $0.calls } }

    /// Records the call; refuses it as a stopping router would when `stopping` is set.
    private func call(_ name: String) throws(ServiceError) {
        try state.withLock { state throws(ServiceError) in
            if state.stopping { throw ServiceError(.stopping, "the router is stopping") }
            state.calls.append(name)
        }
    }

    private func served(_ vni: VNI) throws(ServiceError) {
        guard servedVNIs.contains(vni) else { throw ServiceError(.notFound, ServedVNIs(servedVNIs).notServed(vni)) }
    }

    func health() async throws -> Health {
        try call("health")
        return Health(uptimeSeconds: 7)
    }

    func effectiveConfig() async throws -> EffectiveConfig {
        try call("config")
        return EffectiveConfig(
            underlay: .init(local: underlayLocal.description, port: 4789, sourcePorts: "49152-65535", mtu: 1500),
            workers: 2,
            networks: servedVNIs.map {
                .init(
                    vni: $0.rawValue, tap: "vx\($0)", mtu: 1450, address: nil, learning: true, ageing: 300, maxEntries: 4,
                    flood: [], fdb: [], allowFrom: [])
            },
            control: .init(listen: "127.0.0.1:4790", tokenRequired: true))
    }

    func stats() async throws -> Stats {
        try call("stats")
        let traffic = Traffic(counters: ["tap_rx_packets": 3], drops: ["truncated": 1])
        return Stats(
            uptimeSeconds: 7, totals: traffic,
            networks: servedVNIs.map {
                NetworkStats(
                    vni: $0.rawValue, tap: "vx\($0)", fdbEntries: 0, floodRemotes: 0, learnFdbFull: 0, learnRemotesFull: 0,
                    traffic: traffic)
            },
            unattributed: Traffic(), remotes: [], workers: [WorkerStats(worker: 0, traffic: traffic)],
            events: EventCounters(published: 0, dropped: 0, subscribers: 0),
            capture: CaptureCounters(running: 0, records: 0, ringFullTotal: 0))
    }

    func remotes() async throws -> [Remote] {
        try call("remotes")
        return [
            Remote(
                address: "198.18.0.2", lastHeardSecondsAgo: nil, rxPackets: 1, rxBytes: 2, txPackets: 3, txBytes: 4,
                drops: [:], floodVnis: [42], fdbEntries: 0)
        ]
    }

    func networks() async throws -> [NetworkSummary] {
        try call("networks")
        return servedVNIs.map {
            NetworkSummary(
                vni: $0.rawValue, tap: "vx\($0)", mtu: 1450, learning: true, ageing: 300, maxEntries: 4, fdbEntries: 0,
                flood: [])
        }
    }

    func metricsText() async throws -> String {
        try call("metrics")
        return "# HELP vxrouter_workers Worker threads.\n# TYPE vxrouter_workers gauge\nvxrouter_workers 2\n"
    }

    func stations(vni: VNI) async throws -> StationList {
        try call("stations \(vni)")
        try served(vni)
        let stations = state.withLock { $0.stations[vni] ?? [] }
        return StationList(vni: vni.rawValue, stations: stations, refused: 0)
    }

    func fdb(vni: VNI) async throws -> FDBList {
        try call("fdb \(vni)")
        try served(vni)
        let entries = state.withLock { $0.fdb[vni] ?? [:] }
        return FDBList(
            vni: vni.rawValue,
            entries: entries.sorted { $0.key < $1.key }.map {
                FDBEntry(mac: $0.key.description, remote: $0.value.description, type: .static)
            })
    }

    func setStaticEntry(vni: VNI, mac: MACAddress, remote: IPAddress, ips: [IPAddress]) async throws
        -> (entry: FDBEntry, created: Bool)
    {
        try call("set \(vni) \(mac) \(remote)" + (ips.isEmpty ? "" : " ips=\(ips.map(\.description).joined(separator: ","))"))
        try served(vni)
        let created = try state.withLock { state throws(ServiceError) -> Bool in
            let table = state.fdb[vni] ?? [:]
            if table[mac] == nil, table.count >= state.maxEntries {
                throw ServiceError(.conflict, "the FDB of vni \(vni) is full (max_entries \(state.maxEntries))")
            }
            state.fdb[vni, default: [:]][mac] = remote
            return table[mac] == nil
        }
        return (
            FDBEntry(
                mac: mac.description, remote: remote.description, type: .static,
                ips: ips.isEmpty ? nil : ips.map(\.description)),
            created
        )
    }

    func deleteEntry(vni: VNI, mac: MACAddress) async throws -> FDBEntry {
        try call("delete \(vni) \(mac)")
        try served(vni)
        guard let remote = state.withLock({ $0.fdb[vni]?.removeValue(forKey: mac) }) else {
            throw ServiceError(.notFound, "vni \(vni) has no FDB entry for \(mac)")
        }
        return FDBEntry(mac: mac.description, remote: remote.description, type: .static)
    }

    func reload() async throws -> ReloadResult {
        try call("reload")
        return try state.withLock { $0.reload }.get()
    }

    func flushLearned(vni: VNI) async throws -> Int {
        try call("flush \(vni)")
        try served(vni)
        return 0
    }

    func flood(vni: VNI) async throws -> FloodList {
        try call("flood \(vni)")
        try served(vni)
        return FloodList(vni: vni.rawValue, remotes: state.withLock { $0.flood[vni] ?? [] }.map(\.description))
    }

    func addFlood(vni: VNI, remote: IPAddress) async throws -> (list: FloodList, created: Bool) {
        try call("flood add \(vni) \(remote)")
        try served(vni)
        let (list, created) = state.withLock { state in
            let created = !(state.flood[vni] ?? []).contains(remote)
            if created { state.flood[vni, default: []].append(remote) }
            return (state.flood[vni] ?? [], created)
        }
        return (FloodList(vni: vni.rawValue, remotes: list.map(\.description)), created)
    }

    func removeFlood(vni: VNI, remote: IPAddress) async throws -> FloodList {
        try call("flood del \(vni) \(remote)")
        try served(vni)
        let list = try state.withLock { state throws(ServiceError) -> [IPAddress] in
            guard let i = state.flood[vni]?.firstIndex(of: remote) else {
                throw ServiceError(.notFound, "\(remote) is not on the flood list of vni \(vni)")
            }
            state.flood[vni]?.remove(at: i)
            return state.flood[vni] ?? []
        }
        return FloodList(vni: vni.rawValue, remotes: list.map(\.description))
    }

    var rule: CaptureRequestRule {
        CaptureRequestRule(served: ServedVNIs(servedVNIs), underlayFamily: underlayLocal.family, captureDirectory: "/tmp/x")
    }

    func captureStatus() async throws -> CaptureStatus {
        try call("capture status")
        return CaptureStatus(capture: nil, ringFullTotal: 0)
    }

    func startFileCapture(_ parameters: CaptureParameters) async throws -> CaptureStatus {
        try call("capture start")
        do {
            _ = try rule.spec(parameters, fileAllowed: true)
        } catch {
            throw ServiceError(.invalid, error.message)
        }
        guard parameters["file"] != nil else { throw ServiceError(.invalid, "missing field \"file\"") }
        state.withLock { $0.capture = parameters }
        return CaptureStatus(
            capture: CaptureInfo(
                id: 1, running: true, points: ["inner"], vni: nil, remote: nil, filter: nil, snaplen: 262, file: "x.pcap",
                records: 0, filteredOut: 0, ringFull: 0, slowClient: 0, files: ["x.pcap"], seconds: 0, ended: nil,
                error: nil),
            ringFullTotal: 0)
    }

    func startStreamCapture(_ parameters: CaptureParameters, into sink: any CaptureStreamSink) async throws {
        try call("capture stream")
        do {
            _ = try rule.spec(parameters, fileAllowed: false)
        } catch {
            throw ServiceError(.invalid, error.message)
        }
        state.withLock { $0.capture = parameters }
        // A pcap global header, then the capture ends at once.
        var header: [UInt8] = [0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0]
        header += [UInt8](repeating: 0, count: 8) + [0xFF, 0xFF, 0, 0, 1, 0, 0, 0]
        _ = sink.offer(header, patience: .zero)
        sink.finish()
    }

    func stopCapture() async throws -> CaptureStatus {
        try call("capture stop")
        throw ServiceError(.notFound, "no capture is running")
    }

    func cluster() async throws -> ClusterInfo {
        try call("cluster")
        guard let info = state.withLock({ $0.cluster }) else {
            throw ServiceError(.notFound, "cluster mode is off (no `cluster:` in the config, no --cluster)")
        }
        return info
    }

    func subscribe(_ sink: any EventSink) { state.withLock { $0.subscribers += 1 } }
    func unsubscribe(_ sink: any EventSink) { state.withLock { $0.subscribers -= 1 } }
}
