/// ARP for IPv4 over Ethernet (RFC 826), the 28 bytes after the Ethernet header and its VLAN tags:
///
///      0       2       4    5    6       8            14          18           24          28
///     +-------+-------+----+----+-------+------------+-----------+------------+-----------+
///     | htype | ptype |hlen|plen|  op   | sender MAC | sender IP | target MAC | target IP |
///     +-------+-------+----+----+-------+------------+-----------+------------+-----------+
///
/// A checked view: `init?` refuses anything but Ethernet (1) / IPv4 (0x0800) / 6 / 4 with all 28
/// bytes present, after which no accessor can read out of bounds.
public struct ARPPacket {
    public static let size = 28
    public static let request: UInt16 = 1
    public static let reply: UInt16 = 2
    static let hardwareEthernet: UInt16 = 1

    public let base: UnsafeRawPointer

    /// `length`: bytes available at `base` (the frame's remainder).
    @inline(__always)
    public init?(_ base: UnsafeRawPointer, length: Int) {
        guard length >= Self.size,
            UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 0, as: UInt16.self)) == Self.hardwareEthernet,
            UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) == EthernetFrame.etherTypeIPv4,
            base.load(fromByteOffset: 4, as: UInt8.self) == 6, base.load(fromByteOffset: 5, as: UInt8.self) == 4
        else { return nil }
        self.base = base
    }

    @inline(__always)
    public var operation: UInt16 { UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 6, as: UInt16.self)) }
    @inline(__always)
    public var senderMAC: MACAddress { MACAddress(loadingFrom: base, at: 8) }
    @inline(__always)
    public var senderIP: IPAddress { IPAddress(v4: UInt32(bigEndian: base.loadUnaligned(fromByteOffset: 14, as: UInt32.self))) }
    @inline(__always)
    public var targetMAC: MACAddress { MACAddress(loadingFrom: base, at: 18) }
    @inline(__always)
    public var targetIP: IPAddress { IPAddress(v4: UInt32(bigEndian: base.loadUnaligned(fromByteOffset: 24, as: UInt32.self))) }

    /// Writes an ARP packet (28 bytes) at `base`. IPv4 addresses only (the caller's table holds
    /// an IPv4 address for an ARP answer).
    @inline(__always)
    public static func encode(
        operation: UInt16, senderMAC: MACAddress, senderIP: IPAddress, targetMAC: MACAddress, targetIP: IPAddress,
        to base: UnsafeMutableRawPointer
    ) {
        base.storeBytes(of: hardwareEthernet.bigEndian, toByteOffset: 0, as: UInt16.self)
        base.storeBytes(of: EthernetFrame.etherTypeIPv4.bigEndian, toByteOffset: 2, as: UInt16.self)
        base.storeBytes(of: 6, toByteOffset: 4, as: UInt8.self)
        base.storeBytes(of: 4, toByteOffset: 5, as: UInt8.self)
        base.storeBytes(of: operation.bigEndian, toByteOffset: 6, as: UInt16.self)
        senderMAC.store(to: base, at: 8)
        base.storeBytes(of: senderIP.v4Value.bigEndian, toByteOffset: 14, as: UInt32.self)
        targetMAC.store(to: base, at: 18)
        base.storeBytes(of: targetIP.v4Value.bigEndian, toByteOffset: 24, as: UInt32.self)
    }
}

extension EthernetFrame {
    /// Where the frame's payload starts after up to `FrameLayout.maxTags` VLAN tags (802.1Q,
    /// 802.1ad), and its EtherType: the one link walk (`FrameLayout.link`). The tags, if any, sit
    /// between byte 12 and `payload - 2`. `length` ≥ 14. A tag cut off by the frame's end leaves
    /// the tag's own EtherType, which no caller answers.
    @inline(__always)
    public static func payloadOffset(_ base: UnsafeRawPointer, length: Int) -> (payload: Int, etherType: UInt16) {
        FrameLayout.link(base, length: length) ?? (headerSize, etherType(base))
    }

    /// Writes an Ethernet header addressed `destination` from `source` at `to`, copying the VLAN
    /// tags of `like` (bytes 12 ..< `payload` - 2 of the frame being answered) and ending with
    /// `etherType`. Returns where the payload goes (== `payload`).
    @inline(__always)
    public static func encodeHeader(
        destination: MACAddress, source: MACAddress, tagsFrom like: UnsafeRawPointer, payload: Int, etherType: UInt16,
        to out: UnsafeMutableRawPointer
    ) -> Int {
        destination.store(to: out, at: 0)
        source.store(to: out, at: 6)
        if payload > headerSize { (out + 12).copyMemory(from: like + 12, byteCount: payload - headerSize) }
        out.storeBytes(of: etherType.bigEndian, toByteOffset: payload - 2, as: UInt16.self)
        return payload
    }
}

extension IPAddress {
    /// Sixteen bytes of an IPv6 address at `offset`; the caller has checked the bounds.
    @inline(__always)
    public init(v6LoadingFrom base: UnsafeRawPointer, at offset: Int) {
        self.init(
            v6High: UInt64(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)),
            low: UInt64(bigEndian: base.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)))
    }

    /// Writes the address in network order (4 or 16 bytes) at `offset`.
    @inline(__always)
    public func store(to base: UnsafeMutableRawPointer, at offset: Int) {
        switch family {
        case .v4: base.storeBytes(of: v4Value.bigEndian, toByteOffset: offset, as: UInt32.self)
        case .v6:
            base.storeBytes(of: high.bigEndian, toByteOffset: offset, as: UInt64.self)
            base.storeBytes(of: low.bigEndian, toByteOffset: offset + 8, as: UInt64.self)
        }
    }
}
