// Issue 13, proof 2: vxrouter as a host of a Docker (libnetwork `drivers/overlay`) overlay.
//
// The Docker host (b) is programmed the way libnetwork programs it: a kernel vxlan device with
// VNI 4098, port 4789, MTU 1450, `nolearning proxy`, enslaved to a bridge with the container's
// veth; per peer a permanent neighbour entry (peer IP → MAC) and a permanent FDB entry (MAC →
// VTEP); no flood entry. With `proxy` the kernel answers ARP from that neighbour table and lets
// no ARP frame cross, so vxrouter (in a) must answer its own host's ARP from the MAC/IP entry its
// config gives (`fdb: - {mac, remote, ips}`), and must keep the MAC Docker was told (`mac:`).
// Checksum offload stays on on b's underlay, as users have it.
import Foundation
import LabSupport
import Testing

extension EndToEnd {
    @Suite("vxrouter in a Docker-style overlay")
    struct DockerOverlay {
        static let vni = 4098
        static let routerMAC = "02:42:c6:13:00:01"
        static let routerAddress = "198.19.0.1"
        static let containerMAC = "02:42:c6:13:00:02"
        static let containerAddress = "198.19.0.2"

        @Test(
            "container ↔ vxrouter host: ping both ways, checked 20 MB TCP each way, no neighbour added by hand",
            .routerBinary, .timeLimit(.minutes(5)))
        func containerAndRouterHost() async throws {
            try await withLab("docker") { lab in
                let (a, b) = try await lab.twoHosts()
                let container = try await dockerHost(lab: lab, host: b, peerVTEP: a.underlayAddress)

                let tap = lab.interfaceName("dka")
                let router = try await lab.startRouter(
                    on: a,
                    config: """
                        underlay: { local: \(a.underlayAddress), port: 4789 }
                        networks:
                          - vni: \(Self.vni)
                            tap: \(tap)
                            address: \(Self.routerAddress)/24
                            mac: "\(Self.routerMAC)"
                            fdb:
                              - { mac: "\(Self.containerMAC)", remote: \(b.underlayAddress), ips: [\(Self.containerAddress)] }
                        """,
                    taps: [tap])
                #expect(try await a.macAddress(of: tap) == Self.routerMAC, "the TAP must keep the configured MAC")
                #expect(try await a.mtu(of: tap) == 1450)

                try await a.ping(Self.containerAddress)
                try await container.ping(Self.routerAddress)
                // The vxrouter host learned the container's MAC from vxrouter's answer, not by hand.
                let neighbour = try await a.ip("neigh", "show", Self.containerAddress, "dev", tap).stdout
                #expect(neighbour.lowercased().contains("lladdr \(Self.containerMAC)"), "\(neighbour)")

                try await lab.tcpTransfer(
                    from: a, to: container, address: Self.containerAddress, bytes: 20 << 20, port: 5301, seed: 31)
                try await lab.tcpTransfer(
                    from: container, to: a, address: Self.routerAddress, bytes: 20 << 20, port: 5302, seed: 32)

                let stats = try await router.stats()
                #expect(try stats.counter("neigh_answered", vni: Self.vni) >= 1, "\(stats)")
                #expect(try stats.counter("neigh_flooded", vni: Self.vni) == 0, "no flood list, nothing to flood: \(stats)")
                // b's offload is on: the container's segments arrive with unfinished checksums.
                #expect(try stats.counter("checksum_unfinished", vni: Self.vni) > 0, "\(stats)")
                #expect(try stats.counter("tunnel_rx_packets", vni: Self.vni) > 0, "\(stats)")
                try await router.stop()
            }
        }

        /// Builds b as a Docker overlay host with one container, and programs vxrouter (at
        /// `peerVTEP`) as a peer the way libnetwork's peerdb does. Returns the container.
        private func dockerHost(lab: Lab, host b: Host, peerVTEP: String) async throws -> Host {
            let bridge = lab.interfaceName("dbr")
            let vxlan = lab.interfaceName("dvx")
            try await b.ip("link", "add", bridge, "type", "bridge")
            try await b.ip("link", "set", bridge, "up")
            try await b.addKernelVXLAN(
                name: vxlan, vni: Self.vni, peers: [], address: nil, learning: false, proxy: true, mtu: 1450,
                master: bridge)

            let container = try await lab.addHost("c")
            let (inside, outside) = try await lab.link(container, b, mtu: 1450)
            try await b.ip("link", "set", outside, "master", bridge)
            try await container.ip("link", "set", inside, "address", Self.containerMAC)
            try await container.ip("addr", "add", "\(Self.containerAddress)/24", "dev", inside)

            // libnetwork peerAdd: neighbour (IP → MAC) and FDB (MAC → VTEP), both permanent.
            try await b.ip(
                "neigh", "add", Self.routerAddress, "lladdr", Self.routerMAC, "dev", vxlan, "nud", "permanent")
            try await b.run("bridge", "fdb", "add", Self.routerMAC, "dev", vxlan, "dst", peerVTEP, "self", "permanent")
            let fdb = try await b.bridgeFDB(vxlan)
            #expect(!fdb.contains("00:00:00:00:00:00"), "a Docker-style peer has no flood entry:\n\(fdb)")
            return container
        }
    }
}
