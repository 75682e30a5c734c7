// What the router is asked to do, whether it came from a YAML file (`ConfigLoader`) or from
// command-line flags. Plain values: `validate()` says whether they make sense together, the
// `Router` turns them into a datapath. `nil` wherever the YAML says `auto`.
import VXCapture
import VXWire

public struct RouterConfig: Sendable, Equatable {
    public var underlay: UnderlayConfig
    /// Worker threads; `nil` = "auto" (one per core).
    public var workers: Int?
    public var networks: [NetworkConfig]
    /// The stats and control endpoint.
    public var control: ControlConfig
    /// TAP offloads (virtio headers, checksum/TSO/USO) with UDP GSO sends and UDP GRO receives;
    /// false runs the plain datapath (one frame per read, raw-socket sends).
    public var offloads: Bool
    /// Microseconds a worker keeps polling after it handled traffic before it sleeps (`busy_poll`);
    /// 0 = never spin. Idle workers always sleep.
    public var busyPoll: Int = 0
    public static let busyPollRange: ClosedRange<Int> = 0...10_000
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

/// Where the control endpoint listens and who may change things through it.
public struct ControlConfig: Sendable, Equatable {
    public var enabled: Bool
    public var listen: ControlAddress
    /// A file holding the bearer token that changes (POST, DELETE) must present. Required when
    /// `listen` is beyond loopback.
    public var tokenFile: String?

    public init(enabled: Bool = true, listen: ControlAddress = .default, tokenFile: String? = nil) {
        self.enabled = enabled
        self.listen = listen
        self.tokenFile = tokenFile
    }
}

/// `127.0.0.1:4790`, `[::1]:4790`, or `unix:/run/vxrouter.sock`.
public enum ControlAddress: Sendable, Equatable, CustomStringConvertible {
    case tcp(IPAddress, port: UInt16)
    case unix(path: String)

    public static let defaultPort: UInt16 = 4790
    public static let `default` = ControlAddress.tcp(IPAddress(v4: 0x7F00_0001), port: defaultPort)

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
