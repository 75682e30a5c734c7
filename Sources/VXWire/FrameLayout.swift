/// Where the headers of one Ethernet frame lie: the link walk (Ethernet, then up to `maxTags`
/// 802.1Q/802.1ad tags) and the network walk (IPv4, or IPv6 and the extension headers that can be
/// stepped over) that the checksum classifier builds on. Every offset it reports has been checked
/// against the buffer's length, so a caller reading within the reported headers cannot overrun.
///
/// What "can be stepped over" means for IPv6: hop-by-hop and destination options (same shape,
/// length in 8-byte units). A routing header changes the final destination the transport
/// pseudo-header uses, and a fragment header splits the transport header off: both end the walk
/// without a transport header.
public struct FrameLayout: Equatable, Sendable {
    /// The most VLAN tags walked before the EtherType (a QinQ frame carries two).
    public static let maxTags = 2
    /// The most IPv6 extension headers stepped over before giving up.
    static let maxExtensionHeaders = 4

    /// Offset of the network header (after Ethernet and tags) and the EtherType found there.
    public var l3: Int
    public var etherType: UInt16
    public var isIPv6: Bool
    /// The end of the IP packet (its own length field, at most the buffer's length): bytes after
    /// it are Ethernet padding.
    public var ipEnd: Int
    /// Offset of the transport header; 0 when there is none to read (a fragment, a header that
    /// could not be stepped over, or a transport header starting at `ipEnd`).
    public var l4: Int
    /// The protocol of the header at `l4` (after extension headers).
    public var transportProtocol: UInt8
    /// IPv4 with MF set or a non-zero offset, or IPv6 with a fragment header.
    public var isFragment: Bool

    /// The link walk alone: the network header's offset and EtherType, at most `maxTags` tags
    /// stepped over; nil for a frame too short to say.
    @inline(__always)
    public static func link(_ frame: UnsafeRawPointer, length: Int) -> (l3: Int, etherType: UInt16)? {
        guard length >= EthernetFrame.headerSize else { return nil }
        var etherType = EthernetFrame.etherType(frame)
        var offset = EthernetFrame.headerSize
        var tags = 0
        while etherType == EthernetFrame.etherTypeVLAN || etherType == EthernetFrame.etherTypeQinQ, tags < maxTags {
            guard length >= offset + 4 else { return nil }
            etherType = UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self))
            offset += 4
            tags += 1
        }
        return (offset, etherType)
    }

    /// Walks an IPv4 or IPv6 frame; nil when the frame is neither, or its IP header is
    /// inconsistent with itself or the buffer (wrong version, short header, a length field
    /// claiming more than the buffer holds).
    @inline(__always)
    public init?(ip frame: UnsafeRawPointer, length: Int) {
        guard let (l3, etherType) = Self.link(frame, length: length) else { return nil }
        self.l3 = l3
        self.etherType = etherType
        if etherType == EthernetFrame.etherTypeIPv4 {
            guard length >= l3 + 20 else { return nil }
            let versionIHL = frame.load(fromByteOffset: l3, as: UInt8.self)
            let ihl = Int(versionIHL & 0x0F) * 4
            let total = Int(UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: l3 + 2, as: UInt16.self)))
            guard versionIHL >> 4 == 4, ihl >= 20, total >= ihl, l3 + total <= length else { return nil }
            let fragment = UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: l3 + 6, as: UInt16.self))
            isIPv6 = false
            ipEnd = l3 + total
            transportProtocol = frame.load(fromByteOffset: l3 + 9, as: UInt8.self)
            isFragment = fragment & 0x3FFF != 0
            l4 = isFragment || l3 + ihl >= ipEnd ? 0 : l3 + ihl
            return
        }
        guard etherType == EthernetFrame.etherTypeIPv6, length >= l3 + 40,
            frame.load(fromByteOffset: l3, as: UInt8.self) >> 4 == 6
        else { return nil }
        let payload = Int(UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: l3 + 4, as: UInt16.self)))
        guard l3 + 40 + payload <= length else { return nil }
        isIPv6 = true
        ipEnd = l3 + 40 + payload
        isFragment = false
        var next = frame.load(fromByteOffset: l3 + 6, as: UInt8.self)
        var offset = l3 + 40
        var stepped = 0
        // Hop-by-hop (0) and destination options (60): next header, length in 8-byte units - 1.
        while next == 0 || next == 60 {
            guard stepped < Self.maxExtensionHeaders, offset + 8 <= ipEnd else {
                next = 59  // "no next header": nothing to read
                break
            }
            let size = (Int(frame.load(fromByteOffset: offset + 1, as: UInt8.self)) + 1) * 8
            next = frame.load(fromByteOffset: offset, as: UInt8.self)
            offset += size
            stepped += 1
        }
        transportProtocol = next
        if next == 44 { isFragment = true }
        // Routing (43), fragment (44), no next header (59): no transport header to read here.
        l4 = next == 43 || next == 44 || next == 59 || offset >= ipEnd ? 0 : offset
    }

    /// Offset of the source address; the destination follows it (both IP headers keep them
    /// back to back).
    @inline(__always)
    public var addresses: Int { l3 + (isIPv6 ? 8 : 12) }

    /// Bytes per address: 4 or 16.
    @inline(__always)
    public var addressSize: Int { isIPv6 ? 16 : 4 }

    /// Bytes of the transport header and its payload (0 when there is no transport header).
    @inline(__always)
    public var transportLength: Int { l4 == 0 ? 0 : ipEnd - l4 }
}
