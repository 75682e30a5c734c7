/// A 48-bit IEEE 802 MAC address, held in the low 48 bits of a `UInt64` so that it compares,
/// hashes and packs into FDB slots as one machine word.
public struct MACAddress: Hashable, Sendable, Comparable, CustomStringConvertible, BitwiseCopyable {
    /// The address in network order, first octet in bits 40..47.
    public let rawValue: UInt64

    public init?(rawValue: UInt64) {
        guard rawValue >> 48 == 0 else { return nil }
        self.rawValue = rawValue
    }

    @inline(__always)
    public init(unchecked rawValue: UInt64) { self.rawValue = rawValue & 0xFFFF_FFFF_FFFF }

    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) {
        rawValue = UInt64(b0) << 40 | UInt64(b1) << 32 | UInt64(b2) << 24
            | UInt64(b3) << 16 | UInt64(b4) << 8 | UInt64(b5)
    }

    /// Reads six bytes at `offset`; the caller has checked the bounds.
    @inline(__always)
    public init(loadingFrom base: UnsafeRawPointer, at offset: Int) {
        let hi = UInt64(UInt16(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
        let lo = UInt64(UInt32(bigEndian: base.loadUnaligned(fromByteOffset: offset + 2, as: UInt32.self)))
        rawValue = hi << 32 | lo
    }

    @inline(__always)
    public func store(to base: UnsafeMutableRawPointer, at offset: Int) {
        base.storeBytes(of: UInt16(truncatingIfNeeded: rawValue >> 32).bigEndian, toByteOffset: offset, as: UInt16.self)
        base.storeBytes(of: UInt32(truncatingIfNeeded: rawValue).bigEndian, toByteOffset: offset + 2, as: UInt32.self)
    }

    public static let broadcast = MACAddress(unchecked: 0xFFFF_FFFF_FFFF)
    public static let zero = MACAddress(unchecked: 0)

    /// Group bit (I/G) of the first octet: broadcast and multicast destinations are flooded.
    @inline(__always)
    public var isMulticast: Bool { rawValue & 0x0100_0000_0000 != 0 }

    public var isZero: Bool { rawValue == 0 }

    public var octets: [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: rawValue >> UInt64(40 - 8 * $0)) } }

    /// Parses `aa:bb:cc:dd:ee:ff` (or with `-`), case-insensitive.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let fields = parts.count == 6 ? parts : text.split(separator: "-", omittingEmptySubsequences: false)
        guard fields.count == 6 else { return nil }
        var value: UInt64 = 0
        for field in fields {
            guard field.count == 2, field.allSatisfy(\.isHexDigit), let byte = UInt8(field, radix: 16) else { return nil }
            value = value << 8 | UInt64(byte)
        }
        rawValue = value
    }

    public var description: String {
        octets.map { byte in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: ":")
    }

    public static func < (lhs: MACAddress, rhs: MACAddress) -> Bool { lhs.rawValue < rhs.rawValue }
}
