// What the router is asked to do, whether it came from a YAML file (`ConfigLoader`) or from
// command-line flags. Plain values: `validate()` says whether they make sense together, the
// `Router` turns them into a datapath. `nil` wherever the YAML says `auto`.
import VXWire

public struct RouterConfig: Sendable, Equatable {
    public var underlay: UnderlayConfig
    /// Worker threads; `nil` = "auto" (one per core).
    public var workers: Int?
    public var networks: [NetworkConfig]

    public init(underlay: UnderlayConfig, workers: Int? = nil, networks: [NetworkConfig]) {
        self.underlay = underlay
        self.workers = workers
        self.networks = networks
    }
}

public struct UnderlayConfig: Sendable, Equatable {
    /// Source address of encapsulated packets, IPv4 or IPv6; its family is the underlay's family.
    public var local: IPAddress
    /// UDP port listened on and sent to.
    public var port: UInt16
    /// Outer UDP source ports; each inner flow hashes to one port in the range (RFC 7348 §5).
    public var sourcePorts: ClosedRange<UInt16>
    /// `nil` = "auto": the MTU of the interface holding `local`.
    public var mtu: Int?

    public init(
        local: IPAddress, port: UInt16 = 4789, sourcePorts: ClosedRange<UInt16> = 49152...65535, mtu: Int? = nil
    ) {
        self.local = local
        self.port = port
        self.sourcePorts = sourcePorts
        self.mtu = mtu
    }
}

public struct NetworkConfig: Sendable, Equatable {
    public var vni: VNI
    /// The TAP device carrying the network's frames (Linux interface name).
    public var tap: String
    /// `nil` = "auto": the underlay MTU minus 50 (IPv4) or 70 (IPv6) bytes of VXLAN overhead.
    public var mtu: Int?
    /// Assigned to the TAP when given.
    public var address: IPPrefix?
    /// Learn inner source MACs from received packets.
    public var learning: Bool
    /// Seconds a learned entry lives without being refreshed; 0 = never age.
    public var ageing: Int
    /// FDB capacity, learned and static entries together.
    public var maxEntries: Int
    /// Head-end replication list: remote VTEPs that get a copy of every flooded frame.
    public var flood: [IPAddress]
    /// Static FDB entries, never aged nor moved by learning.
    public var fdb: [StaticFDBEntry]
    /// Remote VTEPs packets are accepted from; empty = any.
    public var allowFrom: [IPPrefix]

    public init(
        vni: VNI, tap: String, mtu: Int? = nil, address: IPPrefix? = nil, learning: Bool = true, ageing: Int = 300,
        maxEntries: Int = 16384, flood: [IPAddress] = [], fdb: [StaticFDBEntry] = [], allowFrom: [IPPrefix] = []
    ) {
        self.vni = vni
        self.tap = tap
        self.mtu = mtu
        self.address = address
        self.learning = learning
        self.ageing = ageing
        self.maxEntries = maxEntries
        self.flood = flood
        self.fdb = fdb
        self.allowFrom = allowFrom
    }
}

public struct StaticFDBEntry: Sendable, Equatable {
    public var mac: MACAddress
    public var remote: IPAddress

    public init(mac: MACAddress, remote: IPAddress) {
        self.mac = mac
        self.remote = remote
    }
}

/// The bounds `validate()` enforces, in one place so the loader's messages quote the same numbers.
enum ConfigLimits {
    static let port: ClosedRange<Int> = 1...65535
    static let underlayMTUv4: ClosedRange<Int> = 576...65535
    static let underlayMTUv6: ClosedRange<Int> = 1280...65535
    static let workers: ClosedRange<Int> = 1...256
    static let vni: ClosedRange<Int> = 0...Int(VNI.max)
    /// IFNAMSIZ is 16 including the terminating NUL.
    static let tapNameLength: ClosedRange<Int> = 1...15
    static let networkMTU: ClosedRange<Int> = 68...65535
    static let ageing: ClosedRange<Int> = 0...1_000_000
    static let maxEntries: ClosedRange<Int> = 1...4_194_304

    static func underlayMTU(for family: IPAddress.Family) -> ClosedRange<Int> {
        family == .v4 ? underlayMTUv4 : underlayMTUv6
    }
}
