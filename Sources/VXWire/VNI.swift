/// A VXLAN Network Identifier: 24 bits, so an out-of-range value cannot be constructed.
public struct VNI: Hashable, Sendable, Comparable, CustomStringConvertible, BitwiseCopyable {
    public static let max: UInt32 = 0xFF_FFFF
    public let rawValue: UInt32

    public init?(_ value: UInt32) {
        guard value <= VNI.max else { return nil }
        rawValue = value
    }

    public init?(_ value: Int) {
        guard value >= 0, value <= Int(VNI.max) else { return nil }
        rawValue = UInt32(value)
    }

    @inline(__always)
    public init(unchecked value: UInt32) { rawValue = value & VNI.max }

    public var description: String { String(rawValue) }
    public static func < (lhs: VNI, rhs: VNI) -> Bool { lhs.rawValue < rhs.rawValue }
}
