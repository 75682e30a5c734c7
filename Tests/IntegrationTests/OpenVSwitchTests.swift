// Issue 13, proof 4: Open vSwitch's userspace datapath (`datapath_type=netdev`) as vxrouter's peer,
// started by the test itself (Tests/LabSupport/OpenVSwitch.swift) and stopped whatever happens.
//
// Found on the way: OVS reads its underlay with a packet socket and verifies outer UDP checksums
// in software. vxrouter with offloads keeps the outer IPv4 UDP checksum and leaves it to the
// veth's checksum offload, which never finishes it between namespaces: OVS drops every datagram
// (`datapath_drop_tunnel_pop_error`). The kernel's vxlan sends IPv4 with a zero UDP checksum and
// is unaffected. Until vxrouter finishes (or zeroes) that checksum itself, the router's own
// underlay (a, not the peer) runs with tx checksum offload off here, so the kernel finishes it;
// `routerDefaultsAgainstOVS` records the failure as a known issue, and goes red when it is fixed.
import Foundation
import LabSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension EndToEnd {
    @Suite("vxrouter ↔ Open vSwitch userspace")
    struct OpenVSwitchPeer {
        @Test(
            "ping both ways, checked 20 MB TCP each way; every OVS daemon gone afterwards", .routerBinary,
            .timeLimit(.minutes(5)))
        func pingAndTransfer() async throws {
            guard OpenVSwitch.installed else {
                #expect(!LabEnvironment.isCI, "Open vSwitch is missing (apt-get install openvswitch-switch)")
                return
            }
            var daemons: [Int32] = []
            do {
                try await withLab("ovs") { lab in
                    let (a, b) = try await lab.twoHosts()
                    let ovs = try await OpenVSwitch(on: b)
                    daemons = ovs.pids
                    try await ovs.addVXLANBridges(
                        vni: 42, remote: a.underlayAddress, overlayAddress: "198.19.0.2/24", overlayMTU: 1450)
                    try await lab.run(
                        a.command([
                            LabEnvironment.python, LabEnvironment.script("tx_checksum.py"), a.underlayDevice, "off",
                        ]))
                    let tap = lab.interfaceName("ova")
                    let router = try await lab.startRouter(
                        on: a, tap: tap, remotes: [b.underlayAddress], address: "198.19.0.1/24")

                    // OVS resolves the remote VTEP (ARP through br-phy) on its first tunnelled packet.
                    try await a.ping("198.19.0.2", count: 3, deadline: 30)
                    try await b.ping("198.19.0.1")
                    try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 20 << 20, port: 5321, seed: 51)
                    try await lab.tcpTransfer(from: b, to: a, address: "198.19.0.1", bytes: 20 << 20, port: 5322, seed: 52)

                    let stats = try await router.stats()
                    #expect(try stats.counter("tunnel_rx_packets", vni: 42) > 0, "\(stats)")
                    #expect(try stats.counter("tunnel_tx_packets", vni: 42) > 0, "\(stats)")
                    try await router.stop()
                    await ovs.stop()
                }
            } catch {
                Self.expectGone(daemons)
                throw error
            }
            Self.expectGone(daemons)
        }

        @Test(
            "vxrouter with offloads and its underlay's checksum offload on: OVS drops its datagrams (known issue)",
            .routerBinary, .timeLimit(.minutes(3)))
        func routerDefaultsAgainstOVS() async throws {
            guard OpenVSwitch.installed else { return }
            try await withLab("ovsdef") { lab in
                let (a, b) = try await lab.twoHosts()
                let ovs = try await OpenVSwitch(on: b)
                try await ovs.addVXLANBridges(
                    vni: 42, remote: a.underlayAddress, overlayAddress: "198.19.0.2/24", overlayMTU: 1450)
                let router = try await lab.startRouter(
                    on: a, tap: lab.interfaceName("ovd"), remotes: [b.underlayAddress], address: "198.19.0.1/24")
                await withKnownIssue("vxrouter's outer IPv4 UDP checksum is left unfinished; OVS netdev drops it") {
                    try await a.ping("198.19.0.2", count: 1, deadline: 10)
                }
                let coverage = try await ovs.appctl("coverage/show").stdout
                #expect(coverage.contains("datapath_drop_tunnel_pop_error"), "\(coverage)")
                try await router.stop()
                await ovs.stop()
            }
        }

        /// The lab's cleanup has run by now, failure or not: no daemon it started may be alive.
        private static func expectGone(_ pids: [Int32]) {
            for pid in pids where pid > 0 {
                #expect(kill(pid, 0) != 0 && errno == ESRCH, "OVS daemon \(pid) is still running")
            }
        }
    }
}
