// `vxrouter trace` end to end: two routers (VNI 42, each flooding to the other). Each trace's
// answer is checked against what router A then really does with the same frame:
//
// 1. from the TAP, a UDP flow to B's learned MAC: trace says unicast to b with outer source port
//    P; the same flow sent by the kernel leaves a's underlay (tshark) to b with source port P;
// 2. from the tunnel, a valid datagram with a new source MAC: trace says deliver and learn "new";
//    sent from b, the MAC appears in A's FDB behind b, and a second trace says "confirmed";
// 3. from the tunnel, an unserved VNI: trace says drop unknown_vni; sent from b, exactly that
//    drop counter moves by one.
import Foundation
import LabSupport
import Testing

extension EndToEnd {
    @Suite("vxrouter trace")
    struct TraceEndToEnd {
        /// The datagram Tools/lab/vxlan_malformed.py sends for `kind` (first packet, default fields).
        static func labDatagram(vni: Int, payload: String) -> String {
            let header = String(format: "08000000%06x00", vni)
            let frame = "ffffffffffff" + "020000000a01" + "88b5"
            let body = Array(payload.utf8) + [UInt8](repeating: 0, count: max(0, 46 - payload.utf8.count))
            return header + frame + body.map { String(format: "%02x", $0) }.joined()
        }

        @Test("a trace's answer is what the router then does with the same frame", .routerBinary, .timeLimit(.minutes(5)))
        func traceMatchesForwarding() async throws {
            try await withLab("trace") { lab in
                guard lab.tsharkAvailable() else { return }
                let (a, b) = try await lab.twoHosts()
                let (routerA, routerB, tapA, tapB) = try await lab.startRouterPair(a, b)
                try await a.ping("198.19.0.2")
                let macA = try await a.macAddress(of: tapA)
                let macB = try await b.macAddress(of: tapB)

                // 1. Unicast from the TAP: the remote and the outer source port.
                let flow = [
                    "trace", "--vni", "42", "--from", "tap", "--dst-mac", macB, "--src-mac", macA,
                    "--ipv4", "198.19.0.1,198.19.0.2,udp,40123,5555", "--size", "200",
                ]
                let unicast = try await a.vxrouterJSON(flow)
                #expect(unicast["action"] as? String == "unicast", "\(unicast)")
                #expect(unicast["remotes"] as? [String] == [b.underlayAddress], "\(unicast)")
                let entry = unicast["fdb_entry"] as? [String: Any]
                #expect(entry?["type"] as? String == "learned" && entry?["mac"] as? String == macB, "\(unicast)")
                let port = try #require(unicast["outer_source_port"] as? Int, "\(unicast)")
                let text = try await a.vxrouter(flow)
                #expect(text.stdout.contains("Verdict: unicast to \(b.underlayAddress) (outer source port \(port))"), "\(text.summary)")
                let sniff = try lab.spawn(
                    a.command([
                        LabEnvironment.tool("tshark"), "-i", a.underlayDevice, "-n", "-l", "-a", "duration:15",
                        "-f", "udp dst port 4789 and dst host \(b.underlayAddress)", "-d", "udp.port==4789,vxlan",
                        "-Y", "ip.dst == 198.19.0.2 && udp.dstport == 5555",
                        "-T", "fields", "-E", "separator=|", "-e", "udp.srcport", "-e", "vxlan.vni",
                    ]), name: "tshark-trace")
                // tshark starts slowly on a loaded machine: send only once it captures.
                #expect(await sniff.waitForOutput("Capturing on", timeout: .seconds(90), onStderr: true))
                try await lab.run(
                    a.command([
                        LabEnvironment.python, "-c",
                        "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('198.19.0.1',40123))\n"
                            + "for _ in range(3):\n    s.sendto(b'x'*150,('198.19.0.2',5555)); time.sleep(0.05)\n",
                    ]))
                _ = await sniff.wait(timeout: .seconds(30))
                let lines = sniff.result(timedOut: false).stdout.split(separator: "\n").map(String.init)
                #expect(!lines.isEmpty && lines.count <= 3, "the flow's datagrams on the underlay: \(lines)")
                for line in lines {
                    // Outer, then inner UDP source port; the VNI.
                    let fields = line.split(separator: "|").map(String.init)
                    #expect(fields.first?.split(separator: ",").first.map(String.init) == String(port), "trace said \(port): \(line)")
                    #expect(fields.last == "42", "\(line)")
                }

                // 2. From the tunnel: a new MAC is delivered and learned; then it is confirmed.
                let valid = Self.labDatagram(vni: 42, payload: "vxlab valid 0")
                let tunnel = ["trace", "--from", "tunnel", "--remote", b.underlayAddress, "--vxlan", "--hex", valid]
                let fresh = try await a.vxrouterJSON(tunnel)
                #expect(fresh["action"] as? String == "deliver" && fresh["learn"] as? String == "new", "\(fresh)")
                #expect(fresh["tap"] as? String == tapA, "\(fresh)")
                let fdbBefore = try await a.vxrouterJSON(["fdb", "list", "--vni", "42"])
                #expect(!"\(fdbBefore)".contains("02:00:00:00:0a:01"), "the trace learned: \(fdbBefore)")
                try await lab.sendVXLAN(from: b, to: a.underlayAddress, kind: "valid", count: 1)
                var learned = false
                for _ in 0..<50 where !learned {
                    let list = try await a.vxrouterJSON(["fdb", "list", "--vni", "42"])
                    let entries = list["entries"] as? [[String: Any]] ?? []
                    learned = entries.contains {
                        $0["mac"] as? String == "02:00:00:00:0a:01" && $0["remote"] as? String == b.underlayAddress
                    }
                    if !learned { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(learned, "trace said the MAC would be learned behind \(b.underlayAddress)")
                let again = try await a.vxrouterJSON(tunnel)
                #expect(again["learn"] as? String == "confirmed", "\(again)")

                // 3. From the tunnel: an unserved VNI is dropped as unknown_vni.
                let unknown = Self.labDatagram(vni: 4242, payload: "vxlab")
                let drop = try await a.vxrouterJSON([
                    "trace", "--from", "tunnel", "--remote", b.underlayAddress, "--vxlan", "--hex", unknown,
                ])
                #expect(drop["action"] as? String == "drop" && drop["drop_reason"] as? String == "unknown_vni", "\(drop)")
                let dropsBefore = try await routerA.stats()
                try await lab.sendVXLAN(from: b, to: a.underlayAddress, kind: "unknown-vni", count: 1)
                let dropsAfter = try await routerA.stats(until: {
                    $0.total("drop_unknown_vni") > dropsBefore.total("drop_unknown_vni")
                })
                #expect(dropsAfter.total("drop_unknown_vni") - dropsBefore.total("drop_unknown_vni") == 1)
                #expect(dropsAfter.totalDrops - dropsBefore.totalDrops == 1, "\(dropsAfter)")

                try await routerA.stop()
                try await routerB.stop()
            }
        }
    }
}
