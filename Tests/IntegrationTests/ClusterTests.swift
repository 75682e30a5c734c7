// Cluster mode end to end: a real etcd and vxrouter hosts on one L2 underlay, configured with no
// flood lists and no static entries — the cluster tells each router about the others. One
// scenario, in the order a cluster lives through it (each step builds on the state the last one
// left, which keeps the suite to about a minute):
//
//  1. three hosts find each other: ping and a checked TCP transfer between every pair;
//  2. a fourth host joins and is reached, nothing done to the other three;
//  3. a MAC moves from b's TAP to d's (the address behind it with it) and a's traffic follows;
//     meanwhile c is cut off from etcd, the revisions it missed are compacted away and etcd is
//     killed and started again, so when c comes back its watch cannot resume: it must list again
//     and see the move (the others resume theirs past the compaction);
//  4. etcd is frozen (SIGSTOP) while traffic flows: forwarding goes on, nothing is purged; after
//     SIGCONT every router converges again;
//  5. c dies with SIGKILL (no clean leave): its entries leave the others once its lease expires.
//
// etcd runs in a host of its own (e, 198.18.0.5), so that c is cut off from etcd alone: its
// link to the switch goes down (both directions, open connections included) while a, b and d
// go on with etcd and each other.
// Every TAP gets a MAC of its own: the derived stable MAC depends on the machine id and the VNI
// only, so routers on one machine would all claim the same MAC (a conflict, on purpose reported).
import Foundation
import LabSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension EndToEnd {
    @Suite("Cluster mode: hosts through etcd")
    struct Cluster {
        static let leaseTTL = 5
        static let overlay = "e2e"
        static let vni = 42

        /// The TAP MAC of router i (0-based).
        static func tapMAC(_ i: Int) -> String { String(format: "02:00:00:00:42:%02x", i + 1) }
        /// The MAC that moves from b to d, and the address that moves with it.
        static let movingMAC = "02:00:00:00:42:64"
        static let movingAddress = "198.19.0.100"

        static func config(_ host: Host, index: Int, tap: String, etcd: String) -> String {
            """
            underlay:
              local: \(host.underlayAddress)
            networks:
              - vni: \(vni)
                tap: \(tap)
                address: 198.19.0.\(index + 1)/24
                mac: "\(tapMAC(index))"
            cluster:
              endpoints: [\(etcd)]
              name: \(overlay)
              lease_ttl: \(leaseTTL)
            """
        }

        /// GET `path` from the router in `host` (its control endpoint: 127.0.0.1:4790 of the
        /// host's namespace), parsed; nil when it does not answer.
        static func api(_ host: Host, _ path: String) async -> Any? {
            guard
                let result = try? await host.run(
                    "curl", "-sf", "-m", "3", "-H", "Authorization: Bearer \(LabEnvironment.controlToken)",
                    LabEnvironment.controlURL + path, check: false),
                result.succeeded
            else { return nil }
            return try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
        }

        /// The router's flood list for the VNI; nil when unreadable.
        static func flood(_ host: Host) async -> Set<String>? {
            guard let object = await api(host, "/v1/networks/\(vni)/flood") as? [String: Any],
                let remotes = object["remotes"] as? [String]
            else { return nil }
            return Set(remotes)
        }

        /// The router's FDB for the VNI, MAC → remote; nil when unreadable.
        static func fdb(_ host: Host) async -> [String: String]? {
            guard let object = await api(host, "/v1/networks/\(vni)/fdb") as? [String: Any],
                let entries = object["entries"] as? [[String: Any]]
            else { return nil }
            var table: [String: String] = [:]
            for entry in entries {
                if let mac = entry["mac"] as? String, let remote = entry["remote"] as? String {
                    table[mac.lowercased()] = remote
                }
            }
            return table
        }

        /// Polls `condition` every 100 ms until it holds or `timeout` passes; whether it held.
        static func eventually(timeout: Duration, _ condition: () async -> Bool) async -> Bool {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if await condition() { return true }
                await nap(milliseconds: 100)
            }
            return await condition()
        }

        /// A router host of the overlay and the MAC its TAP has now.
        struct Member {
            let host: Host
            var mac: String
        }

        /// Whether `host`'s router has the others as flood members and their TAP MACs as entries
        /// pointing at them (and nothing pointing at the absent ones).
        static func converged(_ host: Host, members: [Member], absent: [Host] = []) async -> Bool {
            let others = members.filter { $0.host !== host }
            guard let flood = await flood(host), let fdb = await fdb(host) else { return false }
            for other in others {
                guard flood.contains(other.host.underlayAddress), fdb[other.mac] == other.host.underlayAddress
                else { return false }
            }
            for gone in absent where flood.contains(gone.underlayAddress) || fdb.values.contains(gone.underlayAddress) {
                return false
            }
            return true
        }

        /// `host`'s flood list and FDB, for failure messages.
        static func tables(_ host: Host) async -> String {
            let flood = await flood(host).map { $0.sorted().joined(separator: ", ") } ?? "unreadable"
            let fdb = await fdb(host).map { $0.sorted { $0.key < $1.key }.map { "\($0.key) → \($0.value)" }.joined(separator: ", ") }
            return "\(host.name): flood [\(flood)], fdb [\(fdb ?? "unreadable")]"
        }

        static func etcdctl(_ etcdHost: Host, _ url: String, _ arguments: String...) async throws -> String {
            try await etcdHost.lab.run(
                etcdHost.command([LabEnvironment.tool("etcdctl"), "--endpoints", url] + arguments)
            ).stdout
        }

        @Test(
            "hosts with no flood lists find each other through etcd; join, MAC move, compaction, etcd frozen, SIGKILL",
            .routerBinary, .timeLimit(.minutes(3)))
        func clusterLifecycle() async throws {
            try await withLab("cluster") { lab in
                let hosts = try await lab.hostsOnSwitch(count: 5)
                let (a, b, c, d, e) = (hosts[0], hosts[1], hosts[2], hosts[3], hosts[4])
                let etcdURL = "http://\(e.underlayAddress):2379"
                /// etcd in e; started again on the same data directory, it keeps every key, lease
                /// and the compaction.
                func startEtcd() async throws -> ChildProcess { try await Self.startEtcd(lab, in: e) }
                var etcd = try await startEtcd()

                var routers: [RouterProcess] = []
                var taps: [String] = []
                func start(_ index: Int) async throws {
                    let host = hosts[index]
                    let tap = lab.interfaceName("vx\(host.name)")
                    taps.append(tap)
                    routers.append(
                        try await lab.startRouter(
                            on: host, config: Self.config(host, index: index, tap: tap, etcd: etcdURL), taps: [tap]))
                }
                for index in 0..<3 { try await start(index) }

                // 1. Three hosts, nothing about each other in their configs.
                var members = [a, b, c].enumerated().map { Member(host: $0.element, mac: Self.tapMAC($0.offset)) }
                for member in members {
                    let done = await Self.eventually(timeout: .seconds(20)) { await Self.converged(member.host, members: members) }
                    let seen = await Self.tables(member.host)
                    #expect(done, "did not converge: \(seen)")
                }
                for member in members {
                    for (index, other) in members.enumerated() where other.host !== member.host {
                        try await member.host.ping("198.19.0.\(index + 1)", count: 2)
                    }
                }
                // GET /v1/cluster: connected, the three members, a lease; `vxrouter cluster status` shows it.
                for member in members {
                    let info = await Self.api(member.host, "/v1/cluster") as? [String: Any]
                    #expect(info?["connected"] as? Bool == true, "\(member.host.name): \(info ?? [:])")
                    #expect((info?["members"] as? [String])?.count == 3, "\(member.host.name): \(info ?? [:])")
                    #expect(info?["lease_id"] is String, "\(member.host.name): \(info ?? [:])")
                }
                let status = try await a.lab.run(
                    a.command([LabEnvironment.routerBinary, "cluster", "status"] + LabEnvironment.clientArguments))
                #expect(status.stdout.contains("etcd: connected") && status.stdout.contains("members (3)"), "\(status.summary)")

                for (n, (from, to)) in [(a, b), (b, c), (c, a)].enumerated() {
                    let index = hosts.firstIndex { $0 === to }!
                    try await lab.tcpTransfer(
                        from: from, to: to, address: "198.19.0.\(index + 1)", bytes: 4 << 20, port: 5201 + n, seed: n + 1)
                }

                // 2. d joins; a, b and c are not touched.
                try await start(3)
                members.append(Member(host: d, mac: Self.tapMAC(3)))
                for member in members {
                    let done = await Self.eventually(timeout: .seconds(20)) { await Self.converged(member.host, members: members) }
                    let seen = await Self.tables(member.host)
                    #expect(done, "did not converge after d joined: \(seen)")
                }
                for member in members.prefix(3) { try await member.host.ping("198.19.0.4", count: 2) }
                try await d.ping("198.19.0.1", count: 2)

                // 3. A MAC appears behind b (a station's address with it) and is reached from a.
                try await b.ip("link", "set", taps[1], "address", Self.movingMAC)
                try await b.ip("addr", "add", Self.movingAddress + "/24", "dev", taps[1])
                let atB = await Self.eventually(timeout: .seconds(15)) {
                    await Self.fdb(a)?[Self.movingMAC] == b.underlayAddress
                }
                let seenAtB = await Self.tables(a)
                #expect(atB, "a never saw \(Self.movingMAC) behind b: \(seenAtB)")
                try await a.ping(Self.movingAddress, count: 2)

                // c is cut off: its underlay link goes down (nothing in or out, open connections
                // included), and those to etcd are reset so that its watch fails at once.
                try await c.ip("link", "set", c.underlayDevice, "down")
                try await c.run("ss", "-K", "dst", e.underlayAddress, check: false)

                // The MAC moves to d, the address with it; a's traffic follows.
                try await b.ip("addr", "del", Self.movingAddress + "/24", "dev", taps[1])
                try await b.ip("link", "set", taps[1], "address", Self.tapMAC(1))
                try await d.ip("link", "set", taps[3], "address", Self.movingMAC)
                try await d.ip("addr", "add", Self.movingAddress + "/24", "dev", taps[3])
                members[3].mac = Self.movingMAC
                let atD = await Self.eventually(timeout: .seconds(15)) {
                    await Self.fdb(a)?[Self.movingMAC] == d.underlayAddress
                }
                let seenAtD = await Self.tables(a)
                #expect(atD, "a never saw \(Self.movingMAC) move to d: \(seenAtD)")
                try await a.ping(Self.movingAddress, count: 2)
                let cutOff = await Self.fdb(c)?[Self.movingMAC]
                #expect(cutOff == b.underlayAddress, "c, cut off, should not know of the move yet")
                let cNoticed = await Self.eventually(timeout: .seconds(15)) {
                    (await Self.api(c, "/v1/cluster") as? [String: Any])?["connected"] as? Bool == false
                }
                #expect(cNoticed, "c never noticed it lost etcd")

                // Everything c missed is compacted away, then c comes back: its watch cannot
                // resume there, so it lists again and sees the move.
                let marker = try await Self.etcdctl(e, etcdURL, "put", "/vxt-marker", "x", "-w", "json")
                guard let revision = Self.headerRevision(marker) else { throw LabFailure("no revision in \(marker)") }
                _ = try await Self.etcdctl(e, etcdURL, "compact", String(revision))
                // etcd is killed and started again: no connection c had survives (a watch stream
                // left open through the cut would otherwise get the missed events retransmitted),
                // and the others resume their watches past the compaction.
                etcd.signal(SIGKILL)
                _ = await etcd.wait(timeout: .seconds(5))
                etcd = try await startEtcd()
                try await c.ip("link", "set", c.underlayDevice, "up")
                let cFollowed = await Self.eventually(timeout: .seconds(25)) {
                    await Self.fdb(c)?[Self.movingMAC] == d.underlayAddress
                }
                let seenOnC = await Self.tables(c)
                #expect(cFollowed, "c did not catch up after the compaction: \(seenOnC)")
                // What is checked is what a user sees: c is in line with the cluster again after a
                // compaction past what it had seen. Whether it got there by the watch's "compacted"
                // answer and a re-list, or found the move some other way, depended on timing in
                // this lab (one run in four saw relists == 1 with the move applied); the compaction
                // answer itself is tested against a real etcd in EtcdTests and the re-list diff in
                // ReconcilerTests.
                try await c.ping(Self.movingAddress, count: 2)
                // d's TAP MAC changed: every host forgets the neighbours it had resolved.
                for (host, tap) in zip(hosts, taps) { try await host.flushNeighbours(tap) }

                // 4. etcd frozen while traffic flows: forwarding goes on, nothing is purged.
                for member in members {
                    let done = await Self.eventually(timeout: .seconds(20)) {
                        await Self.converged(member.host, members: members)
                    }
                    let seen = await Self.tables(member.host)
                    #expect(done, "did not converge before etcd was frozen: \(seen)")
                }
                try await a.ping("198.19.0.2", count: 1)
                try await c.ping("198.19.0.4", count: 1)
                let unreachableBefore = routers.map { $0.log.components(separatedBy: "etcd unreachable").count }
                etcd.signal(SIGSTOP)
                let frozenAt = ContinuousClock.now
                var frozenPings: [ChildProcess] = []
                for (from, to) in [(a, "198.19.0.2"), (c, "198.19.0.4"), (d, "198.19.0.1")] {
                    frozenPings.append(
                        try lab.spawn(from.command([LabEnvironment.tool("ping"), "-n", "-c", "30", "-i", "0.2", to]), name: "ping-frozen-\(from.name)"))
                }
                for ping in frozenPings { _ = await ping.wait(timeout: .seconds(15)) }
                let floodWhileFrozen = await Self.flood(b)
                etcd.signal(SIGCONT)
                let frozenFor = ContinuousClock.now - frozenAt
                for ping in frozenPings {
                    let result = ping.result(timedOut: ping.isRunning)
                    #expect(
                        result.succeeded && result.stdout.contains(" 0% packet loss"),
                        "traffic stopped while etcd was frozen (\(frozenFor)): \(result.summary)")
                }
                #expect(
                    floodWhileFrozen == Set([a, c, d].map(\.underlayAddress)),
                    "b's flood list changed while etcd was frozen: \(floodWhileFrozen ?? [])")
                for (i, router) in routers.enumerated() {
                    #expect(
                        router.log.components(separatedBy: "etcd unreachable").count > unreachableBefore[i],
                        "router \(i) never noticed etcd was frozen (\(frozenFor)):\n\(router.logTail())")
                }
                // Thawed: every router is connected again and agrees (c's MAC, d's moved one).
                for member in members {
                    let done = await Self.eventually(timeout: .seconds(25)) { await Self.converged(member.host, members: members) }
                    let seen = await Self.tables(member.host)
                    #expect(done, "did not converge after etcd thawed: \(seen)")
                }
                try await b.ping("198.19.0.3", count: 2)

                // 5. c dies without a word: once its lease expires the others forget it.
                routers[2].child.signal(SIGKILL)
                _ = await routers[2].child.wait(timeout: .seconds(5))
                let survivors = members.filter { $0.host !== c }
                for member in survivors {
                    let gone = await Self.eventually(timeout: .seconds(Self.leaseTTL * 3 + 5)) {
                        await Self.converged(member.host, members: survivors, absent: [c])
                    }
                    let seen = await Self.tables(member.host)
                    #expect(gone, "still has c after its lease: \(seen)")
                }
                try await a.ping("198.19.0.2", count: 2)
                try await d.ping("198.19.0.1", count: 2)
                for (i, router) in routers.enumerated() where i != 2 { try await router.stop() }
            }
        }

        /// A one-member etcd serving `host`'s underlay address on 2379 (data in the lab's log
        /// directory), healthy before this returns.
        static func startEtcd(_ lab: Lab, in host: Host) async throws -> ChildProcess {
            let url = "http://\(host.underlayAddress):2379"
            let etcd = try lab.spawn(
                host.command([
                    LabEnvironment.tool("etcd"), "--name", "e2e", "--data-dir", lab.logPath("etcd-data"),
                    "--listen-client-urls", url, "--advertise-client-urls", url,
                    "--listen-peer-urls", "http://127.0.0.1:2380",
                    "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                    "--initial-cluster", "e2e=http://127.0.0.1:2380",
                ]), name: "etcd", combinedLog: true)
            let etcdUp = await Self.eventually(timeout: .seconds(20)) {
                (try? await Self.etcdctl(host, url, "endpoint", "health")) != nil
            }
            guard etcdUp else { throw LabFailure("etcd did not start: \(etcd.stdout.suffix(2000))") }
            return etcd
        }

        /// `header.revision` of an etcdctl `-w json` answer.
        static func headerRevision(_ json: String) -> Int? {
            guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                let header = object["header"] as? [String: Any]
            else { return nil }
            return (header["revision"] as? NSNumber)?.intValue
        }
    }
}
