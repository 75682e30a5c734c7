// The worker hands the outer-checksum verdict to the coalescer: with `outerChecksumVouches` the
// segments of one receive are merged without their TCP checksums being summed (a wrong one among
// them joins, which is how the test sees the skip); without it a wrong one ends the group and goes
// out alone, unchanged, for the host to drop.
import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

@Suite("Decapsulation with vouched outer checksums")
struct OuterChecksumDecapsulationTests {
    let vtep = "192.0.2.10"

    func receive(vouched: Bool, v6: Bool) -> (h: Harness, frames: [[UInt8]]) {
        let h = Harness(batchSize: 16, offloads: true, outerChecksumVouches: vouched)
        let size = 500
        let frames = (0..<6).map { k in
            InnerFrames.frame(
                v6: v6, tcp: true, field: k == 3 ? .wrong : .full, payload: size, seq: 1 + UInt32(k * size), seed: k)
        }
        h.receive(frames.map { (Bytes.datagram(vni: 42, $0), Endpoint(address: IPAddress(vtep)!, port: 4789)) })
        return (h, frames)
    }

    @Test(arguments: [false, true])
    func wrongSegmentIsVerifiedUnlessVouched(v6: Bool) throws {
        let (verified, frames) = receive(vouched: false, v6: v6)
        #expect(verified.taps[0].written.count == 3)
        #expect(verified.taps[0].written[1] == [UInt8](repeating: 0, count: VirtioNetHeader.size) + frames[3])
        #expect(verified.snapshot[0, .tapTxPackets] == 6)

        let (vouched, _) = receive(vouched: true, v6: v6)
        #expect(vouched.taps[0].written.count == 1)
        let written = try #require(vouched.taps[0].written.first)
        let header = written.withUnsafeBytes { VirtioNetHeader(decoding: $0.baseAddress!) }
        #expect(header.gsoType == (v6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4))
        #expect(header.flags == VirtioNetHeader.flagNeedsChecksum)
        #expect(vouched.snapshot[0, .tapTxPackets] == 6)
    }
}
