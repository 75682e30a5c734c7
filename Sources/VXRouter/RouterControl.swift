// `RouterService` for a running `Router`: each call queues its work for the control thread
// (`ControlQueue`) and resumes when the control thread has run it. The service holds no
// reference to the router — the queue hands it to the work — so it can be given out before
// the router runs and outlive it (calls then fail with `stopping`).
import VXCapture
import VXConfig
import VXControlAPI
import VXWire

final class RouterControl: RouterService {
    let queue: ControlQueue
    let hub: EventHub
    /// Shared with the router, which changes it on reload.
    let served: ServedVNIBox
    let underlayLocal: IPAddress
    let clusterBoard: ClusterBoard

    init(queue: ControlQueue, hub: EventHub, served: ServedVNIBox, local: IPAddress, cluster: ClusterBoard) {
        self.clusterBoard = cluster
        self.queue = queue
        self.hub = hub
        self.served = served
        self.underlayLocal = local
    }

    var servedVNIs: [VNI] { served.vnis }

    func reload() async throws -> ReloadResult {
        try await onControlThread { router throws(ServiceError) in try router.reload() }
    }

    /// Runs `work` on the control thread and returns what it returned (or threw).
    func onControlThread<T: Sendable>(_ work: @escaping @Sendable (Router) throws(ServiceError) -> T)
        async throws(ServiceError) -> T
    {
        let result: Result<T, ServiceError> = await withCheckedContinuation { continuation in
            let queued = queue.submit { router in
                continuation.resume(returning: Result { () throws(ServiceError) -> T in try work(router) })
            }
            if !queued { continuation.resume(returning: .failure(.stopping)) }
        }
        return try result.get()
    }

    func health() async throws -> Health {
        try await onControlThread { Health(uptimeSeconds: $0.uptimeSeconds, failedNetworks: $0.failedNetworksBody()) }
    }
    func effectiveConfig() async throws -> EffectiveConfig { try await onControlThread { $0.effectiveConfig() } }
    func stats() async throws -> Stats { try await onControlThread { $0.statsBody() } }
    func remotes() async throws -> [Remote] { try await onControlThread { $0.remotesBody() } }
    func networks() async throws -> [NetworkSummary] {
        try await onControlThread { router in router.networks.map { router.networkSummary($0) } }
    }
    func metricsText() async throws -> String {
        let text = try await onControlThread { $0.metricsText() }
        guard let cluster = await clusterBoard.info() else { return text }
        return text + cluster.metricsText
    }

    func cluster() async throws -> ClusterInfo {
        guard let info = await clusterBoard.info() else {
            throw ServiceError(.notFound, "cluster mode is off (no `cluster:` in the config, no --cluster)")
        }
        return info
    }

    func fdb(vni: VNI) async throws -> FDBList {
        try await onControlThread { router throws(ServiceError) in router.fdbBody(try router.network(vni)) }
    }

    func stations(vni: VNI) async throws -> StationList {
        try await onControlThread { router throws(ServiceError) in router.stationsBody(try router.network(vni)) }
    }

    func setStaticEntry(vni: VNI, mac: MACAddress, remote: IPAddress, ips: [IPAddress]) async throws
        -> (entry: FDBEntry, created: Bool)
    {
        try await onControlThread { router throws(ServiceError) in
            try router.setStatic(try router.network(vni), mac: mac, remote: remote, ips: ips)
        }
    }

    func deleteEntry(vni: VNI, mac: MACAddress) async throws -> FDBEntry {
        try await onControlThread { router throws(ServiceError) in try router.deleteEntry(try router.network(vni), mac) }
    }

    func flushLearned(vni: VNI) async throws -> Int {
        try await onControlThread { router throws(ServiceError) in try router.network(vni).fdb.flushLearned() }
    }

    func flood(vni: VNI) async throws -> FloodList {
        try await onControlThread { router throws(ServiceError) in router.floodBody(try router.network(vni)) }
    }

    func addFlood(vni: VNI, remote: IPAddress) async throws -> (list: FloodList, created: Bool) {
        try await onControlThread { router throws(ServiceError) in try router.addFlood(try router.network(vni), remote) }
    }

    func removeFlood(vni: VNI, remote: IPAddress) async throws -> FloodList {
        try await onControlThread { router throws(ServiceError) in try router.removeFlood(try router.network(vni), remote) }
    }

    func captureStatus() async throws -> CaptureStatus { try await onControlThread { $0.captureStatus() } }

    func startFileCapture(_ parameters: CaptureParameters) async throws -> CaptureStatus {
        try await onControlThread { router throws(ServiceError) in try router.startFileCapture(parameters) }
    }

    func startStreamCapture(_ parameters: CaptureParameters, into sink: any CaptureStreamSink) async throws {
        try await onControlThread { router throws(ServiceError) in try router.startStreamCapture(parameters, into: sink) }
    }

    func stopCapture() async throws -> CaptureStatus {
        try await onControlThread { router throws(ServiceError) in try router.stopCaptureRequest() }
    }

    func subscribe(_ sink: any EventSink) { hub.subscribe(sink) }
    func unsubscribe(_ sink: any EventSink) { hub.unsubscribe(sink) }
}
