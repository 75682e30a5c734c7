// Outer UDP checksums end to end (`underlay.trust_udp_checksum`, README "Outer UDP checksums"):
//  (a) with the coalescer trusting verified outer checksums (IPv4 by configuration, IPv6 by
//      default), checked TCP transfers pass both ways and segments are still coalesced;
//  (b) where the rule does not allow the skip (IPv4, default), a corrupted inner segment behind a
//      zero outer checksum is verified, written alone and dropped by the host's TCP — and, as the
//      control that shows the check can fail, trusting zero checksums would merge it unseen;
//  (c) where the skip is allowed, a datagram corrupted after its outer checksum was computed is
//      dropped by the receiving kernel's UDP checksum: the router never sees it.
// The trains for (b) and (c) come from Tools/lab/vxlan_tcp_train.py (a raw socket in host a, no
// router there). The router is stopped (SIGSTOP) while a train set is queued, so each train
// reaches it in one receive batch and its segments meet in the coalescer.
import Foundation
import LabSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension EndToEnd {
    @Suite("Outer UDP checksums")
    struct OuterChecksums {
        @Test(
            "trusted outer checksums: the log says so, checked 30 MB TCP each way, segments still coalesced",
            .routerBinary, .timeLimit(.minutes(5)), arguments: [false, true])
        func trustedTransfer(ipv6: Bool) async throws {
            try await withLab(ipv6 ? "oct6" : "oct4") { lab in
                let (a, b) = try await lab.twoHosts(ipv6Underlay: ipv6)
                // IPv4 needs the operator's word; IPv6 is trusted by default.
                let extra = ipv6 ? [] : ["--trust-udp-checksum", "true"]
                let (routerA, routerB, tapA, _) = try await lab.startRouterPair(a, b, extraA: extra, extraB: extra)
                for router in [routerA, routerB] {
                    let line = router.log.split(separator: "\n").first { $0.contains("trust_udp_checksum") }
                    let text = try #require(line.map(String.init), "no checksum line:\n\(router.logTail())")
                    #expect(text.contains("trust_udp_checksum=on") || text.contains("trust_udp_checksum=\"on"), "\(text)")
                }
                try await a.ping("198.19.0.2")
                try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 30 << 20, port: 5231, seed: 31)
                try await lab.tcpTransfer(from: b, to: a, address: "198.19.0.1", bytes: 30 << 20, port: 5232, seed: 32)
                let stats = try await routerA.stats()
                let tunnelRx = try stats.counter("tunnel_rx_packets", vni: 42)
                let writes = try await a.interfaceCounter(tapA, "rx_packets")
                #expect(tunnelRx > writes + writes / 4, "no coalescing? TAP writes \(writes), tunnel_rx \(tunnelRx)")
                try await routerA.stop()
                try await routerB.stop()
            }
        }

        @Test(
            "corrupted inner segments: verified and dropped where the skip is not allowed; corrupted after the outer checksum, dropped by the kernel",
            .routerBinary, .timeLimit(.minutes(4)))
        func corruption() async throws {
            try await withLab("occor") { lab in
                let (a, b) = try await lab.twoHosts()
                let trains = 8
                let segments = 8

                // (b) IPv4, trust by default (none): zero outer checksums, one segment per train
                // corrupted. Each bad one is written alone and the host's TCP counts it.
                var tap = lab.interfaceName("vxcv")
                var router = try await startReceiver(lab, on: b, tap: tap, remote: a, trust: nil)
                var mac = try await b.macAddress(of: tap)
                var before = try await Counters.read(b, tap: tap, router: router)
                try await sendTrains(lab, from: a, to: b, router: router, mac: mac, outer: "zero", trains: trains, segments: segments)
                var after = try await Counters.read(b, tap: tap, router: router, waitingFor: before.tunnelRx + trains * segments)
                #expect(after.tunnelRx - before.tunnelRx == trains * segments)
                #expect(after.tapWrites - before.tapWrites < trains * segments, "no coalescing: the check below proves nothing")
                #expect(after.tcpChecksumErrors - before.tcpChecksumErrors == trains, "\(before) → \(after)")
                try await router.stop()

                // The rule's reason, as a control: told that IPv4 peers send checksums when they
                // do not, the router merges the corrupted segments unverified and the host's TCP
                // never sees them as bad. (What `trust_udp_checksum: auto` never does over IPv4.)
                tap = lab.interfaceName("vxcm")
                router = try await startReceiver(lab, on: b, tap: tap, remote: a, trust: "true")
                mac = try await b.macAddress(of: tap)
                before = try await Counters.read(b, tap: tap, router: router)
                try await sendTrains(lab, from: a, to: b, router: router, mac: mac, outer: "zero", trains: trains, segments: segments)
                after = try await Counters.read(b, tap: tap, router: router, waitingFor: before.tunnelRx + trains * segments)
                #expect(after.tunnelRx - before.tunnelRx == trains * segments)
                #expect(after.tcpChecksumErrors - before.tcpChecksumErrors < trains, "\(before) → \(after)")

                // (c) Same router (skip allowed), outer checksums computed and then one inner byte
                // flipped per train: the kernel's UDP checksum drops exactly those datagrams; the
                // router gets the rest, and nothing bad reaches the host's TCP.
                before = after
                try await sendTrains(lab, from: a, to: b, router: router, mac: mac, outer: "computed", trains: trains, segments: segments)
                after = try await Counters.read(
                    b, tap: tap, router: router, waitingFor: before.tunnelRx + trains * (segments - 1))
                #expect(after.udpChecksumErrors - before.udpChecksumErrors == trains, "\(before) → \(after)")
                #expect(after.tunnelRx - before.tunnelRx == trains * (segments - 1), "\(before) → \(after)")
                #expect(after.tcpChecksumErrors == before.tcpChecksumErrors, "\(before) → \(after)")
                try await router.stop()
            }
        }

        /// vxrouter on `host` with one network (VNI 42, TAP `tap` at 198.19.0.2/24) flooding to `remote`.
        func startReceiver(_ lab: Lab, on host: Host, tap: String, remote: Host, trust: String?) async throws
            -> RouterProcess
        {
            try await lab.startRouter(
                on: host, tap: tap, remotes: [remote.underlayAddress], address: "198.19.0.2/24",
                extra: trust.map { ["--trust-udp-checksum", $0] } ?? [])
        }

        /// Queues the trains at the stopped router, then lets it run.
        func sendTrains(
            _ lab: Lab, from sender: Host, to receiver: Host, router: RouterProcess, mac: String, outer: String,
            trains: Int, segments: Int
        ) async throws {
            router.child.signal(SIGSTOP)
            defer { router.child.signal(SIGCONT) }
            try await lab.run(
                sender.command([
                    LabEnvironment.python, LabEnvironment.script("vxlan_tcp_train.py"), "--from", sender.underlayAddress,
                    "--to", receiver.underlayAddress, "--inner-mac", mac, "--inner-to", "198.19.0.2",
                    "--trains", String(trains), "--segments", String(segments), "--corrupt", "3",
                    "--outer-checksum", outer,
                ]), timeout: .seconds(20))
        }

        struct Counters: CustomStringConvertible {
            var tunnelRx = 0
            var tapWrites = 0
            var tcpChecksumErrors = 0
            var udpChecksumErrors = 0
            var description: String {
                "tunnel_rx \(tunnelRx), TAP writes \(tapWrites), Tcp InCsumErrors \(tcpChecksumErrors), Udp InCsumErrors \(udpChecksumErrors)"
            }

            /// The router's tunnel_rx (once it reaches `waitingFor`, or after 10 s), the TAP's
            /// rx_packets (frames the router wrote), and the host's TCP and UDP checksum errors.
            static func read(_ host: Host, tap: String, router: RouterProcess, waitingFor: Int = 0) async throws -> Counters {
                var counters = Counters()
                for _ in 0..<100 {
                    counters.tunnelRx = try await router.stats().counter("tunnel_rx_packets", vni: 42)
                    if counters.tunnelRx >= waitingFor { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                // Let the writes of the last batch land before the host's counters are read.
                try await Task.sleep(for: .milliseconds(200))
                counters.tapWrites = try await host.interfaceCounter(tap, "rx_packets")
                let snmp = try await host.run("cat", "/proc/net/snmp").stdout
                counters.tcpChecksumErrors = try field(snmp, "Tcp", "InCsumErrors")
                counters.udpChecksumErrors = try field(snmp, "Udp", "InCsumErrors")
                return counters
            }

            /// A value from /proc/net/snmp: a header line "Proto: names…" followed by "Proto: values…".
            static func field(_ snmp: String, _ proto: String, _ name: String) throws -> Int {
                let lines = snmp.split(separator: "\n").filter { $0.hasPrefix("\(proto): ") }
                guard lines.count >= 2 else { throw LabFailure("no \(proto) lines in /proc/net/snmp:\n\(snmp)") }
                let names = lines[0].split(separator: " ")
                let values = lines[1].split(separator: " ")
                guard let index = names.firstIndex(where: { $0 == name }), index < values.count, let value = Int(values[index])
                else { throw LabFailure("no \(proto) \(name) in /proc/net/snmp:\n\(snmp)") }
                return value
            }
        }
    }
}
