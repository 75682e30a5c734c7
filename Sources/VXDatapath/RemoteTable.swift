import Synchronization
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
///
/// Workers also look an address up (to count per remote VTEP what arrives from it): `published`
/// is an open-addressed array of `index + 1` words (0 = empty), keyed by the address they point
/// at. The control thread writes the address first and then the word with release ordering; a
/// worker that acquires a word sees its address. Slots are never cleared, so probing is safe.
public final class RemoteTable: @unchecked Sendable {
    public let capacity: Int
    private let addresses: UnsafeMutablePointer<IPAddress>
    private let published: UnsafeMutablePointer<Atomic<UInt32>>
    private let publishedMask: Int
    // Control thread only.
    private var indexByAddress: [IPAddress: RemoteIndex] = [:]
    public private(set) var count = 0

    public init(capacity: Int = RemoteIndex.limit) {
        precondition(capacity > 0 && capacity <= RemoteIndex.limit)
        self.capacity = capacity
        addresses = .allocate(capacity: capacity)
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        publishedMask = size - 1
        published = .allocate(capacity: size)
        for i in 0..<size { (published + i).initialize(to: Atomic(0)) }
    }

    deinit {
        addresses.deallocate()
        published.deallocate()
    }

    @inline(__always)
    static func home(_ address: IPAddress, mask: Int) -> Int {
        let key = address.high &* 0x9E37_79B9_7F4A_7C15 ^ address.low ^ UInt64(address.family.rawValue) << 56
        return Int(truncatingIfNeeded: FlowHash.mix(key)) & mask
    }

    /// Control thread: the index of `address`, interning it if new; nil when the table is full.
    public func intern(_ address: IPAddress) -> RemoteIndex? {
        if let index = indexByAddress[address] { return index }
        guard count < capacity else { return nil }
        let index = RemoteIndex(rawValue: UInt16(count))
        (addresses + count).initialize(to: address)
        indexByAddress[address] = index
        count += 1
        var slot = Self.home(address, mask: publishedMask)
        while published[slot].load(ordering: .relaxed) != 0 { slot = (slot + 1) & publishedMask }
        published[slot].store(UInt32(index.rawValue) + 1, ordering: .releasing)
        return index
    }

    /// Control thread: the address behind an index handed out by `intern`.
    public func address(_ index: RemoteIndex) -> IPAddress { addresses[Int(index.rawValue)] }

    /// Control thread: the index of an address already interned, without interning it.
    public func existingIndex(_ address: IPAddress) -> RemoteIndex? { indexByAddress[address] }

    public var view: View { View(addresses: addresses, published: published, mask: publishedMask) }

    /// The worker side: reads addresses of indexes it acquired from an FDB slot or flood list, and
    /// finds the index of a sender's address (lock-free, allocation-free).
    public struct View: BitwiseCopyable {
        let addresses: UnsafeMutablePointer<IPAddress>
        let published: UnsafeMutablePointer<Atomic<UInt32>>
        let mask: Int

        @inline(__always)
        public subscript(index: RemoteIndex) -> IPAddress { addresses[Int(index.rawValue)] }

        /// The index of `address` if the control thread has interned it; nil otherwise.
        @inline(__always)
        public func index(of address: IPAddress) -> RemoteIndex? {
            var slot = RemoteTable.home(address, mask: mask)
            while true {
                let word = published[slot].load(ordering: .acquiring)
                if word == 0 { return nil }
                if addresses[Int(word - 1)] == address { return RemoteIndex(rawValue: UInt16(truncatingIfNeeded: word - 1)) }
                slot = (slot + 1) & mask
            }
        }
    }
}
