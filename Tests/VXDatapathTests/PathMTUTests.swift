import Testing
import VXWire

@testable import VXDatapath

/// A remote's learned path MTU (README "PMTU"): the arithmetic, the remote table's side, and the
/// forwarder signalling against it.
@Suite("Learned path MTU")
struct PathMTUTests {
    @Test func innerMTUIsThePathLessFiftyOrSeventy() {
        #expect(PathMTU.frameLimit(pathMTU: 1400, family: .v4) == 1364)
        #expect(PathMTU.innerMTU(pathMTU: 1400, family: .v4) == 1350)
        #expect(PathMTU.innerMTU(pathMTU: 1500, family: .v4) == 1450)
        #expect(PathMTU.frameLimit(pathMTU: 1400, family: .v6) == 1344)
        #expect(PathMTU.innerMTU(pathMTU: 1400, family: .v6) == 1330)
        #expect(PathMTU.minimum(family: .v4) == 50 + 68)
    }

    @Test func aLearnedMTUNeverGrowsPastTheConfiguredOne() {
        #expect(PathMTU.learned(kernel: 1500, configured: 1500, family: .v4) == nil, "nothing learned")
        #expect(PathMTU.learned(kernel: 9000, configured: 1500, family: .v4) == nil, "a wider route is not a licence")
        #expect(PathMTU.learned(kernel: 1400, configured: 1500, family: .v4) == 1400)
        #expect(PathMTU.learned(kernel: 1400, configured: 1450, family: .v6) == 1400)
        #expect(PathMTU.learned(kernel: 60, configured: 1500, family: .v4) == PathMTU.minimum(family: .v4))
    }

    @Test func theTableKeepsALimitPerRemoteAndTheProbeRequests() {
        let table = RemoteTable(capacity: 8)
        let a = table.intern(IPAddress("192.0.2.1")!)!
        let b = table.intern(IPAddress("192.0.2.2")!)!
        let view = table.view
        #expect(view.frameLimit(a) == Int.max && table.frameLimit(of: a) == nil)
        table.setFrameLimit(1364, of: a)
        #expect(view.frameLimit(a) == 1364 && view.frameLimit(b) == Int.max)
        #expect(table.frameLimit(of: a) == 1364)
        table.setFrameLimit(nil, of: a)
        #expect(view.frameLimit(a) == Int.max)

        var asked: [RemoteIndex] = []
        table.takeProbeRequests { asked.append($0) }
        #expect(asked.isEmpty)
        view.requestProbe(b)
        view.requestProbe(b)
        table.takeProbeRequests { asked.append($0) }
        #expect(asked == [b], "once, however often a worker asked")
        table.takeProbeRequests { asked.append($0) }
        #expect(asked == [b], "handled requests are not repeated")
        view.requestProbe(b)
        view.requestProbe(a)
        asked = []
        table.takeProbeRequests { asked.append($0) }
        #expect(asked == [a, b], "asked again after the flag was cleared")
    }

    /// An IPv4 underlay of MTU 1500 under a TAP of MTU 1450, the destination behind 192.0.2.10.
    func harness(signal: Bool = true, offloads: Bool = false) -> Harness {
        let h = Harness(
            [Harness.NetworkSpec(vni: 42, mtu: 1450, pmtuSignal: signal)], underlayMaxFrame: 1500 - 36,
            offloads: offloads)
        h.setStatic(0, MACAddress(0x02, 0, 0, 0, 0, 0x02), behind: "192.0.2.10")
        h.setFlood(0, ["192.0.2.10", "192.0.2.11"])
        return h
    }

    /// 10.0.1.1 → 10.0.1.2 (MAC 02::02), DF, `ipLength` bytes of IP.
    static func frame(ipLength: Int = 1450, to destination: [UInt8] = [0x02, 0, 0, 0, 0, 0x02]) -> [UInt8] {
        func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        return destination + [0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]
            + [0x45, 0x00] + be16(ipLength) + [0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 10, 0, 1, 1, 10, 0, 1, 2]
            + be16(40000) + be16(5201) + be16(ipLength - 20) + [0, 0] + [UInt8](repeating: 7, count: ipLength - 28)
    }

    @Test func aFrameTooBigForTheLearnedPathIsSignalledWithTheInnerMTUThatFits() throws {
        let h = harness()
        h.transmit([Self.frame()])
        #expect(h.link.sent.count == 1, "fits the configured underlay while nothing is learned")

        h.remotes.setFrameLimit(PathMTU.frameLimit(pathMTU: 1400, family: .v4), of: h.remote("192.0.2.10"))
        h.transmit([Self.frame(), Self.frame(ipLength: 1350)])
        #expect(h.link.sent.count == 2, "the frame that fits the path still goes")
        #expect(h.drops == ["0:oversize=1"])
        #expect(h.remoteCounters.snapshot(rows: 2)[h.remote("192.0.2.10"), drop: .oversize] == 1)
        #expect(h.snapshot[0, .pmtuSignalled] == 1 && h.snapshot[0, .pmtuPathSignalled] == 1)
        let reply = try #require(h.taps[0].written.first)
        #expect(reply[14 + 20] == 3 && reply[14 + 21] == 4, "fragmentation needed")
        #expect(Array(reply[14 + 24..<14 + 28]) == [0, 0, 0x05, 0x46], "MTU 1350 = 1400 - 50")

        // Forgotten: the configured limit holds again.
        h.remotes.setFrameLimit(nil, of: h.remote("192.0.2.10"))
        h.transmit([Self.frame()])
        #expect(h.link.sent.count == 3)
    }

    @Test func switchedOffTheFrameIsOnlyDropped() {
        let h = harness(signal: false)
        h.remotes.setFrameLimit(1364, of: h.remote("192.0.2.10"))
        h.transmit([Self.frame()])
        #expect(h.link.sent.isEmpty && h.taps[0].written.isEmpty)
        #expect(h.drops == ["0:oversize=1"])
    }

    @Test func aFloodedFrameSkipsOnlyTheCopiesThatDoNotFit() throws {
        let h = harness()
        h.remotes.setFrameLimit(1364, of: h.remote("192.0.2.11"))
        h.transmit([Self.frame(to: [0x02, 0, 0, 0, 0, 0x77])])  // unknown unicast: flooded
        #expect(h.link.sent.map(\.destination.address) == [IPAddress("192.0.2.10")!])
        #expect(h.drops == ["0:oversize=1"])
        #expect(h.snapshot[0, .pmtuPathSignalled] == 1)
        let reply = try #require(h.taps[0].written.first)
        #expect(Array(reply[14 + 24..<14 + 28]) == [0, 0, 0x05, 0x46])
    }

    /// With offloads, a super-frame whose segments fit the underlay but not the learned path: one
    /// error with the path's inner MTU, before it is cut.
    @Test func aSuperFrameTooBigForTheLearnedPathGetsOneError() throws {
        let h = harness(offloads: true)
        h.remotes.setFrameLimit(1364, of: h.remote("192.0.2.10"))
        let header = VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum, gsoType: VirtioNetHeader.gsoTCPv4, headerLength: 66,
            gsoSize: 1398, checksumStart: 34, checksumOffset: 16)
        var virtio = [UInt8](repeating: 0, count: VirtioNetHeader.size)
        virtio.withUnsafeMutableBytes { header.encode(to: $0.baseAddress!) }
        var frame = AllocationTests.frame(payload: 10 * 1398, pseudoOnly: true)
        frame.replaceSubrange(0..<6, with: [0x02, 0, 0, 0, 0, 0x02])
        h.transmit([virtio + frame])
        #expect(h.link.sent.isEmpty)
        #expect(h.snapshot[0, .pmtuPathSignalled] == 1)
        #expect(h.taps[0].written.count == 1)
        let icmp = try #require(h.taps[0].written.first).dropFirst(VirtioNetHeader.size + 14 + 20)
        #expect(Array(icmp.prefix(8).suffix(2)) == [0x05, 0x46], "1350")
    }

    /// A send the kernel refused as too big asks the control thread to read the path MTU.
    @Test func aRefusedSendAsksForAProbe() {
        let h = harness()
        h.link.status = { _ in .tooBig }
        h.transmit([Self.frame()])
        var asked: [RemoteIndex] = []
        h.remotes.takeProbeRequests { asked.append($0) }
        #expect(asked == [h.remote("192.0.2.10")])
        #expect(h.drops == ["0:oversize=1"])
    }
}
