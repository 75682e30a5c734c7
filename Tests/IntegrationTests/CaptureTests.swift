// Packet capture end to end: real traffic between two routers in namespaces, captured through
// `vxrouter capture`, the API, the config and the live stream, and read back with tshark.
//
// 1. CLI: outer ICMP of VNI 42 while TCP also flows — exactly the ICMP packets, decoded by tshark
//    as VXLAN with VNI 42 around intact ICMP, as many as asked; bad input refused before start.
// 2. Config + API + stream: the config's rotating capture keeps the promised number of files;
//    an API capture of inner and outer shares packet numbers between the two (side index); a
//    live stream during a checked bulk TCP transfer costs no forwarded byte and accounts for
//    every copy it did not write (ring_full).
import Foundation
import LabSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension Lab {
    /// `tshark -r FILE -T fields -e ...` in the test's own namespace (the file is on disk).
    func tshark(_ file: String, fields: [String], filter: String? = nil, options: [String] = []) async throws -> [[String]] {
        var arguments = [LabEnvironment.tool("tshark"), "-n", "-r", file, "-T", "fields", "-E", "separator=|"] + options
        if let filter { arguments += ["-Y", filter] }
        for field in fields { arguments += ["-e", field] }
        let result = try await run(arguments, timeout: .seconds(60))
        return result.stdout.split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
    }

    /// tshark reads the captures back; without it the tests skip, except in CI where they fail.
    func tsharkAvailable() -> Bool {
        guard FileManager.default.isExecutableFile(atPath: LabEnvironment.tool("tshark")) else {
            #expect(!LabEnvironment.isCI, "tshark is missing (apt-get install tshark; Tools/test.sh installs it)")
            return false
        }
        return true
    }
}

extension EndToEnd {
    @Suite("Packet capture")
    struct Capture {
        func routerConfig(_ host: Host, peer: Host, tap: String, octet: Int, capture: String) -> String {
            """
            underlay:
              local: \(host.underlayAddress)
            workers: 2
            networks:
              - vni: 42
                tap: \(tap)
                address: 198.19.0.\(octet)/24
                flood: [\(peer.underlayAddress)]
            \(capture)
            """
        }

        @Test("vxrouter capture: outer VXLAN with the VNI, inner filter selects exactly ICMP, count; bad input refused", .routerBinary, .timeLimit(.minutes(4)))
        func commandLineCapture() async throws {
            try await withLab("capcli") { lab in
                guard lab.tsharkAvailable() else { return }
                let (a, b) = try await lab.twoHosts()
                let tapA = lab.interfaceName("cpa")
                let tapB = lab.interfaceName("cpb")
                let routerA = try await lab.startRouter(on: a, tap: tapA, remotes: [b.underlayAddress], address: "198.19.0.1/24")
                let routerB = try await lab.startRouter(on: b, tap: tapB, remotes: [a.underlayAddress], address: "198.19.0.2/24")
                try await a.ping("198.19.0.2", count: 1)

                // Bad input: a clear error, no capture started, no file left.
                let bad = lab.logPath("bad.pcap")
                let badFilter = try await a.vxrouter(["capture", "--filter", "icmp and and", "-w", bad], check: false)
                #expect(badFilter.status == 1 && badFilter.stderr.contains("syntax error"), "\(badFilter.summary)")
                let badVNI = try await a.vxrouter(["capture", "--vni", "7", "-w", bad], check: false)
                #expect(badVNI.status == 1 && badVNI.stderr.contains("not served"), "\(badVNI.summary)")
                #expect(!FileManager.default.fileExists(atPath: bad))
                let badPath = try await a.vxrouter(["capture", "-w", "/nonexistent-vxt/x.pcap"], check: false)
                #expect(badPath.status == 1 && badPath.stderr.contains("cannot write"), "\(badPath.summary)")
                let apiBad = try await a.control("POST", "/v1/capture", body: #"{"file":"x.pcap","filter":"nonsense ((("}"#)
                #expect(apiBad.status == 400 && apiBad.errorMessage?.contains("nonsense") == true, "\(apiBad)")
                let idle = try await a.control("GET", "/v1/capture")
                #expect(idle.status == 200 && !(idle.json["capture"] is [String: Any]), "nothing ran: \(idle)")

                // --duration ends a capture by itself (nothing matches here: an empty, valid file).
                let timed = lab.logPath("timed.pcap")
                let clock = ContinuousClock()
                let started = clock.now
                try await a.vxrouter(["capture", "--duration", "1", "--point", "drop", "-w", timed])
                #expect(clock.now - started < .seconds(5))
                #expect(try await lab.tshark(timed, fields: ["frame.number"]).isEmpty)

                // 5 pings = 10 outer ICMP packets (requests out, replies in), while TCP flows too.
                let out = lab.logPath("outer.pcap")
                let capture = try lab.spawn(
                    a.command([
                        LabEnvironment.routerBinary, "capture"] + LabEnvironment.clientArguments + [
                        "--vni", "42", "--point", "outer", "--filter", "icmp",
                        "-w", out, "-c", "10",
                    ]), name: "capture-cli")
                try await waitRunning(a)
                try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 2 << 20, port: 5301, seed: 3)
                try await a.ping("198.19.0.2", count: 5)
                let exited = await capture.wait(timeout: .seconds(20))
                let result = capture.result(timedOut: !exited)
                #expect(result.succeeded && result.stderr.contains("10 packets captured"), "\(result.summary)")

                let rows = try await lab.tshark(out, fields: ["vxlan.vni", "icmp.type", "ip.src", "udp.dstport"])
                #expect(rows.count == 10, "\(rows)")
                #expect(rows.allSatisfy { $0[0] == "42" }, "every record decodes as VXLAN VNI 42: \(rows)")
                #expect(rows.filter { $0[1] == "8" }.count == 5 && rows.filter { $0[1] == "0" }.count == 5, "\(rows)")
                let inner = try await lab.tshark(out, fields: ["ip.src"], filter: "icmp and ip.src == 198.19.0.1")
                #expect(inner.count == 5, "the inner ICMP requests are intact: \(inner)")
                let tcp = try await lab.tshark(out, fields: ["frame.number"], filter: "tcp")
                #expect(tcp.isEmpty, "the filter selected no TCP")

                try await routerA.stop()
                try await routerB.stop()
            }
        }

        @Test("config rotation, inner/outer matching, live stream during a bulk transfer", .routerBinary, .timeLimit(.minutes(6)))
        func configAPIAndStream() async throws {
            try await withLab("capapi") { lab in
                guard lab.tsharkAvailable() else { return }
                let (a, b) = try await lab.twoHosts()
                let tapA = lab.interfaceName("cqa")
                let tapB = lab.interfaceName("cqb")
                let directory = lab.logPath("captures-a")
                let rotating = lab.logPath("rot.pcap")
                let section = """
                    capture:
                      directory: \(directory)
                      file: \(rotating)
                      points: [outer]
                      rotate_bytes: 65536
                      rotate_files: 3
                    """
                let routerA = try await lab.startRouter(
                    on: a, config: routerConfig(a, peer: b, tap: tapA, octet: 1, capture: section), taps: [tapA])
                let routerB = try await lab.startRouter(
                    on: b, config: routerConfig(b, peer: a, tap: tapB, octet: 2, capture: ""), taps: [tapB])
                try await a.ping("198.19.0.2", count: 1)

                // 1. The config's capture rotates and keeps 3 files.
                try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 4 << 20, port: 5311, seed: 4)
                let stopped = try await a.control("DELETE", "/v1/capture")
                #expect(stopped.status == 200, "\(stopped)")
                let files = try FileManager.default.contentsOfDirectory(atPath: lab.logDirectory.path)
                let pcaps = files.filter { $0.hasPrefix("rot-") && $0.hasSuffix(".pcap") }
                #expect(pcaps.count == 3, "\(pcaps.sorted())")
                #expect(files.filter { $0.hasPrefix("rot-") && $0.hasSuffix(".pcap.idx") }.count == 3)
                let summary = stopped.json["capture"] as? [String: Any] ?? [:]
                #expect((summary["files"] as? [String])?.count == 3, "\(summary)")
                for name in pcaps {
                    let rows = try await lab.tshark(lab.logPath(name), fields: ["vxlan.vni"])
                    #expect(!rows.isEmpty && rows.allSatisfy { $0 == ["42"] }, "\(name)")
                }

                // 2. Inner and outer of the same packet share a packet number (the side index).
                let started = try await a.control(
                    "POST", "/v1/capture", body: #"{"file":"both.pcap","points":["inner","outer"],"filter":"icmp","count":20}"#)
                #expect(started.status == 201, "\(started)")
                try await a.ping("198.19.0.2", count: 5)
                try await waitFinished(a)
                let both = directory + "/both.pcap"
                let index = try String(contentsOfFile: both + ".idx", encoding: .utf8)
                    .split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.split(separator: "\t").map(String.init) }
                #expect(index.count == 20, "\(index)")
                let byPacket = Dictionary(grouping: index, by: { $0[1] })
                #expect(byPacket.count == 10, "10 packets, each seen inner and outer: \(byPacket.keys.sorted())")
                #expect(byPacket.values.allSatisfy { Set($0.map { $0[2] }) == ["inner", "outer"] }, "\(byPacket)")
                let decoded = try await lab.tshark(both, fields: ["vxlan.vni", "icmp.type"])
                #expect(decoded.count == 20)
                #expect(decoded.filter { $0[0] == "42" }.count == 10, "10 outer records with VNI 42: \(decoded)")

                // 3. Drops carry their reason (side index) and decode as VXLAN.
                let dropStart = try await a.control(
                    "POST", "/v1/capture", body: #"{"file":"drops.pcap","points":["drop"],"count":5}"#)
                #expect(dropStart.status == 201, "\(dropStart)")
                try await lab.sendVXLAN(from: b, to: a.underlayAddress, kind: "bad-flags", count: 5)
                try await waitFinished(a)
                let dropIndex = try String(contentsOfFile: directory + "/drops.pcap.idx", encoding: .utf8)
                    .split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.split(separator: "\t").map(String.init) }
                #expect(dropIndex.count == 5 && dropIndex.allSatisfy { $0[2] == "drop" && $0[6] == "bad_flags" }, "\(dropIndex)")
                let dropRows = try await lab.tshark(directory + "/drops.pcap", fields: ["udp.dstport", "vxlan.vni"])
                #expect(dropRows.count == 5 && dropRows.allSatisfy { $0[0] == "4789" && !$0[1].isEmpty }, "\(dropRows)")

                // The command's --router-file form: the router writes the file and its index.
                let cli = try lab.spawn(
                    a.command(
                        [LabEnvironment.routerBinary, "capture", "--point", "drop", "--router-file", "cli.pcap", "-c", "3"]
                            + LabEnvironment.clientArguments),
                    name: "capture-router-file")
                try await waitRunning(a)
                try await lab.sendVXLAN(from: b, to: a.underlayAddress, kind: "unknown-vni", count: 3)
                let cliExited = await cli.wait(timeout: .seconds(20))
                let cliResult = cli.result(timedOut: !cliExited)
                #expect(cliResult.succeeded && cliResult.stderr.contains("3 packets captured"), "\(cliResult.summary)")
                let cliIndex = try String(contentsOfFile: directory + "/cli.pcap.idx", encoding: .utf8)
                #expect(cliIndex.components(separatedBy: "unknown_vni").count - 1 == 3, "\(cliIndex)")

                // Ctrl-C on the command stops the router's capture.
                let follow = try lab.spawn(
                    a.command(
                        [LabEnvironment.routerBinary, "capture", "--point", "outer", "--router-file", "follow.pcap"]
                            + LabEnvironment.clientArguments),
                    name: "capture-follow")
                try await waitRunning(a)
                follow.signal(SIGINT)
                let followExited = await follow.wait(timeout: .seconds(10))
                let followResult = follow.result(timedOut: !followExited)
                #expect(followResult.succeeded && followResult.stderr.contains("ended: stopped"), "\(followResult.summary)")
                let afterFollow = try await a.control("GET", "/v1/capture")
                #expect((afterFollow.json["capture"] as? [String: Any])?["running"] as? Bool == false, "\(afterFollow)")

                // 4. A live stream (curl | file) during a checked bulk transfer.
                let streamed = lab.logPath("stream.pcap")
                let curl = try lab.spawn(
                    a.command([
                        "/bin/sh", "-c",
                        "curl -sN -H 'Authorization: Bearer \(LabEnvironment.controlToken)' 'http://127.0.0.1:4790/v1/capture/stream?points=inner,outer,drop&snaplen=128' > \(streamed)",
                    ]), name: "curl-stream")
                try await waitRunning(a)
                let before = try await routerA.stats()
                try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 50 << 20, port: 5312, seed: 5)
                let after = try await routerA.stats()
                let end = try await a.control("DELETE", "/v1/capture")
                #expect(end.status == 200, "\(end)")
                _ = await curl.wait(timeout: .seconds(10))
                let last = end.json["capture"] as? [String: Any] ?? [:]
                let records = (last["records"] as? NSNumber)?.intValue ?? -1
                // Copies lost either way: full rings, or records left out for a slow reader.
                let ringFull =
                    ((last["ring_full"] as? NSNumber)?.intValue ?? -1) + ((last["slow_client"] as? NSNumber)?.intValue ?? 0)
                let frames = try await lab.tshark(streamed, fields: ["frame.number"])
                #expect(frames.count == records, "the stream holds every record the summary counts: \(last)")
                var offered = 0
                for counter in ["tap_rx_packets", "tunnel_tx_packets", "tunnel_rx_packets", "tap_tx_packets"] {
                    offered += try after.counter(counter, vni: 42) - before.counter(counter, vni: 42)
                }
                // Written + refused covers what forwarding moved during the transfer (the capture
                // ran a little longer on both ends, hence >=).
                #expect(records > 0 && ringFull >= 0, "\(last)")
                #expect(records + ringFull >= offered, "records \(records) + lost \(ringFull) < \(offered): \(last)")

                // 5. A client that does not read: forwarding goes on (transfer checked), and the
                // capture reports what it lost — ring copies and/or records left out of the stream.
                let stuck = try lab.spawn(
                    a.command([
                        "/bin/sh", "-c", "curl -sN -H 'Authorization: Bearer \(LabEnvironment.controlToken)' 'http://127.0.0.1:4790/v1/capture/stream?points=inner,outer' | sleep 120",
                    ]), name: "curl-stuck")
                defer { stuck.signal(SIGKILL) }
                try await waitRunning(a)
                let stuckBefore = try await routerA.stats()
                try await lab.tcpTransfer(from: a, to: b, address: "198.19.0.2", bytes: 30 << 20, port: 5313, seed: 6)
                let stuckAfter = try await routerA.stats()
                let clock = ContinuousClock()
                let stopStarted = clock.now
                let stuckEnd = try await a.control("DELETE", "/v1/capture")
                #expect(clock.now - stopStarted < .seconds(3), "a stuck client does not hold up the stop")
                let stuckSummary = stuckEnd.json["capture"] as? [String: Any] ?? [:]
                let lost = ((stuckSummary["ring_full"] as? NSNumber)?.intValue ?? 0) + ((stuckSummary["slow_client"] as? NSNumber)?.intValue ?? 0)
                let written = (stuckSummary["records"] as? NSNumber)?.intValue ?? 0
                var moved = 0
                for counter in ["tap_rx_packets", "tunnel_tx_packets", "tunnel_rx_packets", "tap_tx_packets"] {
                    moved += try stuckAfter.counter(counter, vni: 42) - stuckBefore.counter(counter, vni: 42)
                }
                #expect(lost > 0, "a reader that never reads must cost the capture something: \(stuckSummary)")
                #expect(written + lost >= moved, "every copy is either written or counted lost: \(stuckSummary), moved \(moved)")
                let stats = try await a.control("GET", "/v1/stats")
                let captureStats = stats.json["capture"] as? [String: Any] ?? [:]
                #expect((captureStats["ring_full_total"] as? NSNumber)?.intValue ?? -1 >= (stuckSummary["ring_full"] as? NSNumber)?.intValue ?? 0)

                try await routerA.stop()
                try await routerB.stop()
            }
        }

        @Test("IPv6 underlay: outer records decode with IPv6 and a valid UDP checksum", .routerBinary, .timeLimit(.minutes(3)))
        func ipv6Underlay() async throws {
            try await withLab("cap6") { lab in
                guard lab.tsharkAvailable() else { return }
                let (a, b) = try await lab.twoHosts(ipv6Underlay: true)
                let tapA = lab.interfaceName("c6a")
                let tapB = lab.interfaceName("c6b")
                let routerA = try await lab.startRouter(on: a, tap: tapA, remotes: [b.underlayAddress], address: "198.19.0.1/24")
                let routerB = try await lab.startRouter(on: b, tap: tapB, remotes: [a.underlayAddress], address: "198.19.0.2/24")
                try await a.ping("198.19.0.2", count: 1)
                let out = lab.logPath("outer6.pcap")
                let capture = try lab.spawn(
                    a.command(
                        [LabEnvironment.routerBinary, "capture", "--point", "outer", "--filter", "icmp", "-w", out, "-c", "4"]
                            + LabEnvironment.clientArguments),
                    name: "capture-v6")
                try await waitRunning(a)
                try await a.ping("198.19.0.2", count: 2)
                let exited = await capture.wait(timeout: .seconds(20))
                #expect(capture.result(timedOut: !exited).succeeded)
                let rows = try await lab.tshark(
                    out, fields: ["ipv6.src", "ipv6.dst", "vxlan.vni", "icmp.type", "udp.checksum.status"],
                    options: ["-o", "udp.check_checksum:TRUE"])
                #expect(rows.count == 4, "\(rows)")
                #expect(rows.allSatisfy { $0[2] == "42" && $0[4] == "1" }, "VNI 42, UDP checksum good: \(rows)")
                #expect(Set(rows.map { $0[0] }) == ["2001:db8::1", "2001:db8::2"], "\(rows)")
                try await routerA.stop()
                try await routerB.stop()
            }
        }

        func waitRunning(_ host: Host) async throws {
            for _ in 0..<100 {
                let status = try await host.control("GET", "/v1/capture")
                if (status.json["capture"] as? [String: Any])?["running"] as? Bool == true { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw LabFailure("the capture did not start")
        }

        func waitFinished(_ host: Host) async throws {
            for _ in 0..<100 {
                let status = try await host.control("GET", "/v1/capture")
                if (status.json["capture"] as? [String: Any])?["running"] as? Bool == false { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw LabFailure("the capture did not finish")
        }
    }
}
