/// The MAC a network's TAP gets when the config names none: the same on every start of the same
/// host and network, different across hosts and networks, in the spirit of systemd's
/// `MACAddressPolicy=persistent` (which hashes the machine ID and the interface name with
/// SipHash-2-4 under a fixed application key). Peers that keep a VTEP's MAC — Flannel's lease
/// holds `VtepMAC`, a kernel peer's neighbour cache — stay right across restarts.
///
/// The recipe (README "Stable MAC"):
///  1. seed: the 16 bytes of `/etc/machine-id` (32 hex digits), else of `/var/lib/dbus/machine-id`,
///     else the host name's UTF-8 bytes;
///  2. h = SipHash-2-4(key: `StableMAC.key`, message: seed ‖ VNI as 4 bytes big-endian);
///  3. the MAC is h's first six bytes in little-endian order, with the first octet's multicast
///     bit (0x01) cleared and its locally-administered bit (0x02) set.
public enum StableMAC {
    /// The application key, fixed forever (changing it changes every derived MAC): the ASCII
    /// bytes of "vxrouter.tap.mac".
    public static let key: [UInt8] = Array("vxrouter.tap.mac".utf8)

    public static func derive(seed: [UInt8], vni: VNI) -> MACAddress {
        var message = seed
        let v = vni.rawValue
        message += [UInt8(truncatingIfNeeded: v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
        let h = SipHash24.hash(message, key: key)
        let b = (0..<6).map { UInt8(truncatingIfNeeded: h >> UInt64(8 * $0)) }
        return MACAddress(b[0] & 0xFE | 0x02, b[1], b[2], b[3], b[4], b[5])
    }

    /// The 16 bytes of a machine ID file's contents (32 hex digits, surrounding whitespace
    /// allowed), or nil when it is not one (empty, "uninitialized", all zero).
    public static func machineID(_ text: String) -> [UInt8]? {
        let trimmed = text.utf8.filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\t") && $0 != UInt8(ascii: "\r") }
        guard trimmed.count == 32 else { return nil }
        var bytes: [UInt8] = []
        var i = 0
        while i < 32 {
            guard let hi = hexValue(trimmed[i]), let lo = hexValue(trimmed[i + 1]) else { return nil }
            bytes.append(hi << 4 | lo)
            i += 2
        }
        return bytes.allSatisfy({ $0 == 0 }) ? nil : bytes
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash, as systemd and the kernel use
/// it. Not on the packet path.
public enum SipHash24 {
    public static func hash(_ message: [UInt8], key: [UInt8]) -> UInt64 {
        precondition(key.count == 16)
        func word(_ bytes: ArraySlice<UInt8>) -> UInt64 {
            bytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << UInt64(8 * $1.offset) }
        }
        let k0 = word(key[0..<8])
        let k1 = word(key[8..<16])
        var v0: UInt64 = 0x736f_6d65_7073_6575 ^ k0
        var v1: UInt64 = 0x646f_7261_6e64_6f6d ^ k1
        var v2: UInt64 = 0x6c79_6765_6e65_7261 ^ k0
        var v3: UInt64 = 0x7465_6462_7974_6573 ^ k1
        func rotl(_ x: UInt64, _ b: UInt64) -> UInt64 { x << b | x >> (64 - b) }
        func round() {
            v0 &+= v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
            v2 &+= v3; v3 = rotl(v3, 16); v3 ^= v2
            v0 &+= v3; v3 = rotl(v3, 21); v3 ^= v0
            v2 &+= v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
        }
        let full = message.count / 8 * 8
        var i = 0
        while i < full {
            let m = word(message[i..<(i + 8)])
            v3 ^= m
            round(); round()
            v0 ^= m
            i += 8
        }
        let last = UInt64(truncatingIfNeeded: message.count) << 56 | word(message[full...])
        v3 ^= last
        round(); round()
        v0 ^= last
        v2 ^= 0xFF
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}
