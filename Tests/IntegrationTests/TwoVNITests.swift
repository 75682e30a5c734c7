// Scenario 4: two VNIs between two vxrouter hosts (config file form). Traffic on VNI 42 must
// never surface on VNI 43: its TAP receives nothing and its tunnel counters stay at zero.
// IPv6 is off in both hosts, so nothing else talks on the idle TAP.
import LabSupport
import Testing

extension EndToEnd {
    @Suite("Two VNIs between two vxrouter hosts")
    struct TwoVNIs {
        @Test("VNI 42 traffic never reaches VNI 43", .routerBinary, .timeLimit(.minutes(3)))
        func networksAreIsolated() async throws {
            try await withLab("vni") { lab in
                let (a, b) = try await lab.twoHosts()
                func config(_ host: Host, peer: Host, octet: Int) -> String {
                    """
                    underlay: { local: \(host.underlayAddress), port: 4789 }
                    workers: auto
                    networks:
                      - vni: 42
                        tap: \(lab.interfaceName("t42\(host.name)"))
                        address: 198.19.42.\(octet)/24
                        flood: [\(peer.underlayAddress)]
                      - vni: 43
                        tap: \(lab.interfaceName("t43\(host.name)"))
                        address: 198.19.43.\(octet)/24
                        flood: [\(peer.underlayAddress)]
                    """
                }
                let taps = { (host: Host) in
                    [lab.interfaceName("t42\(host.name)"), lab.interfaceName("t43\(host.name)")]
                }
                let routerA = try await lab.startRouter(on: a, config: config(a, peer: b, octet: 1), taps: taps(a))
                let routerB = try await lab.startRouter(on: b, config: config(b, peer: a, octet: 2), taps: taps(b))
                let idleA = taps(a)[1]
                let idleB = taps(b)[1]
                // Each TAP announces its address when it comes up (gratuitous ARP, flooded to the
                // peer on that TAP's own VNI): legitimate VNI 43 traffic. Let it pass, then count.
                await nap(milliseconds: 1500)
                let routerBefore = [try await routerA.stats(), try await routerB.stats()]
                let before = (
                    a: try await a.interfaceCounter(idleA, "rx_packets"),
                    b: try await b.interfaceCounter(idleB, "rx_packets")
                )

                try await a.ping("198.19.42.2")
                try await b.ping("198.19.42.1")
                let counts = try await lab.broadcast(from: a, to: "198.19.42.255", receivers: [b])
                #expect(counts.map(\.distinct) == [5] && counts.map(\.total) == [5], "\(counts)")

                let after = (
                    a: try await a.interfaceCounter(idleA, "rx_packets"),
                    b: try await b.interfaceCounter(idleB, "rx_packets")
                )
                #expect(after.b - before.b == 0, "VNI 43 TAP in b received \(after.b - before.b) frames")
                #expect(after.a - before.a == 0, "VNI 43 TAP in a received \(after.a - before.a) frames")
                for (router, earlier) in zip([routerA, routerB], routerBefore) {
                    let stats = try await router.stats()
                    #expect(try stats.counter("tunnel_rx_packets", vni: 42) > 0, "\(stats)")
                    for counter in ["tunnel_rx_packets", "tap_tx_packets"] {
                        let grew = try stats.counter(counter, vni: 43) - earlier.counter(counter, vni: 43)
                        #expect(grew == 0, "\(counter) of VNI 43 grew by \(grew) while VNI 42 carried traffic: \(stats)")
                    }
                }
                try await routerA.stop()
                try await routerB.stop()
            }
        }
    }
}
