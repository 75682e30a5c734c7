// Issue 13, proof 3: vxrouter as a node of a Flannel VXLAN-backend overlay.
//
// The Flannel node (b) is programmed as flanneld programs it (pkg/backend/vxlan): `flannel.1`,
// VNI 1, port 8472, `nolearning`, address `<subnet>.0/32`, a pod behind the `cni0` bridge, and
// per remote lease a permanent neighbour `<subnet>.0 → VtepMAC`, a permanent FDB entry `VtepMAC →
// PublicIP` and an onlink route `<subnet>/24 via <subnet>.0`. vxrouter's node (a) has the lease
// 198.19.1.0/24 and runs with `learning: false`, a fixed `mac:` (its VtepMAC), port 8472, and an
// FDB entry for b's VtepMAC carrying `ips: [198.19.2.0]`; the test adds on a only the onlink
// route flanneld would add. Checksum offload stays on on b's underlay.
import Foundation
import LabSupport
import Testing

extension EndToEnd {
    @Suite("vxrouter in a Flannel-style overlay")
    struct FlannelOverlay {
        static let port = 8472
        static let routerVtepMAC = "02:f1:a0:00:01:00"
        /// a's lease: vxrouter's TAP holds the `.0` address.
        static let routerSubnet = "198.19.1"
        /// b's lease: flannel.1 holds `.0`, cni0 `.1`, the pod `.2`.
        static let podSubnet = "198.19.2"

        @Test(
            "pod ↔ vxrouter node: ping both ways, checked 20 MB TCP each way, tshark decodes port 8472 as VXLAN",
            .routerBinary, .timeLimit(.minutes(5)))
        func podAndRouterNode() async throws {
            try await withLab("flannel") { lab in
                let (a, b) = try await lab.twoHosts()
                let (pod, flannelMAC) = try await flannelNode(lab: lab, host: b, peerVTEP: a.underlayAddress)

                let tap = "flannel.1"
                let router = try await lab.startRouter(
                    on: a,
                    config: """
                        underlay: { local: \(a.underlayAddress), port: \(Self.port) }
                        networks:
                          - vni: 1
                            tap: \(tap)
                            address: \(Self.routerSubnet).0/32
                            mac: "\(Self.routerVtepMAC)"
                            learning: false
                            fdb:
                              - { mac: "\(flannelMAC)", remote: \(b.underlayAddress), ips: [\(Self.podSubnet).0] }
                        """,
                    taps: [tap])
                #expect(try await a.macAddress(of: tap) == Self.routerVtepMAC)
                // What flanneld would add on a for b's lease; the neighbour and FDB halves are
                // vxrouter's config (an `ip neigh` here would be doing its job for it).
                try await a.ip("route", "add", "\(Self.podSubnet).0/24", "via", "\(Self.podSubnet).0", "dev", tap, "onlink")

                // The outer packets of the first pings, read back as VXLAN only when told 8472 is VXLAN.
                let capture = lab.logPath("flannel-outer.pcap")
                let tshark = try lab.spawn(
                    a.command([
                        LabEnvironment.tool("tshark"), "-n", "-i", a.underlayDevice, "-f", "udp port \(Self.port)",
                        "-c", "4", "-a", "duration:60", "-w", capture,
                    ]), name: "tshark-capture")
                guard await tshark.waitForOutput("Capturing on", timeout: .seconds(30), onStderr: true) else { throw LabFailure("tshark did not start capturing: \(tshark.result(timedOut: false).summary)") }
                try await a.ping("\(Self.podSubnet).2")
                #expect(await tshark.wait(timeout: .seconds(30)), "tshark did not see 4 packets on port \(Self.port)")
                await tshark.terminate()
                try await pod.ping("\(Self.routerSubnet).0")

                let told = try await lab.tshark(
                    capture, fields: ["vxlan.vni", "ip.src", "icmp.type"], options: ["-d", "udp.port==\(Self.port),vxlan"])
                #expect(told.count == 4, "\(told)")
                for row in told {
                    #expect(row.first == "1", "VNI 1 expected: \(row)")
                    // ip.src lists the outer then the inner source; icmp.type the echo request/reply.
                    #expect(row.count == 3 && !row[2].isEmpty, "an inner ICMP message expected: \(row)")
                }
                let untold = try await lab.tshark(capture, fields: ["vxlan.vni"])
                #expect(untold.allSatisfy { $0.allSatisfy(\.isEmpty) }, "8472 is not VXLAN's port: \(untold)")

                try await lab.tcpTransfer(
                    from: a, to: pod, address: "\(Self.podSubnet).2", bytes: 20 << 20, port: 5311, seed: 41)
                try await lab.tcpTransfer(
                    from: pod, to: a, address: "\(Self.routerSubnet).0", bytes: 20 << 20, port: 5312, seed: 42)

                let stats = try await router.stats()
                #expect(try stats.counter("neigh_answered", vni: 1) >= 1, "\(stats)")
                #expect(try stats.counter("checksum_unfinished", vni: 1) > 0, "\(stats)")
                try await router.stop()
            }
        }

        /// Builds b as a Flannel node (lease 198.19.2.0/24, a pod behind cni0) and programs the
        /// lease of vxrouter's node (198.19.1.0/24 at `peerVTEP`) the way flanneld does. Returns
        /// the pod and b's VtepMAC (flannel.1's MAC, what flanneld publishes in its lease).
        private func flannelNode(lab: Lab, host b: Host, peerVTEP: String) async throws -> (Host, String) {
            let flannel = "flannel.1"
            try await b.addKernelVXLAN(
                name: flannel, vni: 1, peers: [], address: "\(Self.podSubnet).0/32", port: Self.port, learning: false,
                mtu: 1450)
            try await b.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            try await b.ip("link", "add", "cni0", "type", "bridge")
            try await b.ip("addr", "add", "\(Self.podSubnet).1/24", "dev", "cni0")
            try await b.ip("link", "set", "cni0", "up")

            let pod = try await lab.addHost("pod")
            let (inside, outside) = try await lab.link(pod, b, mtu: 1450)
            try await b.ip("link", "set", outside, "master", "cni0")
            try await pod.ip("addr", "add", "\(Self.podSubnet).2/24", "dev", inside)
            try await pod.ip("route", "add", "default", "via", "\(Self.podSubnet).1")

            // flanneld's handleSubnetEvents for the remote lease, in its order.
            try await b.ip(
                "neigh", "replace", "\(Self.routerSubnet).0", "lladdr", Self.routerVtepMAC, "dev", flannel, "nud",
                "permanent")
            try await b.run("bridge", "fdb", "replace", Self.routerVtepMAC, "dev", flannel, "dst", peerVTEP, "self", "permanent")
            try await b.ip(
                "route", "replace", "\(Self.routerSubnet).0/24", "via", "\(Self.routerSubnet).0", "dev", flannel, "onlink")
            return (pod, try await b.macAddress(of: flannel))
        }
    }
}
