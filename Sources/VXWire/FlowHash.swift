/// The inner-flow hash that picks the outer UDP source port, so ECMP and RSS along the underlay see
/// one flow as one 5-tuple and different flows as different ones (RFC 7348 §5, the kernel's
/// `srcport MIN MAX`). A flow is the IP addresses and TCP/UDP/SCTP ports when the frame carries
/// them, the IP addresses for other IP traffic, and the two MACs otherwise.
public enum FlowHash {
    /// Hashes the frame at `base` of `length` bytes (length ≥ 14, checked by the caller).
    @inline(__always)
    public static func hash(frame base: UnsafeRawPointer, length: Int) -> UInt64 {
        if let ip = FrameLayout(ip: base, length: length) {
            let proto = ip.transportProtocol
            var h: UInt64
            if ip.isIPv6 {
                let a = ip.addresses
                h = mix(base.loadUnaligned(fromByteOffset: a, as: UInt64.self) ^ UInt64(proto) << 56)
                h = mix(h ^ base.loadUnaligned(fromByteOffset: a + 8, as: UInt64.self))
                h = mix(h ^ base.loadUnaligned(fromByteOffset: a + 16, as: UInt64.self))
                h = mix(h ^ base.loadUnaligned(fromByteOffset: a + 24, as: UInt64.self))
            } else {
                h = mix(base.loadUnaligned(fromByteOffset: ip.addresses, as: UInt64.self) ^ UInt64(proto) << 56)
            }
            // Ports only where the layout found a transport header: fragments (the first one
            // included) carry none the layout will read, so every fragment of a datagram, and
            // the flow, keeps one source port.
            if isPortProtocol(proto), let ports = ip.ports(base) { h = mix(h ^ UInt64(ports)) }
            return h
        }
        // Not IP, or an IP header inconsistent with itself or the buffer: hashed by the MACs and
        // the EtherType behind the tags (a tag cut off by the end: the outer EtherType).
        let etherType = FrameLayout.link(base, length: length)?.etherType ?? EthernetFrame.etherType(base)
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
