/// Ethernet II framing, read in place. Received frames come from the kernel (TAP) or from a remote
/// VTEP (untrusted); every accessor here is bounds-checked by the caller's length check first.
public enum EthernetFrame {
    public static let headerSize = 14
    public static let etherTypeIPv4: UInt16 = 0x0800
    public static let etherTypeIPv6: UInt16 = 0x86DD
    public static let etherTypeARP: UInt16 = 0x0806
    public static let etherTypeVLAN: UInt16 = 0x8100
    public static let etherTypeQinQ: UInt16 = 0x88A8

    @inline(__always)
    public static func destination(_ base: UnsafeRawPointer) -> MACAddress { MACAddress(loadingFrom: base, at: 0) }

    @inline(__always)
    public static func source(_ base: UnsafeRawPointer) -> MACAddress { MACAddress(loadingFrom: base, at: 6) }

    @inline(__always)
    public static func etherType(_ base: UnsafeRawPointer) -> UInt16 {
        UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
    }
}
