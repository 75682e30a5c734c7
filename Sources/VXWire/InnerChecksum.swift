/// The TCP/UDP checksum of a frame arriving through the tunnel, and the one case a VTEP must
/// recognise: a checksum the sender left unfinished.
///
/// A Linux sender that relies on checksum offload (CHECKSUM_PARTIAL) writes only the pseudo-header
/// sum into the TCP/UDP checksum field — `~csum_tcpudp_magic(saddr, daddr, len, proto, 0)`, the
/// folded, uncomplemented sum of source and destination address, protocol and transport length —
/// and leaves the rest to the NIC. Between namespaces over a veth, or between VMs on one host, no
/// NIC does, and the kernel's vxlan puts the unfinished frame into the tunnel. The kernel's own
/// receivers accept it (the skb says so); bytes read from a UDP socket say nothing, so the frame is
/// recognised by its field: it holds exactly the pseudo-header sum for that packet's addresses,
/// protocol and transport length. Such a frame is handed on as a partial checksum (NEEDS_CSUM)
/// or completed in software, never dropped.
///
/// Order of the checks, by cost: locating the field and comparing it with the pseudo-header sum
/// reads the headers only; verifying a finished checksum reads every byte. The datapath asks only
/// the first question (`partial`); `classify` goes on to verify, for tests and tools.
public enum InnerChecksum {
    /// What a frame's TCP/UDP checksum says.
    public enum State: Equatable, Sendable {
        /// Complete and correct.
        case finishedValid
        /// Complete (not the pseudo-header sum) and wrong: corrupted on the way, or a bad sender.
        case finishedInvalid
        /// The pseudo-header sum only: the sender's checksum offload never finished it.
        case unfinished
        /// No TCP/UDP checksum to judge: another protocol, a fragment, IPv4 UDP without a checksum
        /// (0), an IPv6 routing header, headers that do not fit, or a UDP length that disagrees
        /// with the IP length.
        case notApplicable
    }

    /// Where a frame's TCP/UDP checksum lies: the frame's layout and the field's offset.
    public struct Site: Equatable, Sendable {
        public var layout: FrameLayout
        /// Offset of the 16-bit checksum field (from the frame's start).
        public var field: Int

        /// Locates the checksum of a TCP or UDP packet whose header and stated length fit the
        /// buffer; nil when there is none to judge (see `State.notApplicable`).
        @inline(__always)
        public init?(frame: UnsafeRawPointer, length: Int) {
            guard let layout = FrameLayout(ip: frame, length: length), layout.l4 != 0 else { return nil }
            let l4 = layout.l4
            switch layout.transportProtocol {
            case 6:
                guard l4 + 20 <= layout.ipEnd else { return nil }
                field = l4 + 16
            case 17:
                guard l4 + 8 <= layout.ipEnd,
                    Int(UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: l4 + 4, as: UInt16.self)))
                        == layout.ipEnd - l4
                else { return nil }
                // IPv4 UDP may go without a checksum (RFC 768); IPv6 UDP may not (RFC 8200 §8.1),
                // so a zero there is simply a wrong checksum.
                if !layout.isIPv6, frame.loadUnaligned(fromByteOffset: l4 + 6, as: UInt16.self) == 0 { return nil }
                field = l4 + 6
            default:
                return nil
            }
            self.layout = layout
        }

        /// The unfolded pseudo-header sum (addresses, protocol, transport length).
        @inline(__always)
        public func pseudoHeaderSum(_ frame: UnsafeRawPointer) -> UInt64 {
            InternetChecksum.pseudoHeaderSum(
                addresses: frame + layout.addresses, addressSize: layout.addressSize,
                protocol: layout.transportProtocol, length: layout.transportLength)
        }

        /// The field holds the folded pseudo-header sum and nothing else. Reads the headers only.
        @inline(__always)
        public func isUnfinished(_ frame: UnsafeRawPointer) -> Bool {
            InnerChecksum.isUnfinished(
                field: UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: field, as: UInt16.self)),
                pseudoHeaderSum: pseudoHeaderSum(frame))
        }

        /// The checksum verifies over the pseudo-header and the whole transport packet. Reads
        /// every byte.
        @inline(__always)
        public func verifies(_ frame: UnsafeRawPointer) -> Bool {
            let sum = InternetChecksum.sum(
                frame + layout.l4, count: layout.transportLength, initial: pseudoHeaderSum(frame))
            return InternetChecksum.fold(sum) == 0xFFFF
        }

        /// Where the checksum still has to be completed, as a NEEDS_CSUM header says it.
        @inline(__always)
        public var partial: PartialChecksum {
            PartialChecksum(start: UInt16(layout.l4), offset: UInt16(field - layout.l4), end: UInt32(layout.ipEnd))
        }
    }

    /// The rule itself: a checksum field holding the folded pseudo-header sum, exactly as the
    /// sender's offload left it, is unfinished. (A finished checksum equal to it by chance — one
    /// value in 65536 — is the same bytes completed: completing it again writes the same value.)
    @inline(__always)
    public static func isUnfinished(field: UInt16, pseudoHeaderSum: UInt64) -> Bool {
        field == InternetChecksum.fold(pseudoHeaderSum)
    }

    /// The datapath's question: whether the frame's TCP/UDP checksum is unfinished, and if so
    /// where it lies (else `.none`). Reads the headers only.
    @inline(__always)
    public static func partial(_ frame: UnsafeRawPointer, length: Int) -> PartialChecksum {
        guard let site = Site(frame: frame, length: length), site.isUnfinished(frame) else { return .none }
        return site.partial
    }

    /// The full verdict, cheapest question first: not applicable, unfinished, then (reading every
    /// byte) valid or not.
    public static func classify(_ frame: UnsafeRawPointer, length: Int) -> State {
        guard let site = Site(frame: frame, length: length) else { return .notApplicable }
        if site.isUnfinished(frame) { return .unfinished }
        return site.verifies(frame) ? .finishedValid : .finishedInvalid
    }
}

/// A TCP/UDP checksum still to be completed: the L4 header's offset (`csum_start`), the field's
/// offset within it (`csum_offset`: 16 for TCP, 6 for UDP) and the end of the IP packet (bytes
/// after it are Ethernet padding, outside the sum). `start == 0` means none.
public struct PartialChecksum: Equatable, Sendable, BitwiseCopyable {
    public var start: UInt16
    public var offset: UInt16
    public var end: UInt32

    @inline(__always)
    public init(start: UInt16, offset: UInt16, end: UInt32) {
        self.start = start
        self.offset = offset
        self.end = end
    }

    /// No checksum to complete.
    public static var none: PartialChecksum { PartialChecksum(start: 0, offset: 0, end: 0) }

    @inline(__always)
    public var isPresent: Bool { start != 0 }

    /// The virtio header that hands the frame to an offloading TAP as is, for the kernel to treat
    /// as CHECKSUM_PARTIAL (valid for local delivery, completed if it is forwarded on).
    @inline(__always)
    public var virtioHeader: VirtioNetHeader {
        VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum, checksumStart: start, checksumOffset: offset)
    }

    /// Completes the checksum in place, for a TAP without virtio headers: the field holds the
    /// pseudo-header sum, so the sum over `start..<end` folded and complemented is the checksum
    /// (a zero result sent as 0xFFFF, as UDP requires and TCP allows).
    @inline(__always)
    public func complete(_ frame: UnsafeMutableRawPointer) {
        let l4 = Int(start)
        let value = InternetChecksum.finish(InternetChecksum.sum(frame + l4, count: Int(end) - l4))
        frame.storeBytes(of: (value == 0 ? 0xFFFF : value).bigEndian, toByteOffset: l4 + Int(offset), as: UInt16.self)
    }
}
