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

    /// A layout of nothing, for storage that holds one before any frame has been walked.
    public static let empty = FrameLayout()

    init() {
        (l3, etherType, isIPv6, ipEnd, l4, transportProtocol, isFragment) = (0, 0, false, 0, 0, 0, false)
    }

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
        self.init(frame, length: length, trustingLengthFields: true)
    }

    /// The same walk over a GSO super-frame read from an offloading TAP, whose IP length fields
    /// are whatever its sender left there (the segmenter rewrites them per segment): the packet
    /// is taken to run to the end of the buffer (`ipEnd == length`).
    @inline(__always)
    public init?(superFrame frame: UnsafeRawPointer, length: Int) {
        self.init(frame, length: length, trustingLengthFields: false)
    }

    @inline(__always)
    init?(_ frame: UnsafeRawPointer, length: Int, trustingLengthFields: Bool) {
        guard let (l3, etherType) = Self.link(frame, length: length) else { return nil }
        self.l3 = l3
        self.etherType = etherType
        if etherType == EthernetFrame.etherTypeIPv4 {
            guard length >= l3 + 20 else { return nil }
            let versionIHL = frame.load(fromByteOffset: l3, as: UInt8.self)
            let ihl = Int(versionIHL & 0x0F) * 4
            let total =
                trustingLengthFields
                ? Int(UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: l3 + 2, as: UInt16.self))) : length - l3
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
        let payload =
            trustingLengthFields
            ? Int(UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: l3 + 4, as: UInt16.self))) : length - l3 - 40
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

    /// Bytes of the IP header(s) in front of the transport header: the IPv4 header with its
    /// options, or the IPv6 header and the extension headers stepped over.
    @inline(__always)
    public var networkHeaderLength: Int { l4 - l3 }

    /// Whether the transport header follows the fixed IP header directly (no IPv4 options, no
    /// IPv6 extension headers).
    @inline(__always)
    public var hasPlainNetworkHeader: Bool { l4 == l3 + (isIPv6 ? 40 : 20) }

    /// The TCP header's length (its data offset) when the transport header is TCP and the whole
    /// header lies within the packet; nil otherwise.
    @inline(__always)
    public func tcpHeaderLength(_ frame: UnsafeRawPointer) -> Int? {
        guard l4 != 0, transportProtocol == 6, l4 + 20 <= ipEnd else { return nil }
        let size = Int(frame.load(fromByteOffset: l4 + 12, as: UInt8.self) >> 4) * 4
        guard size >= 20, l4 + size <= ipEnd else { return nil }
        return size
    }

    /// The first four bytes of the transport header (the two ports of TCP, UDP and SCTP), when
    /// there is a transport header that long.
    @inline(__always)
    public func ports(_ frame: UnsafeRawPointer) -> UInt32? {
        guard l4 != 0, l4 + 4 <= ipEnd else { return nil }
        return frame.loadUnaligned(fromByteOffset: l4, as: UInt32.self)
    }

    /// Writes a segment's lengths into its copied headers at `out` (laid out as this frame): the
    /// IPv6 payload length, or the IPv4 total length and then the header checksum, for a
    /// transport header and payload of `transportLength` bytes. `id` (IPv4 only) is written
    /// first when given. The segmenter and the coalescer's merged head both end this way.
    @inline(__always)
    public func writeIPLengths(into out: UnsafeMutableRawPointer, transportLength: Int, id: UInt16? = nil) {
        if isIPv6 {
            let payload = l4 - l3 - 40 + transportLength
            out.storeBytes(of: UInt16(truncatingIfNeeded: payload).bigEndian, toByteOffset: l3 + 4, as: UInt16.self)
        } else {
            let ihl = l4 - l3
            out.storeBytes(
                of: UInt16(truncatingIfNeeded: ihl + transportLength).bigEndian, toByteOffset: l3 + 2, as: UInt16.self)
            if let id { out.storeBytes(of: id.bigEndian, toByteOffset: l3 + 4, as: UInt16.self) }
            InternetChecksum.fillIPv4Header(out + l3, headerLength: ihl)
        }
    }
}
