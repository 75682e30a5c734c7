/// The ICMP error a bridged tunnel owes the sender of a frame too big for the underlay path, as
/// the kernel's vxlan builds it since Linux 5.9 (`skb_tunnel_check_pmtu`,
/// `iptunnel_pmtud_build_icmp{,v6}`): "fragmentation needed" (ICMP 3/4, RFC 1191) for IPv4 with
/// DF, "packet too big" (ICMPv6 2/0, RFC 4443 §3.2) for IPv6, carrying the MTU that fits. The
/// answer looks as if it came from the packet's destination (source and destination swapped at
/// both layers) — the sender's stack matches it by the quoted header, not by who sent it.
///
///     Ethernet (+ the frame's VLAN tags) | IPv4 (20, TTL 64, proto 1)     | 3 | 4 | csum | 0 | MTU | quote ≤ 548
///                                        | IPv6 (40, hop limit 64, nh 58) | 2 | 0 | csum | MTU (4)  | quote ≤ 1232
///
/// The quote is the start of the offending IP packet: as much as keeps the whole ICMP packet at
/// 576 bytes (IPv4, RFC 1812 §4.3.2.3) or 1280 (IPv6, RFC 4443 §2.4(c)), no more than is at hand.
public enum PacketTooBig {
    public static let ipv4PacketLimit = 576
    public static let ipv6PacketLimit = 1280
    /// The most bytes `answer` writes: Ethernet, two VLAN tags, a 1280-byte IPv6 packet.
    public static let maxFrameSize = EthernetFrame.headerSize + 8 + ipv6PacketLimit

    /// Writes at `out` the ICMP error for the frame at `frame` (`available` bytes readable from
    /// it, the headers at least) whose largest acceptable size is `maxFrame` bytes; the MTU
    /// reported is `maxFrame` less the frame's Ethernet header and tags, and no more than
    /// `mtuCeiling` (the TAP's MTU). Returns the answer's length, or nil when the frame is not one
    /// to answer: not IP; IPv4 without DF; an ICMP error itself; from an unspecified, multicast
    /// or broadcast source or MAC; to an IPv4 group or broadcast address; an MTU below the
    /// family's minimum (68, 1280).
    public static func answer(
        frame: UnsafeRawPointer, available: Int, maxFrame: Int, mtuCeiling: Int, to out: UnsafeMutableRawPointer
    ) -> Int? {
        guard available >= EthernetFrame.headerSize else { return nil }
        let senderMAC = EthernetFrame.source(frame)
        let destinationMAC = EthernetFrame.destination(frame)
        if senderMAC.isMulticast || senderMAC.isZero { return nil }
        let (l3, etherType) = EthernetFrame.payloadOffset(frame, length: available)
        let mtu = min(maxFrame - l3, mtuCeiling)
        let ip = frame + l3
        let ipAvailable = available - l3
        // The answer comes "from" the frame's destination MAC; a group destination cannot be one.
        let answerSource = destinationMAC.isMulticast ? nil : destinationMAC
        guard let answerSource else { return nil }
        switch etherType {
        case EthernetFrame.etherTypeIPv4:
            guard ipAvailable >= 20, ip.load(fromByteOffset: 0, as: UInt8.self) >> 4 == 4, mtu >= 68 else { return nil }
            let headerLength = Int(ip.load(fromByteOffset: 0, as: UInt8.self) & 0x0F) * 4
            let fragment = UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
            guard headerLength >= 20, ipAvailable >= headerLength, fragment & 0x4000 != 0 else { return nil }
            let source = IPAddress(v4: UInt32(bigEndian: ip.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
            let destination = IPAddress(v4: UInt32(bigEndian: ip.loadUnaligned(fromByteOffset: 16, as: UInt32.self)))
            if source.isUnspecified || source.isMulticast || source.v4Value == .max { return nil }
            if destination.isMulticast || destination.v4Value == .max { return nil }
            if ip.load(fromByteOffset: 9, as: UInt8.self) == 1, ipAvailable >= headerLength + 1,
                isICMPv4Error(ip.load(fromByteOffset: headerLength, as: UInt8.self))
            {
                return nil
            }
            let total = Int(UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            let quote = min(ipAvailable, max(total, headerLength), ipv4PacketLimit - 20 - 8)
            let at = EthernetFrame.encodeHeader(
                destination: senderMAC, source: answerSource, tagsFrom: frame, payload: l3,
                etherType: EthernetFrame.etherTypeIPv4, to: out)
            let o = out + at
            let length = 20 + 8 + quote
            o.storeBytes(of: UInt32(0x4500_0000 | UInt32(length)).bigEndian, toByteOffset: 0, as: UInt32.self)
            o.storeBytes(of: UInt32(0).bigEndian, toByteOffset: 4, as: UInt32.self)  // id 0, no DF: it is tiny
            o.storeBytes(of: UInt32(0x4001_0000).bigEndian, toByteOffset: 8, as: UInt32.self)  // TTL 64, ICMP
            destination.store(to: o, at: 12)
            source.store(to: o, at: 16)
            InternetChecksum.fillIPv4Header(o, headerLength: 20)
            let icmp = o + 20
            icmp.storeBytes(of: UInt32(0x0304_0000).bigEndian, toByteOffset: 0, as: UInt32.self)
            icmp.storeBytes(of: UInt32(UInt16(truncatingIfNeeded: mtu)).bigEndian, toByteOffset: 4, as: UInt32.self)
            (icmp + 8).copyMemory(from: ip, byteCount: quote)
            let sum = InternetChecksum.finish(InternetChecksum.sum(icmp, count: 8 + quote))
            icmp.storeBytes(of: sum.bigEndian, toByteOffset: 2, as: UInt16.self)
            return at + length
        case EthernetFrame.etherTypeIPv6:
            guard ipAvailable >= 40, ip.load(fromByteOffset: 0, as: UInt8.self) >> 4 == 6, mtu >= 1280 else { return nil }
            let source = IPAddress(v6LoadingFrom: ip, at: 8)
            let destination = IPAddress(v6LoadingFrom: ip, at: 24)
            if source.isUnspecified || source.isMulticast { return nil }
            if ip.load(fromByteOffset: 6, as: UInt8.self) == NeighbourSolicitation.nextHeaderICMPv6, ipAvailable >= 41,
                ip.load(fromByteOffset: 40, as: UInt8.self) < 128
            {
                return nil  // an ICMPv6 error (types 0-127)
            }
            let total = 40 + Int(UInt16(bigEndian: ip.loadUnaligned(fromByteOffset: 4, as: UInt16.self)))
            let quote = min(ipAvailable, total, ipv6PacketLimit - 40 - 8)
            let at = EthernetFrame.encodeHeader(
                destination: senderMAC, source: answerSource, tagsFrom: frame, payload: l3,
                etherType: EthernetFrame.etherTypeIPv6, to: out)
            let o = out + at
            let icmpLength = 8 + quote
            o.storeBytes(of: UInt32(0x6000_0000).bigEndian, toByteOffset: 0, as: UInt32.self)
            o.storeBytes(of: UInt16(icmpLength).bigEndian, toByteOffset: 4, as: UInt16.self)
            o.storeBytes(of: NeighbourSolicitation.nextHeaderICMPv6, toByteOffset: 6, as: UInt8.self)
            o.storeBytes(of: 64, toByteOffset: 7, as: UInt8.self)
            destination.store(to: o, at: 8)
            source.store(to: o, at: 24)
            let icmp = o + 40
            icmp.storeBytes(of: UInt32(0x0200_0000).bigEndian, toByteOffset: 0, as: UInt32.self)
            icmp.storeBytes(of: UInt32(mtu).bigEndian, toByteOffset: 4, as: UInt32.self)
            (icmp + 8).copyMemory(from: ip, byteCount: quote)
            ICMPv6.fillChecksum(packet: o, icmpLength: icmpLength)
            return at + 40 + icmpLength
        default:
            return nil
        }
    }

    /// ICMPv4 error types (RFC 1122 §3.2.2: never answer an error with an error).
    @inline(__always)
    static func isICMPv4Error(_ type: UInt8) -> Bool { type == 3 || type == 4 || type == 5 || type == 11 || type == 12 }
}
