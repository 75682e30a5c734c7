/// What a frame read from an offloading TAP may still need before it can leave as VXLAN: its
/// partial checksum completed (NEEDS_CSUM), or, for a GSO super-frame, cutting into MSS-sized
/// Ethernet frames with every header fixed up (what the kernel's `skb_gso_segment` and
/// wireguard-go's `gsoSplit` do). A receiving VTEP sees only ordinary, fully checksummed frames.
public enum Offload {
    /// Completes a NEEDS_CSUM frame's checksum in place: the field at `start + offset` already
    /// holds the pseudo-header sum; the sum over `start..<length` is folded and complemented into
    /// it (the kernel's `skb_checksum_help`, a zero result sent as 0xFFFF). False when the header
    /// points outside the frame.
    @inline(__always)
    public static func completeChecksum(
        frame: UnsafeMutableRawPointer, length: Int, start: Int, offset: Int
    ) -> Bool {
        guard start >= EthernetFrame.headerSize, offset >= 0, start + offset + 2 <= length else { return false }
        let value = InternetChecksum.finish(InternetChecksum.sum(frame + start, count: length - start))
        frame.storeBytes(of: (value == 0 ? 0xFFFF : value).bigEndian, toByteOffset: start + offset, as: UInt16.self)
        return true
    }

}

/// Cuts one GSO super-frame (TCP over IPv4/IPv6, or UDP with USO) into Ethernet frames of at most
/// `gsoSize` bytes of L4 payload each, one `next` call per segment, so a caller can stop when its
/// buffers are full and go on later. Per segment: the L2/L3/L4 headers are copied; IPv4 total
/// length, ID (+1 per segment) and header checksum, or the IPv6 payload length, are set; TCP
/// sequence numbers advance, FIN and PSH stay on the last segment only and CWR on the first only;
/// the TCP/UDP checksum is computed in full. The super-frame is only read.
public struct GSOSegmenter {
    public let frame: UnsafeRawPointer
    public let length: Int
    /// Where the IP and L4 headers lie (the IP length fields not trusted: they are rewritten).
    public let layout: FrameLayout
    public var l3: Int { layout.l3 }
    public var l4: Int { layout.l4 }
    public var isIPv6: Bool { layout.isIPv6 }
    /// Offset of the payload (= every header's length).
    public let headerLength: Int
    public let gsoSize: Int
    public let isTCP: Bool
    /// Index of the next segment to produce.
    public private(set) var index = 0
    public let segmentCount: Int

    /// Validates the super-frame against its header; nil when it is not a TCP/UDP super-frame
    /// this segmenter understands (IPv4 options are fine, IPv6 extension headers are not).
    public init?(header: VirtioNetHeader, frame: UnsafeRawPointer, length: Int) {
        let kind = header.gsoKind
        let tcp: Bool
        switch kind {
        case VirtioNetHeader.gsoTCPv4, VirtioNetHeader.gsoTCPv6: tcp = true
        case VirtioNetHeader.gsoUDPL4: tcp = false
        default: return nil
        }
        guard header.gsoSize > 0, let layout = FrameLayout(superFrame: frame, length: length),
            layout.l4 != 0, layout.transportProtocol == (tcp ? 6 : 17),
            kind != (layout.isIPv6 ? VirtioNetHeader.gsoTCPv4 : VirtioNetHeader.gsoTCPv6),
            // IPv6 extension headers are not cut here; IPv4 options are.
            !layout.isIPv6 || layout.hasPlainNetworkHeader
        else { return nil }
        let l4 = layout.l4
        let l4HeaderLength: Int
        if tcp {
            guard let size = layout.tcpHeaderLength(frame) else { return nil }
            l4HeaderLength = size
        } else {
            l4HeaderLength = UDPHeader.size
        }
        guard length > l4 + l4HeaderLength else { return nil }
        self.frame = frame
        self.length = length
        self.layout = layout
        headerLength = l4 + l4HeaderLength
        gsoSize = Int(header.gsoSize)
        isTCP = tcp
        segmentCount = (length - headerLength + gsoSize - 1) / gsoSize
    }

    /// The longest segment `next` writes.
    public var maxSegmentLength: Int { headerLength + min(gsoSize, length - headerLength) }

    public var isFinished: Bool { index >= segmentCount }

    /// Writes the next segment to `out` (room for `maxSegmentLength` bytes) and returns its
    /// length; 0 when every segment has been written.
    @inline(__always)
    public mutating func next(into out: UnsafeMutableRawPointer) -> Int {
        guard let payload = nextHeaders(into: out) else { return 0 }
        (out + headerLength).copyMemory(from: payload.base!, byteCount: payload.length)
        return headerLength + payload.length
    }

    /// Zero-copy form of `next`: writes only the next segment's headers to `out` (room for
    /// `headerLength` bytes) and returns where its payload lies, still inside the super-frame;
    /// the segment is the `headerLength` bytes at `out` followed by that payload. The checksum is
    /// summed over the payload where it lies, so the bytes are read once here and copied once, by
    /// the kernel, when the segment is sent from both pieces. Nil when every segment has been written.
    @inline(__always)
    public mutating func nextHeaders(into out: UnsafeMutableRawPointer) -> FramePiece? {
        guard index < segmentCount else { return nil }
        let k = index
        index += 1
        let payloadStart = headerLength + k * gsoSize
        let payload = min(gsoSize, length - payloadStart)
        out.copyMemory(from: frame, byteCount: headerLength)
        let l4Length = headerLength - l4 + payload
        // IPv4: the ID advances by one per segment.
        let id =
            isIPv6
            ? nil
            : UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: l3 + 4, as: UInt16.self)) &+ UInt16(truncatingIfNeeded: k)
        layout.writeIPLengths(into: out, transportLength: l4Length, id: id)
        let pseudo = InternetChecksum.pseudoHeaderSum(
            addresses: out + layout.addresses, addressSize: layout.addressSize, protocol: isTCP ? 6 : 17,
            length: l4Length)
        // The L4 header is a whole number of 16-bit words (TCP: 4-byte units, UDP: 8 bytes), so the
        // header's sum and the payload's add up to the sum over the segment (RFC 1071 §2(C)).
        let body = frame + payloadStart
        let bodySum = InternetChecksum.sum(body, count: payload)
        if isTCP {
            let seq = UInt32(bigEndian: frame.loadUnaligned(fromByteOffset: l4 + 4, as: UInt32.self))
            out.storeBytes(
                of: (seq &+ UInt32(truncatingIfNeeded: k * gsoSize)).bigEndian, toByteOffset: l4 + 4, as: UInt32.self)
            var flags = frame.load(fromByteOffset: l4 + 13, as: UInt8.self)
            if index < segmentCount { flags &= ~(TCPFlags.fin | TCPFlags.psh) }
            if k > 0 { flags &= ~TCPFlags.cwr }
            out.storeBytes(of: flags, toByteOffset: l4 + 13, as: UInt8.self)
            out.storeBytes(of: 0, toByteOffset: l4 + 16, as: UInt16.self)
            let value = InternetChecksum.finish(
                InternetChecksum.sum(out + l4, count: headerLength - l4, initial: pseudo &+ bodySum))
            out.storeBytes(of: value.bigEndian, toByteOffset: l4 + 16, as: UInt16.self)
        } else {
            out.storeBytes(of: UInt16(truncatingIfNeeded: l4Length).bigEndian, toByteOffset: l4 + 4, as: UInt16.self)
            out.storeBytes(of: 0, toByteOffset: l4 + 6, as: UInt16.self)
            let value = InternetChecksum.finish(
                InternetChecksum.sum(out + l4, count: headerLength - l4, initial: pseudo &+ bodySum))
            out.storeBytes(of: (value == 0 ? 0xFFFF : value).bigEndian, toByteOffset: l4 + 6, as: UInt16.self)
        }
        return FramePiece(base: body, length: payload)
    }
}

public enum TCPFlags {
    public static let fin: UInt8 = 0x01
    public static let syn: UInt8 = 0x02
    public static let rst: UInt8 = 0x04
    public static let psh: UInt8 = 0x08
    public static let ack: UInt8 = 0x10
    public static let urg: UInt8 = 0x20
    public static let ece: UInt8 = 0x40
    public static let cwr: UInt8 = 0x80
}
