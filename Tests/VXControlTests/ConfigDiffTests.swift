// ConfigDiff: every kind of live change it reports, and every key it refuses (all-or-nothing:
// a refusal returns no changes at all).
import Testing
import VXCapture
import VXDatapath
import VXWire

@testable import VXConfig

private func ip(_ text: String) -> IPAddress { IPAddress(text)! }
private func mac(_ text: String) -> MACAddress { MACAddress(text)! }
private let v42 = VNI(42)!
private let v43 = VNI(43)!
private let v44 = VNI(44)!

/// Two networks, 42 and 44, with a flood list and a static entry on 42.
private func base() throws -> RouterConfig {
    try ConfigLoader.parse(
        yaml: """
            underlay:
              local: 198.18.0.1
            networks:
              - vni: 42
                tap: vx42
                flood: [198.18.0.2, 198.18.0.3]
                fdb:
                  - { mac: "02:00:00:00:00:02", remote: 198.18.0.2, ips: [198.19.42.2] }
              - vni: 44
                tap: vx44

            """)
}

private func changes(_ edit: (inout RouterConfig) -> Void) throws -> Result<[ConfigChange], ReloadRefusal> {
    let old = try base()
    var new = old
    edit(&new)
    return ConfigDiff.changes(from: old, to: new)
}

private func refusedKey(_ edit: (inout RouterConfig) -> Void) throws -> String? {
    if case .failure(let refusal) = try changes(edit) { return refusal.key }
    return nil
}

private func changeList(_ edit: (inout RouterConfig) -> Void) throws -> [ConfigChange]? {
    if case .success(let list) = try changes(edit) { return list }
    return nil
}

@Suite struct ConfigDiffTests {
    @Test func sameConfigChangesNothing() throws {
        #expect(try changeList { _ in } == [])
    }

    @Test func networkOrderAloneChangesNothing() throws {
        #expect(try changeList { $0.networks.reverse() } == [])
    }

    @Test func networksAddedAndRemoved() throws {
        let list = try changeList { config in
            config.networks.removeAll { $0.vni == v44 }
            config.networks.append(NetworkConfig(vni: v43, tap: "vx43"))
        }
        #expect(list == [.networkRemoved(v44), .networkAdded(v43)])
    }

    @Test func floodAddedAndRemoved() throws {
        let list = try changeList { $0.networks[0].flood = [ip("198.18.0.3"), ip("198.18.0.4")] }
        #expect(list == [.floodRemoved(v42, ip("198.18.0.2")), .floodAdded(v42, ip("198.18.0.4"))])
    }

    @Test func staticEntryAddedRemovedAndChanged() throws {
        let added = try changeList {
            $0.networks[0].fdb.append(StaticFDBEntry(mac: mac("02:00:00:00:00:03"), remote: ip("198.18.0.3")))
        }
        #expect(added == [.staticAdded(v42, mac("02:00:00:00:00:03"))])
        #expect(try changeList { $0.networks[0].fdb = [] } == [.staticRemoved(v42, mac("02:00:00:00:00:02"))])
        let moved = try changeList { $0.networks[0].fdb[0].remote = ip("198.18.0.3") }
        #expect(moved == [.staticChanged(v42, mac("02:00:00:00:00:02"))])
        let readdressed = try changeList { $0.networks[0].fdb[0].ips = [ip("198.19.42.9")] }
        #expect(readdressed == [.staticChanged(v42, mac("02:00:00:00:00:02"))])
        // The same ips in another order are the same entry.
        let twoIPs = try changeList { $0.networks[0].fdb[0].ips = [ip("198.19.42.2"), ip("198.19.42.3")] }
        #expect(twoIPs == [.staticChanged(v42, mac("02:00:00:00:00:02"))])
    }

    /// One edit per live network key (allow_from twice: prefixes, and `known`).
    static let networkEdits: [String: @Sendable (inout NetworkConfig) -> Void] = [
        "learning": { $0.learning = false },
        "ageing": { $0.ageing = 60 },
        "max_entries": { $0.maxEntries = 100 },
        "allow_from": { $0.allowFrom = [IPPrefix("198.18.0.0/24")!] },
        "allow_from known": { $0.allowKnown = true },
        "arp_suppression": { $0.arpSuppression = false },
        "pmtu_signal": { $0.pmtuSignal = false },
    ]

    @Test(arguments: ["learning", "ageing", "max_entries", "allow_from", "allow_from known", "arp_suppression", "pmtu_signal"])
    func networkSettingChanged(edit: String) throws {
        let key = String(edit.split(separator: " ")[0])
        #expect(try changeList { Self.networkEdits[edit]!(&$0.networks[1]) } == [.settingChanged(v44, key: key)])
    }

    @Test func onlyDatapathSettingsRebuildTheNetwork() {
        #expect(ConfigDiff.needsRebuild("learning") && ConfigDiff.needsRebuild("allow_from"))
        #expect(ConfigDiff.needsRebuild("max_entries"))
        #expect(!ConfigDiff.needsRebuild("ageing"))
    }

    @Test func captureSettingsChanged() throws {
        #expect(try changeList { $0.captureDirectory = "/tmp/elsewhere" } == [.settingChanged(nil, key: "capture_directory")])
        let spec = CaptureSpec(points: [.inner], file: "/tmp/x.pcap")
        #expect(try changeList { $0.capture = spec } == [.settingChanged(nil, key: "capture")])
    }

    /// One edit per key that cannot change live.
    static let restartEdits: [String: @Sendable (inout RouterConfig) -> Void] = [
        "underlay.local": { $0.underlay.local = IPAddress("198.18.0.9")! },
        "underlay.port": { $0.underlay.port = 4790 },
        "underlay.source_ports": { $0.underlay.sourcePorts = 1000...2000 },
        "underlay.mtu": { $0.underlay.mtu = 9000 },
        "workers": { $0.workers = 3 },
        "offloads": { $0.offloads.toggle() },
        "busy_poll": { $0.busyPoll = 50 },
        "steering": { $0.steering = .flow },
        "control.enabled": { $0.control.enabled.toggle() },
        "control.listen": { $0.control.listen = .unix(path: "/tmp/other.sock") },
        "control.token_file": { $0.control.tokenFile = "/tmp/token" },
        "control.group": { $0.control.group = "wheel" },
        "metrics.listen": { $0.metrics.listen = .unix(path: "/tmp/metrics.sock") },
        "cluster": { $0.cluster = ClusterConfig(endpoints: ["http://127.0.0.1:2379"], name: "lab") },
        "networks[0].tap": { $0.networks[0].tap = "other" },
        "networks[0].mtu": { $0.networks[0].mtu = 1400 },
        "networks[0].address": { $0.networks[0].address = IPPrefix("198.19.42.1/24")! },
        "networks[0].mac": { $0.networks[0].mac = MACAddress("02:00:00:00:00:09")! },
    ]

    @Test(arguments: [
        "underlay.local", "underlay.port", "underlay.source_ports", "underlay.mtu", "workers", "offloads", "busy_poll",
        "steering", "control.enabled", "control.listen", "control.token_file", "control.group", "metrics.listen", "cluster",
        "networks[0].tap", "networks[0].mtu", "networks[0].address", "networks[0].mac",
    ])
    func restartOnlyKeyIsRefused(key: String) throws {
        #expect(try refusedKey(Self.restartEdits[key]!) == key)
    }

    @Test func clusterModeKeepsItsNetworks() throws {
        let old = try base()
        var clustered = old
        clustered.cluster = ClusterConfig(endpoints: ["http://127.0.0.1:2379"], name: "lab")
        var grown = clustered
        grown.networks.append(NetworkConfig(vni: v43, tap: "vx43"))
        guard case .failure(let refusal) = ConfigDiff.changes(from: clustered, to: grown) else {
            Issue.record("adding a network in cluster mode was not refused")
            return
        }
        #expect(refusal.key == "networks")
        var reflooded = clustered
        reflooded.networks[0].flood = []
        #expect(try ConfigDiff.changes(from: clustered, to: reflooded).get().count == 2)
    }

    @Test func refusalIsAllOrNothing() throws {
        // A live change next to a refused one: the refusal alone comes back.
        let result = try changes { config in
            config.networks.append(NetworkConfig(vni: v43, tap: "vx43"))
            config.networks[0].flood = []
            config.workers = 7
        }
        guard case .failure(let refusal) = result else {
            Issue.record("expected a refusal, got \(result)")
            return
        }
        #expect(refusal.key == "workers")
        #expect(refusal.description.contains("restart"))
    }

    @Test func refusedNetworkKeyNamesItsIndexInTheNewConfig() throws {
        let key = try refusedKey { config in
            config.networks.insert(NetworkConfig(vni: v43, tap: "vx43"), at: 0)
            config.networks[2].mtu = 1300  // vni 44
        }
        #expect(key == "networks[2].mtu")
    }
}
