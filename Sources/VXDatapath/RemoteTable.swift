import VXWire

/// A remote VTEP's position in the `RemoteTable`: 15 bits, so it packs into an FDB slot.
public struct RemoteIndex: Hashable, Sendable, BitwiseCopyable {
    public static let limit = 0x7FFF
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
}

/// Every remote VTEP the router has heard of or been told about, interned once so the FDB and the
/// flood lists store a 15-bit index instead of an address.
///
/// Append-only: the control thread writes an address, then publishes its index (in an FDB slot or
/// a flood list, with release ordering); workers read the address after acquiring the index.
/// Addresses are never removed, so an index stays valid for the router's lifetime.
public final class RemoteTable: @unchecked Sendable {
    public let capacity: Int
    private let addresses: UnsafeMutablePointer<IPAddress>
    // Control thread only.
    private var indexByAddress: [IPAddress: RemoteIndex] = [:]
    public private(set) var count = 0

    public init(capacity: Int = RemoteIndex.limit) {
        precondition(capacity > 0 && capacity <= RemoteIndex.limit)
        self.capacity = capacity
        addresses = .allocate(capacity: capacity)
    }

    deinit { addresses.deallocate() }

    /// Control thread: the index of `address`, interning it if new; nil when the table is full.
    public func intern(_ address: IPAddress) -> RemoteIndex? {
        if let index = indexByAddress[address] { return index }
        guard count < capacity else { return nil }
        let index = RemoteIndex(rawValue: UInt16(count))
        (addresses + count).initialize(to: address)
        indexByAddress[address] = index
        count += 1
        return index
    }

    /// Control thread: the address behind an index handed out by `intern`.
    public func address(_ index: RemoteIndex) -> IPAddress { addresses[Int(index.rawValue)] }

    public var view: View { View(addresses: addresses) }

    /// The worker side: reads addresses of indexes it acquired from an FDB slot or flood list.
    public struct View: BitwiseCopyable {
        let addresses: UnsafeMutablePointer<IPAddress>

        @inline(__always)
        public subscript(index: RemoteIndex) -> IPAddress { addresses[Int(index.rawValue)] }
    }
}
