// Issue 13, PMTU signalling (`pmtu_signal`), the case the router implements: a TAP MTU set above
// what the underlay carries (1500 over a 1500 underlay, 50 bytes short). A frame that does not fit
// is answered with ICMP "fragmentation needed" carrying the MTU that fits, as the kernel's vxlan
// does for bridged traffic since 5.9, so the sender's TCP lowers its segment size instead of
// black-holing. Two routers (no kernel peer), so nothing here depends on checksum handling.
//
// And the case the configured MTU cannot see: a router between the VTEPs whose next link is
// narrower (1400) answers the too-big DF packets with ICMP "fragmentation needed"; the kernel caches
// that path MTU, refuses the next too-big send, the router reads the path MTU back and signals the
// inner sender with the inner MTU that fits (1350), and shows it in `/v1/remotes`.
import Foundation
import LabSupport
import Testing

extension EndToEnd {
    @Suite("PMTU signalling")
    struct PMTUSignal {
        @Test(
            "TAP MTU 1500 over a 1500 underlay: checked 20 MB TCP each way, ICMP frag-needed (MTU 1450) seen on the TAP",
            .routerBinary, .timeLimit(.minutes(5)))
        func oversizeFramesAreSignalled() async throws {
            try await withLab("pmtu") { lab in
                guard lab.tsharkAvailable() else { return }
                let (a, b) = try await lab.twoHosts()
                func config(_ host: Host, peer: Host, octet: Int) -> String {
                    """
                    underlay: { local: \(host.underlayAddress), port: 4789 }
                    networks:
                      - vni: 42
                        tap: \(lab.interfaceName("pm\(host.name)"))
                        address: 198.19.0.\(octet)/24
                        mtu: 1500
                        flood: [\(peer.underlayAddress)]
                    """
                }
                let tapA = lab.interfaceName("pma")
                let routerA = try await lab.startRouter(on: a, config: config(a, peer: b, octet: 1), taps: [tapA])
                let routerB = try await lab.startRouter(
                    on: b, config: config(b, peer: a, octet: 2), taps: [lab.interfaceName("pmb")])
                #expect(try await a.mtu(of: tapA) == 1500)

                let capture = lab.logPath("pmtu-tap.pcap")
                let tshark = try await Self.captureFragmentationNeeded(lab, on: a, tap: tapA, into: capture)
                try await a.ping("198.19.0.2")
                try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 20 << 20, port: 5341, seed: 71)
                try await lab.tcpTransfer(from: b, to: a, address: "198.19.0.1", bytes: 20 << 20, port: 5342, seed: 72)
                #expect(await tshark.wait(timeout: .seconds(30)), "no ICMP fragmentation-needed seen on \(tapA)")
                await tshark.terminate()

                let seen = try await lab.tshark(capture, fields: ["icmp.type", "icmp.code", "icmp.mtu"])
                #expect(seen.count == 1 && seen[0] == ["3", "4", "1450"], "\(seen)")
                // a's sender was told; b's then needed no telling: a's kernel, having learned the path
                // MTU of 198.19.0.2, advertises the smaller MSS on b's connection.
                let stats = try await routerA.stats()
                #expect(try stats.counter("pmtu_signalled", vni: 42) > 0, "\(stats)")
                #expect(try stats.counter("drop_oversize", vni: 42) > 0, "the too-big frames are still dropped: \(stats)")
                try await routerA.stop()
                try await routerB.stop()
            }
        }

        @Test(
            "a router between the VTEPs with a 1400 link: path MTU learned, ICMP frag-needed (MTU 1350) on the TAP, checked 20 MB TCP each way",
            .routerBinary, .timeLimit(.minutes(5)))
        func pathMTUOfARouterOnTheWayIsLearned() async throws {
            try await withLab("pmtup") { lab in
                guard lab.tsharkAvailable() else { return }
                let (a, _, b) = try await lab.routedHosts(narrowMTU: 1400)
                // Both TAPs at 1450: a's default over its 1500 link, and b's set to match, so neither
                // side's TCP advertises an MSS small enough to hide the narrow link.
                func config(_ host: Host, peer: Host, octet: Int) -> String {
                    """
                    underlay: { local: \(host.underlayAddress), port: 4789 }
                    networks:
                      - vni: 42
                        tap: \(lab.interfaceName("pp\(host.name)"))
                        address: 198.19.0.\(octet)/24
                        mtu: 1450
                        flood: [\(peer.underlayAddress)]
                    """
                }
                let tapA = lab.interfaceName("ppa")
                let routerA = try await lab.startRouter(on: a, config: config(a, peer: b, octet: 1), taps: [tapA])
                let routerB = try await lab.startRouter(
                    on: b, config: config(b, peer: a, octet: 2), taps: [lab.interfaceName("ppb")])

                let capture = lab.logPath("pmtu-path-tap.pcap")
                let tshark = try await Self.captureFragmentationNeeded(lab, on: a, tap: tapA, into: capture)
                try await a.ping("198.19.0.2")
                try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 20 << 20, port: 5343, seed: 73)
                try await lab.tcpTransfer(from: b, to: a, address: "198.19.0.1", bytes: 20 << 20, port: 5344, seed: 74)
                #expect(await tshark.wait(timeout: .seconds(30)), "no ICMP fragmentation-needed seen on \(tapA)")
                await tshark.terminate()

                let seen = try await lab.tshark(capture, fields: ["icmp.type", "icmp.code", "icmp.mtu"])
                #expect(seen.count == 1 && seen[0] == ["3", "4", "1350"], "1400 - 50: \(seen)")
                let peers = try await a.vxrouterJSON(["peers"])
                let remotes = peers["remotes"] as? [[String: Any]] ?? []
                let toB = remotes.first { $0["address"] as? String == b.underlayAddress }
                #expect(toB?["path_mtu"] as? Int == 1400 && toB?["path_mtu_learned"] as? Bool == true, "\(peers)")
                let table = try await a.vxrouter(["peers"])
                #expect(table.stdout.contains("1400 (learned)"), "\(table.stdout)")
                let stats = try await routerA.stats()
                #expect(try stats.counter("pmtu_path_signalled", vni: 42) > 0, "\(stats)")
                try await routerA.stop()
                try await routerB.stop()
            }
        }

        /// tshark on `tap` in `host`, waiting for the first ICMP "fragmentation needed" into `capture`.
        static func captureFragmentationNeeded(_ lab: Lab, on host: Host, tap: String, into capture: String)
            async throws -> ChildProcess
        {
            let tshark = try lab.spawn(
                host.command([
                    LabEnvironment.tool("tshark"), "-n", "-i", tap, "-f", "icmp[0] == 3 and icmp[1] == 4",
                    "-c", "1", "-a", "duration:120", "-w", capture,
                ]), name: "tshark-capture")
            guard await tshark.waitForOutput("Capturing on", timeout: .seconds(30), onStderr: true) else {
                throw LabFailure("tshark did not start capturing: \(tshark.result(timedOut: false).summary)")
            }
            return tshark
        }
    }
}
