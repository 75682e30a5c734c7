// One network in steady state, wired as the router wires a worker (WorkerWiring): what the
// allocation tests and vxbench forward through.
import VXDatapath
import VXWire

/// One network (VNI 42, MTU 1450 over a 1500-byte underlay) with the remote MAC and the local one
/// learned behind the peer VTEP 198.18.0.2 and a flood list of two VTEPs, as steady traffic
/// leaves it. Holds what the forwarder points at without owning.
public final class SteadyDatapath {
    public static let peer = Endpoint(address: IPAddress(v4: 0xC612_0002), port: 4789)  // 198.18.0.2
    public static let localMAC = MACAddress(0x02, 0, 0, 0, 0, 0x01)
    public static let remoteMAC = MACAddress(0x02, 0, 0, 0, 0, 0x02)
    public static let vni: UInt32 = 42

    public let network: Network
    public let remotes = RemoteTable(capacity: 16)
    public let wiring: WorkerWiring
    public var forwarder: Forwarder { wiring.forwarder }

    public init(maxEntries: Int = 1024, ringCapacity: Int = 1024) {
        network = Network(
            index: 0, vni: VNI(unchecked: Self.vni), mtu: 1450, underlayMaxFrame: 1500 - 36, learning: true,
            maxEntries: maxEntries, allowFrom: [])
        let peerIndex = remotes.intern(Self.peer.address)!
        let second = remotes.intern(IPAddress(v4: 0xC612_0003))!  // 198.18.0.3
        network.flood.set([peerIndex, second])
        _ = network.fdb.learn(Self.remoteMAC, behind: peerIndex, now: 1)
        _ = network.fdb.learn(Self.localMAC, behind: peerIndex, now: 1)
        wiring = WorkerWiring(
            networks: [network], remotes: remotes, port: 4789, sourcePorts: 49152...65535, ringCapacity: ringCapacity)
    }

    /// A worker over `device` and `link`, as the router makes one.
    public func worker<Device: FrameDevice, Link: Underlay>(
        device: Device, link: Link, batchSize: Int = 64, offloads: Bool = false, outerChecksumVouches: Bool = false
    ) -> Worker<Device, Link> {
        wiring.worker(
            devices: [device], link: link, batchSize: batchSize, maxFrame: network.maxFrame, offloads: offloads,
            outerChecksumVouches: outerChecksumVouches)
    }
}
