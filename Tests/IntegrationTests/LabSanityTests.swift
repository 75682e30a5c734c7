// Scenario 0: the lab proves itself with the kernel's vxlan on both hosts, no vxrouter involved.
// If this fails, the machine (or the lab) is at fault, not the router.
import LabSupport
import Testing

extension EndToEnd {
    @Suite("Lab sanity: kernel vxlan on both hosts")
    struct LabSanity {
        @Test("kernel vxlan ↔ kernel vxlan: ping, checked TCP, broadcast, learning", .timeLimit(.minutes(3)))
        func kernelToKernel() async throws {
            try await withLab("sanity") { lab in
                let (a, b) = try await lab.twoHosts()
                let deviceA = lab.interfaceName("vxk")
                let deviceB = lab.interfaceName("vxk")
                try await a.addKernelVXLAN(name: deviceA, peers: [b.underlayAddress], address: "198.19.0.1/24")
                try await b.addKernelVXLAN(name: deviceB, peers: [a.underlayAddress], address: "198.19.0.2/24")
                #expect(try await a.mtu(of: deviceA) == 1450)

                try await a.ping("198.19.0.2")
                try await b.ping("198.19.0.1")

                // The lab's own tools, against a peer known to work.
                let verdict = try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 8 << 20)
                #expect(verdict.hasPrefix("PASS"))
                let counts = try await lab.broadcast(from: a, to: "198.19.0.255", receivers: [b])
                #expect(counts.map(\.distinct) == [5] && counts.map(\.total) == [5], "\(counts)")

                // What scenario 2 reads on the kernel side: a learned entry, MAC → dst peer.
                let macA = try await a.macAddress(of: deviceA)
                let fdb = try await b.bridgeFDB(deviceB)
                #expect(
                    fdb.split(separator: "\n").contains {
                        $0.hasPrefix(macA) && $0.contains("dst \(a.underlayAddress)")
                    },
                    "no learned entry for \(macA) dst \(a.underlayAddress) in:\n\(fdb)")
            }
        }

        @Test("the TCP checker fails when the bytes differ", .timeLimit(.minutes(1)))
        func tcpCheckerCatchesCorruption() async throws {
            try await withLab("checker") { lab in
                let host = try await lab.addHost("a")
                let script = LabEnvironment.script("tcp_check.py")
                let server = try lab.spawn(
                    host.command([
                        LabEnvironment.python, script, "serve", "--listen", "127.0.0.1", "--bytes", "1000000",
                        "--seed", "1", "--timeout", "20",
                    ]))
                #expect(await server.waitForOutput("listening", timeout: .seconds(10)))
                let client = try await lab.run(
                    host.command([
                        LabEnvironment.python, script, "send", "--connect", "127.0.0.1", "--bytes", "1000000",
                        "--seed", "2", "--timeout", "20",
                    ]), timeout: .seconds(30), check: false)
                await server.wait(timeout: .seconds(10))
                #expect(client.status == 1, "\(client.summary)")
                #expect(server.exitStatus == 1 && server.stdout.contains("mismatch at offset"), "\(server.stdout)")
            }
        }
    }
}

/// The stats parser, against the contract's format (no root needed).
@Suite("Lab: router stats parsing")
struct RouterStatsParsing {
    @Test func parsesPerVNIAndUnattributedLines() throws {
        let block = """
            2026-01-01T00:00:00+0000 info vxrouter : stats vni=42 tap=vx42 fdb_entries=2 tunnel_rx_packets=7 drop_oversize=1 future_key=3
            stats vni=43 tap=vx43 fdb_entries=0 tunnel_rx_packets=0 drop_oversize=0
            stats vni=- drop_truncated=5 drop_bad_flags=4 drop_unknown_vni=3
            stats end
            stats vni=42 tunnel_rx_packets=999
            """
        let stats = try RouterStats(parsing: block)
        #expect(try stats.counter("tunnel_rx_packets", vni: 42) == 7)
        #expect(try stats.counter("future_key", vni: 42) == 3)
        #expect(stats.labels[42]?["tap"] == "vx42")
        #expect(try stats.counter("fdb_entries", vni: 43) == 0)
        #expect(stats.unattributed["drop_bad_flags"] == 4)
        #expect(stats.total("drop_oversize") == 1)
        #expect(stats.totalDrops == 13)
        #expect(throws: LabFailure.self) { try stats.counter("tunnel_rx_packets", vni: 44) }
    }
}
