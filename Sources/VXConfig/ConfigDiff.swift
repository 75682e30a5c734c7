// Live reload's first step (README "Running it in production"): what changed between the config the
// router runs and the one it was asked to reload, or the key that cannot change without a restart.
// A pure function of two validated configs, so the rule "what is live" is written once, here, and
// both reload paths (SIGHUP and `POST /v1/reload`) and the tests read it from the same place.
import VXWire

/// One difference a reload applies.
public enum ConfigChange: Equatable, Sendable, CustomStringConvertible {
    case networkAdded(VNI)
    case networkRemoved(VNI)
    case floodAdded(VNI, IPAddress)
    case floodRemoved(VNI, IPAddress)
    case staticAdded(VNI, MACAddress)
    case staticRemoved(VNI, MACAddress)
    /// Same MAC, another remote or other ips.
    case staticChanged(VNI, MACAddress)
    /// A setting with a live effect: `vni` nil for a top-level key (`capture`), else the network's
    /// key (`learning`, `ageing`, `max_entries`, `allow_from`, `arp_suppression`, `pmtu_signal`).
    case settingChanged(VNI?, key: String)

    public var description: String {
        switch self {
        case .networkAdded(let vni): "network \(vni) added"
        case .networkRemoved(let vni): "network \(vni) removed"
        case .floodAdded(let vni, let remote): "vni \(vni): flood \(remote) added"
        case .floodRemoved(let vni, let remote): "vni \(vni): flood \(remote) removed"
        case .staticAdded(let vni, let mac): "vni \(vni): static entry \(mac) added"
        case .staticRemoved(let vni, let mac): "vni \(vni): static entry \(mac) removed"
        case .staticChanged(let vni, let mac): "vni \(vni): static entry \(mac) changed"
        case .settingChanged(let vni?, let key): "vni \(vni): \(key) changed"
        case .settingChanged(nil, let key): "\(key) changed"
        }
    }
}

/// Why a reload was refused: the config key whose change needs a restart.
public struct ReloadRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    /// The key as the config file spells it (`underlay.port`, `networks[1].mtu`).
    public var key: String
    public var reason: String

    public init(key: String, reason: String) {
        self.key = key
        self.reason = reason
    }

    public var description: String { "\(key): \(reason)" }
}

public enum ConfigDiff {
    /// The top-level keys that only take effect at start: each owns a socket, a thread or the
    /// process's identity (the workers' UDP sockets and TAP queues are opened per worker at start).
    /// In this one list; the README's table follows it.
    static let restartOnly: [(key: String, differs: @Sendable (RouterConfig, RouterConfig) -> Bool)] = [
        ("underlay.local", { $0.underlay.local != $1.underlay.local }),
        ("underlay.port", { $0.underlay.port != $1.underlay.port }),
        ("underlay.source_ports", { $0.underlay.sourcePorts != $1.underlay.sourcePorts }),
        ("underlay.mtu", { $0.underlay.mtu != $1.underlay.mtu }),
        ("underlay.udp_checksum", { $0.underlay.udpChecksum != $1.underlay.udpChecksum }),
        ("underlay.trust_udp_checksum", { $0.underlay.trustUDPChecksum != $1.underlay.trustUDPChecksum }),
        ("workers", { $0.workers != $1.workers }),
        ("offloads", { $0.offloads != $1.offloads }),
        ("busy_poll", { $0.busyPoll != $1.busyPoll }),
        ("steering", { $0.steering != $1.steering }),
        ("control.enabled", { $0.control.enabled != $1.control.enabled }),
        ("control.listen", { $0.control.listen != $1.control.listen }),
        ("control.token_file", { $0.control.tokenFile != $1.control.tokenFile }),
        ("control.group", { $0.control.group != $1.control.group }),
        ("metrics.listen", { $0.metrics.listen != $1.metrics.listen }),
        ("cluster", { $0.cluster != $1.cluster }),
    ]

    /// A network's keys that only take effect when its TAP is made (name, MTU, address, MAC). To
    /// change one, remove the network in one reload and add it back in the next.
    static let networkRestartOnly: [(key: String, differs: @Sendable (NetworkConfig, NetworkConfig) -> Bool)] = [
        ("tap", { $0.tap != $1.tap }),
        ("mtu", { $0.mtu != $1.mtu }),
        ("address", { $0.address != $1.address }),
        ("mac", { $0.mac != $1.mac }),
    ]

    /// A network's live settings. `datapath` ones are read by the workers (the network is rebuilt
    /// around its TAP and republished to them); the others only by the control thread.
    static let networkLive: [(key: String, datapath: Bool, differs: @Sendable (NetworkConfig, NetworkConfig) -> Bool)] = [
        ("learning", true, { $0.learning != $1.learning }),
        ("ageing", false, { $0.ageing != $1.ageing }),
        ("max_entries", true, { $0.maxEntries != $1.maxEntries }),
        ("allow_from", true, { $0.allowFrom != $1.allowFrom || $0.acceptsOnlyKnownVTEPs != $1.acceptsOnlyKnownVTEPs }),
        ("arp_suppression", true, { $0.arpSuppression != $1.arpSuppression }),
        ("pmtu_signal", true, { $0.pmtuSignal != $1.pmtuSignal }),
    ]

    /// Whether a `.settingChanged` key of a network means the workers need a new copy of it.
    public static func needsRebuild(_ key: String) -> Bool {
        networkLive.contains { $0.key == key && $0.datapath }
    }

    /// The changes that turn `old` into `new` (both validated), in config order, or the first key
    /// that cannot change live. An empty list: nothing to do.
    public static func changes(from old: RouterConfig, to new: RouterConfig) -> Result<[ConfigChange], ReloadRefusal> {
        for rule in restartOnly where rule.differs(old, new) {
            return .failure(ReloadRefusal(key: rule.key, reason: "cannot change while running; restart the router"))
        }
        var changes: [ConfigChange] = []
        let oldByVNI = Dictionary(old.networks.map { ($0.vni, $0) }, uniquingKeysWith: { first, _ in first })
        let newVNIs = Set(new.networks.map(\.vni))
        for old in old.networks where !newVNIs.contains(old.vni) { changes.append(.networkRemoved(old.vni)) }
        for (index, net) in new.networks.enumerated() {
            guard let before = oldByVNI[net.vni] else {
                changes.append(.networkAdded(net.vni))
                continue
            }
            for rule in networkRestartOnly where rule.differs(before, net) {
                return .failure(
                    ReloadRefusal(
                        key: "networks[\(index)].\(rule.key)",
                        reason: "vni \(net.vni): cannot change while the network runs; remove it in one reload and add it back in the next"))
            }
            let removedFlood = before.flood.filter { !net.flood.contains($0) }
            let addedFlood = net.flood.filter { !before.flood.contains($0) }
            changes += removedFlood.map { .floodRemoved(net.vni, $0) } + addedFlood.map { .floodAdded(net.vni, $0) }
            let oldEntries = Dictionary(before.fdb.map { ($0.mac, $0) }, uniquingKeysWith: { _, last in last })
            let newMACs = Set(net.fdb.map(\.mac))
            for entry in before.fdb where !newMACs.contains(entry.mac) { changes.append(.staticRemoved(net.vni, entry.mac)) }
            for entry in net.fdb {
                if let was = oldEntries[entry.mac] {
                    if was.remote != entry.remote || Set(was.ips) != Set(entry.ips) {
                        changes.append(.staticChanged(net.vni, entry.mac))
                    }
                } else {
                    changes.append(.staticAdded(net.vni, entry.mac))
                }
            }
            for rule in networkLive where rule.differs(before, net) {
                changes.append(.settingChanged(net.vni, key: rule.key))
            }
        }
        // The cluster client announces and reconciles the VNIs it started with.
        if new.cluster != nil, changes.contains(where: { if case .networkAdded = $0 { true } else if case .networkRemoved = $0 { true } else { false } }) {
            return .failure(
                ReloadRefusal(key: "networks", reason: "cluster mode serves the networks it started with; restart to add or remove one"))
        }
        if old.capture != new.capture { changes.append(.settingChanged(nil, key: "capture")) }
        if old.captureDirectory != new.captureDirectory { changes.append(.settingChanged(nil, key: "capture_directory")) }
        return .success(changes)
    }
}
