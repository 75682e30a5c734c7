// Scenario 1: vxrouter on both hosts, one veth underlay between them.
import LabSupport
import Testing

extension EndToEnd {
    @Suite("Two vxrouter hosts")
    struct TwoRouters {
        @Test(
            "ping both ways, checked 50 MB TCP transfer each way", .routerBinary, .timeLimit(.minutes(6)))
        func pingAndTransfer() async throws {
            try await withLab("two") { lab in
                let (a, b) = try await lab.twoHosts()
                let (routerA, routerB, tapA, tapB) = try await lab.startRouterPair(a, b)

                // The contract for the TAP: up, addressed, MTU = underlay 1500 - 50.
                #expect(try await a.isUp(tapA), "TAP \(tapA) is not up")
                #expect(try await a.mtu(of: tapA) == 1450)
                #expect(try await a.ipv4Addresses(of: tapA).contains("198.19.0.1/24"))

                // Each direction starts with ARP, resolved by flooding.
                try await a.ping("198.19.0.2")
                for (host, tap) in [(a, tapA), (b, tapB)] { try await host.flushNeighbours(tap) }
                try await b.ping("198.19.0.1")

                try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 50 << 20, port: 5201, seed: 1)
                try await lab.tcpTransfer(from: b, to: a, address: "198.19.0.1", bytes: 50 << 20, port: 5202, seed: 2)

                for router in [routerA, routerB] {
                    let stats = try await router.stats()
                    #expect(try stats.counter("tunnel_tx_packets", vni: 42) > 0, "\(stats)")
                    #expect(try stats.counter("tunnel_rx_packets", vni: 42) > 0, "\(stats)")
                    #expect(try stats.counter("tap_rx_packets", vni: 42) > 0, "\(stats)")
                    #expect(try stats.counter("tap_tx_packets", vni: 42) > 0, "\(stats)")
                }
                try await routerA.stop()
                try await routerB.stop()
            }
        }
    }
}
