// What the cluster says, as data. The key layout under `/vxrouter/v1/<overlay>/`, every key
// written only by its owner and attached to the owner's lease:
//
//   hosts/<id>                   HostRecord: underlay address, port, incarnation (random per start)
//   vni/<vni>/flood/<id>         FloodRecord: membership of the VNI (EVPN type-3, the flood list)
//   vni/<vni>/mac/<mac>/<id>     MACRecord: a MAC behind <id>, the IPs seen behind it, its
//                                mobility sequence (EVPN type-2)
//
// A record counts only while its owner's host record exists and names the same incarnation: a
// restarted host's new incarnation replaces its previous one's records at once, without waiting
// for the old lease to expire.
import Foundation
import VXWire

public struct HostRecord: Codable, Sendable, Equatable {
    public var address: String
    public var port: UInt16
    public var incarnation: String

    public init(address: String, port: UInt16, incarnation: String) {
        self.address = address
        self.port = port
        self.incarnation = incarnation
    }
}

public struct FloodRecord: Codable, Sendable, Equatable {
    public var incarnation: String

    public init(incarnation: String) { self.incarnation = incarnation }
}

public struct MACRecord: Codable, Sendable, Equatable {
    public var ips: [String]
    public var sequence: UInt64
    public var incarnation: String

    public init(ips: [String], sequence: UInt64, incarnation: String) {
        self.ips = ips
        self.sequence = sequence
        self.incarnation = incarnation
    }
}

/// The keys of one overlay.
public struct ClusterKeys: Sendable, Equatable {
    /// `/vxrouter/v1/<overlay>/`
    public let prefix: String

    public init(overlay: String) { prefix = "/vxrouter/v1/\(overlay)/" }

    public func host(_ id: String) -> String { prefix + "hosts/\(id)" }
    public func flood(_ vni: VNI, _ id: String) -> String { prefix + "vni/\(vni.rawValue)/flood/\(id)" }
    public func mac(_ vni: VNI, _ mac: MACAddress, _ id: String) -> String {
        prefix + "vni/\(vni.rawValue)/mac/\(mac)/\(id)"
    }

    /// One parsed key.
    public enum Key: Sendable, Hashable {
        case host(id: String)
        case flood(vni: VNI, id: String)
        case mac(vni: VNI, mac: MACAddress, id: String)
    }

    /// `key` parsed, or nil for a key of another layout (ignored, never an error: a newer
    /// version may add kinds).
    public func parse(_ key: String) -> Key? {
        guard key.hasPrefix(prefix) else { return nil }
        let parts = key.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch parts.count {
        case 2 where parts[0] == "hosts" && !parts[1].isEmpty:
            return .host(id: parts[1])
        case 4 where parts[0] == "vni" && parts[2] == "flood" && !parts[3].isEmpty:
            guard let number = UInt32(parts[1]), let vni = VNI(number) else { return nil }
            return .flood(vni: vni, id: parts[3])
        case 5 where parts[0] == "vni" && parts[2] == "mac" && !parts[4].isEmpty:
            guard let number = UInt32(parts[1]), let vni = VNI(number), let mac = MACAddress(parts[3]) else { return nil }
            return .mac(vni: vni, mac: mac, id: parts[4])
        default:
            return nil
        }
    }
}

/// The overlay's records as stored (what a listing plus the watch events since say), before any
/// judgement about which count. Records that do not decode are counted and left out.
public struct ClusterSnapshot: Sendable, Equatable {
    public var hosts: [String: HostRecord] = [:]
    public var flood: [VNI: [String: FloodRecord]] = [:]
    public var macs: [VNI: [MACAddress: [String: MACRecord]]] = [:]
    public var undecodable = 0

    public init() {}

    /// Applies one stored key: `value` nil is a delete.
    public mutating func apply(_ key: ClusterKeys.Key, value: [UInt8]?) {
        let decoder = JSONDecoder()
        func decode<T: Decodable>(_ type: T.Type) -> T? {
            guard let value else { return nil }
            guard let record = try? decoder.decode(T.self, from: Data(value)) else {
                undecodable += 1
                return nil
            }
            return record
        }
        switch key {
        case .host(let id):
            hosts[id] = decode(HostRecord.self)
        case .flood(let vni, let id):
            flood[vni, default: [:]][id] = decode(FloodRecord.self)
            if flood[vni]?.isEmpty == true { flood[vni] = nil }
        case .mac(let vni, let mac, let id):
            macs[vni, default: [:]][mac, default: [:]][id] = decode(MACRecord.self)
            if macs[vni]?[mac]?.isEmpty == true { macs[vni]?[mac] = nil }
            if macs[vni]?.isEmpty == true { macs[vni] = nil }
        }
    }

    /// The live host `id` whose records carry `incarnation`, with its underlay address.
    func liveAddress(_ id: String, incarnation: String) -> IPAddress? {
        guard let host = hosts[id], host.incarnation == incarnation else { return nil }
        return IPAddress(host.address)
    }
}

/// A remote MAC entry: the MAC lives behind `remote` (host `owner`), with `ips` behind it.
public struct RemoteMACEntry: Sendable, Hashable {
    public var remote: IPAddress
    public var ips: [IPAddress]
    public var owner: String?
    public var sequence: UInt64

    public init(remote: IPAddress, ips: [IPAddress], owner: String? = nil, sequence: UInt64 = 0) {
        self.remote = remote
        self.ips = ips
        self.owner = owner
        self.sequence = sequence
    }

    /// Same forwarding and suppression effect (owner and sequence are bookkeeping).
    func programsLike(_ other: RemoteMACEntry) -> Bool { remote == other.remote && ips == other.ips }
}

/// Flood members and remote MAC entries, per VNI: what should be programmed (desired) or what is
/// (programmed). Only the cluster's own share: config and API entries are not in it.
public struct ClusterTablesState: Sendable, Equatable {
    public var flood: [VNI: Set<IPAddress>] = [:]
    public var entries: [VNI: [MACAddress: RemoteMACEntry]] = [:]

    public init(flood: [VNI: Set<IPAddress>] = [:], entries: [VNI: [MACAddress: RemoteMACEntry]] = [:]) {
        self.flood = flood
        self.entries = entries
    }

    public var entryCount: Int { entries.values.reduce(0) { $0 + $1.count } }
}

/// One change to the tables.
public enum ClusterAction: Sendable, Hashable {
    case addFlood(vni: VNI, remote: IPAddress)
    case removeFlood(vni: VNI, remote: IPAddress)
    /// Add, or replace whatever entry the MAC has (never an exclusive add).
    case setEntry(vni: VNI, mac: MACAddress, entry: RemoteMACEntry)
    case removeEntry(vni: VNI, mac: MACAddress)
}

/// Something worth an event line.
public enum ClusterEvent: Sendable, Equatable {
    case joined(host: String, address: String)
    case left(host: String)
    case restarted(host: String)
    case moved(vni: VNI, mac: MACAddress, from: String, to: String)
    /// Two or more live hosts claim the MAC with the same sequence; `kept` is programmed.
    case conflict(vni: VNI, mac: MACAddress, claimants: [String], kept: String)
    /// A member publishes an underlay port other than ours: it is left out of the tables (the
    /// datapath sends every remote to our one port, so it could not be reached).
    case portMismatch(host: String, address: String, port: UInt16, expected: UInt16)
}

/// The overlay as etcd has it, for `vxrouter cluster status`: members, and per VNI its flood
/// members, MAC count and contested MACs (claims from live incarnations only).
public struct ClusterOverview: Sendable, Codable, Equatable {
    public struct Member: Sendable, Codable, Equatable {
        public var id: String
        public var address: String
        public var port: UInt16
        public var incarnation: String
    }
    public struct Network: Sendable, Codable, Equatable {
        public var vni: UInt32
        public var members: [String]
        public var macs: Int
        public var conflicts: [String]
    }
    public var overlay: String
    public var revision: Int64
    public var members: [Member]
    public var networks: [Network]

    public init(overlay: String, listing: EtcdRange) {
        let keys = ClusterKeys(overlay: overlay)
        var snapshot = ClusterSnapshot()
        for keyValue in listing.keyValues {
            if let key = keys.parse(keyValue.key) { snapshot.apply(key, value: keyValue.value) }
        }
        self.overlay = overlay
        revision = listing.revision
        members = snapshot.hosts.sorted { $0.key < $1.key }.map {
            Member(id: $0.key, address: $0.value.address, port: $0.value.port, incarnation: $0.value.incarnation)
        }
        let vnis = Set(snapshot.flood.keys).union(snapshot.macs.keys).sorted()
        let (state, conflicts) = ClusterReconciler.desired(
            snapshot, selfID: "", servedVNIs: Set(vnis), current: ClusterTablesState())
        networks = vnis.map { vni in
            let live = (snapshot.flood[vni] ?? [:]).filter { snapshot.liveAddress($0.key, incarnation: $0.value.incarnation) != nil }
            return Network(
                vni: vni.rawValue, members: live.keys.sorted(), macs: state.entries[vni]?.count ?? 0,
                conflicts: conflicts.filter { $0.0.vni == vni }.map { "\($0.0.mac) claimed by \($0.claimants.joined(separator: ", "))" }.sorted())
        }
    }

    /// Plain text for a terminal.
    public var text: String {
        var lines = ["overlay \(overlay) at revision \(revision): \(members.count) members"]
        for member in members {
            lines.append("  \(member.id)  \(member.address):\(member.port)  incarnation \(member.incarnation)")
        }
        for network in networks {
            lines.append("vni \(network.vni): \(network.members.count) members, \(network.macs) MACs, \(network.conflicts.count) conflicts")
            for conflict in network.conflicts { lines.append("  conflict: \(conflict)") }
        }
        return lines.joined(separator: "\n")
    }
}
