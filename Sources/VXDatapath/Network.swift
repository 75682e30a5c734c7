import VXWire

/// One overlay network (VNI) as the datapath sees it: its FDB, its flood list and the limits the
/// workers enforce. Immutable settings: a reload that changes one builds a new `Network` in the same
/// slot (NetworkGeneration.swift); the old one lives until no worker can still be reading it.
public final class Network: @unchecked Sendable {
    public let index: Int
    public let vni: VNI
    /// The TAP's MTU (inner L3 MTU).
    public let mtu: Int
    /// Largest inner Ethernet frame carried either way: the MTU plus an Ethernet header and one
    /// VLAN tag, and no more than what fits the underlay unfragmented.
    public let maxFrame: Int
    public let learning: Bool
    public let fdb: ForwardingTable
    public let flood: FloodList
    /// MAC/IP entries: what ARP/ND suppression answers from.
    public let neighbours: NeighbourTable
    /// Answer ARP requests / neighbour solicitations from `neighbours` (`arp_suppression`).
    public let arpSuppression: Bool
    /// Answer frames too big for the underlay with ICMP "too big" (`pmtu_signal`).
    public let pmtuSignal: Bool
    public let allowFrom: [IPPrefix]
    private let allowStorage: UnsafeMutableBufferPointer<IPPrefix>
    /// `allow_from: known`: accept only the VTEPs in `known` (the control thread keeps it equal to
    /// the flood list plus the static entries' remotes).
    public let knownOnly: Bool
    public let known: KnownVTEPs

    public init(
        index: Int, vni: VNI, mtu: Int, underlayMaxFrame: Int, learning: Bool, maxEntries: Int,
        allowFrom: [IPPrefix], floodCapacity: Int = FloodList.defaultCapacity, arpSuppression: Bool = true, pmtuSignal: Bool = true,
        maxNeighbours: Int? = nil, knownOnly: Bool = false
    ) {
        self.index = index
        self.vni = vni
        self.mtu = mtu
        maxFrame = min(mtu + EthernetFrame.headerSize + 4, underlayMaxFrame)
        self.learning = learning
        fdb = ForwardingTable(maxEntries: maxEntries)
        flood = FloodList(capacity: floodCapacity)
        neighbours = NeighbourTable(maxEntries: maxNeighbours ?? maxEntries)
        self.arpSuppression = arpSuppression
        self.pmtuSignal = pmtuSignal
        self.allowFrom = allowFrom
        self.knownOnly = knownOnly
        known = KnownVTEPs()
        allowStorage = .allocate(capacity: max(allowFrom.count, 1))
        _ = allowStorage.initialize(from: allowFrom)
    }

    deinit { allowStorage.deallocate() }

    /// What a worker needs of this network, as plain values and pointers (no reference counting on
    /// the per-packet path).
    public var path: NetworkPath {
        NetworkPath(
            vni: vni, index: index, maxFrame: maxFrame, learning: learning, fdb: fdb.view, flood: flood.view,
            allowFrom: UnsafeBufferPointer(rebasing: allowStorage[0..<allowFrom.count]), neighbours: neighbours.view,
            arpSuppression: arpSuppression, pmtuSignal: pmtuSignal, mtu: mtu, knownOnly: knownOnly, known: known.view)
    }
}

public struct NetworkPath: BitwiseCopyable {
    public var vni: VNI
    public var index: Int
    public var maxFrame: Int
    public var learning: Bool
    public var fdb: ForwardingTable.View
    public var flood: FloodList.View
    /// Empty: any VTEP may send into this network.
    public var allowFrom: UnsafeBufferPointer<IPPrefix>
    public var neighbours: NeighbourTable.View
    public var arpSuppression: Bool
    public var pmtuSignal: Bool
    /// The TAP's MTU (inner L3 MTU).
    public var mtu: Int
    /// `allow_from: known`: only the VTEPs in `known`.
    public var knownOnly: Bool
    public var known: KnownVTEPs.View

    /// `allow_from`'s answer (`allowVerdict` says by which rule).
    @inline(__always)
    func allows(_ address: IPAddress, remotes: RemoteTable.View) -> Bool {
        allowVerdict(address, remotes: remotes).isAllowed
    }
}

/// VNI → network slot, built by each worker for each generation of the network set (never per
/// packet): open addressing over a power-of-two array.
struct VNITable {
    let keys: UnsafeMutablePointer<UInt32>
    let values: UnsafeMutablePointer<Int32>
    let mask: Int
    static let empty = UInt32.max

    init(_ entries: [(vni: VNI, slot: Int)]) {
        var size = 8
        while size < entries.count * 2 { size <<= 1 }
        mask = size - 1
        keys = .allocate(capacity: size)
        keys.initialize(repeating: Self.empty, count: size)
        values = .allocate(capacity: size)
        values.initialize(repeating: -1, count: size)
        for (vni, slot) in entries {
            var i = Self.home(vni.rawValue, mask)
            while keys[i] != Self.empty { i = (i + 1) & mask }
            keys[i] = vni.rawValue
            values[i] = Int32(slot)
        }
    }

    func deallocate() {
        keys.deallocate()
        values.deallocate()
    }

    @inline(__always)
    static func home(_ vni: UInt32, _ mask: Int) -> Int { Int(truncatingIfNeeded: FlowHash.mix(UInt64(vni))) & mask }

    @inline(__always)
    func lookup(_ vni: VNI) -> Int? {
        var i = Self.home(vni.rawValue, mask)
        while true {
            let key = keys[i]
            if key == vni.rawValue { return Int(values[i]) }
            if key == Self.empty { return nil }
            i = (i + 1) & mask
        }
    }
}
