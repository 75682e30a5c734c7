// The control endpoint's contract as types: every request and response body the server writes
// and the CLI reads, so a renamed field fails to compile (or fails `OpenAPIContractTests`, which
// holds these types against api/openapi.yaml). Field names are the JSON's, snake_case on the wire.
//
// Addresses, MACs and filters travel as strings: the server parses them with the rules in
// VXConfig (one rule, one place) and answers 400 naming the field; clients show them as given.

public let vxrouterVersion = "0.5.0"

// MARK: - Errors

/// `{"error": {"status": 400, "message": "..."}}`, the body of every 4xx/5xx.
public struct ErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var status: Int
        public var message: String
    }
    public var error: Detail

    public init(status: Int, message: String) { error = Detail(status: status, message: message) }
}

// MARK: - Reads

public struct Health: Codable, Sendable, Equatable {
    /// A network that forwards nothing until the router restarts (its TAP was deleted under it).
    public struct FailedNetwork: Codable, Sendable, Equatable {
        public var vni: UInt32
        public var tap: String
        public var reason: String
        public init(vni: UInt32, tap: String, reason: String) {
            self.vni = vni
            self.tap = tap
            self.reason = reason
        }
    }
    /// "ok", or "degraded" while a network has failed.
    public var status = "ok"
    public var version: String
    public var uptimeSeconds: UInt64
    /// Absent when every network is well.
    public var failedNetworks: [FailedNetwork]?
    enum CodingKeys: String, CodingKey {
        case status, version, uptimeSeconds = "uptime_seconds", failedNetworks = "failed_networks"
    }

    public init(version: String = vxrouterVersion, uptimeSeconds: UInt64, failedNetworks: [FailedNetwork] = []) {
        self.version = version
        self.uptimeSeconds = uptimeSeconds
        if !failedNetworks.isEmpty {
            status = "degraded"
            self.failedNetworks = failedNetworks
        }
    }
}

public struct VersionInfo: Codable, Sendable, Equatable {
    public var name = "vxrouter"
    public var version: String

    public init(version: String = vxrouterVersion) { self.version = version }
}

/// Packets and bytes in and out and drops by reason (`Traffic` in the spec). The counter names
/// come from the datapath's lists (`TrafficCounter`, `DropReason`), so they are keys here, not fields.
public struct Traffic: Codable, Sendable, Equatable {
    public var counters: [String: UInt64]
    public var drops: [String: UInt64]
    public var dropsTotal: UInt64 { drops.values.reduce(0, &+) }

    public init(counters: [String: UInt64] = [:], drops: [String: UInt64] = [:]) {
        self.counters = counters
        self.drops = drops
    }

    public subscript(counter: String) -> UInt64 { counters[counter] ?? 0 }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (name, value) in counters { try container.encode(value, forKey: Key(name)) }
        try container.encode(drops, forKey: Key("drops"))
        try container.encode(dropsTotal, forKey: Key("drops_total"))
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        counters = [:]
        drops = try container.decode([String: UInt64].self, forKey: Key("drops"))
        _ = try container.decode(UInt64.self, forKey: Key("drops_total"))
        for key in container.allKeys where key.stringValue != "drops" && key.stringValue != "drops_total" {
            counters[key.stringValue] = try container.decode(UInt64.self, forKey: key)
        }
    }
}

public struct NetworkStats: Codable, Sendable, Equatable {
    public var vni: UInt32
    public var tap: String
    public var fdbEntries: Int
    public var floodRemotes: Int
    public var learnFdbFull: UInt64
    public var learnRemotesFull: UInt64
    public var traffic: Traffic
    /// Frames the kernel dropped at the TAP before the router could read them (its queue was
    /// full); absent when unreadable. Not in `traffic`: the router never saw them.
    public var kernelTapDrops: UInt64?
    enum CodingKeys: String, CodingKey {
        case vni, tap, traffic
        case fdbEntries = "fdb_entries", floodRemotes = "flood_remotes", learnFdbFull = "learn_fdb_full"
        case learnRemotesFull = "learn_remotes_full", kernelTapDrops = "kernel_tap_drops"
    }

    public init(
        vni: UInt32, tap: String, fdbEntries: Int, floodRemotes: Int, learnFdbFull: UInt64, learnRemotesFull: UInt64,
        traffic: Traffic, kernelTapDrops: UInt64? = nil
    ) {
        self.kernelTapDrops = kernelTapDrops
        self.vni = vni
        self.tap = tap
        self.fdbEntries = fdbEntries
        self.floodRemotes = floodRemotes
        self.learnFdbFull = learnFdbFull
        self.learnRemotesFull = learnRemotesFull
        self.traffic = traffic
    }
}

public struct WorkerStats: Codable, Sendable, Equatable {
    public var worker: Int
    public var traffic: Traffic
    /// Datagrams the kernel dropped at the worker's receive socket before it could read them
    /// (receive buffer full, bad UDP checksum); absent when unreadable.
    public var kernelSocketDrops: UInt64?
    enum CodingKeys: String, CodingKey { case worker, traffic, kernelSocketDrops = "kernel_socket_drops" }

    public init(worker: Int, traffic: Traffic, kernelSocketDrops: UInt64? = nil) {
        self.worker = worker
        self.traffic = traffic
        self.kernelSocketDrops = kernelSocketDrops
    }
}

public struct EventCounters: Codable, Sendable, Equatable {
    public var published: UInt64
    public var dropped: UInt64
    public var subscribers: UInt64

    public init(published: UInt64, dropped: UInt64, subscribers: UInt64) {
        self.published = published
        self.dropped = dropped
        self.subscribers = subscribers
    }
}

/// Packet capture in `/v1/stats`: whether one runs, its records, copies refused by full rings since start.
public struct CaptureCounters: Codable, Sendable, Equatable {
    public var running: UInt64
    public var records: UInt64
    public var ringFullTotal: UInt64
    enum CodingKeys: String, CodingKey { case running, records, ringFullTotal = "ring_full_total" }

    public init(running: UInt64, records: UInt64, ringFullTotal: UInt64) {
        self.running = running
        self.records = records
        self.ringFullTotal = ringFullTotal
    }
}

public struct Stats: Codable, Sendable, Equatable {
    public var uptimeSeconds: UInt64
    public var totals: Traffic
    public var networks: [NetworkStats]
    public var unattributed: Traffic
    public var remotes: [Remote]
    public var workers: [WorkerStats]
    public var events: EventCounters
    public var capture: CaptureCounters
    public var refusedSources: RefusedSourceCounts
    enum CodingKeys: String, CodingKey {
        case totals, networks, unattributed, remotes, workers, events, capture
        case uptimeSeconds = "uptime_seconds", refusedSources = "refused_sources"
    }

    public init(
        uptimeSeconds: UInt64, totals: Traffic, networks: [NetworkStats], unattributed: Traffic, remotes: [Remote],
        workers: [WorkerStats], events: EventCounters, capture: CaptureCounters,
        refusedSources: RefusedSourceCounts = RefusedSourceCounts()
    ) {
        self.uptimeSeconds = uptimeSeconds
        self.totals = totals
        self.networks = networks
        self.unattributed = unattributed
        self.remotes = remotes
        self.workers = workers
        self.events = events
        self.capture = capture
        self.refusedSources = refusedSources
    }
}

/// Sources refused by `allow_from` that are not in the remote table (strangers, which have no
/// per-remote counters), per address: the most refused first, at most `RefusedSourceCounts.limit`;
/// `other_packets` are the refused stranger packets of sources not listed.
public struct RefusedSourceCounts: Codable, Sendable, Equatable {
    public struct Source: Codable, Sendable, Equatable {
        public var address: String
        public var packets: UInt64
        public init(address: String, packets: UInt64) {
            self.address = address
            self.packets = packets
        }
    }
    /// The most sources listed (and labelled in metrics): bounded whatever the senders spoof.
    public static let limit = 16
    public var sources: [Source]
    public var otherPackets: UInt64
    enum CodingKeys: String, CodingKey { case sources, otherPackets = "other_packets" }

    public init(sources: [Source] = [], otherPackets: UInt64 = 0) {
        self.sources = sources
        self.otherPackets = otherPackets
    }
}

/// A remote VTEP and its counters.
public struct Remote: Codable, Sendable, Equatable {
    public var address: String
    /// Seconds since a packet from it was last accepted; absent if never.
    public var lastHeardSecondsAgo: UInt64?
    public var rxPackets: UInt64
    public var rxBytes: UInt64
    public var txPackets: UInt64
    public var txBytes: UInt64
    public var drops: [String: UInt64]
    public var floodVnis: [UInt32]
    public var fdbEntries: Int
    /// The underlay MTU used toward it: the path MTU learned from the kernel when smaller than the
    /// configured underlay MTU, else the configured one (README "PMTU").
    public var pathMTU: Int
    /// Whether `pathMTU` was learned.
    public var pathMTULearned: Bool
    enum CodingKeys: String, CodingKey {
        case address, drops
        case lastHeardSecondsAgo = "last_heard_seconds_ago", rxPackets = "rx_packets", rxBytes = "rx_bytes"
        case txPackets = "tx_packets", txBytes = "tx_bytes", floodVnis = "flood_vnis", fdbEntries = "fdb_entries"
        case pathMTU = "path_mtu", pathMTULearned = "path_mtu_learned"
    }

    public init(
        address: String, lastHeardSecondsAgo: UInt64?, rxPackets: UInt64, rxBytes: UInt64, txPackets: UInt64,
        txBytes: UInt64, drops: [String: UInt64], floodVnis: [UInt32], fdbEntries: Int, pathMTU: Int = 0,
        pathMTULearned: Bool = false
    ) {
        self.pathMTU = pathMTU
        self.pathMTULearned = pathMTULearned
        self.address = address
        self.lastHeardSecondsAgo = lastHeardSecondsAgo
        self.rxPackets = rxPackets
        self.rxBytes = rxBytes
        self.txPackets = txPackets
        self.txBytes = txBytes
        self.drops = drops
        self.floodVnis = floodVnis
        self.fdbEntries = fdbEntries
    }
}

public struct RemoteList: Codable, Sendable, Equatable {
    public var remotes: [Remote]
    public init(remotes: [Remote]) { self.remotes = remotes }
}

public struct NetworkSummary: Codable, Sendable, Equatable {
    public var vni: UInt32
    public var tap: String
    public var mtu: Int
    public var learning: Bool
    public var ageing: Int
    public var maxEntries: Int
    public var fdbEntries: Int
    public var flood: [String]
    enum CodingKeys: String, CodingKey {
        case vni, tap, mtu, learning, ageing, flood
        case maxEntries = "max_entries", fdbEntries = "fdb_entries"
    }

    public init(
        vni: UInt32, tap: String, mtu: Int, learning: Bool, ageing: Int, maxEntries: Int, fdbEntries: Int,
        flood: [String]
    ) {
        self.vni = vni
        self.tap = tap
        self.mtu = mtu
        self.learning = learning
        self.ageing = ageing
        self.maxEntries = maxEntries
        self.fdbEntries = fdbEntries
        self.flood = flood
    }
}

public struct NetworkList: Codable, Sendable, Equatable {
    public var networks: [NetworkSummary]
    public init(networks: [NetworkSummary]) { self.networks = networks }
}

public struct FDBEntry: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case learned, `static` }
    public var mac: String
    public var remote: String
    public var type: Kind
    /// Seconds since traffic last confirmed a learned entry; absent for static entries.
    public var ageSeconds: UInt32?
    /// The inner addresses ARP/ND suppression answers with this MAC; absent when there are none.
    public var ips: [String]?
    enum CodingKeys: String, CodingKey { case mac, remote, type, ageSeconds = "age_seconds", ips }

    public init(mac: String, remote: String, type: Kind, ageSeconds: UInt32? = nil, ips: [String]? = nil) {
        self.mac = mac
        self.remote = remote
        self.type = type
        self.ageSeconds = ageSeconds
        self.ips = ips
    }
}

public struct FDBList: Codable, Sendable, Equatable {
    public var vni: UInt32
    public var entries: [FDBEntry]
    public init(vni: UInt32, entries: [FDBEntry]) {
        self.vni = vni
        self.entries = entries
    }
}

public struct FloodList: Codable, Sendable, Equatable {
    public var vni: UInt32
    public var remotes: [String]
    public init(vni: UInt32, remotes: [String]) {
        self.vni = vni
        self.remotes = remotes
    }
}

/// POST /v1/reload: what the reload applied (README "Running it in production"). A refused
/// reload (a key that cannot change live: 409; a config that does not validate: 400) is an
/// `ErrorBody` whose message starts with the key, and changes nothing.
public struct ReloadResult: Codable, Sendable, Equatable {
    public var changes: [ReloadChange]
    public init(changes: [ReloadChange]) { self.changes = changes }
}

/// One change a reload applied.
public struct ReloadChange: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case networkAdded = "network_added"
        case networkRemoved = "network_removed"
        case floodAdded = "flood_added"
        case floodRemoved = "flood_removed"
        case staticAdded = "static_added"
        case staticRemoved = "static_removed"
        case staticChanged = "static_changed"
        case settingChanged = "setting_changed"
    }
    public var kind: Kind
    /// The network; nil for a top-level setting (`capture`, `capture_directory`).
    public var vni: UInt32?
    /// flood_added/flood_removed: the remote VTEP.
    public var remote: String?
    /// static_*: the entry's MAC.
    public var mac: String?
    /// setting_changed: the config key (`learning`, `ageing`, `max_entries`, `allow_from`,
    /// `arp_suppression`, `pmtu_signal`, `capture`, `capture_directory`).
    public var key: String?

    public init(kind: Kind, vni: UInt32? = nil, remote: String? = nil, mac: String? = nil, key: String? = nil) {
        self.kind = kind
        self.vni = vni
        self.remote = remote
        self.mac = mac
        self.key = key
    }
}

public struct FlushResult: Codable, Sendable, Equatable {
    public var vni: Int
    public var removed: Int
    public init(vni: Int, removed: Int) {
        self.vni = vni
        self.removed = removed
    }
}

/// The config as running: MTUs and worker count resolved, flood lists and static entries as
/// they are now (changes through the API included).
public struct EffectiveConfig: Codable, Sendable, Equatable {
    public struct Underlay: Codable, Sendable, Equatable {
        public var local: String
        public var port: UInt16
        public var sourcePorts: String
        public var mtu: Int
        enum CodingKeys: String, CodingKey { case local, port, mtu, sourcePorts = "source_ports" }
        public init(local: String, port: UInt16, sourcePorts: String, mtu: Int) {
            self.local = local
            self.port = port
            self.sourcePorts = sourcePorts
            self.mtu = mtu
        }
    }
    public struct StaticEntry: Codable, Sendable, Equatable {
        public var mac: String
        public var remote: String
        public init(mac: String, remote: String) {
            self.mac = mac
            self.remote = remote
        }
    }
    public struct Network: Codable, Sendable, Equatable {
        public var vni: UInt32
        public var tap: String
        public var mtu: Int
        public var address: String?
        public var learning: Bool
        public var ageing: Int
        public var maxEntries: Int
        public var flood: [String]
        public var fdb: [StaticEntry]
        public var allowFrom: [String]
        enum CodingKeys: String, CodingKey {
            case vni, tap, mtu, address, learning, ageing, flood, fdb
            case maxEntries = "max_entries", allowFrom = "allow_from"
        }
        public init(
            vni: UInt32, tap: String, mtu: Int, address: String?, learning: Bool, ageing: Int, maxEntries: Int,
            flood: [String], fdb: [StaticEntry], allowFrom: [String]
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
    public struct Control: Codable, Sendable, Equatable {
        public var listen: String
        public var tokenRequired: Bool
        enum CodingKeys: String, CodingKey { case listen, tokenRequired = "token_required" }
        public init(listen: String, tokenRequired: Bool) {
            self.listen = listen
            self.tokenRequired = tokenRequired
        }
    }
    public var underlay: Underlay
    public var workers: Int
    public var networks: [Network]
    public var control: Control

    public init(underlay: Underlay, workers: Int, networks: [Network], control: Control) {
        self.underlay = underlay
        self.workers = workers
        self.networks = networks
        self.control = control
    }
}

/// One capture, running or finished (`CaptureSummary` in the spec).
public struct CaptureInfo: Codable, Sendable, Equatable {
    public var id: UInt32
    public var running: Bool
    public var points: [String]
    public var vni: UInt32?
    public var remote: String?
    public var filter: String?
    public var snaplen: Int
    public var file: String?
    /// Records written (for streams: delivered to the client).
    public var records: UInt64
    public var filteredOut: UInt64
    public var ringFull: UInt64
    public var slowClient: UInt64
    public var files: [String]
    public var seconds: Double
    public var ended: String?
    public var error: String?
    enum CodingKeys: String, CodingKey {
        case id, running, points, vni, remote, filter, snaplen, file, records, files, seconds, ended, error
        case filteredOut = "filtered_out", ringFull = "ring_full", slowClient = "slow_client"
    }

    public init(
        id: UInt32, running: Bool, points: [String], vni: UInt32?, remote: String?, filter: String?, snaplen: Int,
        file: String?, records: UInt64, filteredOut: UInt64, ringFull: UInt64, slowClient: UInt64, files: [String],
        seconds: Double, ended: String?, error: String?
    ) {
        self.id = id
        self.running = running
        self.points = points
        self.vni = vni
        self.remote = remote
        self.filter = filter
        self.snaplen = snaplen
        self.file = file
        self.records = records
        self.filteredOut = filteredOut
        self.ringFull = ringFull
        self.slowClient = slowClient
        self.files = files
        self.seconds = seconds
        self.ended = ended
        self.error = error
    }
}

/// `GET`/`POST`/`DELETE /v1/capture`: the running capture, else the last one, else absent.
public struct CaptureStatus: Codable, Sendable, Equatable {
    public var capture: CaptureInfo?
    public var ringFullTotal: UInt64
    enum CodingKeys: String, CodingKey { case capture, ringFullTotal = "ring_full_total" }
    public init(capture: CaptureInfo?, ringFullTotal: UInt64) {
        self.capture = capture
        self.ringFullTotal = ringFullTotal
    }
}

/// One message of `GET /v1/events` (the SSE `data:` field).
public struct FDBEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case learn, move, ageOut = "age_out", fdbFull = "fdb_full" }
    public var type: Kind
    public var vni: UInt32
    public var mac: String
    public var remote: String
    public var from: String?
    public var maxEntries: Int?
    public var time: String
    enum CodingKeys: String, CodingKey { case type, vni, mac, remote, from, time, maxEntries = "max_entries" }

    public init(type: Kind, vni: UInt32, mac: String, remote: String, from: String?, maxEntries: Int?, time: String) {
        self.type = type
        self.vni = vni
        self.mac = mac
        self.remote = remote
        self.from = from
        self.maxEntries = maxEntries
        self.time = time
    }
}

// MARK: - Cluster mode

/// `GET /v1/cluster`: cluster mode as this router sees it (404 when it is off).
public struct ClusterInfo: Codable, Sendable, Equatable {
    /// The overlay's name (keys under /vxrouter/v1/<overlay>/).
    public var overlay: String
    public var hostID: String
    /// Random per start: a restarted host's records replace its previous incarnation's.
    public var incarnation: String
    /// Whether the last call to etcd succeeded.
    public var connected: Bool
    /// The etcd endpoint that answered last (tried first), of `endpoints`.
    public var endpoint: String
    public var endpoints: [String]
    /// The etcd revision the tables are in line with.
    public var revision: Int64
    /// Seconds since the tables were last brought in line with etcd; absent before the first time.
    public var lastSyncSecondsAgo: Double?
    /// The lease this router's records hang on (hex, as etcdctl shows it); absent while none is held.
    public var leaseID: String?
    public var leaseTTLSeconds: Int64
    /// Host ids with a record in the overlay (this router included).
    public var members: [String]
    public var floodMembers: Int
    public var entries: Int
    public var published: Int
    public var relists: UInt64
    public var leasesGranted: UInt64
    /// Differences between the tables and the cluster found and repaired by anti-entropy.
    public var corrections: UInt64
    /// MACs claimed by two live hosts at once with the same sequence.
    public var conflicts: UInt64
    public var moves: UInt64
    public var applyFailures: UInt64
    public var lastError: String?
    /// Members with a record that are not programmed, and why (an underlay port other than ours).
    public var excludedMembers: [ClusterExcludedMember]
    /// Times a member was found publishing an underlay port other than this router's.
    public var portMismatches: UInt64
    enum CodingKeys: String, CodingKey {
        case overlay, incarnation, connected, endpoint, endpoints, revision, members, entries, published, relists
        case corrections, conflicts, moves
        case hostID = "host_id", lastSyncSecondsAgo = "last_sync_seconds_ago", leaseID = "lease_id"
        case leaseTTLSeconds = "lease_ttl_seconds", floodMembers = "flood_members", leasesGranted = "leases_granted"
        case applyFailures = "apply_failures", lastError = "last_error"
        case excludedMembers = "excluded_members", portMismatches = "port_mismatches"
    }

    public init(
        overlay: String, hostID: String, incarnation: String, connected: Bool, endpoint: String, endpoints: [String],
        revision: Int64, lastSyncSecondsAgo: Double?, leaseID: String?, leaseTTLSeconds: Int64, members: [String],
        floodMembers: Int, entries: Int, published: Int, relists: UInt64, leasesGranted: UInt64, corrections: UInt64,
        conflicts: UInt64, moves: UInt64, applyFailures: UInt64, lastError: String?,
        excludedMembers: [ClusterExcludedMember] = [], portMismatches: UInt64 = 0
    ) {
        self.excludedMembers = excludedMembers
        self.portMismatches = portMismatches
        self.overlay = overlay
        self.hostID = hostID
        self.incarnation = incarnation
        self.connected = connected
        self.endpoint = endpoint
        self.endpoints = endpoints
        self.revision = revision
        self.lastSyncSecondsAgo = lastSyncSecondsAgo
        self.leaseID = leaseID
        self.leaseTTLSeconds = leaseTTLSeconds
        self.members = members
        self.floodMembers = floodMembers
        self.entries = entries
        self.published = published
        self.relists = relists
        self.leasesGranted = leasesGranted
        self.corrections = corrections
        self.conflicts = conflicts
        self.moves = moves
        self.applyFailures = applyFailures
        self.lastError = lastError
    }
}

/// A member of `ClusterInfo.excludedMembers`: in the overlay, not in the tables.
public struct ClusterExcludedMember: Codable, Sendable, Equatable {
    public var host: String
    public var address: String
    public var port: UInt16
    public var reason: String

    public init(host: String, address: String, port: UInt16, reason: String) {
        self.host = host
        self.address = address
        self.port = port
        self.reason = reason
    }
}

/// A cluster message of `GET /v1/events` (SSE `event:` member_joined, member_left,
/// member_restarted, member_excluded, mac_moved or mac_conflict).
public struct ClusterEventBody: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case memberJoined = "member_joined", memberLeft = "member_left", memberRestarted = "member_restarted"
        case memberExcluded = "member_excluded"
        case macMoved = "mac_moved", macConflict = "mac_conflict"
    }
    public var type: Kind
    /// The member (joined, left, restarted).
    public var host: String?
    public var address: String?
    public var vni: UInt32?
    public var mac: String?
    /// A move: the host the MAC left and the one it is behind now.
    public var from: String?
    public var to: String?
    /// A conflict: every host claiming the MAC, and the one programmed.
    public var claimants: [String]?
    public var kept: String?
    /// An excluded member: the underlay port it publishes, and why it is not programmed.
    public var port: UInt16?
    public var reason: String?
    public var time: String

    public init(
        type: Kind, host: String? = nil, address: String? = nil, vni: UInt32? = nil, mac: String? = nil,
        from: String? = nil, to: String? = nil, claimants: [String]? = nil, kept: String? = nil, port: UInt16? = nil,
        reason: String? = nil, time: String
    ) {
        self.port = port
        self.reason = reason
        self.type = type
        self.host = host
        self.address = address
        self.vni = vni
        self.mac = mac
        self.from = from
        self.to = to
        self.claimants = claimants
        self.kept = kept
        self.time = time
    }
}

// MARK: - Requests

/// A request body of string fields, all required; the server refuses unknown ones.
public protocol RequestBody: Codable, Sendable {
    /// The required JSON fields (strings), in the order the server checks them.
    static var fieldNames: [String] { get }
    /// Optional JSON fields that hold a list of strings.
    static var optionalListFieldNames: [String] { get }
}

extension RequestBody {
    public static var optionalListFieldNames: [String] { [] }
}

/// `POST /v1/networks/{vni}/fdb`.
public struct StaticEntryRequest: RequestBody, Equatable {
    public var mac: String
    public var remote: String
    /// The inner addresses behind `mac` (a Docker peer record, an EVPN type-2 route): answered
    /// locally by ARP/ND suppression. The entry's addresses become exactly these; absent = none.
    public var ips: [String]?
    enum CodingKeys: String, CodingKey, CaseIterable { case mac, remote, ips }
    public static var fieldNames: [String] { ["mac", "remote"] }
    public static var optionalListFieldNames: [String] { ["ips"] }
    public init(mac: String, remote: String, ips: [String]? = nil) {
        self.mac = mac
        self.remote = remote
        self.ips = ips
    }
}

/// `POST /v1/networks/{vni}/flood`.
public struct FloodRequest: RequestBody, Equatable {
    public var remote: String
    enum CodingKeys: String, CodingKey, CaseIterable { case remote }
    public static var fieldNames: [String] { CodingKeys.allCases.map(\.rawValue) }
    public init(remote: String) { self.remote = remote }
}

/// `POST /v1/capture` (all optional but `file`, which the server requires; the stream takes the
/// same fields but file and rotation as query parameters).
public struct CaptureRequest: Codable, Sendable, Equatable {
    public var file: String?
    public var points: [String]?
    public var vni: Int?
    public var remote: String?
    public var filter: String?
    public var snaplen: Int?
    public var count: Int?
    public var duration: Int?
    public var rotateBytes: Int?
    public var rotateFiles: Int?
    enum CodingKeys: String, CodingKey {
        case file, points, vni, remote, filter, snaplen, count, duration
        case rotateBytes = "rotate_bytes", rotateFiles = "rotate_files"
    }
    public init(
        file: String? = nil, points: [String]? = nil, vni: Int? = nil, remote: String? = nil, filter: String? = nil,
        snaplen: Int? = nil, count: Int? = nil, duration: Int? = nil, rotateBytes: Int? = nil, rotateFiles: Int? = nil
    ) {
        self.file = file
        self.points = points
        self.vni = vni
        self.remote = remote
        self.filter = filter
        self.snaplen = snaplen
        self.count = count
        self.duration = duration
        self.rotateBytes = rotateBytes
        self.rotateFiles = rotateFiles
    }

    /// As query parameters for `GET /v1/capture/stream` (points comma-separated).
    public var queryItems: [(String, String)] {
        var items: [(String, String)] = []
        if let vni { items.append(("vni", String(vni))) }
        if let points, !points.isEmpty { items.append(("points", points.joined(separator: ","))) }
        if let filter { items.append(("filter", filter)) }
        if let remote { items.append(("remote", remote)) }
        if let snaplen { items.append(("snaplen", String(snaplen))) }
        if let count { items.append(("count", String(count))) }
        if let duration { items.append(("duration", String(duration))) }
        return items
    }
}

/// `POST /v1/networks/{vni}/fdb/flush` takes no parameters: no body or `{}`.
public struct EmptyRequest: Codable, Sendable, Equatable {
    public init() {}
}

// MARK: - Trace

/// `POST /v1/trace`: a frame to trace through the live tables (nothing is sent or changed).
public struct TraceRequest: Codable, Sendable, Equatable {
    /// `tap`: read from network `vni`'s TAP; `tunnel`: received from VTEP `remote`.
    public var from: String
    /// From a TAP: the network (required). From the tunnel with `frame`: the VNI of the VXLAN
    /// header put in front of it.
    public var vni: UInt32?
    /// From the tunnel: the sending VTEP's underlay address (required).
    public var remote: String?
    /// The inner Ethernet frame, in hex (separators ignored).
    public var frame: String?
    /// From the tunnel, instead of `frame`: the whole UDP payload (VXLAN header and frame), in hex.
    public var payload: String?

    public init(from: String, vni: UInt32? = nil, remote: String? = nil, frame: String? = nil, payload: String? = nil) {
        self.from = from
        self.vni = vni
        self.remote = remote
        self.frame = frame
        self.payload = payload
    }
}

/// One step of a trace: which check, and what it found.
public struct TraceStep: Codable, Sendable, Equatable {
    public var stage: String
    public var result: String
    public init(stage: String, result: String) {
        self.stage = stage
        self.result = result
    }
}

/// What the router would do with the traced frame, and why.
public struct TraceResponse: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable { case unicast, flood, answer, deliver, drop }
    public var from: String
    public var vni: UInt32?
    public var tap: String?
    public var action: Action
    /// The drop counter the frame would be counted under (`action` drop).
    public var dropReason: String?
    public var steps: [TraceStep]
    /// The remote VTEPs encapsulated copies go to (unicast: one; flood: the flood list).
    public var remotes: [String]
    /// The outer UDP source port the flow hash picks (unicast, flood).
    public var outerSourcePort: UInt16?
    /// The FDB entry the destination (from a TAP) or source (from the tunnel) MAC hit.
    public var fdbEntry: FDBEntry?
    /// ARP/ND suppression's answer: the MAC the target address is at (`action` answer).
    public var answer: String?
    /// Oversize from a TAP: whether an ICMP "too big" goes back to the sender.
    public var icmpTooBig: Bool?
    /// From the tunnel: what learning makes of the source MAC (off, confirmed, static, new, moved).
    public var learn: String?
    /// From the tunnel: the inner TCP/UDP checksum (not_applicable, unfinished, valid, invalid).
    public var checksum: String?
    enum CodingKeys: String, CodingKey {
        case from, vni, tap, action, steps, remotes, answer, learn, checksum
        case dropReason = "drop_reason", outerSourcePort = "outer_source_port", fdbEntry = "fdb_entry"
        case icmpTooBig = "icmp_too_big"
    }

    public init(
        from: String, vni: UInt32?, tap: String?, action: Action, dropReason: String?, steps: [TraceStep],
        remotes: [String], outerSourcePort: UInt16?, fdbEntry: FDBEntry?, answer: String?, icmpTooBig: Bool?,
        learn: String?, checksum: String?
    ) {
        self.from = from
        self.vni = vni
        self.tap = tap
        self.action = action
        self.dropReason = dropReason
        self.steps = steps
        self.remotes = remotes
        self.outerSourcePort = outerSourcePort
        self.fdbEntry = fdbEntry
        self.answer = answer
        self.icmpTooBig = icmpTooBig
        self.learn = learn
        self.checksum = checksum
    }
}

// MARK: - Paths

/// The routes' paths, built the same way by every client.
public enum APIPath {
    public static let health = "/v1/health"
    public static let version = "/v1/version"
    public static let config = "/v1/config"
    public static let stats = "/v1/stats"
    public static let remotes = "/v1/remotes"
    public static let networks = "/v1/networks"
    public static let events = "/v1/events"
    public static let capture = "/v1/capture"
    public static let captureStream = "/v1/capture/stream"
    public static let metrics = "/metrics"
    public static let cluster = "/v1/cluster"
    public static let trace = "/v1/trace"
    public static let reload = "/v1/reload"
    public static func fdb(_ vni: some BinaryInteger) -> String { "/v1/networks/\(vni)/fdb" }
    public static func fdbEntry(_ vni: some BinaryInteger, _ mac: String) -> String { "/v1/networks/\(vni)/fdb/\(mac)" }
    public static func stations(_ vni: some BinaryInteger) -> String { "/v1/networks/\(vni)/stations" }
    public static func flush(_ vni: some BinaryInteger) -> String { "/v1/networks/\(vni)/fdb/flush" }
    public static func flood(_ vni: some BinaryInteger) -> String { "/v1/networks/\(vni)/flood" }
    public static func floodRemote(_ vni: some BinaryInteger, _ remote: String) -> String {
        "/v1/networks/\(vni)/flood/\(remote)"
    }
}
