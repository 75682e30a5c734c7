// The frame-layout walk and the inner checksum classifier: finished-and-correct, finished-and-wrong
// and unfinished (pseudo-header sum only) TCP and UDP over IPv4 and IPv6, the cases with no
// checksum to judge, and software completion. Checksums in the fixtures come from the naive
// `referenceChecksum`, never from the code under test.
import Testing

@testable import VXWire

/// TCP and UDP frames with a chosen checksum state, over IPv4 or IPv6, optionally tagged, with an
/// IPv6 extension header or IPv4 options, or padded like a short Ethernet frame.
enum ChecksumFixture {
    enum Field: CaseIterable {
        /// The complete, correct checksum.
        case full
        /// The folded pseudo-header sum, as a sender's checksum offload leaves it.
        case pseudo
        /// A complete checksum that is wrong (the correct one with one bit flipped).
        case wrong
    }

    static func frame(
        v6: Bool, tcp: Bool, field: Field, payload: [UInt8] = FrameBuilder.payload(100), tags: [UInt16] = [],
        hopByHop: Bool = false, ipOptions: Bool = false, padTo: Int = 0
    ) -> [UInt8] {
        let be16 = FrameBuilder.be16
        var l4: [UInt8]
        let proto: UInt8 = tcp ? 6 : 17
        if tcp {
            l4 = be16(40000) + be16(5201) + FrameBuilder.be32(1000) + FrameBuilder.be32(2000)
            l4 += [0x50, TCPFlags.ack] + be16(502) + [0, 0, 0, 0]
        } else {
            l4 = be16(40000) + be16(5201) + be16(8 + payload.count) + [0, 0]
        }
        l4 += payload
        let fieldAt = tcp ? 16 : 6
        let source = v6 ? FrameBuilder.v6Source : FrameBuilder.v4Source
        let destination = v6 ? FrameBuilder.v6Destination : FrameBuilder.v4Destination
        var pseudo = UInt32(proto) + UInt32(l4.count)
        for k in stride(from: 0, to: source.count, by: 2) {
            pseudo += UInt32(source[k]) << 8 | UInt32(source[k + 1])
            pseudo += UInt32(destination[k]) << 8 | UInt32(destination[k + 1])
        }
        let value: UInt16
        switch field {
        case .full:
            let v = referenceChecksum(l4[...], initial: pseudo)
            value = !tcp && v == 0 ? 0xFFFF : v
        case .pseudo:
            var folded = pseudo
            while folded > 0xFFFF { folded = (folded & 0xFFFF) + (folded >> 16) }
            value = UInt16(folded)
        case .wrong:
            value = referenceChecksum(l4[...], initial: pseudo) ^ 0x0100
        }
        l4[fieldAt] = UInt8(value >> 8)
        l4[fieldAt + 1] = UInt8(value & 0xFF)

        var link = FrameBuilder.macs
        for tag in tags { link += be16(Int(tag)) + [0, 7] }
        var frame: [UInt8]
        if v6 {
            let extensionHeader: [UInt8] = hopByHop ? [proto, 0, 1, 4, 0, 0, 0, 0] : []
            let ip = [0x60, 0, 0, 0] + be16(extensionHeader.count + l4.count) + [hopByHop ? 0 : proto, 64]
                + source + destination
            frame = link + [0x86, 0xDD] + ip + extensionHeader + l4
        } else {
            let options: [UInt8] = ipOptions ? [1, 1, 1, 0] : []
            let ihl = 20 + options.count
            var ip = [UInt8(0x40 | ihl / 4), 0] + be16(ihl + l4.count) + [0x12, 0x34, 0x40, 0, 64, proto, 0, 0]
            ip += source + destination + options
            let sum = referenceChecksum(ip[...])
            ip[10] = UInt8(sum >> 8)
            ip[11] = UInt8(sum & 0xFF)
            frame = link + [0x08, 0x00] + ip + l4
        }
        if frame.count < padTo { frame += [UInt8](repeating: 0, count: padTo - frame.count) }
        return frame
    }

    static func classify(_ frame: [UInt8]) -> InnerChecksum.State {
        frame.withUnsafeBytes { InnerChecksum.classify($0.baseAddress!, length: $0.count) }
    }

    static func partial(_ frame: [UInt8]) -> PartialChecksum {
        frame.withUnsafeBytes { InnerChecksum.partial($0.baseAddress!, length: $0.count) }
    }

    static func layout(_ frame: [UInt8]) -> FrameLayout? {
        frame.withUnsafeBytes { FrameLayout(ip: $0.baseAddress!, length: $0.count) }
    }
}

@Suite("Inner checksum classification")
struct InnerChecksumTests {
    typealias F = ChecksumFixture

    static let families: [(v6: Bool, tcp: Bool)] = [(false, true), (false, false), (true, true), (true, false)]

    @Test(arguments: [false, true], [false, true])
    func finishedAndCorrect(v6: Bool, tcp: Bool) {
        let frame = F.frame(v6: v6, tcp: tcp, field: .full)
        #expect(F.classify(frame) == .finishedValid)
        #expect(!F.partial(frame).isPresent)
    }

    @Test(arguments: [false, true], [false, true])
    func finishedAndWrong(v6: Bool, tcp: Bool) {
        let frame = F.frame(v6: v6, tcp: tcp, field: .wrong)
        #expect(F.classify(frame) == .finishedInvalid)
        #expect(!F.partial(frame).isPresent, "a wrong checksum is never taken for an unfinished one")
    }

    @Test(arguments: [false, true], [false, true])
    func unfinished(v6: Bool, tcp: Bool) {
        let frame = F.frame(v6: v6, tcp: tcp, field: .pseudo)
        #expect(F.classify(frame) == .unfinished)
        let l4 = v6 ? 54 : 34
        #expect(F.partial(frame) == PartialChecksum(start: UInt16(l4), offset: tcp ? 16 : 6, end: UInt32(frame.count)))
    }

    /// Completing an unfinished checksum gives exactly the frame with the correct checksum.
    @Test(arguments: [false, true], [false, true])
    func completionGivesTheFinishedFrame(v6: Bool, tcp: Bool) {
        for size in [0, 1, 99, 1400] {
            let payload = FrameBuilder.payload(size, seed: size)
            var frame = F.frame(v6: v6, tcp: tcp, field: .pseudo, payload: payload)
            let partial = F.partial(frame)
            #expect(partial.isPresent)
            frame.withUnsafeMutableBytes { partial.complete($0.baseAddress!) }
            #expect(frame == F.frame(v6: v6, tcp: tcp, field: .full, payload: payload), "payload \(size)")
            #expect(F.classify(frame) == .finishedValid)
        }
    }

    /// The pseudo-header covers the transport length: the same field is not "unfinished" for a
    /// packet of another length (a truncated or padded-out segment is not mistaken for one).
    @Test func pseudoHeaderSumOfAnotherLengthIsNotUnfinished() {
        let short = F.frame(v6: false, tcp: true, field: .pseudo, payload: FrameBuilder.payload(100))
        var long = F.frame(v6: false, tcp: true, field: .full, payload: FrameBuilder.payload(102))
        long[50] = short[50]
        long[51] = short[51]
        #expect(F.classify(long) == .finishedInvalid)
    }

    @Test func taggedFramesAndHeadersInTheWay() {
        for tags in [[UInt16(0x8100)], [0x88A8, 0x8100]] {
            for (v6, tcp) in Self.families {
                let frame = F.frame(v6: v6, tcp: tcp, field: .pseudo, tags: tags)
                #expect(F.classify(frame) == .unfinished, "tags \(tags)")
                #expect(Int(F.partial(frame).start) == (v6 ? 54 : 34) + 4 * tags.count)
            }
        }
        let options = F.frame(v6: false, tcp: true, field: .pseudo, ipOptions: true)
        #expect(F.partial(options).start == 38)
        let hopByHop = F.frame(v6: true, tcp: false, field: .pseudo, hopByHop: true)
        #expect(F.partial(hopByHop).start == 62)
        #expect(F.classify(F.frame(v6: true, tcp: true, field: .full, hopByHop: true)) == .finishedValid)
    }

    /// A short frame padded to Ethernet's 60 bytes: the padding is outside the IP packet, so
    /// outside the checksum and outside its completion.
    @Test func ethernetPaddingIsNotSummed() {
        var frame = F.frame(v6: false, tcp: false, field: .pseudo, payload: [1, 2], padTo: 60)
        #expect(frame.count == 60)
        frame[59] = 0xAB
        let partial = F.partial(frame)
        #expect(partial.end == 44)
        frame.withUnsafeMutableBytes { partial.complete($0.baseAddress!) }
        var expected = F.frame(v6: false, tcp: false, field: .full, payload: [1, 2], padTo: 60)
        expected[59] = 0xAB
        #expect(frame == expected)
    }

    @Test func nothingToJudge() {
        var icmp = F.frame(v6: false, tcp: false, field: .pseudo)
        icmp[23] = 1
        #expect(F.classify(icmp) == .notApplicable)

        var fragment = F.frame(v6: false, tcp: true, field: .pseudo)
        fragment[20] = 0x20  // MF
        #expect(F.classify(fragment) == .notApplicable)
        var laterFragment = F.frame(v6: false, tcp: true, field: .pseudo)
        laterFragment[21] = 0x10  // offset 16 (DF stays)
        #expect(F.classify(laterFragment) == .notApplicable)

        var noChecksum = F.frame(v6: false, tcp: false, field: .full)
        noChecksum[40] = 0
        noChecksum[41] = 0
        #expect(F.classify(noChecksum) == .notApplicable, "IPv4 UDP without a checksum")
        var v6Zero = F.frame(v6: true, tcp: false, field: .full)
        v6Zero[60] = 0
        v6Zero[61] = 0
        #expect(F.classify(v6Zero) == .finishedInvalid, "IPv6 UDP must carry a checksum")

        var udpLength = F.frame(v6: false, tcp: false, field: .pseudo)
        udpLength[39] &+= 1
        #expect(F.classify(udpLength) == .notApplicable)

        var routing = F.frame(v6: true, tcp: true, field: .pseudo, hopByHop: true)
        routing[54] = 43  // hop-by-hop says a routing header follows
        #expect(F.classify(routing) == .notApplicable)
        var fragmentHeader = F.frame(v6: true, tcp: true, field: .pseudo, hopByHop: true)
        fragmentHeader[54] = 44
        #expect(F.classify(fragmentHeader) == .notApplicable)
        #expect(F.layout(fragmentHeader)?.isFragment == true)

        let truncated = F.frame(v6: false, tcp: true, field: .pseudo)
        #expect(F.classify(Array(truncated.dropLast())) == .notApplicable, "IP length beyond the buffer")
        #expect(F.classify(Array(truncated.prefix(14 + 20 + 19))) == .notApplicable)
        let v6Truncated = F.frame(v6: true, tcp: false, field: .pseudo)
        #expect(F.classify(Array(v6Truncated.dropLast())) == .notApplicable)

        var arp = [UInt8](repeating: 0, count: 42)
        arp[12] = 0x08
        arp[13] = 0x06
        #expect(F.classify(arp) == .notApplicable)
        #expect(F.classify(Array(arp.prefix(13))) == .notApplicable)

        var badVersion = F.frame(v6: false, tcp: true, field: .pseudo)
        badVersion[14] = 0x65
        #expect(F.classify(badVersion) == .notApplicable)
        var shortIHL = F.frame(v6: false, tcp: true, field: .pseudo)
        shortIHL[14] = 0x44
        #expect(F.classify(shortIHL) == .notApplicable)
    }

    /// The NEEDS_CSUM header a partial checksum hands to the TAP.
    @Test func virtioHeader() {
        let header = F.partial(F.frame(v6: true, tcp: true, field: .pseudo)).virtioHeader
        #expect(header.flags == VirtioNetHeader.flagNeedsChecksum)
        #expect(header.gsoType == VirtioNetHeader.gsoNone)
        #expect(header.checksumStart == 54 && header.checksumOffset == 16)
    }
}

@Suite("Frame layout")
struct FrameLayoutTests {
    @Test func untaggedIPv4() throws {
        let layout = try #require(ChecksumFixture.layout(ChecksumFixture.frame(v6: false, tcp: true, field: .full)))
        #expect(layout.l3 == 14 && layout.etherType == 0x0800 && !layout.isIPv6)
        #expect(layout.l4 == 34 && layout.transportProtocol == 6 && !layout.isFragment)
        #expect(layout.ipEnd == 34 + 20 + 100)
        #expect(layout.addresses == 26 && layout.addressSize == 4 && layout.transportLength == 120)
    }

    @Test func tagsUpToTheLimit() throws {
        let frame = ChecksumFixture.frame(v6: true, tcp: false, field: .full, tags: [0x88A8, 0x8100])
        let layout = try #require(ChecksumFixture.layout(frame))
        #expect(layout.l3 == 22 && layout.isIPv6 && layout.l4 == 62)
        // A third tag is beyond the walk: its EtherType is reported as found, nothing more.
        let three = ChecksumFixture.frame(v6: false, tcp: true, field: .full, tags: [0x88A8, 0x8100, 0x8100])
        #expect(ChecksumFixture.layout(three) == nil)
        three.withUnsafeBytes {
            let link = FrameLayout.link($0.baseAddress!, length: $0.count)
            #expect(link?.l3 == 22 && link?.etherType == 0x8100)
        }
        // A tag cut off by the buffer's end.
        let cut = Array(frame.prefix(16))
        cut.withUnsafeBytes { #expect(FrameLayout.link($0.baseAddress!, length: $0.count) == nil) }
    }

    /// IPv6 extension headers past the walk's limit, or running past the packet, leave no
    /// transport header.
    @Test func extensionHeaderWalkIsBounded() throws {
        var chain: [UInt8] = []
        for _ in 0..<5 { chain += [60, 0, 1, 4, 0, 0, 0, 0] }
        chain[chain.count - 8] = 17
        let ip = [0x60, 0, 0, 0] + FrameBuilder.be16(chain.count + 8) + [0, 64] + FrameBuilder.v6Source
            + FrameBuilder.v6Destination
        let frame = FrameBuilder.macs + [0x86, 0xDD] + ip + chain + [0, 1, 0, 2, 0, 8, 0, 0]
        #expect(try #require(ChecksumFixture.layout(frame)).l4 == 0)
        var overlong = ChecksumFixture.frame(v6: true, tcp: true, field: .pseudo, hopByHop: true)
        overlong[55] = 200
        #expect(try #require(ChecksumFixture.layout(overlong)).l4 == 0)
    }

    /// A super-frame's IP length fields are not trusted: the packet runs to the buffer's end.
    @Test func superFramesIgnoreTheLengthFields() throws {
        for v6 in [false, true] {
            var frame = FrameBuilder.tcp(v6: v6, seq: 1, payload: [UInt8](repeating: 7, count: 3000))
            let l3 = 14
            frame[l3 + (v6 ? 4 : 2)] = 0  // a length field claiming less than the frame
            frame[l3 + (v6 ? 5 : 3)] = 20
            let layout = try #require(
                frame.withUnsafeBytes { FrameLayout(superFrame: $0.baseAddress!, length: $0.count) })
            #expect(layout.ipEnd == frame.count && layout.l4 == (v6 ? 54 : 34) && layout.hasPlainNetworkHeader)
            #expect(frame.withUnsafeBytes { layout.tcpHeaderLength($0.baseAddress!) } == 32)
            // The trusting walk refuses (IPv4) or stops short of (IPv6) the same bytes.
            let trusted = frame.withUnsafeBytes { FrameLayout(ip: $0.baseAddress!, length: $0.count) }
            #expect(trusted == nil || trusted!.ipEnd != frame.count)
        }
    }

    /// TCP's header length and the ports are read only when they lie inside the packet.
    @Test func transportFieldsAreChecked() throws {
        let frame = FrameBuilder.tcp(v6: false, seq: 1, payload: [1, 2, 3])
        let layout = try #require(ChecksumFixture.layout(frame))
        let ports = frame.withUnsafeBytes { layout.ports($0.baseAddress!) }
        let expected = UInt32(40000 << 16 | 5201)
        #expect(ports == expected.bigEndian)
        frame.withUnsafeBytes { #expect(layout.tcpHeaderLength($0.baseAddress!) == 32) }
        var bad = frame
        bad[34 + 12] = 0x40  // data offset 16 bytes: shorter than TCP's fixed header
        bad.withUnsafeBytes { #expect(layout.tcpHeaderLength($0.baseAddress!) == nil) }
        bad[34 + 12] = 0xF0  // 60 bytes: past the packet's end
        bad.withUnsafeBytes { #expect(layout.tcpHeaderLength($0.baseAddress!) == nil) }
    }

    /// The lengths a segment's copied headers get: IPv4 total length and checksum, IPv6 payload length.
    @Test func writesIPLengths() throws {
        for v6 in [false, true] {
            let frame = FrameBuilder.tcp(v6: v6, seq: 1, payload: [UInt8](repeating: 1, count: 100))
            let layout = try #require(ChecksumFixture.layout(frame))
            var out = frame
            out.withUnsafeMutableBytes { layout.writeIPLengths(into: $0.baseAddress!, transportLength: 40, id: 9) }
            if v6 {
                #expect(Array(out[18..<20]) == [0, 40])
            } else {
                #expect(Array(out[16..<18]) == [0, 60] && Array(out[18..<20]) == [0, 9])
                #expect(out.withUnsafeBytes { InternetChecksum.ipv4HeaderValid($0.baseAddress! + 14, headerLength: 20) })
            }
        }
    }
}
