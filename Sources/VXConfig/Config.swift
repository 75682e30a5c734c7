// What the router is asked to do, whether it came from a YAML file (`ConfigLoader`) or from
// command-line flags. Plain values: `validate()` says whether they make sense together, the
// `Router` turns them into a datapath. `nil` wherever the YAML says `auto`.
import VXCapture
import VXWire

public struct RouterConfig: Sendable, Equatable {
    public var underlay: UnderlayConfig
    /// Worker threads; `nil` = "auto" (one per CPU in the process affinity mask).
    public var workers: Int?
    public var networks: [NetworkConfig]
    /// The stats and control endpoint.
    public var control: ControlConfig
    /// The read-only Prometheus listener (`metrics:`); off unless `metrics.listen` is set.
    public var metrics = MetricsConfig()
    /// TAP offloads (virtio headers, checksum/TSO/USO) with UDP GSO sends and UDP GRO receives;
    /// false runs the plain datapath (one frame per read, raw-socket sends).
    public var offloads: Bool
    /// Microseconds a worker keeps polling after it handled traffic before it sleeps (`busy_poll`);
    /// 0 = never spin. Idle workers always sleep.
    public var busyPoll: Int = 0
    public static let busyPollRange: ClosedRange<Int> = 0...10_000
    /// Which worker a packet goes to (`steering`).
    public var steering: Steering = .auto
    /// A capture started with the router (the `capture:` section with a `file`); nil = none.
    public var capture: CaptureSpec?
    /// Where `POST /v1/capture` writes its files (`capture.directory`).
    public var captureDirectory: String = RouterConfig.defaultCaptureDirectory
    public static let defaultCaptureDirectory = "/var/lib/vxrouter/captures"
    /// Cluster mode (the `cluster:` section): nil = a standalone router.
    public var cluster: ClusterConfig? = nil

    public init(
        underlay: UnderlayConfig, workers: Int? = nil, networks: [NetworkConfig], control: ControlConfig = ControlConfig(),
        offloads: Bool = true, capture: CaptureSpec? = nil
    ) {
        self.underlay = underlay
        self.workers = workers
        self.networks = networks
        self.control = control
        self.offloads = offloads
        self.capture = capture
    }
}

/// Which worker a packet goes to (README "CPU steering").
public enum Steering: String, Sendable, CaseIterable {
    /// `cpu` where each worker has a CPU of its own and the kernel takes the BPF programs, else
    /// `flow` (and the start-up log says why).
    case auto
    /// The worker pinned to the CPU the packet is on: a BPF program picks the TAP queue for frames
    /// the host sends and the receive socket for datagrams, so no hand-off crosses CPUs. A busy flow
    /// keeps its worker until it pauses, so it is never reordered.
    case cpu
    /// The kernel's pick by flow: the TAP's automatic flow steering and SO_REUSEPORT's hash.
    case flow
}

/// Where the control endpoint listens and who may change things through it.
///
/// Changes (POST, DELETE) and live captures are what the kernel asks CAP_NET_ADMIN / CAP_NET_RAW
/// for, so they are never open to any local user: on the Unix socket (the default) the caller's
/// credentials must be root or a member of `group`; on TCP (any address — loopback is no security
/// boundary, every local user can connect to it) the bearer token of `tokenFile` is required.
public struct ControlConfig: Sendable, Equatable {
    public var enabled: Bool
    public var listen: ControlAddress
    /// A file holding the bearer token that changes (POST, DELETE) and captures must present.
    /// Required for a TCP `listen`.
    public var tokenFile: String?
    /// The group owning the Unix socket (mode 0660) whose members may change things, like root.
    public var group: String

    public static let defaultGroup = "root"

    public init(
        enabled: Bool = true, listen: ControlAddress = .default, tokenFile: String? = nil,
        group: String = ControlConfig.defaultGroup
    ) {
        self.enabled = enabled
        self.listen = listen
        self.tokenFile = tokenFile
        self.group = group
    }
}

/// `metrics: { listen: 127.0.0.1:9542 }`: GET /metrics only, for anyone who can reach it; it
/// grants nothing. Off by default: it names remote VTEPs (topology), a port is the operator's
/// choice (and the firewall's), and two routers on one host would fight over a fixed port.
public struct MetricsConfig: Sendable, Equatable {
    /// A TCP address; nil = no metrics listener (GET /metrics on the control socket still answers).
    public var listen: ControlAddress?
    public static let conventionalPort: UInt16 = 9542

    public init(listen: ControlAddress? = nil) { self.listen = listen }
}

/// `unix:/run/vxrouter/control.sock` (the default), `127.0.0.1:4790`, or `[::1]:4790`.
public enum ControlAddress: Sendable, Equatable, CustomStringConvertible {
    case tcp(IPAddress, port: UInt16)
    case unix(path: String)

    public static let defaultPort: UInt16 = 4790
    /// The Unix socket: file permissions and the caller's credentials decide who may change things.
    public static let defaultSocketPath = "/run/vxrouter/control.sock"
    public static let `default` = ControlAddress.unix(path: defaultSocketPath)

    /// Parses `ADDRESS:PORT`, `[IPV6]:PORT`, `unix:PATH`; a bare address takes port 4790.
    public init?(_ text: String) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            // sun_path holds 108 bytes including the NUL.
            guard !path.isEmpty, path.utf8.count < 108, !path.utf8.contains(0) else { return nil }
            self = .unix(path: path)
            return
        }
        var host = Substring(text)
        var port = Self.defaultPort
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.first == ":", let p = UInt16(rest.dropFirst()), p > 0 else { return nil }
                port = p
            }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            host = text[..<colon]
            guard let p = UInt16(text[text.index(after: colon)...]), p > 0 else { return nil }
            port = p
        }
        guard let address = IPAddress(host) else { return nil }
        self = .tcp(address, port: port)
    }

    public var isUnix: Bool { if case .unix = self { true } else { false } }

    /// Loopback addresses and Unix sockets reach only this host.
    public var isLocalOnly: Bool {
        switch self {
        case .unix: true
        case .tcp(let address, _):
            address.isV4 ? address.v4Value >> 24 == 127 : (address.high == 0 && address.low == 1)
        }
    }

    public var description: String {
        switch self {
        case .unix(let path): "unix:\(path)"
        case .tcp(let address, let port): address.isV4 ? "\(address):\(port)" : "[\(address)]:\(port)"
        }
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
    /// Outer UDP checksums sent (`udp_checksum`; `OuterChecksum.sends`).
    public var udpChecksum: OuterChecksum.Choice = .auto
    /// Whether received outer checksums vouch for the inner frames (`trust_udp_checksum`;
    /// `OuterChecksum.vouchesForInner`).
    public var trustUDPChecksum: OuterChecksum.Choice = .auto

    public init(
        local: IPAddress, port: UInt16 = 4789, sourcePorts: ClosedRange<UInt16> = 49152...65535, mtu: Int? = nil,
        udpChecksum: OuterChecksum.Choice = .auto, trustUDPChecksum: OuterChecksum.Choice = .auto
    ) {
        self.local = local
        self.port = port
        self.sourcePorts = sourcePorts
        self.mtu = mtu
        self.udpChecksum = udpChecksum
        self.trustUDPChecksum = trustUDPChecksum
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
    /// Remote VTEPs packets are accepted from; empty = any (unless `acceptsOnlyKnownVTEPs`).
    public var allowFrom: [IPPrefix]
    /// `allow_from: known` (true) or `any`/`[]` (false); nil = a prefix list or the default rule below.
    public var allowKnown: Bool? = nil

    /// Whether only known VTEPs (the flood list and the static entries' remotes) may send into
    /// this network. Said explicitly with `allow_from`; by default only where it cannot break
    /// learning: a network that does not learn and names its peers (a flood list or static
    /// entries) can only ever answer those peers, so a packet from anyone else has no business
    /// there. A learning network may hear from a VTEP it does not list (an asymmetric flood
    /// list), so it stays open unless told otherwise.
    public var acceptsOnlyKnownVTEPs: Bool {
        allowKnown ?? (allowFrom.isEmpty && !learning && (!flood.isEmpty || !fdb.isEmpty))
    }
    /// The TAP's MAC (`mac`); nil = derived from the machine ID and the VNI (`StableMAC`).
    public var mac: MACAddress? = nil
    /// Answer ARP requests / neighbour solicitations from the TAP for addresses a MAC/IP entry
    /// knows, instead of flooding them (`arp_suppression`).
    public var arpSuppression: Bool = true
    /// Answer frames too big for the underlay with ICMP "too big" to their sender (`pmtu_signal`).
    public var pmtuSignal: Bool = true

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
    /// The inner addresses this MAC holds (MAC/IP entries): ARP/ND suppression answers for them.
    public var ips: [IPAddress]

    public init(mac: MACAddress, remote: IPAddress, ips: [IPAddress] = []) {
        self.mac = mac
        self.remote = remote
        self.ips = ips
    }
}

/// The bounds `validate()` enforces, in one place so the loader's messages (and the command
/// line's) quote the same numbers.
package enum ConfigLimits {
    package static let port: ClosedRange<Int> = 1...65535
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
