/// Receive-side TCP coalescing (software GRO) for frames on their way into an offloading TAP: runs
/// of consecutive, in-order segments of one TCP flow become one super-frame with a virtio header
/// (GSO_TCPV4/GSO_TCPV6 + NEEDS_CSUM), which the kernel takes as one packet instead of dozens. The
/// rules follow the kernel's `tcp_gro_receive` and wireguard-go's `tcpPacketsCanCoalesce`:
///
///  1. a candidate is Ethernet (with at most `FrameLayout.maxTags` VLAN tags), IPv4 without options or fragmentation
///     (or IPv6 with TCP as the next header), TCP with only ACK (and PSH) set and a payload;
///  2. a segment joins the group in front of it when both carry the same network tag, the same
///     Ethernet and IP header fields (addresses, TOS/TTL/DF, traffic class/flow label/hop limit), the
///     same ports, ACK number, window and TCP options, and its sequence number follows the group's
///     last byte;
///  3. every segment but the last has the first one's payload size; a shorter segment or one with
///     PSH ends the group; a group holds at most 64 segments and 64 KB of IP packet;
///  4. each segment's TCP checksum is verified before it joins (the kernel will not check a
///     NEEDS_CSUM packet again); one that fails is written on its own for the kernel to drop. A
///     segment whose checksum its sender left unfinished (the field holds exactly the
///     pseudo-header sum, see `InnerChecksum`) joins without the byte pass: the merged frame's
///     checksum is the kernel's to complete anyway. So does a segment whose datagram's outer UDP
///     checksum the kernel verified (`vouched`, by `OuterChecksum.vouchesForInner`): its bytes
///     were checked on the way in.
///
/// A frame written on its own keeps the caller's verdict on its checksum: with a `PartialChecksum`
/// it goes out as NEEDS_CSUM (the kernel treats it as CHECKSUM_PARTIAL), else with an empty header.
///
/// No bytes are copied: a group is written as pieces (virtio header, first frame, then each later
/// segment's payload), and only the first frame's headers are rewritten. Only neighbours in the
/// order given are merged; flows interleaved segment by segment are written as they come.
public struct TCPCoalescer: ~Copyable {
    public static let maxSegments = 64

    /// A group ready to write: frames `first ..< first + count` of the caller's list, as pieces
    /// (the virtio header first).
    public struct Group {
        public var first: Int
        public var count: Int
        public var pieces: UnsafeBufferPointer<FramePiece>
        /// Whether it went out as a GSO super-frame (count > 1).
        public var coalesced: Bool { count > 1 }
    }

    struct Shape {
        var layout: FrameLayout
        var headerLength: Int
        var payloadLength: Int
        var seq: UInt32
        var psh: Bool
        var l3: Int { layout.l3 }
        var l4: Int { layout.l4 }
        var isIPv6: Bool { layout.isIPv6 }
    }

    /// pieces[0] is the virtio header, pieces[1] the first frame, then one payload per segment.
    let pieces: UnsafeMutablePointer<FramePiece>
    let headerBuffer: UnsafeMutableRawPointer

    var active = false
    var closed = false
    var headVerified = false
    var head: UnsafeMutableRawPointer
    var headLength = 0
    var headShape = Shape(layout: .empty, headerLength: 0, payloadLength: 0, seq: 0, psh: false)
    var headIsCandidate = false
    /// The head's unfinished checksum, when the caller found one: its header if it goes out alone.
    var headPartial = PartialChecksum.none
    var tag = 0
    var first = 0
    var count = 0
    var payloadTotal = 0
    var lastPSH = false

    public init() {
        pieces = .allocate(capacity: Self.maxSegments + 1)
        headerBuffer = .allocate(byteCount: VirtioNetHeader.size, alignment: 8)
        head = headerBuffer
    }

    deinit {
        pieces.deallocate()
        headerBuffer.deallocate()
    }

    /// Offers frame `index` of the caller's list (belonging to network `tag`); calls `emit` for
    /// every group this closes. Frames must be offered in order; call `flush` after the last.
    /// `partial`: the frame's checksum is unfinished (`InnerChecksum.partial`), so written alone
    /// it needs NEEDS_CSUM. `vouched`: its datagram's outer checksum was verified
    /// (`OuterChecksum.vouchesForInner`), so its TCP checksum is not summed again before it joins
    /// a group (written alone it keeps its own checksum for the kernel to check).
    @inline(__always)
    public mutating func add(
        index: Int, tag: Int, frame: UnsafeMutableRawPointer, length: Int, partial: PartialChecksum = .none,
        vouched: Bool = false, emit: (Group) -> Void
    ) {
        let shape = Self.shape(frame, length: length)
        if active, let shape, headIsCandidate, !closed, tag == self.tag, canAppend(frame, shape) {
            if !headVerified {
                if !Self.checksumValid(head, length: headLength, headShape) {
                    // The first frame is bad: out on its own, this one starts a new group.
                    flush(emit: emit)
                    start(
                        index: index, tag: tag, frame: frame, length: length, shape: shape, partial: partial,
                        vouched: vouched)
                    return
                }
                headVerified = true
            }
            if vouched || Self.checksumValid(frame, length: length, shape) {
                pieces[count + 1] = FramePiece(base: frame + shape.headerLength, length: shape.payloadLength)
                count += 1
                payloadTotal += shape.payloadLength
                lastPSH = shape.psh
                if shape.psh || shape.payloadLength < headShape.payloadLength || count == Self.maxSegments {
                    closed = true
                }
                return
            }
            // A bad segment ends the group and goes out alone, never as the head of a new one.
            flush(emit: emit)
            start(index: index, tag: tag, frame: frame, length: length, shape: nil, partial: partial, vouched: false)
            return
        }
        flush(emit: emit)
        start(index: index, tag: tag, frame: frame, length: length, shape: shape, partial: partial, vouched: vouched)
    }

    /// Emits the group in progress, if any.
    @inline(__always)
    public mutating func flush(emit: (Group) -> Void) {
        guard active else { return }
        active = false
        if count > 1 {
            finishHead().encode(to: headerBuffer)
        } else {
            (headPartial.isPresent ? headPartial.virtioHeader : VirtioNetHeader()).encode(to: headerBuffer)
        }
        emit(Group(first: first, count: count, pieces: UnsafeBufferPointer(start: pieces, count: count + 1)))
    }

    @inline(__always)
    mutating func start(
        index: Int, tag: Int, frame: UnsafeMutableRawPointer, length: Int, shape: Shape?, partial: PartialChecksum,
        vouched: Bool
    ) {
        active = true
        headPartial = partial
        closed = shape == nil || shape!.psh
        headVerified = vouched
        head = frame
        headLength = length
        headIsCandidate = shape != nil
        if let shape { headShape = shape }
        self.tag = tag
        first = index
        count = 1
        payloadTotal = shape?.payloadLength ?? 0
        lastPSH = shape?.psh ?? false
        pieces[0] = FramePiece(base: headerBuffer, length: VirtioNetHeader.size)
        pieces[1] = FramePiece(base: frame, length: length)
    }

    @inline(__always)
    func canAppend(_ frame: UnsafeRawPointer, _ shape: Shape) -> Bool {
        let h = headShape
        guard shape.isIPv6 == h.isIPv6, shape.l3 == h.l3, shape.headerLength == h.headerLength,
            shape.payloadLength <= h.payloadLength, shape.seq == h.seq &+ UInt32(truncatingIfNeeded: payloadTotal)
        else { return false }
        let ipLength = (h.isIPv6 ? h.headerLength - h.l4 : h.headerLength - h.l3) + payloadTotal + shape.payloadLength
        guard ipLength <= 65535 else { return false }
        // Ethernet header (and tag).
        guard Self.equal(head, frame, 0, h.l3) else { return false }
        let l3 = h.l3
        if h.isIPv6 {
            // Version, traffic class, flow label; next header and hop limit; both addresses.
            guard Self.equal(head, frame, l3, l3 + 4), Self.equal(head, frame, l3 + 6, l3 + 40) else { return false }
        } else {
            guard head.load(fromByteOffset: l3 + 1, as: UInt8.self) == frame.load(fromByteOffset: l3 + 1, as: UInt8.self),
                head.load(fromByteOffset: l3 + 6, as: UInt8.self) >> 5 == frame.load(fromByteOffset: l3 + 6, as: UInt8.self) >> 5,
                Self.equal(head, frame, l3 + 8, l3 + 10), Self.equal(head, frame, l3 + 12, l3 + 20)
            else { return false }
        }
        let l4 = h.l4
        // Ports; ACK number; data offset; window; options. Flags are ACK or ACK|PSH on both (shape)
        // and the head's is not PSH (else the group is closed).
        return Self.equal(head, frame, l4, l4 + 4) && Self.equal(head, frame, l4 + 8, l4 + 13)
            && Self.equal(head, frame, l4 + 14, l4 + 16) && Self.equal(head, frame, l4 + 20, h.headerLength)
    }

    /// Rewrites the first frame's headers for the merged packet and returns its virtio header.
    @inline(__always)
    func finishHead() -> VirtioNetHeader {
        let h = headShape
        let l4Length = h.headerLength - h.l4 + payloadTotal
        h.layout.writeIPLengths(into: head, transportLength: l4Length)
        if lastPSH {
            let flags = head.load(fromByteOffset: h.l4 + 13, as: UInt8.self)
            head.storeBytes(of: flags | TCPFlags.psh, toByteOffset: h.l4 + 13, as: UInt8.self)
        }
        // NEEDS_CSUM: the field holds the pseudo-header sum, folded but not complemented.
        let pseudo = InternetChecksum.pseudoHeaderSum(
            addresses: head + h.layout.addresses, addressSize: h.layout.addressSize, protocol: 6, length: l4Length)
        head.storeBytes(of: InternetChecksum.fold(pseudo).bigEndian, toByteOffset: h.l4 + 16, as: UInt16.self)
        return VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum,
            gsoType: h.isIPv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4,
            headerLength: UInt16(h.headerLength), gsoSize: UInt16(h.payloadLength),
            checksumStart: UInt16(h.l4), checksumOffset: 16)
    }

    /// Rule 1: the frame's layout if it may be coalesced at all.
    @inline(__always)
    static func shape(_ frame: UnsafeRawPointer, length: Int) -> Shape? {
        // TCP right behind a plain IP header (no options or extension headers), not a fragment,
        // the IP packet filling the frame (no padding), and the IPv4 header checksum right.
        guard let layout = FrameLayout(ip: frame, length: length), layout.ipEnd == length,
            layout.hasPlainNetworkHeader, let tcpLength = layout.tcpHeaderLength(frame),
            layout.isIPv6 || InternetChecksum.ipv4HeaderValid(frame + layout.l3, headerLength: 20)
        else { return nil }
        let l4 = layout.l4
        let flags = frame.load(fromByteOffset: l4 + 13, as: UInt8.self)
        guard l4 + tcpLength < length, flags & ~(TCPFlags.ack | TCPFlags.psh) == 0, flags & TCPFlags.ack != 0
        else { return nil }
        return Shape(
            layout: layout, headerLength: l4 + tcpLength, payloadLength: length - l4 - tcpLength,
            seq: UInt32(bigEndian: frame.loadUnaligned(fromByteOffset: l4 + 4, as: UInt32.self)),
            psh: flags & TCPFlags.psh != 0)
    }

    /// Rule 4: the checksum is unfinished (the field is the pseudo-header sum: no byte pass) or
    /// verifies.
    @inline(__always)
    static func checksumValid(_ frame: UnsafeRawPointer, length: Int, _ s: Shape) -> Bool {
        let l4Length = length - s.l4
        let pseudo = InternetChecksum.pseudoHeaderSum(
            addresses: frame + s.layout.addresses, addressSize: s.layout.addressSize, protocol: 6, length: l4Length)
        let field = UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: s.l4 + 16, as: UInt16.self))
        if InnerChecksum.isUnfinished(field: field, pseudoHeaderSum: pseudo) { return true }
        return InternetChecksum.fold(InternetChecksum.sum(frame + s.l4, count: l4Length, initial: pseudo)) == 0xFFFF
    }

    @inline(__always)
    static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ from: Int, _ to: Int) -> Bool {
        var i = from
        while i + 8 <= to {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i += 8
        }
        while i < to {
            if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
            i += 1
        }
        return true
    }
}
