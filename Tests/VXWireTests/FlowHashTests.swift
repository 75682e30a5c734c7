import Testing
import VXTestSupport

@testable import VXWire

/// Inner frames for the flow hash, built byte by byte.
enum Frames {
    static let dst: [UInt8] = [0x02, 0, 0, 0, 0, 0x02]
    static let src: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]

    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    static func be32(_ v: UInt32) -> [UInt8] { be16(UInt16(v >> 16)) + be16(UInt16(v & 0xFFFF)) }

    static func ethernet(dst: [UInt8] = dst, src: [UInt8] = src, tags: [UInt16] = [], etherType: UInt16) -> [UInt8] {
        var frame = dst + src
        for (i, vid) in tags.enumerated() {
            frame += be16(i == 0 && tags.count == 2 ? EthernetFrame.etherTypeQinQ : EthernetFrame.etherTypeVLAN)
            frame += be16(vid)
        }
        return frame + be16(etherType)
    }

    /// IPv4 + a transport header whose first four bytes are the ports, then `payload`.
    static func ipv4(
        tags: [UInt16] = [], source: UInt32 = 0x0A00_0001, destination: UInt32 = 0x0A00_0002, proto: UInt8 = 6,
        sourcePort: UInt16 = 40000, destinationPort: UInt16 = 80, fragment: UInt16 = 0x4000, id: UInt16 = 1,
        ttl: UInt8 = 64, options: [UInt8] = [], payload: [UInt8] = [0xAA, 0xBB, 0xCC, 0xDD]
    ) -> [UInt8] {
        precondition(options.count % 4 == 0)
        let ihl = UInt8(5 + options.count / 4)
        var ip: [UInt8] = [0x40 | ihl, 0] + be16(UInt16(20 + options.count + 4 + payload.count))
        ip += be16(id) + be16(fragment) + [ttl, proto, 0, 0] + be32(source) + be32(destination) + options
        return ethernet(tags: tags, etherType: EthernetFrame.etherTypeIPv4) + ip
            + be16(sourcePort) + be16(destinationPort) + payload
    }

    static func ipv6(
        source: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1],
        destination: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2],
        next: UInt8 = 17, sourcePort: UInt16 = 5000, destinationPort: UInt16 = 53, hopLimit: UInt8 = 64,
        payload: [UInt8] = [1, 2, 3, 4]
    ) -> [UInt8] {
        var ip: [UInt8] = [0x60, 0, 0, 0] + be16(UInt16(4 + payload.count)) + [next, hopLimit]
        ip += source + destination
        return ethernet(etherType: EthernetFrame.etherTypeIPv6) + ip + be16(sourcePort) + be16(destinationPort)
            + payload
    }

    static func hash(_ frame: [UInt8]) -> UInt64 {
        frame.withUnsafeBytes { FlowHash.hash(frame: $0.baseAddress!, length: $0.count) }
    }
}

@Suite("FlowHash")
struct FlowHashTests {
    let ports = SourcePortRange(49152...65535)

    @Test func sameFlowSameHash() {
        let a = Frames.ipv4(sourcePort: 1234, destinationPort: 80, id: 1, ttl: 64, payload: [1, 2, 3])
        let b = Frames.ipv4(sourcePort: 1234, destinationPort: 80, id: 999, ttl: 3, payload: [9, 9, 9, 9, 9, 9])
        #expect(Frames.hash(a) == Frames.hash(a))
        #expect(Frames.hash(a) == Frames.hash(b), "IP id, TTL and payload are not part of the flow")
        #expect(ports.port(for: Frames.hash(a)) == ports.port(for: Frames.hash(b)))
    }

    @Test func everyPartOfTheFiveTupleCounts() {
        let base = Frames.hash(Frames.ipv4())
        #expect(Frames.hash(Frames.ipv4(source: 0x0A00_0003)) != base)
        #expect(Frames.hash(Frames.ipv4(destination: 0x0A00_0003)) != base)
        #expect(Frames.hash(Frames.ipv4(proto: 17)) != base)
        #expect(Frames.hash(Frames.ipv4(sourcePort: 40001)) != base)
        #expect(Frames.hash(Frames.ipv4(destinationPort: 81)) != base)
    }

    @Test func distinctTCPFlowsGetDistinctHashes() {
        var hashes = Set<UInt64>()
        for i in 0..<1000 {
            hashes.insert(Frames.hash(Frames.ipv4(sourcePort: UInt16(20000 + i))))
        }
        #expect(hashes.count == 1000)
    }

    @Test func distinctTCPFlowsSpreadOverTheSourcePortRange() {
        var chosen = Set<UInt16>()
        for i in 0..<1000 {
            let port = ports.port(for: Frames.hash(Frames.ipv4(sourcePort: UInt16(20000 + i))))
            #expect((49152...65535).contains(port))
            chosen.insert(port)
        }
        // 1000 flows over 16384 ports: ~970 distinct expected.
        #expect(chosen.count >= 500, "only \(chosen.count) distinct source ports")
    }

    @Test func nonPortProtocolsIgnoreTheBytesWherePortsWouldBe() {
        // ICMP (1) and GRE (47): the first four transport bytes are not ports.
        for proto: UInt8 in [1, 47] {
            let a = Frames.ipv4(proto: proto, sourcePort: 1, destinationPort: 2)
            let b = Frames.ipv4(proto: proto, sourcePort: 3, destinationPort: 4)
            #expect(Frames.hash(a) == Frames.hash(b), "protocol \(proto)")
        }
        // UDP and SCTP do use them.
        for proto: UInt8 in [17, 132] {
            let a = Frames.ipv4(proto: proto, sourcePort: 1, destinationPort: 2)
            let b = Frames.ipv4(proto: proto, sourcePort: 3, destinationPort: 4)
            #expect(Frames.hash(a) != Frames.hash(b), "protocol \(proto)")
        }
    }

    @Test func fragmentsOfOneDatagramShareAHash() {
        // More-fragments set (first fragment) or a fragment offset: ports are not used, so every
        // fragment of the datagram lands on one source port.
        let first = Frames.ipv4(sourcePort: 1111, fragment: 0x2000)
        let later = Frames.ipv4(sourcePort: 2222, fragment: 0x00B9)
        let last = Frames.ipv4(sourcePort: 3333, fragment: 0x0172)
        #expect(Frames.hash(first) == Frames.hash(later))
        #expect(Frames.hash(first) == Frames.hash(last))
        // Don't-fragment alone is not a fragment: ports count.
        #expect(
            Frames.hash(Frames.ipv4(sourcePort: 1111, fragment: 0x4000))
                != Frames.hash(Frames.ipv4(sourcePort: 2222, fragment: 0x4000)))
        #expect(
            Frames.hash(Frames.ipv4(sourcePort: 1111, fragment: 0))
                != Frames.hash(Frames.ipv4(sourcePort: 2222, fragment: 0)))
    }

    @Test func portsAreFoundBehindIPOptions() {
        let a = Frames.ipv4(sourcePort: 1, options: [1, 1, 1, 1])
        let b = Frames.ipv4(sourcePort: 1, options: [7, 7, 7, 7, 1, 1, 1, 1])
        let c = Frames.ipv4(sourcePort: 2, options: [1, 1, 1, 1])
        #expect(Frames.hash(a) == Frames.hash(b), "options are not part of the flow")
        #expect(Frames.hash(a) != Frames.hash(c))
    }

    @Test func ipv6Flows() {
        let a = Frames.ipv6(sourcePort: 5000)
        #expect(Frames.hash(a) == Frames.hash(Frames.ipv6(sourcePort: 5000, hopLimit: 1, payload: [7, 7])))
        #expect(Frames.hash(a) != Frames.hash(Frames.ipv6(sourcePort: 5001)))
        #expect(Frames.hash(a) != Frames.hash(Frames.ipv6(destinationPort: 54)))
        var other = Frames.ipv6()
        other[14 + 8 + 15] = 9  // last byte of the source address
        #expect(Frames.hash(a) != Frames.hash(other))
        // ICMPv6 (58): no ports.
        #expect(Frames.hash(Frames.ipv6(next: 58, sourcePort: 1)) == Frames.hash(Frames.ipv6(next: 58, sourcePort: 2)))
        var hashes = Set<UInt64>()
        for i in 0..<1000 { hashes.insert(Frames.hash(Frames.ipv6(next: 6, sourcePort: UInt16(i)))) }
        #expect(hashes.count == 1000)
    }

    @Test func nonIPFramesHashByMACs() {
        let arp = Frames.ethernet(etherType: EthernetFrame.etherTypeARP) + [UInt8](repeating: 1, count: 28)
        let arpOtherPayload = Frames.ethernet(etherType: EthernetFrame.etherTypeARP) + [UInt8](repeating: 2, count: 28)
        let otherSource =
            Frames.ethernet(src: [0x02, 0, 0, 0, 0, 0x09], etherType: EthernetFrame.etherTypeARP)
            + [UInt8](repeating: 1, count: 28)
        let otherDestination =
            Frames.ethernet(dst: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff], etherType: EthernetFrame.etherTypeARP)
            + [UInt8](repeating: 1, count: 28)
        #expect(Frames.hash(arp) == Frames.hash(arpOtherPayload))
        #expect(Frames.hash(arp) != Frames.hash(otherSource))
        #expect(Frames.hash(arp) != Frames.hash(otherDestination))
        // A bare 14-byte header is enough.
        let bare = Frames.ethernet(etherType: 0x88B5)
        #expect(bare.count == 14)
        #expect(Frames.hash(bare) == Frames.hash(bare))
    }

    @Test func truncatedIPHeadersFallBackWithoutReadingPastTheEnd() {
        let full = Frames.ipv4()
        for length in 14..<full.count {
            let cut = Array(full.prefix(length))
            #expect(Frames.hash(cut) == Frames.hash(cut))
            #expect(GuardedBytes.hash(cut) == Frames.hash(cut))
        }
        let full6 = Frames.ipv6()
        for length in 14..<full6.count {
            #expect(GuardedBytes.hash(Array(full6.prefix(length))) == Frames.hash(Array(full6.prefix(length))))
        }
        // An IPv4 header cut before its ports is hashed by addresses only.
        #expect(
            Frames.hash(Array(Frames.ipv4(sourcePort: 1).prefix(34)))
                == Frames.hash(Array(Frames.ipv4(sourcePort: 2).prefix(34))))
        // IHL below 5 is nonsense: never read ports at a negative or overlapping offset.
        var badIHL = Frames.ipv4()
        badIHL[14] = 0x41
        #expect(GuardedBytes.hash(badIHL) == Frames.hash(badIHL))
        // IHL 15 pointing past the end.
        badIHL[14] = 0x4F
        #expect(GuardedBytes.hash(badIHL) == Frames.hash(badIHL))
    }

    @Test func vlanTaggedFrames() {
        let tagged = Frames.ipv4(tags: [100], sourcePort: 1)
        #expect(Frames.hash(tagged) == Frames.hash(tagged))
        #expect(Frames.hash(tagged) == Frames.hash(Frames.ipv4(tags: [100], sourcePort: 1, payload: [0])))
        // The IPv4 header behind the tag is parsed: ports matter.
        #expect(Frames.hash(tagged) != Frames.hash(Frames.ipv4(tags: [100], sourcePort: 2)))
        // QinQ: two tags.
        let qinq = Frames.ipv4(tags: [10, 20], sourcePort: 1)
        #expect(Frames.hash(qinq) == Frames.hash(Frames.ipv4(tags: [10, 20], sourcePort: 1, ttl: 1)))
        #expect(Frames.hash(qinq) != Frames.hash(Frames.ipv4(tags: [10, 20], sourcePort: 2)))
        // Three tags: deterministic, and no crash.
        let triple = Frames.ipv4(tags: [1, 2, 3])
        #expect(Frames.hash(triple) == Frames.hash(triple))
        // A tag with nothing behind it.
        let bareTag = Frames.ethernet(etherType: EthernetFrame.etherTypeVLAN)
        #expect(GuardedBytes.hash(bareTag) == Frames.hash(bareTag))
        for length in 14...22 {
            let cut = Array(tagged.prefix(length))
            #expect(GuardedBytes.hash(cut) == Frames.hash(cut))
        }
    }

    @Test func mixIsAFinaliser() {
        #expect(FlowHash.mix(0) == 0)
        #expect(FlowHash.mix(1) != 1)
        #expect(FlowHash.mix(1) != FlowHash.mix(2))
    }
}

@Suite("SourcePortRange")
struct SourcePortRangeTests {
    @Test func mapsEveryHashIntoTheRange() {
        var rng = SplitMix64(seed: 7)
        for range: ClosedRange<UInt16> in [49152...65535, 1024...1025, 0...65535, 100...199, 65535...65535] {
            let ports = SourcePortRange(range)
            #expect(ports.lowerBound == range.lowerBound)
            #expect(ports.span == UInt64(range.upperBound) - UInt64(range.lowerBound) + 1)
            for hash in [0, 1, UInt64.max, UInt64.max >> 1, 0xFFFF_FFFF, 0x1_0000_0000] {
                #expect(range.contains(ports.port(for: hash)), "\(range) \(hash)")
            }
            for _ in 0..<10_000 {
                #expect(range.contains(ports.port(for: rng.next())))
            }
        }
    }

    @Test func singlePortRange() {
        let ports = SourcePortRange(4789...4789)
        #expect(ports.span == 1)
        var rng = SplitMix64(seed: 1)
        for _ in 0..<1000 { #expect(ports.port(for: rng.next()) == 4789) }
    }

    @Test func deterministic() {
        let ports = SourcePortRange(49152...65535)
        #expect(ports.port(for: 0xDEAD_BEEF_1234_5678) == ports.port(for: 0xDEAD_BEEF_1234_5678))
    }

    @Test func reachesBothEndsAndSpreadsEvenly() {
        let ports = SourcePortRange(49152...65535)
        var rng = SplitMix64(seed: 3)
        var buckets = [Int](repeating: 0, count: 16)
        for _ in 0..<16_000 { buckets[Int(ports.port(for: rng.next()) - 49152) / 1024] += 1 }
        #expect(ports.port(for: 0) == 49152)
        #expect(ports.port(for: UInt64.max) == 65535)
        #expect(ports.port(for: 0x8000_0000_0000_0000) == 49152 + 8192)
        // Multiply-shift over uniform hashes: each sixteenth of the range gets ~1000.
        #expect(buckets.allSatisfy { (700...1300).contains($0) }, "\(buckets)")
    }
}
