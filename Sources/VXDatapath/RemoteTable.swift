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
///
/// Path MTU (README "PMTU", `PathMTU`): per remote, the largest inner frame its learned path
/// carries (0: nothing learned, the network's own limit holds), written only by the control
/// thread — which reads the kernel's path MTU (a syscall the workers should not wait for) and is
/// the table's one writer already — and read by workers with relaxed loads (a frame checked
/// against a limit a moment old costs at most one more drop or one more ICMP). A worker whose send
/// the kernel refused as too big asks for a probe: it raises the remote's flag and bumps
/// `probeRequests`, which the control thread watches so it scans the flags only after a refusal.
public final class RemoteTable: @unchecked Sendable {
    public let capacity: Int
    private let addresses: UnsafeMutablePointer<IPAddress>
    private let published: UnsafeMutablePointer<Atomic<UInt32>>
    private let publishedMask: Int
    private let frameLimits: UnsafeMutablePointer<Atomic<UInt32>>
    private let probeWanted: UnsafeMutablePointer<Atomic<Bool>>
    private let probeRequests: UnsafeMutablePointer<Atomic<UInt64>>
    // Control thread only: the probe requests already handled.
    private var probeRequestsSeen: UInt64 = 0
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
        frameLimits = .allocate(capacity: capacity)
        probeWanted = .allocate(capacity: capacity)
        for i in 0..<capacity {
            (frameLimits + i).initialize(to: Atomic(0))
            (probeWanted + i).initialize(to: Atomic(false))
        }
        probeRequests = .allocate(capacity: 1)
        probeRequests.initialize(to: Atomic(0))
    }

    deinit {
        addresses.deallocate()
        published.deallocate()
        frameLimits.deallocate()
        probeWanted.deallocate()
        probeRequests.deallocate()
    }

    /// Control thread: the largest inner frame the remote's learned path carries, or nil to let
    /// the network's own limit hold (nothing learned, or what was learned expired).
    public func setFrameLimit(_ limit: Int?, of index: RemoteIndex) {
        let word = limit.map { UInt32(clamping: max($0, 1)) } ?? 0
        frameLimits[Int(index.rawValue)].store(word, ordering: .relaxed)
    }

    /// Control thread: the limit `setFrameLimit` last set (nil: none).
    public func frameLimit(of index: RemoteIndex) -> Int? {
        let word = frameLimits[Int(index.rawValue)].load(ordering: .relaxed)
        return word == 0 ? nil : Int(word)
    }

    /// Control thread: calls `body` with every remote a worker asked to probe since the last
    /// call, clearing its flag first (a refusal after that asks again). Cheap when none asked.
    /// Whether a worker asked for a probe that `takeProbeRequests` has not handled yet.
    public var probesPending: Bool { probeRequests.pointee.load(ordering: .acquiring) != probeRequestsSeen }

    public func takeProbeRequests(_ body: (RemoteIndex) -> Void) {
        let requests = probeRequests.pointee.load(ordering: .acquiring)
        guard requests != probeRequestsSeen else { return }
        probeRequestsSeen = requests
        for i in 0..<count where probeWanted[i].load(ordering: .relaxed) {
            probeWanted[i].store(false, ordering: .relaxed)
            body(RemoteIndex(rawValue: UInt16(i)))
        }
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

    public var view: View {
        View(
            addresses: addresses, published: published, mask: publishedMask, frameLimits: frameLimits,
            probeWanted: probeWanted, probeRequests: probeRequests)
    }

    /// The worker side: reads addresses of indexes it acquired from an FDB slot or flood list, and
    /// finds the index of a sender's address (lock-free, allocation-free).
    public struct View: BitwiseCopyable {
        let addresses: UnsafeMutablePointer<IPAddress>
        let published: UnsafeMutablePointer<Atomic<UInt32>>
        let mask: Int
        let frameLimits: UnsafeMutablePointer<Atomic<UInt32>>
        let probeWanted: UnsafeMutablePointer<Atomic<Bool>>
        let probeRequests: UnsafeMutablePointer<Atomic<UInt64>>

        @inline(__always)
        public subscript(index: RemoteIndex) -> IPAddress { addresses[Int(index.rawValue)] }

        /// The largest inner frame the remote's learned path carries; `Int.max` when none was learned.
        @inline(__always)
        public func frameLimit(_ index: RemoteIndex) -> Int {
            let word = frameLimits[Int(index.rawValue)].load(ordering: .relaxed)
            return word == 0 ? Int.max : Int(word)
        }

        /// A send to the remote was refused as too big: ask the control thread to read its path
        /// MTU. Several workers may ask at once; the flag is raised before the count is bumped, so
        /// the control thread that sees the count sees the flag.
        @inline(__always)
        public func requestProbe(_ index: RemoteIndex) {
            let flag = probeWanted + Int(index.rawValue)
            if flag.pointee.load(ordering: .relaxed) { return }
            flag.pointee.store(true, ordering: .relaxed)
            probeRequests.pointee.add(1, ordering: .releasing)
        }

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
