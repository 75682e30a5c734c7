import Testing

@testable import VXWire

/// Oversize frames and the ICMP errors that answer them, written out byte by byte; the three
/// checksums of the answers were computed independently (Python).
enum TooBigFixtures {
    static let sender: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]
    static let receiver: [UInt8] = [0x02, 0, 0, 0, 0, 0x02]
    static let v6One: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x01]
    static let v6Two: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x02]

    static func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    static func payload(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) } }

    /// 10.0.1.1 → 10.0.1.2, UDP 40000 → 5201, 1500 bytes of IP, DF as given.
    static func ipv4Packet(df: Bool = true, protocolNumber: UInt8 = 17, firstPayloadByte: UInt8? = nil) -> [UInt8] {
        var udp = be16(40000) + be16(5201) + be16(1480) + [0, 0] + payload(1472)
        if let firstPayloadByte { udp[0] = firstPayloadByte }
        return [0x45, 0x00] + be16(1500) + [0x12, 0x34, df ? 0x40 : 0x00, 0x00, 0x40, protocolNumber, 0, 0]
            + [10, 0, 1, 1, 10, 0, 1, 2] + udp
    }

    static func ipv4Frame(df: Bool = true, vlan: [UInt8] = [], protocolNumber: UInt8 = 17, firstPayloadByte: UInt8? = nil)
        -> [UInt8]
    {
        receiver + sender + vlan + [0x08, 0x00]
            + ipv4Packet(df: df, protocolNumber: protocolNumber, firstPayloadByte: firstPayloadByte)
    }

    /// "Fragmentation needed", MTU 1450, quoting 548 bytes: 576 bytes of IP.
    static func fragmentationNeeded(vlan: [UInt8] = []) -> [UInt8] {
        sender + receiver + vlan + [0x08, 0x00]
            + [0x45, 0x00] + be16(576) + [0, 0, 0, 0, 64, 1, 0x62, 0xbb] + [10, 0, 1, 2, 10, 0, 1, 1]
            + [3, 4, 0x6d, 0xd6, 0, 0] + be16(1450) + Array(ipv4Packet().prefix(548))
    }

    static func ipv6Packet() -> [UInt8] {
        [0x60, 0, 0, 0] + be16(1460) + [17, 64] + v6One + v6Two + be16(40000) + be16(5201) + be16(1460) + [0, 0]
            + payload(1452)
    }

    static func ipv6Frame() -> [UInt8] { receiver + sender + [0x86, 0xdd] + ipv6Packet() }

    /// "Packet too big", MTU 1450, quoting 1232 bytes: 1280 bytes of IPv6.
    static func packetTooBig() -> [UInt8] {
        sender + receiver + [0x86, 0xdd] + [0x60, 0, 0, 0] + be16(1240) + [58, 64] + v6Two + v6One
            + [2, 0, 0x2a, 0x08, 0, 0, 0x05, 0xaa] + Array(ipv6Packet().prefix(1232))
    }
}

@Suite("ICMP too big")
struct PacketTooBigTests {
    typealias F = TooBigFixtures

    /// The answer to `frame` when frames of more than `maxFrame` bytes do not fit; nil if none.
    func answer(_ frame: [UInt8], maxFrame: Int = 1464, ceiling: Int = 9000, available: Int? = nil) -> [UInt8]? {
        var out = [UInt8](repeating: 0xA5, count: PacketTooBig.maxFrameSize + 8)
        let n = frame.withUnsafeBytes { raw in
            out.withUnsafeMutableBytes {
                PacketTooBig.answer(
                    frame: raw.baseAddress!, available: available ?? frame.count, maxFrame: maxFrame, mtuCeiling: ceiling,
                    to: $0.baseAddress!)
            }
        }
        guard let n else { return nil }
        #expect(out[n...].allSatisfy { $0 == 0xA5 }, "nothing written past the answer")
        return Array(out[..<n])
    }

    @Test func fragmentationNeededByteForByte() {
        #expect(answer(F.ipv4Frame()) == F.fragmentationNeeded())
    }

    @Test func packetTooBigByteForByte() {
        let reply = answer(F.ipv6Frame())
        #expect(reply == F.packetTooBig())
        #expect(reply?.count == 14 + 1280)
    }

    @Test func aTaggedFrameGetsATaggedAnswerAndATagsWorthLessMTU() {
        let tag: [UInt8] = [0x81, 0x00, 0x00, 0x64]
        let reply = answer(F.ipv4Frame(vlan: tag))
        #expect(reply.map { Array($0[12..<16]) } == tag)
        #expect(reply.map { Array($0[18 + 20 + 6..<18 + 20 + 8]) } == F.be16(1446), "1464 - 18")
    }

    @Test func theMTUIsNeverAboveTheTapsOwn() {
        let reply = answer(F.ipv4Frame(), maxFrame: 1464, ceiling: 1400)
        #expect(reply.map { Array($0[14 + 20 + 6..<14 + 20 + 8]) } == F.be16(1400))
    }

    @Test func theQuoteIsWhatIsAtHand() {
        // Only the headers were read (a TSO segment's payload lies elsewhere): quote those.
        let reply = answer(F.ipv4Frame(), available: 14 + 28)
        #expect(reply?.count == 14 + 20 + 8 + 28)
        #expect(reply.map { Array($0[14 + 2..<14 + 4]) } == F.be16(56))
    }

    @Test func notAnswered() {
        #expect(answer(F.ipv4Frame(df: false)) == nil, "IPv4 without DF")
        #expect(answer(F.ipv4Frame(protocolNumber: 1, firstPayloadByte: 3)) == nil, "an ICMP error")
        #expect(answer(F.ipv4Frame(protocolNumber: 1, firstPayloadByte: 8)) != nil, "an echo request is answered")
        var multicast = F.ipv4Frame()
        multicast[14 + 16] = 239
        #expect(answer(multicast) == nil, "to a group address")
        var groupSource = F.ipv4Frame()
        groupSource[6] = 0x03
        #expect(answer(groupSource) == nil, "from a group MAC")
        var broadcastDestination = F.ipv4Frame()
        for k in 0..<6 { broadcastDestination[k] = 0xFF }
        #expect(answer(broadcastDestination) == nil, "to a group MAC: no source for the answer")
        #expect(answer(F.ipv6Frame(), maxFrame: 1200 + 14) == nil, "an IPv6 MTU under 1280")
        #expect(answer(F.ipv4Frame(), maxFrame: 60) == nil, "an IPv4 MTU under 68")
        var arp = F.ipv4Frame()
        arp[12] = 0x08
        arp[13] = 0x06
        #expect(answer(arp) == nil, "not IP")
        #expect(answer(Array(F.ipv4Frame().prefix(14 + 19))) == nil, "a truncated header")
        var icmpv6Error = F.ipv6Frame()
        icmpv6Error[14 + 6] = 58
        icmpv6Error[14 + 40] = 1
        #expect(answer(icmpv6Error) == nil, "an ICMPv6 error")
    }

    @Test func checksumsVerify() throws {
        let v4 = try #require(answer(F.ipv4Frame()))
        v4.withUnsafeBytes { raw in
            let ip = raw.baseAddress! + 14
            #expect(InternetChecksum.ipv4HeaderValid(ip, headerLength: 20))
            #expect(InternetChecksum.fold(InternetChecksum.sum(ip + 20, count: v4.count - 34)) == 0xFFFF)
        }
        let v6 = try #require(answer(F.ipv6Frame()))
        v6.withUnsafeBytes { raw in
            let ip = raw.baseAddress! + 14
            let length = v6.count - 54
            let pseudo = InternetChecksum.pseudoHeaderSum(addresses: ip + 8, addressSize: 16, protocol: 58, length: length)
            #expect(InternetChecksum.fold(InternetChecksum.sum(ip + 40, count: length, initial: pseudo)) == 0xFFFF)
        }
    }
}
