// Scenario 6: malformed VXLAN sent at the router's UDP port from the peer host. Each kind must be
// counted under its drop reason (summed over the per-VNI lines and the `vni=-` line, since
// whether a reason is attributable depends on how much of the header could be read), nothing
// else may be counted for it, and the router must keep forwarding.
//
// The underlay MTU is 9000 and the network's MTU 1450 (config), so an oversize inner frame
// arrives in one unfragmented datagram.
import LabSupport
import Testing

extension EndToEnd {
    @Suite("Malformed VXLAN")
    struct Malformed {
        @Test(
            "each malformed kind lands on its drop reason; forwarding goes on", .routerBinary, .timeLimit(.minutes(3)))
        func dropsAreCountedByReason() async throws {
            try await withLab("malformed") { lab in
                let (a, b) = try await lab.twoHosts(underlayMTU: 9000)
                let tap = lab.interfaceName("vxa")
                let kernel = lab.interfaceName("vxk")
                try await b.addKernelVXLAN(name: kernel, peers: [a.underlayAddress], address: "198.19.0.2/24")
                let router = try await lab.startRouter(
                    on: a,
                    config: """
                        underlay: { local: \(a.underlayAddress), port: 4789 }
                        networks:
                          - vni: 42
                            tap: \(tap)
                            address: 198.19.0.1/24
                            mtu: 1450
                            flood: [\(b.underlayAddress)]
                        """,
                    taps: [tap])
                #expect(try await a.mtu(of: tap) == 1450)
                try await a.ping("198.19.0.2")

                // (kind, count, the counter that must move by exactly `count`, or nil for "any drop")
                let cases: [(kind: String, count: Int, counter: String?)] = [
                    ("truncated", 10, "drop_truncated"),
                    ("bad-flags", 5, "drop_bad_flags"),
                    ("unknown-vni", 5, "drop_unknown_vni"),
                    ("oversize", 5, "drop_oversize"),
                    ("random", 20, nil),
                ]
                for (kind, count, counter) in cases {
                    let before = try await router.stats()
                    try await lab.sendVXLAN(from: b, to: a.underlayAddress, kind: kind, count: count)
                    let after = try await router.stats(until: { $0.totalDrops - before.totalDrops >= count })
                    if let counter {
                        let moved = after.total(counter) - before.total(counter)
                        #expect(moved == count, "\(count) \(kind) packets moved \(counter) by \(moved):\n\(after)")
                    }
                    let drops = after.totalDrops - before.totalDrops
                    #expect(
                        drops == count, "\(count) \(kind) packets moved the drop counters by \(drops) in all:\n\(after)"
                    )
                    #expect(router.child.isRunning, "vxrouter died on \(kind) packets")
                }

                // For contrast: well-formed packets are received, not dropped.
                let before = try await router.stats()
                let receivedBefore = try before.counter("tunnel_rx_packets", vni: 42)
                try await lab.sendVXLAN(from: b, to: a.underlayAddress, kind: "valid", count: 5)
                let after = try await router.stats(until: {
                    ((try? $0.counter("tunnel_rx_packets", vni: 42)) ?? 0) >= receivedBefore + 5
                })
                let received = try after.counter("tunnel_rx_packets", vni: 42) - receivedBefore
                #expect(received == 5, "5 valid packets moved tunnel_rx_packets by \(received):\n\(after)")
                #expect(after.totalDrops == before.totalDrops, "valid packets were dropped:\n\(after)")

                try await a.ping("198.19.0.2")
                try await b.ping("198.19.0.1")
                try await router.stop()
            }
        }
    }
}
