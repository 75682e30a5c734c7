// A harness that wires networks, FDBs, flood lists, counters and the learn ring into one worker
// the way the router does (WorkerWiring), over the recording fakes of VXTestSupport.
import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

/// One router's datapath with one worker, driven by hand.
final class Harness {
    struct NetworkSpec {
        var vni: UInt32
        var mtu = 1500
        var learning = true
        var maxEntries = 64
        var allowFrom: [String] = []
        var floodCapacity = 16
        var arpSuppression = true
        var pmtuSignal = true
        var knownOnly = false
    }

    static let port: UInt16 = 4789
    static let sourcePorts: ClosedRange<UInt16> = 49152...65535

    let networks: [Network]
    let remotes = RemoteTable(capacity: 1024)
    let counters: WorkerCounters
    let remoteCounters: RemoteCounters
    let ring: SPSCRing<LearnEvent>
    let taps: [FakeTap]
    let link = FakeLink()
    let worker: Worker<FakeTap, FakeLink>

    init(
        _ specs: [NetworkSpec] = [NetworkSpec(vni: 42)], underlayMaxFrame: Int = 9000, ringCapacity: Int = 256,
        batchSize: Int = 8, workerMaxFrame: Int? = nil, offloads: Bool = false, captureTap: CaptureTap? = nil,
        outerChecksumVouches: Bool = false
    ) {
        networks = specs.enumerated().map { index, spec in
            Network(
                index: index, vni: VNI(unchecked: spec.vni), mtu: spec.mtu, underlayMaxFrame: underlayMaxFrame,
                learning: spec.learning, maxEntries: spec.maxEntries,
                allowFrom: spec.allowFrom.map { IPPrefix($0)! }, floodCapacity: spec.floodCapacity,
                arpSuppression: spec.arpSuppression, pmtuSignal: spec.pmtuSignal, knownOnly: spec.knownOnly)
        }
        let wiring = WorkerWiring(
            networks: networks, remotes: remotes, port: Self.port, sourcePorts: Self.sourcePorts,
            ringCapacity: ringCapacity,
            capture: captureTap.map { WorkerCapture(tap: $0, worker: 0, localPort: Self.port) })
        counters = wiring.counters
        remoteCounters = wiring.remoteCounters
        ring = wiring.learnRing
        taps = networks.map { _ in FakeTap(virtioHeaders: offloads) }
        worker = wiring.worker(
            devices: taps, link: link, batchSize: batchSize,
            maxFrame: workerMaxFrame ?? WorkerWiring.maxFrame(of: networks), offloads: offloads,
            outerChecksumVouches: outerChecksumVouches)
    }

    func remote(_ text: String) -> RemoteIndex { remotes.intern(IPAddress(text)!)! }

    func setFlood(_ network: Int, _ addresses: [String]) {
        #expect(networks[network].flood.set(addresses.map(remote)))
    }

    func setStatic(_ network: Int, _ mac: MACAddress, behind address: String) {
        #expect(networks[network].fdb.setStatic(mac, remote: remote(address)) == .added)
    }

    /// Queues frames on a network's TAP and services it until everything is read.
    func transmit(_ frames: [[UInt8]], on network: Int = 0) {
        taps[network].pending += frames
        while worker.serviceDevice(network) > 0 {}
    }

    /// Queues datagrams on the underlay and services it until everything is received.
    func receive(_ datagrams: [(payload: [UInt8], source: Endpoint)], now: UInt32 = 1) {
        link.pending += datagrams
        while worker.serviceUnderlay(now: now) > 0 {}
    }

    func receive(_ payload: [UInt8], from source: String, now: UInt32 = 1) {
        receive([(payload, Endpoint(address: IPAddress(source)!, port: 54321))], now: now)
    }

    /// The events taken off the ring and not yet asked for.
    private var drained: [LearnEvent] = []

    /// The tunnel-side learn events the worker queued for the control thread so far.
    func learnEvents() -> [LearnEvent] { take(.tunnel) }

    /// The sightings of stations behind the TAPs the worker queued so far.
    func stationEvents() -> [LearnEvent] { take(.tap) }

    private func take(_ side: LearnEvent.Side) -> [LearnEvent] {
        while let event = ring.pop() { drained.append(event) }
        let taken = drained.filter { $0.side == side }
        drained.removeAll { $0.side == side }
        return taken
    }

    var snapshot: CounterSnapshot { counters.snapshot() }
    var unattributed: Int { counters.unattributedRow }

    /// Every non-zero drop counter as "row:name=value", for compact assertions.
    var drops: [String] {
        let s = snapshot
        return (0..<s.rows).flatMap { row in
            DropReason.allCases.compactMap { reason in
                s[row, drop: reason] == 0
                    ? nil : "\(row == unattributed ? "-" : String(row)):\(reason.name)=\(s[row, drop: reason])"
            }
        }
    }
}
