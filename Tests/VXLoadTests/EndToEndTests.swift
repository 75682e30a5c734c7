// vxload against real datapaths: the kernel's vxlan pair and two vxrouters, each in two network
// namespaces over a veth. Serialized: on two cores, two load tests side by side would measure
// each other.
import Foundation
import LabSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("vxload end to end", .serialized, .loadLab)
struct VXLoadEndToEnd {
    /// delivered == sent, nothing lost, reordered or duplicated, and latency figures that are
    /// positive and in order.
    ///
    /// A sender that fell behind its modest --rate is tolerated (exit 1 with only that error):
    /// a VM whose host steals half its CPU wakes sleepers tens of milliseconds late, and these
    /// tests are about what arrives, not how punctually it left. `badInput` checks the report.
    private func expectClean(_ outcome: CommandResult, sent expected: Double? = nil) throws -> [String: Any] {
        let json = try outcome.json()
        let errors = (json["errors"] as? [String]) ?? ["(no errors array)"]
        let onlySlow = !errors.isEmpty && errors.allSatisfy { $0.hasPrefix("could not reach --rate") }
        #expect(outcome.status == 0 || (outcome.status == 1 && onlySlow), "\(outcome.summary)")
        #expect(json["complete"] as? Bool == true, "\(outcome.summary)")
        #expect(errors.isEmpty || onlySlow, "\(outcome.summary)")
        let sent = try number(json, "sent")
        if let expected { #expect(sent == expected, "\(outcome.summary)") }
        #expect(sent > 0)
        #expect(try number(json, "delivered") == sent, "\(outcome.summary)")
        #expect(try number(json, "lost") == 0)
        #expect(try number(json, "duplicates") == 0)
        return json
    }

    private func expectOrderedLatency(_ json: [String: Any], _ context: String) throws {
        guard let latency = json["latency_us"] as? [String: Any] else { throw LabFailure("no latency in \(context)") }
        let p50 = try number(latency, "p50"), p99 = try number(latency, "p99")
        let p999 = try number(latency, "p999"), max = try number(latency, "max")
        #expect(p50 > 0, "\(context)")
        #expect(p50 <= p99 && p99 <= p999 && p999 <= max, "p50 \(p50) p99 \(p99) p99.9 \(p999) max \(max)")
        #expect(try number(latency, "samples") == number(json, "delivered"))
    }

    @Test("kernel vxlan pair at a modest rate: every packet delivered, latency positive and ordered", .timeLimit(.minutes(2)))
    func kernelModestRate() async throws {
        try await withLoadLab("ld-kernel") { lab in
            let (a, b) = try await lab.twoHosts()
            try await lab.kernelVXLANPair(a, b)
            let outcome = try await lab.vxload([
                "run", "--tx", "iface:vxk", "--tx-netns", a.namespace, "--rx", "iface:vxk", "--rx-netns", b.namespace,
                "--rate", "5000", "--count", "10000", "--flows", "4", "--size", "64,128,1000", "--json",
            ])
            let json = try expectClean(outcome, sent: 10_000)
            #expect(try number(json, "reordered") == 0)
            try expectOrderedLatency(json, outcome.summary)
            // One line per second of the run.
            #expect((json["intervals"] as? [Any])?.count ?? 0 >= 1)
        }
    }

    @Test("kernel vxlan: vxload as a remote VTEP, and send / sink as separate processes", .timeLimit(.minutes(2)))
    func kernelRemoteVTEPAndSeparateProcesses() async throws {
        try await withLoadLab("ld-vtep") { lab in
            let (a, b) = try await lab.twoHosts()
            try await lab.kernelVXLANPair(a, b)
            // VXLAN over UDP from a into b's vxlan device, out of it on the host side.
            let asVTEP = try await lab.vxload([
                "run", "--tx", "vxlan:198.18.0.2:4789", "--tx-netns", a.namespace, "--rx", "iface:vxk", "--rx-netns", b.namespace,
                "--rate", "5000", "--duration", "1", "--vnis", "1", "--vni", "42", "--json",
            ])
            _ = try expectClean(asVTEP)

            // Separate processes: the sink learns the count from the sender's end marker.
            let sink = try lab.spawn(
                b.command([LabEnvironment.vxload, "sink", "--from", "iface:vxk", "--json", "--duration", "20"]), name: "sink")
            await nap(milliseconds: 500)
            let sender = try await lab.vxload(["send", "--to", "iface:vxk", "--netns", a.namespace, "--rate", "5000", "--count", "5000", "--json"])
            #expect(try sender.json()["complete"] as? Bool == true, "\(sender.summary)")
            #expect(await sink.wait(timeout: .seconds(15)), "the sink did not stop after the end marker")
            let sunk = sink.result(timedOut: false)
            let json = try expectClean(sunk, sent: 5000)
            #expect(try number(json, "run_id") == number(try sender.json(), "run_id"))
            try expectOrderedLatency(json, sunk.summary)
        }
    }

    @Test("replay of a small capture delivers exactly its frames, loop after loop", .timeLimit(.minutes(2)))
    func replay() async throws {
        try await withLoadLab("ld-replay") { lab in
            let (a, b) = try await lab.twoHosts()
            try await lab.kernelVXLANPair(a, b)
            let frames = Self.captureFrames()
            let path = lab.logDirectory.appendingPathComponent("small.pcap").path
            try Self.writePcap(frames, to: path)
            // At the capture's own pace (10 ms apart), three times over.
            let timed = try await lab.vxload([
                "run", "--tx", "iface:vxk", "--tx-netns", a.namespace, "--rx", "iface:vxk", "--rx-netns", b.namespace,
                "--pcap", path, "--loop", "3", "--json",
            ])
            let json = try expectClean(timed, sent: Double(3 * frames.count))
            #expect(try number(json, "delivered_bytes") == Double(3 * frames.reduce(0) { $0 + $1.count }))
            #expect(try number(json, "duration_s") >= 0.2, "three loops of 12 frames 10 ms apart take ~0.35 s")
            // Flat out: the same, just sooner.
            let fast = try await lab.vxload([
                "run", "--tx", "iface:vxk", "--tx-netns", a.namespace, "--rx", "iface:vxk", "--rx-netns", b.namespace,
                "--pcap", path, "--loop", "20", "--rate", "max", "--json",
            ])
            _ = try expectClean(fast, sent: Double(20 * frames.count))
        }
    }

    @Test("bad input and runs that cannot complete: a clear error and a non-zero exit", .timeLimit(.minutes(2)))
    func badInput() async throws {
        try await withLoadLab("ld-errors") { lab in
            let (a, b) = try await lab.twoHosts()
            try await lab.kernelVXLANPair(a, b)
            let pair = ["--tx", "iface:vxk", "--tx-netns", a.namespace, "--rx", "iface:vxk", "--rx-netns", b.namespace]

            let missing = try await lab.vxload(["run"] + pair + ["--pcap", "/nonexistent/none.pcap"])
            #expect(missing.status == 2, "\(missing.summary)")
            #expect(missing.stderr.contains("--pcap /nonexistent/none.pcap: No such file"), "\(missing.summary)")

            let noInterface = try await lab.vxload(["run", "--tx", "iface:nosuch0", "--tx-netns", a.namespace, "--rx", "iface:vxk", "--rx-netns", b.namespace, "--json"])
            #expect(noInterface.status == 2, "\(noInterface.summary)")
            #expect(noInterface.stderr.contains("no interface nosuch0 in network namespace \(a.namespace)"), "\(noInterface.summary)")
            let failed = try noInterface.json()
            #expect(failed["complete"] as? Bool == false)
            #expect((failed["errors"] as? [String])?.first?.contains("nosuch0") == true)

            let noNamespace = try await lab.vxload(["send", "--to", "iface:vxk", "--netns", "vxt-no-such-namespace", "--count", "1"])
            #expect(noNamespace.status == 2 && noNamespace.stderr.contains("no network namespace vxt-no-such-namespace"), "\(noNamespace.summary)")

            let badEnd = try await lab.vxload(["run", "--tx", "eth0", "--rx", "iface:vxk"])
            #expect(badEnd.status == 64 && badEnd.stderr.contains("expected iface:NAME"), "\(badEnd.summary)")

            let tooBig = try await lab.vxload(["run"] + pair + ["--size", "9000", "--count", "1"])
            #expect(tooBig.status == 2 && tooBig.stderr.contains("more than the sending end carries"), "\(tooBig.summary)")

            // A rate no sender here reaches: the numbers come with the error, and exit 1.
            let tooFast = try await lab.vxload(["run"] + pair + ["--rate", "50M", "--duration", "1", "--json"])
            #expect(tooFast.status == 1, "\(tooFast.summary)")
            let fastJSON = try tooFast.json()
            #expect((fastJSON["errors"] as? [String])?.contains { $0.contains("could not reach --rate") } == true, "\(tooFast.summary)")

            // A sink whose sender never comes: incomplete, and says why.
            let lonely = try await lab.vxload(["sink", "--from", "iface:vxk", "--netns", b.namespace, "--duration", "1", "--json"])
            #expect(lonely.status == 1, "\(lonely.summary)")
            let lonelyJSON = try lonely.json()
            #expect(lonelyJSON["complete"] as? Bool == false)
            #expect((lonelyJSON["errors"] as? [String])?.first?.contains("end marker never arrived") == true, "\(lonely.summary)")

            // Sending VXLAN to a port nobody listens on is refused, not silently "sent".
            let refused = try await lab.vxload(["send", "--to", "vxlan:198.18.0.2:4999", "--netns", a.namespace, "--duration", "1", "--json"])
            #expect(refused.status == 1, "\(refused.summary)")
            #expect(refused.stdout.contains("nothing listens on that UDP port"), "\(refused.summary)")
        }
    }

    @Test("two vxrouters at a modest rate: every packet delivered", .loadRouterLab, .timeLimit(.minutes(2)))
    func routersModestRate() async throws {
        try await withLoadLab("ld-router", router: true) { lab in
            let (a, b) = try await lab.twoHosts()
            try await lab.routerPair(a, b)
            let outcome = try await lab.vxload([
                "run", "--tx", "iface:vx42", "--tx-netns", a.namespace, "--rx", "iface:vx42", "--rx-netns", b.namespace,
                "--rate", "2000", "--count", "4000", "--flows", "8", "--json",
            ])
            let json = try expectClean(outcome, sent: 4000)
            try expectOrderedLatency(json, outcome.summary)
        }
    }

    @Test("two vxrouters offered far more than they carry: the run shows the loss", .loadRouterLab, .timeLimit(.minutes(2)))
    func routersOverloaded() async throws {
        try await withLoadLab("ld-lossy", router: true) { lab in
            let (a, b) = try await lab.twoHosts()
            try await lab.routerPair(a, b)
            let outcome = try await lab.vxload([
                "run", "--tx", "iface:vx42", "--tx-netns", a.namespace, "--rx", "iface:vx42", "--rx-netns", b.namespace,
                "--rate", "max", "--duration", "2", "--flows", "8", "--drain", "0.5",
            ])
            // Loss is a measurement, not a failure: exit 0, and the summary's `lost` line says it.
            #expect(outcome.status == 0, "\(outcome.summary)")
            let lostLine = outcome.stdout.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("lost") }
            let lost = lostLine.flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) }
            #expect((lost ?? 0) > 0, "\(outcome.summary)")
            #expect(outcome.stdout.contains("complete"))
        }
    }

    // MARK: - A capture to replay

    /// Twelve frames: ten of different sizes and ethertypes, a broadcast, and the first one again.
    static func captureFrames() -> [[UInt8]] {
        var frames: [[UInt8]] = []
        for i in 0..<10 {
            let destination: [UInt8] = [0x02, 0x11, 0, 0, 0, UInt8(i + 1)]
            let source: [UInt8] = [0x02, 0x22, 0, 0, 0, UInt8(i + 1)]
            frames.append(destination + source + [0x88, 0xB5] + [UInt8](repeating: UInt8(i), count: 46 + i * 131))
        }
        frames.append([UInt8](repeating: 0xFF, count: 6) + [0x02, 0x22, 0, 0, 0, 0x77, 0x08, 0x06] + [UInt8](repeating: 0, count: 46))
        frames.append(frames[0])
        return frames
    }

    /// A classic little-endian pcap (microsecond stamps, Ethernet), frames 10 ms apart.
    static func writePcap(_ frames: [[UInt8]], to path: String) throws {
        var bytes: [UInt8] = []
        func le32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        func le16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        le32(0xA1B2_C3D4); le16(2); le16(4); le32(0); le32(0); le32(65535); le32(1)
        for (i, frame) in frames.enumerated() {
            le32(1_700_000_000); le32(UInt32(i * 10_000)); le32(UInt32(frame.count)); le32(UInt32(frame.count))
            bytes += frame
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}
