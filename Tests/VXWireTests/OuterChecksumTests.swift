// The outer-checksum rules (`OuterChecksum`) and the coalescer's use of them: a segment whose
// datagram's outer checksum vouches for it joins a group without its TCP checksum being summed;
// one that is not vouched for is still verified and, if wrong, written alone for the kernel to drop.
import Testing

@testable import VXWire

@Suite("Outer UDP checksum rules")
struct OuterChecksumRuleTests {
    typealias C = OuterChecksum.Choice

    /// Every combination: only IPv6 with zero checksums refused is trusted by default; `true`
    /// trusts every path (the operator's word), `false` none.
    @Test func vouchesForInner() {
        let paths = [
            OuterChecksum.ReceivePath(family: .v4),
            OuterChecksum.ReceivePath(family: .v4, zeroChecksumsAccepted: true),
            OuterChecksum.ReceivePath(family: .v6),
            OuterChecksum.ReceivePath(family: .v6, zeroChecksumsAccepted: true),
        ]
        #expect(paths.map { OuterChecksum.vouchesForInner($0, trust: .auto) } == [false, false, true, false])
        #expect(paths.map { OuterChecksum.vouchesForInner($0, trust: .on) } == [true, true, true, true])
        #expect(paths.map { OuterChecksum.vouchesForInner($0, trust: .off) } == [false, false, false, false])
    }

    /// `auto` is what vxrouter always did: IPv6 always, IPv4 only through UDP sockets (the
    /// offloads' pool), zero from the raw socket.
    @Test func whatIsSent() {
        for udpSockets in [false, true] {
            #expect(OuterChecksum.sends(family: .v6, choice: .auto, udpSockets: udpSockets))
            #expect(OuterChecksum.sends(family: .v4, choice: .auto, udpSockets: udpSockets) == udpSockets)
            #expect(OuterChecksum.sends(family: .v4, choice: .on, udpSockets: udpSockets))
            #expect(!OuterChecksum.sends(family: .v4, choice: .off, udpSockets: udpSockets))
        }
        #expect(OuterChecksum.problem(family: .v6, sending: .off) != nil)
        for choice in C.allCases { #expect(OuterChecksum.problem(family: .v4, sending: choice) == nil) }
        #expect(OuterChecksum.problem(family: .v6, sending: .auto) == nil)
        #expect(OuterChecksum.problem(family: .v6, sending: .on) == nil)
        #expect(C.allCases.map(\.rawValue) == ["auto", "true", "false"])
    }

    /// The raw socket's IPv4 UDP checksum against the reference sum over pseudo-header and
    /// datagram, contiguous and split into head and tail at even and odd offsets.
    @Test(arguments: [0, 7, 8, 9, 30, 31])
    func ipv4UDPChecksum(split: Int) {
        let source: UInt32 = 0xC612_0001  // 198.18.0.1
        let destination: UInt32 = 0xC612_0002
        let payload = FrameBuilder.payload(101, seed: split)
        let length = 8 + payload.count
        var datagram: [UInt8] = [0xC3, 0x50, 0x12, 0xB5, UInt8(length >> 8), UInt8(length & 0xFF), 0, 0] + payload
        let pseudo: [UInt8] =
            FrameBuilder.be32(source) + FrameBuilder.be32(destination) + [0, 17] + FrameBuilder.be16(length)
        var expected = referenceChecksum((pseudo + datagram)[...])
        if expected == 0 { expected = 0xFFFF }
        let value: UInt16 = datagram.withUnsafeBytes { raw in
            let cut = split == 0 ? raw.count : split
            let tail = cut < raw.count ? FramePiece(base: raw.baseAddress! + cut, length: raw.count - cut) : FramePiece(base: nil, length: 0)
            return OuterChecksum.ipv4UDP(
                source: source, destination: destination, head: raw.baseAddress!, headLength: cut, tail: tail)
        }
        #expect(value == expected)
        // Written into the field, the datagram verifies.
        datagram[6] = UInt8(value >> 8)
        datagram[7] = UInt8(value & 0xFF)
        #expect(referenceChecksum((pseudo + datagram)[...]) == 0 || value == 0xFFFF)
    }
}

@Suite("TCP coalescing with vouched outer checksums")
struct VouchedCoalescingTests {
    /// The coalescing tests' harness, with every segment vouched for or none.
    func coalesce(_ frames: [[UInt8]], vouched: Bool) -> [CoalescingTests.Emitted] {
        CoalescingTests().coalesce(frames, vouched: vouched)
    }

    func segments(_ count: Int, v6: Bool, bad: Set<Int> = []) -> [[UInt8]] {
        (0..<count).map { k in
            FrameBuilder.tcp(
                v6: v6, seq: 5000 &+ UInt32(k * 1000), id: 0x1234 + k, payload: FrameBuilder.payload(1000, seed: k),
                checksum: bad.contains(k) ? "bad" : "full")
        }
    }

    /// Vouched for, a segment is not summed: even one whose TCP checksum is wrong joins (which
    /// is how the test sees that the pass was skipped — the outer checksum is what keeps wrong
    /// bytes out). Not vouched for, the same segment ends the group and goes out alone, unchanged.
    @Test(arguments: [false, true])
    func verificationSkippedOnlyWhenVouched(v6: Bool) throws {
        let frames = segments(4, v6: v6, bad: [2])
        #expect(coalesce(frames, vouched: false).map(\.count) == [2, 1, 1])
        #expect(coalesce(frames, vouched: false)[1].bytes == [UInt8](repeating: 0, count: 12) + frames[2])
        #expect(coalesce(frames, vouched: true).map(\.count) == [4])
        // A bad head: verified, it goes alone; vouched for, it heads the group.
        let badHead = segments(3, v6: v6, bad: [0])
        #expect(coalesce(badHead, vouched: false).map(\.count) == [1, 2])
        #expect(coalesce(badHead, vouched: true).map(\.count) == [3])
    }

    /// With correct segments, skipping the pass changes nothing in what is written: the same
    /// NEEDS_CSUM super-frame, byte for byte.
    @Test(arguments: [false, true])
    func sameSuperFrameEitherWay(v6: Bool) throws {
        let frames = segments(5, v6: v6)
        let verified = coalesce(frames, vouched: false)
        let vouched = coalesce(frames, vouched: true)
        #expect(verified.map(\.count) == [5])
        #expect(vouched.map(\.count) == [5])
        #expect(verified.first?.bytes == vouched.first?.bytes)
    }

    /// Written alone, a vouched-for frame keeps its own checksum and an empty virtio header: the
    /// kernel still checks it (nothing is handed over as NEEDS_CSUM that was not merged).
    @Test func aloneKeepsItsOwnChecksum() {
        for v6 in [false, true] {
            let bad = segments(1, v6: v6, bad: [0])
            let groups = coalesce(bad, vouched: true)
            #expect(groups.map(\.count) == [1])
            #expect(groups.first?.bytes == [UInt8](repeating: 0, count: 12) + bad[0])
        }
    }
}
