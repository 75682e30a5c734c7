import Synchronization
import VXWire

/// One network's MAC/IP entries: inner IP address → MAC, what ARP/ND suppression answers from.
/// Read by every worker without a lock and written by the control thread alone; only config, the
/// API and the cluster put entries here (through `setIPs` / `removeIPs`), never traffic.
///
/// An entry (up to 16 address bytes, a family and a MAC) does not fit one atomic word, so each
/// slot is a small seqlock (Boehm, "Can seqlocks get along with programming language memory
/// models?", 2012):
///
///     sequence | address high | address low | family << 48 | MAC
///
/// The writer makes the sequence odd, stores the words, makes it even again; a reader that sees
/// the sequence change or odd across its loads treats the slot as a miss. Deletion shifts later
/// entries back (no tombstones), as in `ForwardingTable`. Either way a concurrent reader can miss an
/// entry for an instant — the question is then flooded, exactly as for an unknown address — and
/// never gets a wrong answer.
public final class NeighbourTable: @unchecked Sendable {
    public let maxEntries: Int
    /// Four words per slot; written by the control thread only, read by workers through `View`.
    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    private let mask: Int
    /// Entries present; control thread only.
    public private(set) var count = 0
    /// Which addresses each MAC holds, for `setIPs` and `removeIPs`; control thread only.
    private var byMAC: [MACAddress: [IPAddress]] = [:]

    static let wordsPerSlot = 4

    public init(maxEntries: Int) {
        precondition(maxEntries > 0)
        self.maxEntries = maxEntries
        var size = 16
        while size < maxEntries * 2 { size <<= 1 }
        mask = size - 1
        words = .allocate(capacity: size * Self.wordsPerSlot)
        for i in 0..<(size * Self.wordsPerSlot) { (words + i).initialize(to: Atomic(0)) }
    }

    deinit { words.deallocate() }

    public var view: View { View(words: words, mask: mask) }

    /// The lock-free read side, handed to workers. Valid while the table lives.
    public struct View: BitwiseCopyable {
        let words: UnsafeMutablePointer<Atomic<UInt64>>
        let mask: Int

        /// The MAC that `address` is at, or nil (unknown, or an entry changing right now).
        @inline(__always)
        public func lookup(_ address: IPAddress) -> MACAddress? {
            let tag = NeighbourTable.familyTag(address)
            var i = NeighbourTable.home(address, mask: mask)
            // At most every slot once: a reader racing a long shift must still stop.
            for _ in 0...mask {
                let slot = words + i * NeighbourTable.wordsPerSlot
                let before = slot[0].load(ordering: .acquiring)
                let meta = slot[3].load(ordering: .relaxed)
                let high = slot[1].load(ordering: .relaxed)
                let low = slot[2].load(ordering: .relaxed)
                atomicMemoryFence(ordering: .acquiring)
                let after = slot[0].load(ordering: .relaxed)
                if before != after || before & 1 != 0 { return nil }
                if meta == 0 { return nil }
                if meta >> 48 == tag, high == address.high, low == address.low {
                    return MACAddress(unchecked: meta)
                }
                i = (i + 1) & mask
            }
            return nil
        }
    }

    @inline(__always)
    static func familyTag(_ address: IPAddress) -> UInt64 { UInt64(address.family.rawValue) }

    @inline(__always)
    static func home(_ address: IPAddress, mask: Int) -> Int {
        Int(truncatingIfNeeded: FlowHash.mix(address.high ^ FlowHash.mix(address.low ^ familyTag(address)))) & mask
    }

    // MARK: Writer side (control thread only)

    private func slot(_ i: Int) -> UnsafeMutablePointer<Atomic<UInt64>> { words + i * Self.wordsPerSlot }

    private func meta(_ i: Int) -> UInt64 { slot(i)[3].load(ordering: .relaxed) }

    private func address(at i: Int) -> IPAddress {
        let s = slot(i)
        let high = s[1].load(ordering: .relaxed)
        let low = s[2].load(ordering: .relaxed)
        return meta(i) >> 48 == 4 ? IPAddress(v4: UInt32(truncatingIfNeeded: low)) : IPAddress(v6High: high, low: low)
    }

    /// Publishes (`meta` ≠ 0) or clears (`meta` == 0) slot `i`.
    private func write(_ i: Int, high: UInt64, low: UInt64, meta: UInt64) {
        let s = slot(i)
        let sequence = s[0].load(ordering: .relaxed)
        s[0].store(sequence &+ 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        s[1].store(high, ordering: .relaxed)
        s[2].store(low, ordering: .relaxed)
        s[3].store(meta, ordering: .relaxed)
        s[0].store(sequence &+ 2, ordering: .releasing)
    }

    private func find(_ address: IPAddress) -> Int? {
        let tag = Self.familyTag(address)
        var i = Self.home(address, mask: mask)
        while true {
            let m = meta(i)
            if m == 0 { return nil }
            let s = slot(i)
            if m >> 48 == tag, s[1].load(ordering: .relaxed) == address.high, s[2].load(ordering: .relaxed) == address.low {
                return i
            }
            i = (i + 1) & mask
        }
    }

    /// The MAC `address` is at, for listings and tests.
    public func lookup(_ address: IPAddress) -> MACAddress? {
        find(address).map { MACAddress(unchecked: meta($0)) }
    }

    /// The addresses `mac` holds.
    public func ips(of mac: MACAddress) -> [IPAddress] { byMAC[mac] ?? [] }

    /// Every entry, for listings.
    public var entries: [MACAddress: [IPAddress]] { byMAC }

    public enum SetOutcome: Equatable, Sendable {
        case set
        /// The table would hold more than `maxEntries` addresses; nothing changed.
        case full
    }

    /// Makes `ips` exactly the addresses `mac` answers for: addresses it held and `ips` lacks are
    /// removed, an address another MAC held moves to `mac` (the newest word wins, as a static FDB
    /// entry replaces). An empty list removes them all.
    @discardableResult
    public func setIPs(_ ips: [IPAddress], of mac: MACAddress) -> SetOutcome {
        guard fits(ips, for: mac) else { return .full }
        var wanted: [IPAddress] = []
        for ip in ips where !wanted.contains(ip) { wanted.append(ip) }
        let old = byMAC[mac] ?? []
        for ip in old where !wanted.contains(ip) { removeAddress(ip) }
        for ip in wanted {
            if let i = find(ip) {
                let holder = MACAddress(unchecked: meta(i))
                if holder != mac {
                    byMAC[holder]?.removeAll { $0 == ip }
                    if byMAC[holder]?.isEmpty == true { byMAC[holder] = nil }
                    write(i, high: ip.high, low: ip.low, meta: Self.familyTag(ip) << 48 | mac.rawValue)
                }
            } else {
                var i = Self.home(ip, mask: mask)
                while meta(i) != 0 { i = (i + 1) & mask }
                write(i, high: ip.high, low: ip.low, meta: Self.familyTag(ip) << 48 | mac.rawValue)
                count += 1
            }
        }
        byMAC[mac] = wanted.isEmpty ? nil : wanted
        return .set
    }

    /// Whether `setIPs(ips, of: mac)` would fit in `maxEntries` (so a caller can check before it
    /// changes anything else).
    public func fits(_ ips: [IPAddress], for mac: MACAddress) -> Bool {
        var wanted: [IPAddress] = []
        for ip in ips where !wanted.contains(ip) { wanted.append(ip) }
        let old = byMAC[mac] ?? []
        let added = wanted.filter { find($0) == nil }.count
        let dropped = old.filter { !wanted.contains($0) }.count
        return count - dropped + added <= maxEntries
    }

    /// Removes every address `mac` holds; returns them.
    @discardableResult
    public func removeIPs(of mac: MACAddress) -> [IPAddress] {
        guard let old = byMAC.removeValue(forKey: mac) else { return [] }
        for ip in old { removeAddress(ip) }
        return old
    }

    private func removeAddress(_ ip: IPAddress) {
        guard let start = find(ip) else { return }
        // Backward-shift deletion (Knuth 6.4, algorithm R), as ForwardingTable.removeSlot.
        var hole = start
        var j = start
        while true {
            j = (j + 1) & mask
            let m = meta(j)
            if m == 0 { break }
            let moving = address(at: j)
            let home = Self.home(moving, mask: mask)
            let homeInRange = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j)
            if !homeInRange {
                write(hole, high: moving.high, low: moving.low, meta: m)
                hole = j
            }
        }
        write(hole, high: 0, low: 0, meta: 0)
        count -= 1
    }
}
