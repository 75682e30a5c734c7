/// The Internet checksum (RFC 1071): the one's-complement sum of 16-bit big-endian words, used by
/// IPv4 headers, TCP and UDP. Sums are carried unfolded in a UInt64 so that pieces (a pseudo-header,
/// a header, a payload) can be added together and folded once (RFC 1071 §2: associativity).
public enum InternetChecksum {
    /// The unfolded sum of `count` bytes at `base`, added to `initial`. An odd trailing byte counts
    /// as the high byte of a word (padding with zero), so only the last piece of a sum may be odd.
    ///
    /// Why it looks like this: it is the hottest loop of the offload path (every segment is summed
    /// once when cut and once when coalesced). The one's-complement sum does not depend on byte
    /// order (RFC 1071 §2(B)), so words are added as the CPU loads them (no byte swap per load) and
    /// the 16-bit result is swapped once at the end. 32-bit words go into four 64-bit accumulators:
    /// no carries to track (2^32 rounds cannot overflow), no branches, independent adds.
    @inline(__always)
    public static func sum(_ base: UnsafeRawPointer, count: Int, initial: UInt64 = 0) -> UInt64 {
        var a: UInt64 = 0
        var b: UInt64 = 0
        var c: UInt64 = 0
        var d: UInt64 = 0
        var i = 0
        while i &+ 32 <= count {
            a &+= UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            b &+= UInt64(base.loadUnaligned(fromByteOffset: i &+ 4, as: UInt32.self))
            c &+= UInt64(base.loadUnaligned(fromByteOffset: i &+ 8, as: UInt32.self))
            d &+= UInt64(base.loadUnaligned(fromByteOffset: i &+ 12, as: UInt32.self))
            a &+= UInt64(base.loadUnaligned(fromByteOffset: i &+ 16, as: UInt32.self))
            b &+= UInt64(base.loadUnaligned(fromByteOffset: i &+ 20, as: UInt32.self))
            c &+= UInt64(base.loadUnaligned(fromByteOffset: i &+ 24, as: UInt32.self))
            d &+= UInt64(base.loadUnaligned(fromByteOffset: i &+ 28, as: UInt32.self))
            i &+= 32
        }
        while i &+ 4 <= count {
            a &+= UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            i &+= 4
        }
        var native = a &+ b &+ c &+ d
        if i &+ 2 <= count {
            native &+= UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt16.self))
            i &+= 2
        }
        // The odd byte is the high byte of a big-endian word: in memory order, the first byte.
        if i < count {
            native &+= UInt64(UInt16(bigEndian: UInt16(base.load(fromByteOffset: i, as: UInt8.self)) << 8))
        }
        // Folded in memory order, then read as a big-endian 16-bit value.
        let folded = fold(native)
        return initial &+ UInt64(UInt16(bigEndian: folded))
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
