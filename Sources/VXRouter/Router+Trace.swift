// `vxrouter trace` / `POST /v1/trace` on the router: the datapath's `PacketTracer` run on the
// control thread against the live tables (the thread that alone writes them, so nothing moves
// under the trace), its answer turned into the API's typed response. Nothing is sent, learned
// or counted.
import VXControlAPI
import VXDatapath
import VXPlatform
import VXWire

extension RouterControl {
    func trace(_ input: TraceInput) async throws -> TraceResponse {
        try await onControlThread { router throws(ServiceError) in try router.trace(input) }
    }
}

extension Router {
    func trace(_ input: TraceInput) throws(ServiceError) -> TraceResponse {
        var wirePort: (@Sendable (UInt16) -> UInt16)? = nil
        if let pool = self.pool {
            wirePort = { @Sendable port in pool.sourcePort(forHashedPort: port) }
        }
        let tracer = PacketTracer(
            networks: networks, remotes: remotes, port: config.underlay.port,
            sourcePorts: SourcePortRange(config.underlay.sourcePorts), taps: settings.taps, wirePort: wirePort)
        let now = monotonicSeconds()
        let result: TraceResult
        let from: String
        switch input {
        case .tap(let vni, let frame):
            result = tracer.traceFromTap(network: try network(vni).index, frame: frame, now: now)
            from = "tap"
        case .tunnel(let remote, let payload):
            result = tracer.traceFromTunnel(payload: payload, source: remote, now: now)
            from = "tunnel"
        }
        return Self.traceResponse(result, from: from, taps: settings.taps, ips: { slot, mac in
            networks.first { $0.index == slot }?.neighbours.ips(of: mac) ?? []
        })
    }

    /// The API's form of a trace result.
    static func traceResponse(
        _ result: TraceResult, from: String, taps: [String], ips: (Int, MACAddress) -> [IPAddress] = { _, _ in [] }
    ) -> TraceResponse {
        let fdbEntry = result.fdb.map { hit in
            let addresses = result.network.map { ips($0, hit.mac) } ?? []
            return FDBEntry(
                mac: hit.mac.description, remote: hit.remote.description, type: hit.isStatic ? .static : .learned,
                ageSeconds: hit.ageSeconds, ips: addresses.isEmpty ? nil : addresses.map(\.description))
        }
        let learn: String? = result.learn.map {
            switch $0 {
            case .off: "off"
            case .confirmed: "confirmed"
            case .staticHere: "static"
            case .new: "new"
            case .moved: "moved"
            }
        }
        let checksum: String? = result.checksum.map {
            switch $0 {
            case .notApplicable: "not_applicable"
            case .unfinished: "unfinished"
            case .finishedValid: "valid"
            case .finishedInvalid: "invalid"
            }
        }
        return TraceResponse(
            from: from, vni: result.vni?.rawValue, tap: result.network.flatMap { $0 < taps.count ? taps[$0] : nil },
            action: TraceResponse.Action(rawValue: result.action.rawValue) ?? .drop, dropReason: result.dropReason?.name,
            steps: result.steps.map { TraceStep(stage: $0.stage, result: $0.result) },
            remotes: result.remotes.map(\.description), outerSourcePort: result.outerSourcePort, fdbEntry: fdbEntry,
            answer: result.answer?.description, icmpTooBig: result.icmpTooBig, learn: learn, checksum: checksum)
    }
}
