/// An IPv4 or IPv6 address as two words, so the datapath compares a packet's source with a remote
/// VTEP in two integer compares and copies it without allocation.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible, Comparable, BitwiseCopyable {
    public enum Family: UInt8, Sendable, BitwiseCopyable { case v4 = 4, v6 = 6 }

    public let family: Family
    /// IPv6: the first eight bytes, big-endian. IPv4: zero.
    public let high: UInt64
    /// IPv6: the last eight bytes, big-endian. IPv4: the address in the low 32 bits.
    public let low: UInt64

    public init(v4 value: UInt32) {
        family = .v4
        high = 0
        low = UInt64(value)
    }

    public init(v6High high: UInt64, low: UInt64) {
        family = .v6
        self.high = high
        self.low = low
    }

    public var isV4: Bool { family == .v4 }
    public var v4Value: UInt32 { UInt32(truncatingIfNeeded: low) }

    /// The sixteen (IPv6) or four (IPv4) bytes in network order.
    public var bytes: [UInt8] {
        switch family {
        case .v4: return (0..<4).map { UInt8(truncatingIfNeeded: low >> UInt64(24 - 8 * $0)) }
        case .v6:
            return (0..<8).map { UInt8(truncatingIfNeeded: high >> UInt64(56 - 8 * $0)) }
                + (0..<8).map { UInt8(truncatingIfNeeded: low >> UInt64(56 - 8 * $0)) }
        }
    }

    public init?(bytes: some Collection<UInt8>) {
        let b = Array(bytes)
        switch b.count {
        case 4:
            self.init(v4: b.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        case 16:
            self.init(
                v6High: b[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) },
                low: b[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        default:
            return nil
        }
    }

    public var isUnspecified: Bool { high == 0 && low == 0 }
    public var isMulticast: Bool {
        switch family {
        case .v4: return v4Value >> 28 == 0xE
        case .v6: return high >> 56 == 0xFF
        }
    }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (with `::` and a trailing dotted quad).
    public init?(_ text: some StringProtocol) {
        if text.contains(":") {
            guard let (high, low) = IPAddress.parseV6(String(text)) else { return nil }
            self.init(v6High: high, low: low)
        } else {
            guard let value = IPAddress.parseV4(Substring(text)) else { return nil }
            self.init(v4: value)
        }
    }

    static func parseV4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let octet = UInt8(part), !(part.count > 1 && part.first == "0")
            else { return nil }
            value = value << 8 | UInt32(octet)
        }
        return value
    }

    static func parseV6(_ text: String) -> (UInt64, UInt64)? {
        // Split at "::" at most once; each side is a list of groups, the last may be a dotted quad.
        let halves = text.split(separator: "::", omittingEmptySubsequences: false).map(String.init)
        guard halves.count <= 2 else { return nil }
        func groups(_ side: String, allowV4Tail: Bool) -> [UInt16]? {
            if side.isEmpty { return [] }
            var result: [UInt16] = []
            let fields = side.split(separator: ":", omittingEmptySubsequences: false)
            for (i, field) in fields.enumerated() {
                if allowV4Tail, i == fields.count - 1, field.contains(".") {
                    guard let v4 = parseV4(field) else { return nil }
                    result.append(UInt16(v4 >> 16))
                    result.append(UInt16(v4 & 0xFFFF))
                } else {
                    guard (1...4).contains(field.count), field.allSatisfy(\.isHexDigit), let g = UInt16(field, radix: 16) else { return nil }
                    result.append(g)
                }
            }
            return result
        }
        var all: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0], allowV4Tail: false),
                let tail = groups(halves[1], allowV4Tail: true), head.count + tail.count <= 7
            else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let g = groups(halves[0], allowV4Tail: true), g.count == 8 else { return nil }
            all = g
        }
        let high = all[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        let low = all[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        return (high, low)
    }

    public var description: String {
        switch family {
        case .v4:
            return (0..<4).map { String(UInt8(truncatingIfNeeded: low >> UInt64(24 - 8 * $0))) }
                .joined(separator: ".")
        case .v6:
            let groups = (0..<8).map { i -> UInt16 in
                let word = i < 4 ? high : low
                return UInt16(truncatingIfNeeded: word >> UInt64(48 - 16 * (i % 4)))
            }
            // RFC 5952: compress the longest run (length ≥ 2) of zero groups, the first one on a tie.
            var bestStart = -1, bestLength = 1, runStart = -1
            for i in 0...8 {
                if i < 8, groups[i] == 0 {
                    if runStart < 0 { runStart = i }
                } else if runStart >= 0 {
                    if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                    runStart = -1
                }
            }
            let hex = groups.map { String($0, radix: 16) }
            if bestStart < 0 { return hex.joined(separator: ":") }
            let head = hex[0..<bestStart].joined(separator: ":")
            let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
            return head + "::" + tail
        }
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        (lhs.family.rawValue, lhs.high, lhs.low) < (rhs.family.rawValue, rhs.high, rhs.low)
    }
}

/// An address with a prefix length: `192.168.42.1/24` for a TAP address, `10.0.0.0/8` for a filter.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible, BitwiseCopyable {
    public let address: IPAddress
    public let length: Int

    public init?(address: IPAddress, length: Int) {
        guard length >= 0, length <= (address.isV4 ? 32 : 128) else { return nil }
        self.address = address
        self.length = length
    }

    /// `ADDRESS/LEN`; a bare address means a host prefix (/32 or /128).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let address = IPAddress(parts[0]) else { return nil }
        let maxLength = address.isV4 ? 32 : 128
        var length = maxLength
        if parts.count == 2 {
            guard parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let l = Int(parts[1]),
                l <= maxLength
            else { return nil }
            length = l
        }
        self.init(address: address, length: length)
    }

    public func contains(_ other: IPAddress) -> Bool {
        guard other.family == address.family else { return false }
        if address.isV4 {
            let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << UInt32(32 - length)
            return other.v4Value & mask == address.v4Value & mask
        }
        func mask(_ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? ~0 : ~UInt64(0) << UInt64(64 - bits) }
        let mh = mask(length), ml = mask(length - 64)
        return other.high & mh == address.high & mh && other.low & ml == address.low & ml
    }

    public var description: String { "\(address)/\(length)" }
}

/// A UDP endpoint: where a remote VTEP is reached or where a packet came from.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible, BitwiseCopyable {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    public var description: String {
        address.isV4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}
