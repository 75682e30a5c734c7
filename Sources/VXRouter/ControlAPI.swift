// The control endpoint's routes (api/openapi.yaml documents them). Everything here runs on the
// control thread, the only writer of the FDBs, flood lists and remote table, so reads see a
// consistent table and a change is in the datapath's tables before the response is sent.
//
// A bad request is answered with a 4xx and a JSON error saying what is wrong, and changes nothing:
// every input is checked before the first write.
import VXConfig
import Foundation
import NIOHTTP1
import VXDatapath
import VXPlatform
import VXWire

public let vxrouterVersion = "0.5.0"

// MARK: - Response bodies

struct CounterSet: Encodable {
    var counters: [String: UInt64] = [:]
    var drops: [String: UInt64] = [:]

    init() {
        for counter in TrafficCounter.allCases { counters[counter.name] = 0 }
        for reason in DropReason.allCases { drops[reason.name] = 0 }
    }

    init(_ snapshot: CounterSnapshot, rows: some Sequence<Int>) {
        self.init()
        for row in rows {
            for counter in TrafficCounter.allCases { counters[counter.name, default: 0] &+= snapshot[row, counter] }
            for reason in DropReason.allCases { drops[reason.name, default: 0] &+= snapshot[row, drop: reason] }
        }
    }

    enum Keys: String, CodingKey { case drops, dropsTotal = "drops_total" }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: DynamicKey.self)
        for (name, value) in counters { try container.encode(value, forKey: DynamicKey(name)) }
        try container.encode(drops, forKey: DynamicKey("drops"))
        try container.encode(drops.values.reduce(0, &+), forKey: DynamicKey("drops_total"))
    }
}

struct DynamicKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

struct FDBEntryBody: Encodable {
    var mac: String
    var remote: String
    var type: String
    /// Seconds since traffic last confirmed a learned entry; absent for static entries.
    var ageSeconds: UInt32?

    enum CodingKeys: String, CodingKey { case mac, remote, type, ageSeconds = "age_seconds" }
}

struct ErrorWithStatus: Error {
    let status: HTTPResponseStatus
    let message: String
    init(_ status: HTTPResponseStatus, _ message: String) {
        self.status = status
        self.message = message
    }
}

// MARK: - Routing

extension Router {
    func handle(_ request: APIRequest) -> APIResponse {
        do {
            return try route(request)
        } catch let error as ErrorWithStatus {
            return .error(error.status, error.message)
        } catch {
            return .error(.internalServerError, "\(error)")
        }
    }

    private func route(_ request: APIRequest) throws -> APIResponse {
        let segments = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let method = request.method
        func only(_ allowed: HTTPMethod...) throws {
            guard allowed.contains(method) else {
                throw ErrorWithStatus(
                    .methodNotAllowed,
                    "\(method.rawValue) is not allowed on \(request.path) (allowed: \(allowed.map(\.rawValue).joined(separator: ", ")))")
            }
        }
        switch segments.count {
        case 1 where segments[0] == "metrics":
            try only(.GET)
            return APIResponse(
                status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: Array(metricsText().utf8))
        case 2 where segments[0] == "v1":
            switch segments[1] {
            case "health":
                try only(.GET)
                return try encode(HealthBody(version: vxrouterVersion, uptimeSeconds: uptimeSeconds))
            case "version":
                try only(.GET)
                return try encode(VersionBody(version: vxrouterVersion))
            case "config":
                try only(.GET)
                return try encode(effectiveConfig())
            case "stats":
                try only(.GET)
                return try encode(statsBody())
            case "remotes":
                try only(.GET)
                return try encode(["remotes": remotesBody()])
            case "networks":
                try only(.GET)
                return try encode(["networks": networks.map { networkSummary($0) }])
            case "capture":
                try only(.GET, .POST, .DELETE)
                switch method {
                case .GET: return try captureStatus()
                case .POST: return try startFileCapture(request.body)
                default: return try stopCaptureRequest()
                }
            default: break
            }
        case 3 where segments[0] == "v1" && segments[1] == "capture" && segments[2] == "stream":
            // GET is answered by the HTTP handler (a stream); anything else lands here.
            try only(.GET)
        case 4... where segments[0] == "v1" && segments[1] == "networks":
            let network = try networkNamed(segments[2])
            switch (segments[3], segments.count) {
            case ("fdb", 4):
                try only(.GET, .POST)
                return method == .GET ? try encode(fdbBody(network)) : try addStatic(network, request.body)
            case ("fdb", 5) where segments[4] == "flush":
                try only(.POST)
                try requireEmptyObject(request.body)
                let removed = network.fdb.flushLearned()
                return try encode(["vni": Int(network.vni.rawValue), "removed": removed])
            case ("fdb", 5):
                try only(.DELETE)
                return try deleteEntry(network, segments[4])
            case ("flood", 4):
                try only(.GET, .POST)
                return method == .GET ? try encode(floodBody(network)) : try addFlood(network, request.body)
            case ("flood", 5):
                try only(.DELETE)
                return try removeFlood(network, segments[4])
            default: break
            }
        default: break
        }
        throw ErrorWithStatus(.notFound, "no such route: \(method.rawValue) \(request.path) (see api/openapi.yaml)")
    }

    // MARK: Reads

    struct VersionBody: Encodable {
        var name = "vxrouter"
        var version: String
    }

    var uptimeSeconds: UInt64 { (monotonicMilliseconds() - startedAt) / 1000 }

    struct HealthBody: Encodable {
        var status = "ok"
        var version: String
        var uptimeSeconds: UInt64
        enum CodingKeys: String, CodingKey { case status, version, uptimeSeconds = "uptime_seconds" }
    }

    func encode<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok) throws -> APIResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return APIResponse(status: status, body: Array(try encoder.encode(value)) + [0x0A])
    }

    func networkNamed(_ text: String) throws -> Network {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), text.utf8.count <= 8, let value = Int(text),
            let vni = VNI(value)
        else { throw ErrorWithStatus(.badRequest, "\(jsonString(text)) is not a VNI (an integer 0-16777215)") }
        guard let network = networks.first(where: { $0.vni == vni }) else {
            throw ErrorWithStatus(
                .notFound, "vni \(vni) is not served by this router (served: \(networks.map { "\($0.vni)" }.joined(separator: ", ")))")
        }
        return network
    }

    struct NetworkSummary: Encodable {
        var vni: UInt32
        var tap: String
        var mtu: Int
        var learning: Bool
        var ageing: Int
        var maxEntries: Int
        var fdbEntries: Int
        var flood: [String]
        enum CodingKeys: String, CodingKey {
            case vni, tap, mtu, learning, ageing, flood
            case maxEntries = "max_entries", fdbEntries = "fdb_entries"
        }
    }

    func networkSummary(_ network: Network) -> NetworkSummary {
        let net = settings[network.index]
        return NetworkSummary(
            vni: network.vni.rawValue, tap: net.tap, mtu: network.mtu, learning: net.learning, ageing: net.ageing,
            maxEntries: network.fdb.maxEntries, fdbEntries: network.fdb.count,
            flood: network.flood.current.map { remotes.address($0).description })
    }

    struct EffectiveConfig: Encodable {
        struct Underlay: Encodable {
            var local: String
            var port: UInt16
            var sourcePorts: String
            var mtu: Int
            enum CodingKeys: String, CodingKey { case local, port, mtu, sourcePorts = "source_ports" }
        }
        struct Net: Encodable {
            var vni: UInt32
            var tap: String
            var mtu: Int
            var address: String?
            var learning: Bool
            var ageing: Int
            var maxEntries: Int
            var flood: [String]
            var fdb: [[String: String]]
            var allowFrom: [String]
            enum CodingKeys: String, CodingKey {
                case vni, tap, mtu, address, learning, ageing, flood, fdb
                case maxEntries = "max_entries", allowFrom = "allow_from"
            }
        }
        struct Control: Encodable {
            var listen: String
            var tokenRequired: Bool
            enum CodingKeys: String, CodingKey { case listen, tokenRequired = "token_required" }
        }
        var underlay: Underlay
        var workers: Int
        var networks: [Net]
        var control: Control
    }

    /// The config as running: MTUs and worker count resolved, flood lists and static entries as
    /// they are now (changes through the API included).
    func effectiveConfig() -> EffectiveConfig {
        let nets = networks.map { network -> EffectiveConfig.Net in
            let net = settings[network.index]
            let statics = network.fdb.entries().filter { $0.entry.isStatic }.sorted { $0.entry.mac < $1.entry.mac }
            return EffectiveConfig.Net(
                vni: network.vni.rawValue, tap: net.tap, mtu: network.mtu, address: net.address?.description,
                learning: net.learning, ageing: net.ageing, maxEntries: network.fdb.maxEntries,
                flood: network.flood.current.map { remotes.address($0).description },
                fdb: statics.map { ["mac": $0.entry.mac.description, "remote": remotes.address($0.entry.remote).description] },
                allowFrom: net.allowFrom.map(\.description))
        }
        let ports = config.underlay.sourcePorts
        return EffectiveConfig(
            underlay: .init(
                local: config.underlay.local.description, port: config.underlay.port,
                sourcePorts: "\(ports.lowerBound)-\(ports.upperBound)", mtu: underlayMTU),
            workers: counters.count, networks: nets,
            control: .init(listen: config.control.listen.description, tokenRequired: controlToken != nil))
    }

    struct NetworkStats: Encodable {
        var vni: UInt32
        var tap: String
        var fdbEntries: Int
        var floodRemotes: Int
        var learnFdbFull: UInt64
        var learnRemotesFull: UInt64
        var traffic: CounterSet
        enum CodingKeys: String, CodingKey {
            case vni, tap, traffic
            case fdbEntries = "fdb_entries", floodRemotes = "flood_remotes", learnFdbFull = "learn_fdb_full"
            case learnRemotesFull = "learn_remotes_full"
        }
    }

    struct WorkerStats: Encodable {
        var worker: Int
        var traffic: CounterSet
    }

    struct StatsBody: Encodable {
        var uptimeSeconds: UInt64
        var totals: CounterSet
        var networks: [NetworkStats]
        var unattributed: CounterSet
        var remotes: [RemoteBody]
        var workers: [WorkerStats]
        var events: [String: UInt64]
        /// Packet capture: whether one runs, its records, and copies refused by full rings since start.
        var capture: [String: UInt64]
        enum CodingKeys: String, CodingKey {
            case totals, networks, unattributed, remotes, workers, events, capture
            case uptimeSeconds = "uptime_seconds"
        }
    }

    func statsBody() -> StatsBody {
        let perWorker = counters.map { $0.snapshot() }
        let totals = perWorker.reduce(CounterSnapshot(rows: networks.count + 1), +)
        let nets = networks.map { network in
            NetworkStats(
                vni: network.vni.rawValue, tap: settings[network.index].tap, fdbEntries: network.fdb.count,
                floodRemotes: network.flood.current.count, learnFdbFull: fdbFull[network.index],
                learnRemotesFull: remoteTableFull[network.index],
                traffic: CounterSet(totals, rows: [network.index]))
        }
        return StatsBody(
            uptimeSeconds: uptimeSeconds, totals: CounterSet(totals, rows: 0...networks.count), networks: nets,
            unattributed: CounterSet(totals, rows: [networks.count]), remotes: remotesBody(),
            workers: perWorker.enumerated().map { WorkerStats(worker: $0, traffic: CounterSet($1, rows: 0...networks.count)) },
            events: [
                "published": eventHub.published.load(ordering: .relaxed),
                "dropped": eventHub.dropped.load(ordering: .relaxed),
                "subscribers": UInt64(eventHub.subscriberCount),
            ],
            capture: [
                "running": capture == nil ? 0 : 1, "records": capture?.summary.records ?? 0,
                "ring_full_total": captureTap.refusedTotal,
            ])
    }

    struct RemoteBody: Encodable {
        var address: String
        /// Seconds since a packet from it was last accepted; absent if never.
        var lastHeardSecondsAgo: UInt64?
        var rxPackets: UInt64
        var rxBytes: UInt64
        var txPackets: UInt64
        var txBytes: UInt64
        var drops: [String: UInt64]
        var floodVnis: [UInt32]
        var fdbEntries: Int
        enum CodingKeys: String, CodingKey {
            case address, drops
            case lastHeardSecondsAgo = "last_heard_seconds_ago", rxPackets = "rx_packets", rxBytes = "rx_bytes"
            case txPackets = "tx_packets", txBytes = "tx_bytes", floodVnis = "flood_vnis", fdbEntries = "fdb_entries"
        }
    }

    func remotesBody() -> [RemoteBody] {
        let count = remotes.count
        let sums = remoteCounters.reduce(RemoteCounterSnapshot(rows: count)) { $0 + $1.snapshot(rows: count) }
        var entriesPerRemote = [Int](repeating: 0, count: count)
        for network in networks {
            for (entry, _) in network.fdb.entries() where Int(entry.remote.rawValue) < count {
                entriesPerRemote[Int(entry.remote.rawValue)] += 1
            }
        }
        let nowMs = monotonicMilliseconds()
        return (0..<count).map { i in
            let index = RemoteIndex(rawValue: UInt16(i))
            var drops: [String: UInt64] = [:]
            for reason in DropReason.allCases { drops[reason.name] = sums[index, drop: reason] }
            return RemoteBody(
                address: remotes.address(index).description,
                lastHeardSecondsAgo: i < lastHeard.count && lastHeard[i] != 0 ? (nowMs - lastHeard[i]) / 1000 : nil,
                rxPackets: sums[index, .rxPackets], rxBytes: sums[index, .rxBytes],
                txPackets: sums[index, .txPackets], txBytes: sums[index, .txBytes], drops: drops,
                floodVnis: networks.filter { $0.flood.current.contains(index) }.map(\.vni.rawValue),
                fdbEntries: entriesPerRemote[i])
        }
    }

    struct FDBBody: Encodable {
        var vni: UInt32
        var entries: [FDBEntryBody]
    }

    func entryBody(_ entry: ForwardingTable.Entry, lastSeen: UInt32, now: UInt32) -> FDBEntryBody {
        FDBEntryBody(
            mac: entry.mac.description, remote: remotes.address(entry.remote).description,
            type: entry.isStatic ? "static" : "learned", ageSeconds: entry.isStatic ? nil : now &- lastSeen)
    }

    func fdbBody(_ network: Network) -> FDBBody {
        let now = monotonicSeconds()
        let entries = network.fdb.entries().sorted { $0.entry.mac < $1.entry.mac }
        return FDBBody(vni: network.vni.rawValue, entries: entries.map { entryBody($0.entry, lastSeen: $0.lastSeen, now: now) })
    }

    struct FloodBody: Encodable {
        var vni: UInt32
        var remotes: [String]
    }

    func floodBody(_ network: Network) -> FloodBody {
        FloodBody(vni: network.vni.rawValue, remotes: network.flood.current.map { remotes.address($0).description })
    }

    // MARK: Changes

    /// The body as a JSON object with exactly `keys` (all strings).
    func stringFields(_ body: [UInt8], _ keys: [String]) throws -> [String: String] {
        let shape = "a JSON object {\(keys.map { "\"\($0)\": \"...\"" }.joined(separator: ", "))}"
        guard !body.isEmpty else { throw ErrorWithStatus(.badRequest, "the request body is empty; expected \(shape)") }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(body), options: [])
        } catch {
            throw ErrorWithStatus(.badRequest, "the request body is not valid JSON; expected \(shape)")
        }
        guard let object = parsed as? [String: Any] else {
            throw ErrorWithStatus(.badRequest, "the request body is not a JSON object; expected \(shape)")
        }
        if let unknown = object.keys.sorted().first(where: { !keys.contains($0) }) {
            throw ErrorWithStatus(.badRequest, "unknown field \(jsonString(unknown)) (allowed: \(keys.joined(separator: ", ")))")
        }
        var fields: [String: String] = [:]
        for key in keys {
            guard let value = object[key] else { throw ErrorWithStatus(.badRequest, "missing field \"\(key)\"; expected \(shape)") }
            guard let text = value as? String else { throw ErrorWithStatus(.badRequest, "field \"\(key)\" must be a string") }
            fields[key] = text
        }
        return fields
    }

    /// Flush takes no parameters: an empty body or `{}`.
    func requireEmptyObject(_ body: [UInt8]) throws {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body), options: []) as? [String: Any],
            object.isEmpty
        else { throw ErrorWithStatus(.badRequest, "flush takes no parameters: send no body or {}") }
    }

    func parseMAC(_ text: String) throws -> MACAddress {
        guard let mac = MACAddress(text) else {
            throw ErrorWithStatus(.badRequest, "mac \(jsonString(text)) is not a MAC address (expected aa:bb:cc:dd:ee:ff)")
        }
        return mac
    }

    /// A remote VTEP named by a client: unicast, the underlay's family, not this router.
    func parseRemote(_ text: String) throws -> IPAddress {
        guard let address = IPAddress(text) else {
            throw ErrorWithStatus(.badRequest, "remote \(jsonString(text)) is not an IP address")
        }
        let local = config.underlay.local
        if address.family != local.family {
            throw ErrorWithStatus(
                .badRequest, "remote \(address) is \(familyName(address.family)) but the underlay is \(familyName(local.family))")
        }
        if address == local { throw ErrorWithStatus(.badRequest, "remote \(address) is this router's own address") }
        if address.isUnspecified || address.isMulticast {
            throw ErrorWithStatus(.badRequest, "remote \(address) is not a unicast address")
        }
        return address
    }

    func addStatic(_ network: Network, _ body: [UInt8]) throws -> APIResponse {
        let fields = try stringFields(body, ["mac", "remote"])
        let mac = try parseMAC(fields["mac"]!)
        if mac.isMulticast || mac.isZero {
            throw ErrorWithStatus(.badRequest, "mac \(mac) is not a unicast station address")
        }
        let address = try parseRemote(fields["remote"]!)
        if network.fdb.lookup(mac) == nil, network.fdb.count >= network.fdb.maxEntries {
            throw ErrorWithStatus(
                .conflict, "the FDB of vni \(network.vni) is full (max_entries \(network.fdb.maxEntries)); delete or flush entries first")
        }
        guard let remote = remotes.intern(address) else {
            throw ErrorWithStatus(.conflict, "the remote VTEP table is full (\(remotes.capacity) addresses)")
        }
        let outcome = network.fdb.setStatic(mac, remote: remote)
        logger.info("static FDB entry set", metadata: ["vni": "\(network.vni)", "mac": "\(mac)", "remote": "\(address)"])
        let body = FDBEntryBody(mac: mac.description, remote: address.description, type: "static", ageSeconds: nil)
        _ = remote
        return try encode(body, status: outcome == .added ? .created : .ok)
    }

    func deleteEntry(_ network: Network, _ text: String) throws -> APIResponse {
        let mac = try parseMAC(text)
        guard let old = network.fdb.remove(mac) else {
            throw ErrorWithStatus(.notFound, "vni \(network.vni) has no FDB entry for \(mac)")
        }
        logger.info("FDB entry deleted", metadata: ["vni": "\(network.vni)", "mac": "\(mac)"])
        return try encode(entryBody(old, lastSeen: 0, now: 0))
    }

    func addFlood(_ network: Network, _ body: [UInt8]) throws -> APIResponse {
        let address = try parseRemote(try stringFields(body, ["remote"])["remote"]!)
        var members = network.flood.current
        if let existing = remotes.existingIndex(address), members.contains(existing) {
            return try encode(floodBody(network))
        }
        guard members.count < network.flood.capacity else {
            throw ErrorWithStatus(.conflict, "the flood list of vni \(network.vni) is full (\(network.flood.capacity) remotes)")
        }
        guard let remote = remotes.intern(address) else {
            throw ErrorWithStatus(.conflict, "the remote VTEP table is full (\(remotes.capacity) addresses)")
        }
        members.append(remote)
        network.flood.set(members)
        logger.info("flood list: added", metadata: ["vni": "\(network.vni)", "remote": "\(address)"])
        return try encode(floodBody(network), status: .created)
    }

    func removeFlood(_ network: Network, _ text: String) throws -> APIResponse {
        guard let address = IPAddress(text) else {
            throw ErrorWithStatus(.badRequest, "remote \(jsonString(text)) is not an IP address")
        }
        guard let index = remotes.existingIndex(address), network.flood.current.contains(index) else {
            throw ErrorWithStatus(.notFound, "\(address) is not on the flood list of vni \(network.vni)")
        }
        network.flood.set(network.flood.current.filter { $0 != index })
        logger.info("flood list: removed", metadata: ["vni": "\(network.vni)", "remote": "\(address)"])
        return try encode(floodBody(network))
    }
}
