// Cluster mode end to end, for what a TAP has behind it: a station bridged behind b's TAP (a
// namespace of its own, its own MAC and address; b's TAP has no address) is published by b with
// the address it claimed by ARP — a programs it as an entry toward b with that address, answers
// ARP for it and reaches it — and once the station is gone and b's ageing passes, b withdraws it
// and a's entry goes. The hosts' configs name no flood lists and no entries.
import Foundation
import LabSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension EndToEnd {
    @Suite("Cluster mode: stations behind a TAP")
    struct ClusterStations {
        typealias C = Cluster
        static let stationMAC = "02:00:00:00:42:50"
        static let stationAddress = "198.19.0.50"
        static let ageing = 6

        /// a's FDB entry for the station: (remote, ips); nil when it has none.
        static func stationEntry(_ host: Host) async -> (remote: String, ips: [String])? {
            guard let object = await C.api(host, "/v1/networks/\(C.vni)/fdb") as? [String: Any],
                let entries = object["entries"] as? [[String: Any]],
                let entry = entries.first(where: { ($0["mac"] as? String)?.lowercased() == stationMAC }),
                let remote = entry["remote"] as? String
            else { return nil }
            return (remote, entry["ips"] as? [String] ?? [])
        }

        @Test(
            "a station bridged behind a TAP is published with its ARP address and withdrawn once it ages out",
            .routerBinary, .timeLimit(.minutes(2)))
        func stationsArePublishedAndWithdrawn() async throws {
            try await withLab("clstation") { lab in
                let hosts = try await lab.hostsOnSwitch(count: 3)
                let (a, b, e) = (hosts[0], hosts[1], hosts[2])
                let etcdURL = "http://\(e.underlayAddress):2379"
                _ = try await C.startEtcd(lab, in: e)

                let tapA = lab.interfaceName("vxa")
                let tapB = lab.interfaceName("vxb")
                func config(_ host: Host, tap: String, address: String?, mac: String) -> String {
                    """
                    underlay:
                      local: \(host.underlayAddress)
                    networks:
                      - vni: \(C.vni)
                        tap: \(tap)
                        mac: "\(mac)"
                        ageing: \(Self.ageing)
                    \(address.map { "    address: \($0)\n" } ?? "")cluster:
                      endpoints: [\(etcdURL)]
                      name: stations
                      lease_ttl: 5
                    """
                }
                let routerA = try await lab.startRouter(
                    on: a, config: config(a, tap: tapA, address: "198.19.0.1/24", mac: C.tapMAC(0)), taps: [tapA])
                _ = try await lab.startRouter(on: b, config: config(b, tap: tapB, address: nil, mac: C.tapMAC(1)), taps: [tapB])

                // The station: its own namespace, bridged with b's TAP.
                let station = try await lab.addHost("st")
                let (bEnd, stationEnd) = try await lab.link(b, station)
                let bridge = lab.interfaceName("sbr")
                try await b.ip("link", "add", bridge, "type", "bridge")
                try await b.ip("link", "set", tapB, "master", bridge)
                try await b.ip("link", "set", bEnd, "master", bridge)
                try await b.ip("link", "set", bridge, "up")
                try await station.ip("link", "set", stationEnd, "address", Self.stationMAC)
                try await station.ip("addr", "add", Self.stationAddress + "/24", "dev", stationEnd)

                // The station speaks (ARP for a's address, then ICMP): b sees it, a gets its record.
                let joined = await C.eventually(timeout: .seconds(20)) {
                    await C.flood(a)?.contains(b.underlayAddress) == true
                }
                let seenJoin = await C.tables(a)
                #expect(joined, "a never saw b join: \(seenJoin)")
                try await station.ping("198.19.0.1", count: 2)
                let listed = await C.api(b, "/v1/networks/\(C.vni)/stations") as? [String: Any]
                let stations = listed?["stations"] as? [[String: Any]] ?? []
                #expect(
                    stations.contains {
                        ($0["mac"] as? String) == Self.stationMAC && ($0["ips"] as? [String]) == [Self.stationAddress]
                    }, "b does not list the station: \(listed ?? [:])")
                let shown = try await b.lab.run(
                    b.command([LabEnvironment.routerBinary, "fdb", "stations"] + LabEnvironment.clientArguments))
                #expect(shown.stdout.contains(Self.stationMAC) && shown.stdout.contains(Self.stationAddress), "\(shown.summary)")
                let published = await C.eventually(timeout: .seconds(15)) {
                    await Self.stationEntry(a)?.ips.contains(Self.stationAddress) == true
                }
                let entry = await Self.stationEntry(a)
                #expect(published, "a has no entry with the station's address: \(entry.map { "\($0)" } ?? "none")")
                #expect(entry?.remote == b.underlayAddress)
                // a answers ARP for the station from that entry, and reaches it.
                let answeredBefore = try await routerA.stats().counter("neigh_answered", vni: C.vni)
                try await a.flushNeighbours(tapA)
                try await a.ping(Self.stationAddress, count: 2)
                let answeredAfter = try await routerA.stats().counter("neigh_answered", vni: C.vni)
                #expect(answeredAfter > answeredBefore, "a's ARP for the station was not answered locally")

                // The station leaves: after b's ageing it is withdrawn, and a's entry goes.
                try await station.ip("link", "del", stationEnd)
                let withdrawn = await C.eventually(timeout: .seconds(Self.ageing * 3 + 10)) {
                    await Self.stationEntry(a) == nil
                }
                let seenWithdrawn = await C.tables(a)
                #expect(withdrawn, "a still has the station long after b's ageing: \(seenWithdrawn)")
                let keys = try await C.etcdctl(e, etcdURL, "get", "--prefix", "--keys-only", "/vxrouter/v1/stations/")
                #expect(!keys.contains(Self.stationMAC), "the station's record is still in etcd:\n\(keys)")
            }
        }
    }
}
