import Testing
import VXTestSupport

@testable import VXWire

@Suite("Neighbour and ICMP builders under random input")
struct NeighbourFuzzTests {
    /// 100k random frames against a guard page through the ARP/NS classifier and the too-big
    /// builder: no trap, no read past the frame, and every answer fits its documented size. Most
    /// frames get an ARP or IPv6 EtherType (one in four behind a VLAN tag) and plausible bytes
    /// where the parsers branch, so the deep paths are reached.
    @Test func randomFramesNeverTrapOrOverread() {
        let guarded = GuardedBytes()
        var rng = SplitMix64(seed: 0xA4B)
        var out = [UInt8](repeating: 0, count: PacketTooBig.maxFrameSize)
        var queries = 0
        var unanswerable = 0
        var tooBig = 0
        for _ in 0..<100_000 {
            let length = 14 + Int(rng.next() % 160)
            let roll = rng.next()
            guarded.withRandom(count: length, using: &rng) { buffer in
                let tagged = roll & 3 == 0 && length >= 18
                let l3 = tagged ? 18 : 14
                if tagged {
                    buffer[12] = 0x81
                    buffer[13] = 0x00
                }
                let types: [(UInt8, UInt8)] = [(0x08, 0x06), (0x86, 0xdd), (0x08, 0x00), (0x08, 0x06)]
                let (hi, lo) = types[Int(roll >> 2 & 3)]
                buffer[l3 - 2] = hi
                buffer[l3 - 1] = lo
                if hi == 0x08, lo == 0x06, length >= l3 + 8, roll & 32 == 0 {
                    for (k, b) in [0, 1, 8, 0, 6, 4, 0, 1].enumerated() { buffer[l3 + k] = UInt8(b) }
                }
                if hi == 0x86, length >= l3 + 41, roll & 32 == 0 {
                    buffer[l3] = 0x60
                    buffer[l3 + 6] = 58
                    buffer[l3 + 7] = 255
                    buffer[l3 + 40] = 135
                }
                if hi == 0x08, lo == 0x00, length >= l3 + 20 { buffer[l3] = 0x45 }
                let frame = UnsafeRawPointer(buffer.baseAddress!)
                switch NeighbourQuery.classify(frame: frame, length: length) {
                case .query(let query):
                    queries += 1
                    let n = out.withUnsafeMutableBytes {
                        query.answer(mac: MACAddress(2, 0, 0, 0, 0, 9), request: frame, to: $0.baseAddress!)
                    }
                    #expect(n <= NeighbourQuery.maxAnswerSize)
                case .unanswerable: unanswerable += 1
                case .other: break
                }
                let n = out.withUnsafeMutableBytes {
                    PacketTooBig.answer(frame: frame, available: length, maxFrame: 1464, mtuCeiling: 1500, to: $0.baseAddress!)
                }
                if let n {
                    tooBig += 1
                    #expect(n <= PacketTooBig.maxFrameSize)
                }
            }
        }
        #expect(queries > 1_000 && unanswerable > 1_000 && tooBig > 100, "\(queries) \(unanswerable) \(tooBig)")
    }
}
