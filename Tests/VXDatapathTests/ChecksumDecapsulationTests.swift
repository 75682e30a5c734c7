// Decapsulation of frames whose inner TCP/UDP checksum a same-host sender left unfinished (the
// pseudo-header sum only): handed to an offloading TAP as NEEDS_CSUM, completed in software for a
// plain TAP, merged by the coalescer, counted as checksum_unfinished — and a finished but wrong
// checksum is never made valid.
import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

/// Inner TCP/UDP frames from the remote host to the local one with a chosen checksum field.
enum InnerFrames {
    enum Field { case full, pseudo, wrong }

    static let remoteHost = Bytes.mac(0x21)
    static let localHost = Bytes.mac(0x01)

    /// The RFC 1071 sum, one word at a time (not the code under test).
    static func reference(_ bytes: [UInt8], initial: UInt32) -> UInt16 {
        var sum = initial
        for i in stride(from: 0, to: bytes.count, by: 2) {
            sum += UInt32(bytes[i]) << 8 | (i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0)
            sum = (sum & 0xFFFF) + (sum >> 16)
        }
        return UInt16(sum)
    }

    static func frame(v6: Bool, tcp: Bool, field: Field, payload: Int = 200, seq: UInt32 = 1, seed: Int = 0) -> [UInt8] {
        let be16 = Bytes.be16
        let proto: UInt8 = tcp ? 6 : 17
        var l4: [UInt8] =
            tcp
            ? be16(40000) + be16(5201) + Bytes.be32(seq) + Bytes.be32(77) + [0x50, 0x10] + be16(502) + [0, 0, 0, 0]
            : be16(40000) + be16(5201) + be16(UInt16(8 + payload)) + [0, 0]
        l4 += (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ seed) }
        let source: [UInt8] = v6 ? [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x21] : [198, 19, 0, 0x21]
        let destination: [UInt8] = v6 ? [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1] : [198, 19, 0, 1]
        let pseudo = UInt32(reference(source + destination, initial: UInt32(proto) + UInt32(l4.count)))
        let complete = ~reference(l4, initial: pseudo)
        let value: UInt16 =
            switch field {
            case .full: !tcp && complete == 0 ? 0xFFFF : complete
            case .pseudo: UInt16(pseudo)
            case .wrong: complete ^ 0x0040
            }
        let at = tcp ? 16 : 6
        l4[at] = UInt8(value >> 8)
        l4[at + 1] = UInt8(value & 0xFF)
        let ethernet = localHost.octets + remoteHost.octets
        if v6 {
            return ethernet + [0x86, 0xDD] + [0x60, 0, 0, 0] + be16(UInt16(l4.count)) + [proto, 64] + source + destination
                + l4
        }
        var ip: [UInt8] = [0x45, 0] + be16(UInt16(20 + l4.count)) + [0, 1, 0x40, 0, 64, proto, 0, 0] + source + destination
        let sum = ~reference(ip, initial: 0)
        ip[10] = UInt8(sum >> 8)
        ip[11] = UInt8(sum & 0xFF)
        return ethernet + [0x08, 0x00] + ip + l4
    }
}

@Suite("Decapsulation: unfinished inner checksums")
struct ChecksumDecapsulationTests {
    let vtep = "192.0.2.10"
    static let zeroHeader = [UInt8](repeating: 0, count: VirtioNetHeader.size)

    func virtioHeader(of written: [UInt8]) -> VirtioNetHeader {
        written.withUnsafeBytes { VirtioNetHeader(decoding: $0.baseAddress!) }
    }

    /// Without offloads, the TAP has no way to say "partial": the checksum is completed before
    /// the write, and the frame written is exactly the one with the finished checksum.
    @Test(arguments: [false, true], [false, true])
    func plainTAPGetsTheChecksumCompleted(v6: Bool, tcp: Bool) {
        let h = Harness()
        h.receive(Bytes.datagram(vni: 42, InnerFrames.frame(v6: v6, tcp: tcp, field: .pseudo)), from: vtep)
        #expect(h.taps[0].written == [InnerFrames.frame(v6: v6, tcp: tcp, field: .full)])
        #expect(h.snapshot[0, .checksumUnfinished] == 1)
        #expect(h.snapshot[0, .tapTxPackets] == 1)
        #expect(h.drops == [])
    }

    /// Finished checksums, right or wrong, are written as received and not counted: a wrong one
    /// is left for the host to drop, never laundered.
    @Test(arguments: [false, true], [false, true])
    func finishedChecksumsPassUntouched(v6: Bool, tcp: Bool) {
        for offloads in [false, true] {
            let h = Harness(offloads: offloads)
            let good = InnerFrames.frame(v6: v6, tcp: tcp, field: .full)
            let bad = InnerFrames.frame(v6: v6, tcp: tcp, field: .wrong)
            h.receive(Bytes.datagram(vni: 42, good), from: vtep)
            h.receive(Bytes.datagram(vni: 42, bad), from: vtep)
            let prefix = offloads ? Self.zeroHeader : []
            #expect(h.taps[0].written == [prefix + good, prefix + bad], "offloads \(offloads)")
            #expect(h.snapshot[0, .checksumUnfinished] == 0)
            #expect(h.drops == [])
        }
    }

    /// With offloads, an unfinished frame goes to the TAP as it came, with a NEEDS_CSUM header
    /// pointing at its checksum: no byte pass, the kernel takes it as CHECKSUM_PARTIAL.
    @Test(arguments: [false, true], [false, true])
    func offloadingTAPGetsNeedsChecksum(v6: Bool, tcp: Bool) throws {
        let h = Harness(offloads: true)
        let frame = InnerFrames.frame(v6: v6, tcp: tcp, field: .pseudo)
        h.receive(Bytes.datagram(vni: 42, frame), from: vtep)
        let written = try #require(h.taps[0].written.first)
        #expect(h.taps[0].written.count == 1)
        let header = virtioHeader(of: written)
        #expect(header.flags == VirtioNetHeader.flagNeedsChecksum && header.gsoType == VirtioNetHeader.gsoNone)
        #expect(header.checksumStart == (v6 ? 54 : 34) && header.checksumOffset == (tcp ? 16 : 6))
        #expect(Array(written[VirtioNetHeader.size...]) == frame)
        #expect(h.snapshot[0, .checksumUnfinished] == 1)
        #expect(h.drops == [])
    }

    /// Consecutive unfinished TCP segments are coalesced like verified ones (one GSO write), each
    /// counted; a wrong finished segment in the run still goes out alone, unchanged.
    @Test(arguments: [false, true])
    func unfinishedSegmentsAreCoalesced(v6: Bool) throws {
        let h = Harness(offloads: true)
        let size = 500
        var frames = (0..<5).map { k in
            InnerFrames.frame(v6: v6, tcp: true, field: .pseudo, payload: size, seq: 1 + UInt32(k * size), seed: k)
        }
        let bad = InnerFrames.frame(v6: v6, tcp: true, field: .wrong, payload: size, seq: 1 + UInt32(5 * size), seed: 5)
        frames.append(bad)
        h.receive(frames.map { (Bytes.datagram(vni: 42, $0), Endpoint(address: IPAddress(vtep)!, port: 4789)) })
        #expect(h.taps[0].written.count == 2)
        let merged = try #require(h.taps[0].written.first)
        let header = virtioHeader(of: merged)
        #expect(header.flags == VirtioNetHeader.flagNeedsChecksum)
        #expect(header.gsoType == (v6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4))
        #expect(Int(header.gsoSize) == size)
        #expect(merged.count == VirtioNetHeader.size + frames[0].count + 4 * size)
        #expect(h.taps[0].written.last == Self.zeroHeader + bad)
        #expect(h.snapshot[0, .checksumUnfinished] == 5)
        #expect(h.snapshot[0, .tapTxPackets] == 6)
    }

    /// The same through UDP GRO: one received slot holding several datagrams.
    @Test func unfinishedSegmentsThroughGRO() throws {
        let h = Harness(offloads: true)
        let size = 400
        let datagrams = (0..<4).map { k in
            Bytes.datagram(
                vni: 42, InnerFrames.frame(v6: false, tcp: true, field: .pseudo, payload: size, seq: 1 + UInt32(k * size)))
        }
        h.link.segmentSize = datagrams[0].count
        h.receive(datagrams.joined().map { $0 }, from: vtep)
        #expect(h.taps[0].written.count == 1)
        #expect(virtioHeader(of: try #require(h.taps[0].written.first)).gsoType == VirtioNetHeader.gsoTCPv4)
        #expect(h.snapshot[0, .checksumUnfinished] == 4)
    }

    /// A same-host kernel peer's vxlan may hand its veth a whole TSO/USO super-packet, which
    /// reaches the UDP socket uncut, the GRO size being the inner segment size. With offloads it
    /// goes to the TAP as one GSO frame (NEEDS_CSUM over the whole, as the sender left it),
    /// counted as unfinished; one whose segments would not fit the network is an oversize drop.
    @Test(arguments: [false, true], [false, true])
    func wholeSuperPacketGoesToTheTAPAsOneGSOFrame(v6: Bool, tcp: Bool) throws {
        let h = Harness(offloads: true)
        let frame = InnerFrames.frame(v6: v6, tcp: tcp, field: .pseudo, payload: 4000)
        h.link.segmentSize = 1000
        h.receive(Bytes.datagram(vni: 42, frame), from: vtep)
        let written = try #require(h.taps[0].written.first)
        let l4 = v6 ? 54 : 34
        let kind = tcp ? (v6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4) : VirtioNetHeader.gsoUDPL4
        #expect(
            virtioHeader(of: written)
                == VirtioNetHeader(
                    flags: VirtioNetHeader.flagNeedsChecksum, gsoType: kind, headerLength: UInt16(l4 + (tcp ? 20 : 8)),
                    gsoSize: 1000, checksumStart: UInt16(l4), checksumOffset: tcp ? 16 : 6))
        #expect(Array(written[VirtioNetHeader.size...]) == frame)
        #expect(h.snapshot[0, .checksumUnfinished] == 1)
        #expect(h.snapshot[0, .tapTxPackets] == 1)
        #expect(h.drops == [])

        h.link.segmentSize = 1500
        h.receive(Bytes.datagram(vni: 42, frame), from: vtep)
        #expect(h.drops == ["0:oversize=1"], "segments of 1500 bytes of payload do not fit a 1500 MTU")
        // A finished checksum over a super-packet is no sender's offload: not taken whole either.
        h.link.segmentSize = 1000
        h.receive(Bytes.datagram(vni: 42, InnerFrames.frame(v6: v6, tcp: tcp, field: .full, payload: 4000)), from: vtep)
        #expect(h.drops == ["0:oversize=2"])
        #expect(h.taps[0].written.count == 1)

        // No GRO size reported (the kernel reports one for inner UDP only): TCP is cut to the
        // network's frame size; UDP, whose datagram boundaries are not ours to choose, is dropped.
        h.link.segmentSize = 0
        h.receive(Bytes.datagram(vni: 42, frame), from: vtep)
        if tcp {
            let unreported = try #require(h.taps[0].written.last)
            #expect(h.taps[0].written.count == 2)
            #expect(Int(virtioHeader(of: unreported).gsoSize) == h.networks[0].maxFrame - (l4 + 20))
            #expect(Array(unreported[VirtioNetHeader.size...]) == frame)
            #expect(h.snapshot[0, .checksumUnfinished] == 2)
        } else {
            #expect(h.drops == ["0:oversize=3"])
        }
    }

    /// Without offloads the TAP takes no GSO frame: a whole TCP super-packet is cut into
    /// segments that fit the network, each with its checksum finished; a UDP one without a
    /// reported segment size cannot be cut and is an oversize drop.
    @Test(arguments: [false, true])
    func plainTAPGetsASuperPacketAsSegments(v6: Bool) {
        let h = Harness()
        let frame = InnerFrames.frame(v6: v6, tcp: true, field: .pseudo, payload: 4000)
        h.receive(Bytes.datagram(vni: 42, frame), from: vtep)
        let headers = (v6 ? 54 : 34) + 20
        let written = h.taps[0].written
        #expect(written.map(\.count) == [1518, 1518, 4000 - 2 * (1518 - headers) + headers])
        #expect(written.allSatisfy { f in f.withUnsafeBytes { InnerChecksum.classify($0.baseAddress!, length: $0.count) } == .finishedValid })
        #expect(written.flatMap { $0[headers...] } == Array(frame[headers...]), "the payload, in order")
        #expect(h.snapshot[0, .checksumUnfinished] == 1)
        #expect(h.drops == [])

        h.receive(Bytes.datagram(vni: 42, InnerFrames.frame(v6: v6, tcp: false, field: .pseudo, payload: 4000)), from: vtep)
        #expect(h.drops == ["0:oversize=1"])
    }
}
