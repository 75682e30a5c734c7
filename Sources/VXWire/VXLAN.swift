/// The VXLAN header (RFC 7348 §5), eight bytes after the outer UDP header:
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |R|R|R|R|I|R|R|R|            Reserved                           |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                VXLAN Network Identifier (VNI) |   Reserved    |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
/// Senders zero the reserved fields; receivers ignore them but must drop a packet whose I flag is
/// clear.
public enum VXLANHeader {
    public static let size = 8
    /// The I flag: the VNI is valid.
    public static let flagI: UInt8 = 0x08

    /// The outer overhead in front of an inner Ethernet frame, per underlay family: IP + UDP + VXLAN.
    public static func overhead(for family: IPAddress.Family) -> Int {
        (family == .v4 ? 20 : 40) + UDPHeader.size + size
    }

    public enum DecodeError: Error, Equatable, Sendable {
        case truncated
        case flagIClear
    }

    /// Reads the VNI from a received header; `bytes` starts at the VXLAN header.
    @inline(__always)
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Result<VNI, DecodeError> {
        guard bytes.count >= size, let base = bytes.baseAddress else { return .failure(.truncated) }
        guard base.load(as: UInt8.self) & flagI != 0 else { return .failure(.flagIClear) }
        let word = UInt32(bigEndian: base.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        return .success(VNI(unchecked: word >> 8))
    }

    /// Writes the header for `vni` at `base` (eight bytes, reserved fields zero).
    @inline(__always)
    public static func encode(vni: VNI, to base: UnsafeMutableRawPointer) {
        base.storeBytes(of: UInt32(UInt32(flagI) << 24).bigEndian, toByteOffset: 0, as: UInt32.self)
        base.storeBytes(of: (vni.rawValue << 8).bigEndian, toByteOffset: 4, as: UInt32.self)
    }
}

/// The UDP header (RFC 768). The datapath writes it in front of the VXLAN header on a raw socket,
/// because the outer source port must vary with the inner flow and a bound UDP socket cannot do that.
public enum UDPHeader {
    public static let size = 8

    /// Writes source port, destination port and length; the checksum is left zero: optional over
    /// IPv4 (RFC 7348 §5 says it SHOULD be zero), and filled in by the kernel over IPv6 (IPV6_CHECKSUM).
    @inline(__always)
    public static func encode(
        sourcePort: UInt16, destinationPort: UInt16, payloadLength: Int, to base: UnsafeMutableRawPointer
    ) {
        base.storeBytes(of: sourcePort.bigEndian, toByteOffset: 0, as: UInt16.self)
        base.storeBytes(of: destinationPort.bigEndian, toByteOffset: 2, as: UInt16.self)
        base.storeBytes(of: UInt16(truncatingIfNeeded: size + payloadLength).bigEndian, toByteOffset: 4, as: UInt16.self)
        base.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
    }
}
