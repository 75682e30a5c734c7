// Scenarios 2 and 5: vxrouter on host A, the Linux kernel's vxlan device on host B, over an
// IPv4 and an IPv6 underlay. The kernel is the reference VTEP: it floods through its all-zeros
// FDB entry and learns source MACs, so it must learn the router's TAP MAC at A's address. B's
// underlay keeps its checksum offload on, as users have it: the segments B sends carry unfinished
// inner checksums, which the router must accept (and count) as the kernel does.
import LabSupport
import Testing

extension EndToEnd {
    @Suite("vxrouter ↔ kernel vxlan")
    struct KernelInterop {
        @Test(
            "IPv4 underlay: ping both ways, checked 50 MB TCP each way, kernel learns the TAP MAC",
            .routerBinary, .timeLimit(.minutes(4)))
        func ipv4Underlay() async throws {
            try await withLab("kernel4") { lab in
                let (a, b) = try await lab.twoHosts()
                try await pingTransferAndLearn(
                    lab: lab, a: a, b: b, overlayA: "198.19.0.1", overlayB: "198.19.0.2", bytes: 50 << 20,
                    expectedMTU: 1450)
            }
        }

        @Test(
            "IPv6 underlay: ping both ways, checked 10 MB TCP each way, kernel learns the TAP MAC",
            .routerBinary, .timeLimit(.minutes(3)))
        func ipv6Underlay() async throws {
            try await withLab("kernel6") { lab in
                let (a, b) = try await lab.twoHosts(ipv6Underlay: true)
                try await pingTransferAndLearn(
                    lab: lab, a: a, b: b, overlayA: "198.19.0.1", overlayB: "198.19.0.2", bytes: 10 << 20,
                    expectedMTU: 1430)
            }
        }

        /// Router in `a`, kernel vxlan in `b`; no neighbour is pre-populated anywhere.
        private func pingTransferAndLearn(
            lab: Lab, a: Host, b: Host, overlayA: String, overlayB: String, bytes: Int, expectedMTU: Int
        ) async throws {
            let tap = lab.interfaceName("vxa")
            let kernel = lab.interfaceName("vxk")
            try await b.addKernelVXLAN(name: kernel, peers: [a.underlayAddress], address: "\(overlayB)/24")
            let router = try await lab.startRouter(
                on: a, tap: tap, remotes: [b.underlayAddress], address: "\(overlayA)/24")
            #expect(
                try await a.mtu(of: tap) == expectedMTU,
                "TAP MTU should be the underlay's 1500 minus the VXLAN overhead")
            #expect(try await b.mtu(of: kernel) == expectedMTU)

            try await a.ping(overlayB)
            try await a.flushNeighbours(tap)
            try await b.flushNeighbours(kernel)
            try await b.ping(overlayA)

            // Both ways: data from the kernel's side is what exercises its offloads (TSO, checksums).
            try await lab.tcpTransfer(from: a, to: b, address: overlayB, bytes: bytes, port: 5201, seed: 1)
            try await lab.tcpTransfer(from: b, to: a, address: overlayA, bytes: bytes, port: 5202, seed: 2)

            let mac = try await a.macAddress(of: tap)
            let fdb = try await b.bridgeFDB(kernel)
            let learned = fdb.split(separator: "\n").contains {
                $0.lowercased().hasPrefix(mac + " ") && $0.contains("dst \(a.underlayAddress) ")
            }
            #expect(learned, "kernel vxlan in b has no entry \(mac) dst \(a.underlayAddress):\n\(fdb)")

            let stats = try await router.stats()
            #expect(try stats.counter("tunnel_rx_packets", vni: 42) > 0, "\(stats)")
            #expect(try stats.counter("tunnel_tx_packets", vni: 42) > 0, "\(stats)")
            #expect(
                try stats.counter("checksum_unfinished", vni: 42) > 0,
                "b's checksum offload is on, so its segments arrive unfinished: \(stats)")
            try await router.stop()
        }
    }
}
