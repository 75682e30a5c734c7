// Offloads on and off, end to end. The other end-to-end tests run with the default (offloads on:
// virtio-header TAPs with TSO, UDP GSO sends, UDP GRO receives, TCP coalescing into the TAP);
// these check what the start-up log says, the plain datapath (`--no-offloads`), and a router with
// offloads talking to one without (GSO-sized sends into a receiver that takes one datagram at a
// time, and the other way round), each with checked 50 MB TCP transfers.
import LabSupport
import Testing

extension EndToEnd {
    @Suite("Offloads on and off")
    struct Offloads {
        @Test(
            "offloads on ↔ off: the log names the offloads, checked 50 MB TCP each way",
            .routerBinary, .timeLimit(.minutes(6)))
        func onTalksToOff() async throws {
            try await withLab("offmix") { lab in
                let (a, b) = try await lab.twoHosts()
                let (routerA, routerB, tapA, _) = try await lab.startRouterPair(a, b, extraB: ["--no-offloads"])

                // The start-up line says what was negotiated: this kernel takes checksum and TSO on
                // TAPs, and UDP GSO and GRO on sockets (ARCHITECTURE.md, "Linux facts").
                let onLine = routerA.log.split(separator: "\n").first { $0.contains("offloads") && $0.contains("udp_gso") }
                let on = try #require(onLine.map(String.init), "no offloads line:\n\(routerA.logTail())")
                #expect(on.contains("offloads=on"), "\(on)")
                #expect(on.contains("\(tapA):csum,tso4,tso6"), "\(on)")
                #expect(on.contains("udp_gso=on"), "\(on)")
                #expect(on.contains("udp_gro=on"), "\(on)")
                let offLine = routerB.log.split(separator: "\n").first { $0.contains("offloads") && $0.contains("udp_gso") }
                let off = try #require(offLine.map(String.init), "no offloads line:\n\(routerB.logTail())")
                #expect(off.contains("offloads=off"), "\(off)")

                try await a.ping("198.19.0.2")
                try await b.ping("198.19.0.1")
                try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 50 << 20, port: 5211, seed: 11)
                try await lab.tcpTransfer(from: b, to: a, address: "198.19.0.1", bytes: 50 << 20, port: 5212, seed: 12)

                // With TSO the kernel hands the TAP super-frames (its tx_packets counts one per
                // read), which leave as many datagrams; with coalescing, the datagrams received
                // enter the TAP as fewer, larger frames (its rx_packets).
                let stats = try await routerA.stats()
                let tunnelTx = try stats.counter("tunnel_tx_packets", vni: 42)
                let tunnelRx = try stats.counter("tunnel_rx_packets", vni: 42)
                let reads = try await a.interfaceCounter(tapA, "tx_packets")
                let writes = try await a.interfaceCounter(tapA, "rx_packets")
                // (TSO super-frames are reliably ~40 segments; how much coalesces depends on how the
                // plain sender's datagrams bunch up, so that bound only says "some did".)
                #expect(tunnelTx > 3 * reads, "no super-frames read? TAP reads \(reads), tunnel_tx \(tunnelTx)")
                #expect(tunnelRx > writes + writes / 4, "no coalescing? TAP writes \(writes), tunnel_rx \(tunnelRx)")
                try await routerA.stop()
                try await routerB.stop()
            }
        }

        /// Without transmit checksum offload on the underlay, older kernels refuse UDP GSO sends
        /// with EIO (udp_send_skb) and the router falls back to one datagram per send, saying so
        /// once in the log; this kernel (6.18) checksums them in software instead. Either way
        /// nothing may be lost: the transfers are checked, and the fallback, if taken, is logged.
        @Test(
            "underlay without tx checksum offload: GSO sends (or their fallback) carry checked 50 MB TCP",
            .routerBinary, .timeLimit(.minutes(5)))
        func underlayWithoutChecksumOffload() async throws {
            try await withLab("gsofb") { lab in
                let (a, b) = try await lab.twoHosts()
                try await lab.run(
                    a.command([LabEnvironment.python, LabEnvironment.script("tx_checksum.py"), a.underlayDevice, "off"]))
                let (routerA, routerB, _, _) = try await lab.startRouterPair(a, b)
                try await a.ping("198.19.0.2")
                try await b.ping("198.19.0.1")
                try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 50 << 20, port: 5217, seed: 17)
                try await lab.tcpTransfer(from: b, to: a, address: "198.19.0.1", bytes: 50 << 20, port: 5218, seed: 18)
                #expect(!routerB.log.contains("UDP GSO send failed"), "B's underlay has checksum offload")
                let stats = try await routerA.stats()
                #expect(try stats.counter("tunnel_tx_packets", vni: 42) > 0, "\(stats)")
                try await routerA.stop()
                try await routerB.stop()
            }
        }

        /// The send pool binds ports from `source_ports`; the VXLAN port itself, when the range
        /// holds it, belongs to the receive sockets and must be left to them.
        @Test(
            "source_ports holding the VXLAN port: the router starts and carries checked 10 MB TCP",
            .routerBinary, .timeLimit(.minutes(3)))
        func sourcePortsHoldingTheListenPort() async throws {
            try await withLab("offport") { lab in
                let (a, b) = try await lab.twoHosts()
                func config(_ host: Host, peer: Host, octet: Int, ports: String) -> String {
                    """
                    underlay: { local: \(host.underlayAddress), port: 4789, source_ports: \(ports) }
                    networks:
                      - vni: 42
                        tap: \(lab.interfaceName("vx\(host.name)"))
                        address: 198.19.0.\(octet)/24
                        flood: [\(peer.underlayAddress)]
                    """
                }
                let routerA = try await lab.startRouter(
                    on: a, config: config(a, peer: b, octet: 1, ports: "4789-4789"), taps: [lab.interfaceName("vxa")])
                let routerB = try await lab.startRouter(
                    on: b, config: config(b, peer: a, octet: 2, ports: "4780-4843"), taps: [lab.interfaceName("vxb")])
                try await a.ping("198.19.0.2")
                try await b.ping("198.19.0.1")
                try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 10 << 20, port: 5219, seed: 19)
                try await lab.tcpTransfer(from: b, to: a, address: "198.19.0.1", bytes: 10 << 20, port: 5220, seed: 20)
                try await routerA.stop()
                try await routerB.stop()
            }
        }

        @Test(
            "offloads off on both routers: checked 50 MB TCP each way", .routerBinary, .timeLimit(.minutes(6)))
        func bothOff() async throws {
            try await withLab("offboth") { lab in
                let (a, b) = try await lab.twoHosts()
                let (routerA, routerB, _, _) = try await lab.startRouterPair(
                    a, b, extraA: ["--no-offloads"], extraB: ["--no-offloads"])
                try await a.ping("198.19.0.2")
                try await b.ping("198.19.0.1")
                try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 50 << 20, port: 5213, seed: 13)
                try await lab.tcpTransfer(from: b, to: a, address: "198.19.0.1", bytes: 50 << 20, port: 5214, seed: 14)
                try await routerA.stop()
                try await routerB.stop()
            }
        }

        @Test(
            "offloads off ↔ kernel vxlan: checked 50 MB TCP each way", .routerBinary, .timeLimit(.minutes(5)))
        func offWithKernel() async throws {
            try await withLab("offkern") { lab in
                let (a, b) = try await lab.twoHosts()
                let tap = lab.interfaceName("vxa")
                let kernel = lab.interfaceName("vxk")
                try await b.addKernelVXLAN(name: kernel, peers: [a.underlayAddress], address: "198.19.0.2/24")
                let router = try await lab.startRouter(
                    on: a, tap: tap, remotes: [b.underlayAddress], address: "198.19.0.1/24", extra: ["--no-offloads"])
                try await a.ping("198.19.0.2")
                try await b.ping("198.19.0.1")
                try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 50 << 20, port: 5215, seed: 15)
                try await lab.tcpTransfer(from: b, to: a, address: "198.19.0.1", bytes: 50 << 20, port: 5216, seed: 16)
                try await router.stop()
            }
        }

        /// Busy polling is for latency while traffic flows; it must not cost a core once traffic
        /// stops. With the longest window (10 ms), after a transfer the routers are left idle for
        /// 2 s: a worker still spinning would burn ~2 s of CPU there, an idle one next to none.
        @Test(
            "busy polling: the log says so, checked TCP flows, and an idle router does not spin",
            .routerBinary, .timeLimit(.minutes(4)))
        func busyPollingStopsWhenIdle() async throws {
            try await withLab("bpoll") { lab in
                let (a, b) = try await lab.twoHosts()
                let poll = ["--busy-poll", "10000"]
                let (routerA, routerB, _, _) = try await lab.startRouterPair(a, b, extraA: poll, extraB: poll)
                #expect(routerA.log.contains("busy_poll=10000us"), "\(routerA.logTail())")
                try await a.ping("198.19.0.2")
                try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 20 << 20, port: 5221, seed: 21)
                try await b.ping("198.19.0.1")
                try await Task.sleep(for: .milliseconds(300))
                let before = try [routerA, routerB].map { try $0.cpuSeconds() }
                try await Task.sleep(for: .seconds(2))
                let after = try [routerA, routerB].map { try $0.cpuSeconds() }
                for (side, used) in zip(["a", "b"], zip(after, before).map { $0 - $1 }) {
                    #expect(used < 0.5, "router \(side), idle with busy_poll 10000, used \(used) s of CPU in 2 s")
                }
                try await routerA.stop()
                try await routerB.stop()
            }
        }
    }
}
