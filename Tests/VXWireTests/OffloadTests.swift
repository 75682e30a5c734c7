// Byte fixtures for the offload logic: the Internet checksum, the virtio_net header both ways,
// TSO segmentation of IPv4 and IPv6 super-frames, and TCP coalescing. Checksums are verified by a
// naive reference implementation here, never by the code under test.
import Testing

@testable import VXWire

/// The textbook RFC 1071 checksum, one 16-bit word at a time, folded as it goes.
func referenceChecksum(_ bytes: ArraySlice<UInt8>, initial: UInt32 = 0) -> UInt16 {
    var sum = initial
    var i = bytes.startIndex
    while i < bytes.endIndex {
        let high = UInt32(bytes[i])
        let low = i + 1 < bytes.endIndex ? UInt32(bytes[i + 1]) : 0
        sum += high << 8 | low
        sum = (sum & 0xFFFF) + (sum >> 16)
        i += 2
    }
    return ~UInt16(sum)
}

/// Builds Ethernet + IPv4/IPv6 + TCP frames byte by byte.
enum FrameBuilder {
    static let macs: [UInt8] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]

    static func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    static let v4Source: [UInt8] = [198, 19, 0, 1]
    static let v4Destination: [UInt8] = [198, 19, 0, 2]
    static let v6Source: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
    static let v6Destination: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]

    /// A TCP segment (12 bytes of options: NOP NOP timestamp) in a frame. `checksum`: "full"
    /// computes it, "pseudo" leaves the pseudo-header sum (what a NEEDS_CSUM super-frame holds),
    /// "bad" a wrong value. `ipLength` overrides the IP length field (super-frames carry the
    /// whole length).
    static func tcp(
        v6: Bool = false, sourcePort: Int = 40000, destinationPort: Int = 5201, seq: UInt32, ack: UInt32 = 7777,
        flags: UInt8 = TCPFlags.ack, id: Int = 0x1234, payload: [UInt8], checksum: String = "full"
    ) -> [UInt8] {
        var tcp = be16(sourcePort) + be16(destinationPort) + be32(seq) + be32(ack)
        tcp += [0x80, flags] + be16(502) + [0, 0] + [0, 0]
        tcp += [1, 1, 8, 10] + be32(1000) + be32(2000)
        let l4Length = tcp.count + payload.count
        let segment = tcp + payload
        let source = v6 ? v6Source : v4Source
        let destination = v6 ? v6Destination : v4Destination
        var pseudo: UInt32 = 6 + UInt32(l4Length)
        for k in stride(from: 0, to: source.count, by: 2) {
            pseudo += UInt32(source[k]) << 8 | UInt32(source[k + 1])
            pseudo += UInt32(destination[k]) << 8 | UInt32(destination[k + 1])
        }
        var withSum = segment
        switch checksum {
        case "full":
            let value = referenceChecksum(segment[...], initial: pseudo)
            withSum[16] = UInt8(value >> 8)
            withSum[17] = UInt8(value & 0xFF)
        case "pseudo":
            var folded = pseudo
            while folded > 0xFFFF { folded = (folded & 0xFFFF) + (folded >> 16) }
            withSum[16] = UInt8(folded >> 8)
            withSum[17] = UInt8(folded & 0xFF)
        default:
            withSum[16] = 0xDE
            withSum[17] = 0xAD
        }
        if v6 {
            let ip = [0x60, 0, 0, 0] + be16(l4Length) + [6, 64] + source + destination
            return macs + [0x86, 0xDD] + ip + withSum
        }
        var ip = [0x45, 0] + be16(20 + l4Length) + be16(id) + [0x40, 0, 64, 6, 0, 0] + source + destination
        let value = referenceChecksum(ip[...])
        ip[10] = UInt8(value >> 8)
        ip[11] = UInt8(value & 0xFF)
        return macs + [0x08, 0x00] + ip + withSum
    }

    static func payload(_ count: Int, seed: Int = 0) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ 3) }
    }
}

@Suite("Internet checksum")
struct ChecksumTests {
    /// RFC 1071 §3's worked example: the folded sum of these 8 bytes is 0xDDF2.
    @Test func rfc1071Example() {
        let bytes: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        let sum = bytes.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: 8) }
        #expect(InternetChecksum.fold(sum) == 0xDDF2)
        #expect(InternetChecksum.finish(sum) == 0x220D)
    }

    /// A well-known IPv4 header whose checksum field is 0xB861.
    @Test func ipv4HeaderKnownValue() {
        var header: [UInt8] = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xC0, 0xA8, 0x00, 0x01, 0xC0, 0xA8,
            0x00, 0xC7,
        ]
        header.withUnsafeMutableBytes { InternetChecksum.fillIPv4Header($0.baseAddress!, headerLength: 20) }
        #expect(header[10] == 0xB8 && header[11] == 0x61)
        #expect(header.withUnsafeBytes { InternetChecksum.ipv4HeaderValid($0.baseAddress!, headerLength: 20) })
        header[8] = 0x3F  // TTL changed: no longer valid
        #expect(!header.withUnsafeBytes { InternetChecksum.ipv4HeaderValid($0.baseAddress!, headerLength: 20) })
    }

    /// Every length from 0 to 300 and every starting alignment agrees with the reference, odd
    /// lengths included (the 16-byte fast loop, the word loop and the odd byte).
    @Test func agreesWithTheReference() {
        let data = FrameBuilder.payload(320, seed: 5).map { $0 ^ 0xA5 }
        for offset in 0..<4 {
            for count in 0...300 {
                let ours = data.withUnsafeBytes { InternetChecksum.finish(InternetChecksum.sum($0.baseAddress! + offset, count: count)) }
                #expect(ours == referenceChecksum(data[offset..<(offset + count)]), "offset \(offset) count \(count)")
            }
        }
    }

    /// Long runs of large words overflow the 64-bit accumulators many times over (carries).
    @Test func longBuffersCarry() {
        var generator = SystemRandomNumberGenerator()
        let ones = [UInt8](repeating: 0xFF, count: 65535)
        let random = (0..<65536).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for data in [ones, random, [UInt8](repeating: 0xFE, count: 9001)] {
            for count in [data.count, data.count - 1, 32 * 7 + 5, 4095] {
                let ours = data.withUnsafeBytes { InternetChecksum.finish(InternetChecksum.sum($0.baseAddress!, count: count)) }
                #expect(ours == referenceChecksum(data[0..<count]), "count \(count)")
            }
        }
    }

    /// Sums of pieces add up (the odd piece last), as the pseudo-header use relies on.
    @Test func piecesAddUp() {
        let data = FrameBuilder.payload(101)
        data.withUnsafeBytes { raw in
            let whole = InternetChecksum.sum(raw.baseAddress!, count: 101)
            let parts = InternetChecksum.sum(raw.baseAddress! + 40, count: 61, initial: InternetChecksum.sum(raw.baseAddress!, count: 40))
            #expect(InternetChecksum.fold(whole) == InternetChecksum.fold(parts))
        }
    }

    @Test func incrementalUpdateMatchesRecomputation() {
        var header: [UInt8] = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xB8, 0x61, 0xC0, 0xA8, 0x00, 0x01, 0xC0, 0xA8,
            0x00, 0xC7,
        ]
        let updated = InternetChecksum.update(0xB861, old: 0x4011, new: 0x3F11)
        header[8] = 0x3F
        header[10] = 0
        header[11] = 0
        #expect(updated == referenceChecksum(header[...]))
    }

    /// The pseudo-header sum of IPv4 198.19.0.1 → 198.19.0.2, TCP, length 20, by hand:
    /// 0xC613 + 0x0001 + 0xC613 + 0x0002 + 6 + 20 = 0x18C43 → folded 0x8C44.
    @Test func pseudoHeaderKnownValue() {
        let addresses: [UInt8] = FrameBuilder.v4Source + FrameBuilder.v4Destination
        let sum = addresses.withUnsafeBytes {
            InternetChecksum.pseudoHeaderSum(addresses: $0.baseAddress!, addressSize: 4, protocol: 6, length: 20)
        }
        #expect(InternetChecksum.fold(sum) == 0x8C44)
    }
}

@Suite("virtio_net header")
struct VirtioNetHeaderTests {
    /// A TSO4 super-frame's header as the kernel writes it: NEEDS_CSUM, GSO_TCPV4, hdr_len 66,
    /// gso_size 1448, csum_start 34, csum_offset 16, little-endian.
    static let tso4: [UInt8] = [0x01, 0x01, 0x42, 0x00, 0xA8, 0x05, 0x22, 0x00, 0x10, 0x00, 0x00, 0x00]

    @Test func decodesTheFixture() {
        let header = Self.tso4.withUnsafeBytes { VirtioNetHeader(decoding: $0.baseAddress!) }
        #expect(header.flags == VirtioNetHeader.flagNeedsChecksum)
        #expect(header.needsChecksum)
        #expect(header.gsoType == VirtioNetHeader.gsoTCPv4)
        #expect(header.headerLength == 66)
        #expect(header.gsoSize == 1448)
        #expect(header.checksumStart == 34)
        #expect(header.checksumOffset == 16)
        #expect(header.numBuffers == 0)
    }

    @Test func encodesTheFixture() {
        let header = VirtioNetHeader(
            flags: 1, gsoType: VirtioNetHeader.gsoTCPv4, headerLength: 66, gsoSize: 1448, checksumStart: 34,
            checksumOffset: 16)
        var buffer = [UInt8](repeating: 0xA5, count: 20)
        buffer.withUnsafeMutableBytes { header.encode(to: $0.baseAddress! + 4) }
        #expect(Array(buffer[4..<16]) == Self.tso4)
        #expect(buffer[0..<4].allSatisfy { $0 == 0xA5 } && buffer[16...].allSatisfy { $0 == 0xA5 })
        #expect(VirtioNetHeader.size == 12)
    }

    @Test func ecnBitIsNotPartOfTheKind() {
        var bytes = Self.tso4
        bytes[1] = VirtioNetHeader.gsoTCPv6 | VirtioNetHeader.gsoECN
        let header = bytes.withUnsafeBytes { VirtioNetHeader(decoding: $0.baseAddress!) }
        #expect(header.gsoKind == VirtioNetHeader.gsoTCPv6)
        #expect(header.gsoType == 0x84)
    }

    @Test func zeroHeaderIsAPlainFrame() {
        let header = [UInt8](repeating: 0, count: 12).withUnsafeBytes { VirtioNetHeader(decoding: $0.baseAddress!) }
        #expect(header == VirtioNetHeader())
        #expect(!header.needsChecksum && header.gsoKind == VirtioNetHeader.gsoNone)
    }
}

/// Views of one segment's fields, for assertions.
struct SegmentView {
    let bytes: [UInt8]
    let v6: Bool
    var l3: Int { 14 }
    var l4: Int { v6 ? 54 : 34 }
    func be16(_ at: Int) -> Int { Int(bytes[at]) << 8 | Int(bytes[at + 1]) }
    var ipLength: Int { v6 ? be16(l3 + 4) : be16(l3 + 2) }
    var ipID: Int { be16(l3 + 4) }
    var tcpSeq: UInt32 {
        (UInt32(bytes[l4 + 4]) << 24) | (UInt32(bytes[l4 + 5]) << 16) | (UInt32(bytes[l4 + 6]) << 8) | UInt32(bytes[l4 + 7])
    }
    var flags: UInt8 { bytes[l4 + 13] }
    var payload: ArraySlice<UInt8> { bytes[(l4 + 32)...] }
    var ipHeaderValid: Bool { v6 || referenceChecksum(bytes[l3..<(l3 + 20)]) == 0 }
    /// The TCP checksum verifies (sum over pseudo-header and segment is all ones).
    var tcpChecksumValid: Bool {
        let addresses = v6 ? bytes[(l3 + 8)..<(l3 + 40)] : bytes[(l3 + 12)..<(l3 + 20)]
        var pseudo: UInt32 = 6 + UInt32(bytes.count - l4)
        var k = addresses.startIndex
        while k < addresses.endIndex {
            pseudo += UInt32(addresses[k]) << 8 | UInt32(addresses[k + 1])
            k += 2
        }
        return referenceChecksum(bytes[l4...], initial: pseudo) == 0
    }
}

@Suite("TSO segmentation")
struct SegmentationTests {
    func segment(_ frame: [UInt8], header: VirtioNetHeader) -> [[UInt8]]? {
        frame.withUnsafeBytes { raw -> [[UInt8]]? in
            guard var segmenter = GSOSegmenter(header: header, frame: raw.baseAddress!, length: raw.count) else { return nil }
            var out: [[UInt8]] = []
            var buffer = [UInt8](repeating: 0, count: segmenter.maxSegmentLength)
            while !segmenter.isFinished {
                let n = buffer.withUnsafeMutableBytes { segmenter.next(into: $0.baseAddress!) }
                out.append(Array(buffer[0..<n]))
            }
            #expect(out.count == segmenter.segmentCount)
            return out
        }
    }

    func superFrame(v6: Bool, payload: [UInt8], flags: UInt8) -> ([UInt8], VirtioNetHeader) {
        let frame = FrameBuilder.tcp(v6: v6, seq: 0xFFFF_FC00, flags: flags, payload: payload, checksum: "pseudo")
        let l4 = v6 ? 54 : 34
        let header = VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum, gsoType: v6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4,
            headerLength: UInt16(l4 + 32), gsoSize: 1000, checksumStart: UInt16(l4), checksumOffset: 16)
        return (frame, header)
    }

    func check(v6: Bool) throws {
        let payload = FrameBuilder.payload(2500)
        let flags = TCPFlags.ack | TCPFlags.psh | TCPFlags.fin | TCPFlags.cwr
        let (frame, header) = superFrame(v6: v6, payload: payload, flags: flags)
        let segments = try #require(segment(frame, header: header))
        #expect(segments.map(\.count) == [1000, 1000, 500].map { $0 + (v6 ? 54 : 34) + 32 })
        var joined: [UInt8] = []
        for (k, bytes) in segments.enumerated() {
            let s = SegmentView(bytes: bytes, v6: v6)
            // Ethernet header unchanged.
            #expect(Array(bytes[0..<14]) == Array(frame[0..<14]))
            #expect(s.ipLength == (v6 ? bytes.count - 54 : bytes.count - 14), "segment \(k)")
            if !v6 { #expect(s.ipID == 0x1234 + k, "IPv4 ID advances per segment") }
            #expect(s.ipHeaderValid, "segment \(k) IPv4 header checksum")
            // Sequence numbers advance by the payload before, wrapping past 2^32.
            #expect(s.tcpSeq == 0xFFFF_FC00 &+ UInt32(k * 1000), "segment \(k)")
            let last = k == segments.count - 1
            #expect(s.flags & TCPFlags.ack != 0)
            #expect((s.flags & TCPFlags.psh != 0) == last, "PSH only on the last segment")
            #expect((s.flags & TCPFlags.fin != 0) == last, "FIN only on the last segment")
            #expect((s.flags & TCPFlags.cwr != 0) == (k == 0), "CWR only on the first segment")
            #expect(s.tcpChecksumValid, "segment \(k) TCP checksum")
            joined += s.payload
        }
        #expect(joined == payload)
    }

    @Test func tso4SuperFrame() throws { try check(v6: false) }
    @Test func tso6SuperFrame() throws { try check(v6: true) }

    /// USO (GSO_UDP_L4): every segment a whole UDP datagram with its own length and checksum.
    @Test func usoSuperFrame() throws {
        let payload = FrameBuilder.payload(2200, seed: 9)
        let udpLength = 8 + payload.count
        var frame = FrameBuilder.macs + [0x08, 0x00]
        frame += [0x45, 0] + FrameBuilder.be16(20 + udpLength) + [0x00, 0x07, 0x40, 0, 64, 17, 0, 0]
        frame += FrameBuilder.v4Source + FrameBuilder.v4Destination
        frame += FrameBuilder.be16(40000) + FrameBuilder.be16(4000) + FrameBuilder.be16(udpLength) + [0, 0] + payload
        let header = VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum, gsoType: VirtioNetHeader.gsoUDPL4, headerLength: 42,
            gsoSize: 1000, checksumStart: 34, checksumOffset: 6)
        let segments = try #require(segment(frame, header: header))
        #expect(segments.map(\.count) == [1042, 1042, 242])
        var joined: [UInt8] = []
        for (k, bytes) in segments.enumerated() {
            let view = SegmentView(bytes: bytes, v6: false)
            #expect(view.ipLength == bytes.count - 14)
            #expect(view.ipID == 7 + k)
            #expect(view.ipHeaderValid)
            #expect(view.be16(34 + 4) == bytes.count - 34, "UDP length")
            var pseudo: UInt32 = 17 + UInt32(bytes.count - 34)
            for w in stride(from: 26, to: 34, by: 2) { pseudo += UInt32(bytes[w]) << 8 | UInt32(bytes[w + 1]) }
            #expect(referenceChecksum(bytes[34...], initial: pseudo) == 0, "segment \(k) UDP checksum")
            joined += bytes[42...]
        }
        #expect(joined == payload)
    }

    /// An 802.1Q tag between the MACs and the IP header is carried on every segment.
    @Test func vlanTaggedSuperFrame() throws {
        let (plain, header) = superFrame(v6: false, payload: FrameBuilder.payload(2500), flags: TCPFlags.ack)
        let tagged = Array(plain[0..<12]) + [0x81, 0x00, 0x00, 0x2A] + Array(plain[12...])
        var taggedHeader = header
        taggedHeader.headerLength += 4
        taggedHeader.checksumStart += 4
        let segments = try #require(segment(tagged, header: taggedHeader))
        let untagged = try #require(segment(plain, header: header))
        #expect(segments.count == 3)
        for (t, u) in zip(segments, untagged) {
            #expect(Array(t[12..<16]) == [0x81, 0x00, 0x00, 0x2A])
            #expect(Array(t[0..<12]) + Array(t[16...]) == u)
        }
    }

    /// The zero-copy form writes the headers only and points at the payload inside the
    /// super-frame; joined, they are the copying form's segment (odd-length last payload too,
    /// whose checksum pads the odd byte).
    @Test(arguments: [false, true])
    func zeroCopySegmentsMatchCopiedOnes(v6: Bool) throws {
        let (frame, header) = superFrame(v6: v6, payload: FrameBuilder.payload(2501, seed: 3), flags: TCPFlags.ack)
        let copied = try #require(segment(frame, header: header))
        try frame.withUnsafeBytes { raw in
            var segmenter = try #require(GSOSegmenter(header: header, frame: raw.baseAddress!, length: raw.count))
            var headers = [UInt8](repeating: 0, count: segmenter.headerLength)
            var k = 0
            while let payload = headers.withUnsafeMutableBytes({ segmenter.nextHeaders(into: $0.baseAddress!) }) {
                let start = try #require(payload.base) - raw.baseAddress!
                #expect(start == segmenter.headerLength + k * 1000, "segment \(k)'s payload is read where it lies")
                let joined = headers + Array(UnsafeRawBufferPointer(start: payload.base, count: payload.length))
                #expect(joined == copied[k], "segment \(k)")
                #expect(SegmentView(bytes: joined, v6: v6).tcpChecksumValid)
                k += 1
            }
            #expect(k == 3 && copied.last?.count == (v6 ? 54 : 34) + 32 + 501)
        }
    }

    @Test func exactMultipleHasNoShortTail() throws {
        let (frame, header) = superFrame(v6: false, payload: FrameBuilder.payload(3000), flags: TCPFlags.ack)
        let segments = try #require(segment(frame, header: header))
        #expect(segments.count == 3)
        #expect(segments.allSatisfy { $0.count == 1066 })
    }

    @Test func refusesWhatItDoesNotUnderstand() {
        let (frame, header) = superFrame(v6: false, payload: FrameBuilder.payload(1500), flags: TCPFlags.ack)
        var wrongKind = header
        wrongKind.gsoType = VirtioNetHeader.gsoTCPv6  // IPv4 frame, TCPv6 header
        #expect(segment(frame, header: wrongKind) == nil)
        var noSize = header
        noSize.gsoSize = 0
        #expect(segment(frame, header: noSize) == nil)
        var none = header
        none.gsoType = VirtioNetHeader.gsoNone
        #expect(segment(frame, header: none) == nil)
        #expect(segment(Array(frame[0..<40]), header: header) == nil, "truncated before the TCP header")
        var udp = frame
        udp[14 + 9] = 17  // protocol says UDP, header says TCP
        #expect(segment(udp, header: header) == nil)
    }

    /// NEEDS_CSUM without GSO: the pseudo-header sum in the field becomes the full checksum.
    @Test func completesAPartialChecksum() {
        var frame = FrameBuilder.tcp(seq: 1, payload: FrameBuilder.payload(333), checksum: "pseudo")
        let done = frame.withUnsafeMutableBytes {
            Offload.completeChecksum(frame: $0.baseAddress!, length: $0.count, start: 34, offset: 16)
        }
        #expect(done)
        #expect(frame == FrameBuilder.tcp(seq: 1, payload: FrameBuilder.payload(333), checksum: "full"))
        let outside = frame.withUnsafeMutableBytes {
            Offload.completeChecksum(frame: $0.baseAddress!, length: $0.count, start: $0.count - 1, offset: 16)
        }
        #expect(!outside)
    }
}

@Suite("TCP coalescing")
struct CoalescingTests {
    struct Emitted: Equatable {
        var first: Int
        var count: Int
        var bytes: [UInt8]
    }

    /// Offers `frames` (each with a network tag; all vouched for by a verified outer checksum, or
    /// none) to a coalescer and returns each group written.
    func coalesce(
        _ frames: [[UInt8]], tags: [Int]? = nil, partials: [PartialChecksum]? = nil, vouched: Bool = false
    ) -> [Emitted] {
        var coalescer = TCPCoalescer()
        let buffers = frames.map { frame -> UnsafeMutableRawBufferPointer in
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: frame.count, alignment: 8)
            b.copyBytes(from: frame)
            return b
        }
        defer { for b in buffers { b.deallocate() } }
        var out: [Emitted] = []
        let emit: (TCPCoalescer.Group) -> Void = { group in
            let bytes = group.pieces.flatMap { Array(UnsafeRawBufferPointer(start: $0.base, count: $0.length)) }
            out.append(Emitted(first: group.first, count: group.count, bytes: bytes))
        }
        for k in buffers.indices {
            coalescer.add(
                index: k, tag: tags?[k] ?? 0, frame: buffers[k].baseAddress!, length: buffers[k].count,
                partial: partials?[k] ?? .none, vouched: vouched, emit: emit)
        }
        coalescer.flush(emit: emit)
        return out
    }

    func segments(count: Int, size: Int = 1000, seq: UInt32 = 5000, v6: Bool = false) -> [[UInt8]] {
        (0..<count).map { k in
            FrameBuilder.tcp(
                v6: v6, seq: seq &+ UInt32(k * size), id: 0x1234 + k, payload: FrameBuilder.payload(size, seed: k))
        }
    }

    /// A merged group, cut again by the segmenter, gives back the original segments byte for byte.
    func expectRoundTrip(_ group: Emitted, _ originals: ArraySlice<[UInt8]>, v6: Bool) throws {
        let header = group.bytes.withUnsafeBytes { VirtioNetHeader(decoding: $0.baseAddress!) }
        let l4 = v6 ? 54 : 34
        #expect(header.flags == VirtioNetHeader.flagNeedsChecksum)
        #expect(header.gsoType == (v6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4))
        #expect(Int(header.headerLength) == l4 + 32)
        #expect(Int(header.checksumStart) == l4 && header.checksumOffset == 16)
        let frame = Array(group.bytes[12...])
        let view = SegmentView(bytes: frame, v6: v6)
        #expect(view.ipLength == (v6 ? frame.count - 54 : frame.count - 14))
        #expect(view.ipHeaderValid)
        let again = try #require(SegmentationTests().segment(frame, header: header))
        #expect(again == Array(originals))
    }

    @Test func consecutiveSegmentsMerge() throws {
        for v6 in [false, true] {
            let frames = segments(count: 5, v6: v6)
            let groups = coalesce(frames)
            #expect(groups.count == 1)
            #expect(groups.first?.first == 0 && groups.first?.count == 5)
            try expectRoundTrip(try #require(groups.first), frames[...], v6: v6)
        }
    }

    /// A shorter segment may end a group (it is the tail the segmenter would make).
    @Test func shortTailJoinsAndCloses() throws {
        var frames = segments(count: 3)
        frames.append(FrameBuilder.tcp(seq: 5000 + 3000, id: 0x1234 + 3, payload: FrameBuilder.payload(400, seed: 3)))
        frames.append(FrameBuilder.tcp(seq: 5000 + 3400, id: 0x1234 + 4, payload: FrameBuilder.payload(1000, seed: 4)))
        let groups = coalesce(frames)
        #expect(groups.map(\.count) == [4, 1])
        try expectRoundTrip(groups[0], frames[0..<4], v6: false)
        #expect(groups[1].bytes == [UInt8](repeating: 0, count: 12) + frames[4], "alone, with a zero header")
    }

    @Test func outOfOrderFlushes() {
        var frames = segments(count: 4)
        frames.swapAt(2, 3)
        #expect(coalesce(frames).map(\.count) == [2, 1, 1])
    }

    @Test func differentFlowFlushes() {
        var frames = segments(count: 2)
        frames.append(FrameBuilder.tcp(sourcePort: 40001, seq: 7000, id: 0x1236, payload: FrameBuilder.payload(1000)))
        frames.append(FrameBuilder.tcp(sourcePort: 40001, seq: 8000, id: 0x1237, payload: FrameBuilder.payload(1000)))
        #expect(coalesce(frames).map(\.count) == [2, 2])
    }

    @Test func differentNetworkFlushes() {
        let frames = segments(count: 4)
        #expect(coalesce(frames, tags: [0, 0, 1, 1]).map(\.count) == [2, 2])
    }

    @Test func differentAckFlushes() {
        var frames = segments(count: 2)
        frames.append(FrameBuilder.tcp(seq: 7000, ack: 9999, id: 0x1236, payload: FrameBuilder.payload(1000)))
        #expect(coalesce(frames).map(\.count) == [2, 1])
    }

    /// PSH ends a group with the segment that carries it, and the merged frame keeps the PSH.
    @Test func pshClosesTheGroup() throws {
        var frames = segments(count: 4)
        frames[1] = FrameBuilder.tcp(
            seq: 6000, flags: TCPFlags.ack | TCPFlags.psh, id: 0x1235, payload: FrameBuilder.payload(1000, seed: 1))
        let groups = coalesce(frames)
        #expect(groups.map(\.count) == [2, 2])
        try expectRoundTrip(groups[0], frames[0..<2], v6: false)
        #expect(SegmentView(bytes: Array(groups[0].bytes[12...]), v6: false).flags == TCPFlags.ack | TCPFlags.psh)
    }

    /// FIN, SYN, RST, URG are never merged: such a segment goes out alone.
    @Test func otherFlagsAreNotCoalesced() {
        for flag in [TCPFlags.fin, TCPFlags.syn, TCPFlags.rst, TCPFlags.urg] {
            var frames = segments(count: 3)
            frames[1] = FrameBuilder.tcp(
                seq: 6000, flags: TCPFlags.ack | flag, id: 0x1235, payload: FrameBuilder.payload(1000, seed: 1))
            #expect(coalesce(frames).map(\.count) == [1, 1, 1], "flag \(flag)")
        }
    }

    /// A segment whose checksum fails is written alone (unmodified) for the kernel to drop.
    @Test func badChecksumIsWrittenAlone() {
        var frames = segments(count: 4)
        frames[2] = FrameBuilder.tcp(seq: 7000, id: 0x1236, payload: FrameBuilder.payload(1000, seed: 2), checksum: "bad")
        let groups = coalesce(frames)
        #expect(groups.map(\.count) == [2, 1, 1])
        #expect(groups[1].bytes == [UInt8](repeating: 0, count: 12) + frames[2])
        var badHead = segments(count: 3)
        badHead[0] = FrameBuilder.tcp(seq: 5000, id: 0x1234, payload: FrameBuilder.payload(1000, seed: 0), checksum: "bad")
        #expect(coalesce(badHead).map(\.count) == [1, 2])
    }

    /// Segments whose checksum the sender left unfinished merge as verified ones do (IPv4 and
    /// IPv6, mixed with finished ones), and the merged frame is the same as from finished segments.
    @Test func unfinishedSegmentsMerge() throws {
        for v6 in [false, true] {
            let finished = segments(count: 5, v6: v6)
            let unfinished = (0..<5).map { k in
                FrameBuilder.tcp(
                    v6: v6, seq: 5000 &+ UInt32(k * 1000), id: 0x1234 + k, payload: FrameBuilder.payload(1000, seed: k),
                    checksum: k == 2 ? "full" : "pseudo")
            }
            let partials = unfinished.map { f in f.withUnsafeBytes { InnerChecksum.partial($0.baseAddress!, length: $0.count) } }
            #expect(partials.map(\.isPresent) == [true, true, false, true, true])
            let groups = coalesce(unfinished, partials: partials)
            #expect(groups.map(\.count) == [5])
            #expect(groups.first?.bytes == coalesce(finished).first?.bytes)
            try expectRoundTrip(try #require(groups.first), finished[...], v6: v6)
        }
    }

    /// Written alone, an unfinished frame goes out as NEEDS_CSUM with the caller's offsets (TCP
    /// that cannot be merged, UDP); a finished one, right or wrong, with an empty header, unchanged.
    @Test func unfinishedFrameAloneIsWrittenAsPartial() {
        for v6 in [false, true] {
            for tcp in [false, true] {
                let frame = ChecksumFixture.frame(v6: v6, tcp: tcp, field: .pseudo)
                let partial = frame.withUnsafeBytes { InnerChecksum.partial($0.baseAddress!, length: $0.count) }
                let groups = coalesce([frame], partials: [partial])
                #expect(groups.count == 1)
                let header = groups[0].bytes.withUnsafeBytes { VirtioNetHeader(decoding: $0.baseAddress!) }
                #expect(header == partial.virtioHeader)
                #expect(header.checksumStart == (v6 ? 54 : 34) && header.checksumOffset == (tcp ? 16 : 6))
                #expect(Array(groups[0].bytes[12...]) == frame)
                for field in [ChecksumFixture.Field.full, .wrong] {
                    let finished = ChecksumFixture.frame(v6: v6, tcp: tcp, field: field)
                    #expect(coalesce([finished]).map(\.bytes) == [[UInt8](repeating: 0, count: 12) + finished])
                }
            }
        }
    }

    @Test func pureAcksAndNonTCPPassThrough() {
        let ack = FrameBuilder.tcp(seq: 1, payload: [])
        var arp = [UInt8](repeating: 0, count: 42)
        arp[12] = 0x08
        arp[13] = 0x06
        let groups = coalesce([ack, ack, arp])
        #expect(groups.map(\.count) == [1, 1, 1])
        #expect(groups.map { Array($0.bytes[12...]) } == [ack, ack, arp])
    }

    @Test func groupStopsAt64Segments() {
        let frames = segments(count: 70, size: 500)
        #expect(coalesce(frames).map(\.count) == [64, 6])
    }

    @Test func groupStaysUnder64KB() {
        // 1448-byte payloads: 45 segments make 65,160 + 52 bytes of IP packet, 46 would not fit.
        let frames = segments(count: 50, size: 1448)
        #expect(coalesce(frames).map(\.count) == [45, 5])
    }
}
