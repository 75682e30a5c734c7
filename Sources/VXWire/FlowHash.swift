/// The inner-flow hash that picks the outer UDP source port, so ECMP and RSS along the underlay see
/// one flow as one 5-tuple and different flows as different ones (RFC 7348 §5, the kernel's
/// `srcport MIN MAX`). A flow is the IP addresses and TCP/UDP/SCTP ports when the frame carries
/// them, the IP addresses for other IP traffic, and the two MACs otherwise.
public enum FlowHash {
    /// Hashes the frame at `base` of `length` bytes (length ≥ 14, checked by the caller).
    @inline(__always)
    public static func hash(frame base: UnsafeRawPointer, length: Int) -> UInt64 {
        // Tags walked as everywhere else; a tag cut off by the end leaves a frame hashed by MACs.
        let (l3, etherType) = FrameLayout.link(base, length: length) ?? (length, EthernetFrame.etherType(base))
        if etherType == EthernetFrame.etherTypeIPv4, l3 + 20 <= length {
            let versionIHL = base.load(fromByteOffset: l3, as: UInt8.self)
            let headerLength = Int(versionIHL & 0x0F) * 4
            let fragment = UInt16(bigEndian: base.loadUnaligned(fromByteOffset: l3 + 6, as: UInt16.self))
            let proto = base.load(fromByteOffset: l3 + 9, as: UInt8.self)
            let addresses = base.loadUnaligned(fromByteOffset: l3 + 12, as: UInt64.self)
            var h = mix(addresses ^ UInt64(proto) << 56)
            // Ports only on the first (or only) fragment-free packet: later fragments carry none,
            // and a flow must keep one source port.
            if fragment & 0x3FFF == 0, headerLength >= 20, isPortProtocol(proto), l3 + headerLength + 4 <= length {
                h = mix(h ^ UInt64(base.loadUnaligned(fromByteOffset: l3 + headerLength, as: UInt32.self)))
            }
            return h
        }
        if etherType == EthernetFrame.etherTypeIPv6, l3 + 40 <= length {
            let next = base.load(fromByteOffset: l3 + 6, as: UInt8.self)
            var h = mix(base.loadUnaligned(fromByteOffset: l3 + 8, as: UInt64.self) ^ UInt64(next) << 56)
            h = mix(h ^ base.loadUnaligned(fromByteOffset: l3 + 16, as: UInt64.self))
            h = mix(h ^ base.loadUnaligned(fromByteOffset: l3 + 24, as: UInt64.self))
            h = mix(h ^ base.loadUnaligned(fromByteOffset: l3 + 32, as: UInt64.self))
            if isPortProtocol(next), l3 + 44 <= length {
                h = mix(h ^ UInt64(base.loadUnaligned(fromByteOffset: l3 + 40, as: UInt32.self)))
            }
            return h
        }
        let macs = EthernetFrame.destination(base).rawValue << 16 ^ EthernetFrame.source(base).rawValue
        return mix(macs ^ UInt64(etherType) << 48)
    }

    @inline(__always)
    static func isPortProtocol(_ proto: UInt8) -> Bool { proto == 6 || proto == 17 || proto == 132 }

    /// A 64-bit finaliser (MurmurHash3's fmix64): every input bit affects every output bit.
    @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var k = value
        k ^= k >> 33
        k &*= 0xff51_afd7_ed55_8ccd
        k ^= k >> 33
        k &*= 0xc4ce_b9fe_1a85_ec53
        k ^= k >> 33
        return k
    }
}

/// The outer UDP source ports a VTEP may use (`source_ports: 49152-65535`).
public struct SourcePortRange: Sendable, Equatable {
    public let lowerBound: UInt16
    public let span: UInt64

    public init(_ range: ClosedRange<UInt16>) {
        lowerBound = range.lowerBound
        span = UInt64(range.upperBound) - UInt64(range.lowerBound) + 1
    }

    /// The port for a flow hash: the same hash always maps to the same port.
    @inline(__always)
    public func port(for hash: UInt64) -> UInt16 {
        // Multiply-shift maps the hash onto the span without a division.
        lowerBound &+ UInt16(truncatingIfNeeded: ((hash >> 32) &* span) >> 32)
    }

    /// The port for the flow of the frame at `frame` (`length` ≥ 14 bytes): what the datapath
    /// writes and what `vxrouter trace` reports.
    @inline(__always)
    public func port(forFrame frame: UnsafeRawPointer, length: Int) -> UInt16 {
        port(for: FlowHash.hash(frame: frame, length: length))
    }
}
