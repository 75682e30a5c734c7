/// The Internet checksum (RFC 1071): the one's-complement sum of 16-bit big-endian words, used by
/// IPv4 headers, TCP and UDP. Sums are carried unfolded in a UInt64 so that pieces (a pseudo-header,
/// a header, a payload) can be added together and folded once (RFC 1071 §2: associativity).
public enum InternetChecksum {
    /// The unfolded sum of `count` bytes at `base`, added to `initial`. An odd trailing byte counts
    /// as the high byte of a word (padding with zero), so only the last piece of a sum may be odd.
    @inline(__always)
    public static func sum(_ base: UnsafeRawPointer, count: Int, initial: UInt64 = 0) -> UInt64 {
        var a = initial
        var b: UInt64 = 0
        var i = 0
        // 16 bytes a round into two accumulators; each add is < 2^32, so 2^32 rounds cannot overflow.
        while i + 16 <= count {
            let x = UInt64(bigEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let y = UInt64(bigEndian: base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
            a &+= (x >> 32) &+ (x & 0xFFFF_FFFF)
            b &+= (y >> 32) &+ (y & 0xFFFF_FFFF)
            i += 16
        }
        a &+= b
        while i + 2 <= count {
            a &+= UInt64(UInt16(bigEndian: base.loadUnaligned(fromByteOffset: i, as: UInt16.self)))
            i += 2
        }
        if i < count { a &+= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << 8 }
        return a
    }

    /// Folds an unfolded sum to 16 bits (end-around carry), not complemented.
    @inline(__always)
    public static func fold(_ sum: UInt64) -> UInt16 {
        var s = sum
        s = (s & 0xFFFF_FFFF) &+ (s >> 32)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        return UInt16(truncatingIfNeeded: s)
    }

    /// The checksum field value for bytes whose sum is `sum`: the complement of the folded sum.
    @inline(__always)
    public static func finish(_ sum: UInt64) -> UInt16 { ~fold(sum) }

    /// The TCP/UDP pseudo-header sum (RFC 793 §3.1, RFC 8200 §8.1): source and destination
    /// addresses (`addressSize` bytes each, 4 or 16, back to back at `addresses`, as in both IP
    /// headers), the protocol, and the transport length.
    @inline(__always)
    public static func pseudoHeaderSum(
        addresses: UnsafeRawPointer, addressSize: Int, protocol proto: UInt8, length: Int
    ) -> UInt64 {
        sum(addresses, count: 2 * addressSize, initial: UInt64(proto) &+ UInt64(length))
    }

    /// RFC 1624 eqn. 3: the checksum after one 16-bit word of the covered data changes from `old`
    /// to `new`, without summing the rest again.
    @inline(__always)
    public static func update(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        ~fold(UInt64(~checksum) &+ UInt64(~old) &+ UInt64(new))
    }

    /// Recomputes an IPv4 header's checksum in place (`headerLength` bytes at `ip`).
    @inline(__always)
    public static func fillIPv4Header(_ ip: UnsafeMutableRawPointer, headerLength: Int) {
        ip.storeBytes(of: 0, toByteOffset: 10, as: UInt16.self)
        ip.storeBytes(of: finish(sum(ip, count: headerLength)).bigEndian, toByteOffset: 10, as: UInt16.self)
    }

    /// Whether an IPv4 header's checksum verifies.
    @inline(__always)
    public static func ipv4HeaderValid(_ ip: UnsafeRawPointer, headerLength: Int) -> Bool {
        fold(sum(ip, count: headerLength)) == 0xFFFF
    }
}
