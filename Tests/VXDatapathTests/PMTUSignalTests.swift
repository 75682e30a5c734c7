import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

@Suite("PMTU signalling on the encapsulation path")
struct PMTUSignalTests {
    /// An IPv4 underlay of MTU 1500 (frames up to 1464 bytes) under a TAP of MTU 1500.
    func harness(signal: Bool = true, offloads: Bool = false) -> Harness {
        let h = Harness(
            [Harness.NetworkSpec(vni: 42, mtu: 1500, pmtuSignal: signal)], underlayMaxFrame: 1500 - 36,
            offloads: offloads)
        h.setFlood(0, ["192.0.2.10"])
        return h
    }

    /// 10.0.1.1 → 10.0.1.2, DF, 1500 bytes of IP in a 1514-byte frame.
    func frame(df: Bool = true) -> [UInt8] {
        func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        return [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]
            + [0x45, 0x00] + be16(1500) + [0x12, 0x34, df ? 0x40 : 0, 0, 64, 17, 0, 0, 10, 0, 1, 1, 10, 0, 1, 2]
            + be16(40000) + be16(5201) + be16(1480) + [0, 0] + [UInt8](repeating: 7, count: 1472)
    }

    @Test func anOversizeFrameIsDroppedAndItsSenderTold() throws {
        let h = harness()
        h.transmit([frame()])
        #expect(h.link.sent.isEmpty)
        #expect(h.drops == ["0:oversize=1"])
        #expect(h.snapshot[0, .pmtuSignalled] == 1)
        let reply = try #require(h.taps[0].written.first)
        #expect(Array(reply[0..<6]) == [0x02, 0, 0, 0, 0, 0x01], "to the sender")
        #expect(reply[14 + 20] == 3 && reply[14 + 21] == 4, "fragmentation needed")
        #expect(Array(reply[14 + 24..<14 + 28]) == [0, 0, 0x05, 0xaa], "MTU 1450")
        #expect(Array(reply[14 + 28..<14 + 48]) == Array(frame()[14..<34]), "quotes the offending header")
        #expect(h.snapshot[0, .tapTxPackets] == 1)
    }

    @Test func switchedOffOrWithoutDFOnlyTheDrop() {
        let off = harness(signal: false)
        off.transmit([frame()])
        #expect(off.taps[0].written.isEmpty)
        #expect(off.drops == ["0:oversize=1"])
        let noDF = harness()
        noDF.transmit([frame(df: false)])
        #expect(noDF.taps[0].written.isEmpty)
        #expect(noDF.snapshot[0, .pmtuSignalled] == 0)
        #expect(noDF.drops == ["0:oversize=1"])
    }

    /// A burst of oversize frames gets at most the per-second budget of errors (100; a window
    /// boundary inside the burst can let one more window's worth through), and every frame is
    /// still counted as dropped.
    @Test func rateLimited() {
        let h = Harness(
            [Harness.NetworkSpec(vni: 42, mtu: 1500)], underlayMaxFrame: 1464, batchSize: 64)
        h.setFlood(0, ["192.0.2.10"])
        h.transmit([[UInt8]](repeating: frame(), count: 250))
        let signalled = h.snapshot[0, .pmtuSignalled]
        #expect(signalled >= UInt64(LocalReplies.errorsPerSecond))
        #expect(signalled <= UInt64(2 * LocalReplies.errorsPerSecond))
        #expect(h.taps[0].written.count == Int(signalled))
        #expect(h.drops == ["0:oversize=250"])
    }

    /// With offloads, a TSO super-frame whose segments would not fit gets one error (not one per
    /// segment), behind a virtio header.
    @Test func aSuperFrameTooBigForTheUnderlayGetsOneError() throws {
        let h = harness(offloads: true)
        h.transmit([Bytes.tso4SuperFrame(segments: 10, gsoSize: 1448)])
        #expect(h.link.sent.isEmpty)
        #expect(h.snapshot[0, .pmtuSignalled] == 1)
        let reply = try #require(h.taps[0].written.first)
        #expect(h.taps[0].written.count == 1)
        #expect(Array(reply.prefix(VirtioNetHeader.size)) == [UInt8](repeating: 0, count: VirtioNetHeader.size))
        let icmp = Array(reply.dropFirst(VirtioNetHeader.size + 14 + 20))
        #expect(icmp[0] == 3 && icmp[1] == 4)
        #expect(Array(icmp[6..<8]) == [0x05, 0xaa], "1464 - 14 = 1450")
    }
}
