import Synchronization
import VXWire

/// One network's FDB: inner MAC → remote VTEP, read by every worker without a lock and written by
/// the control thread alone.
///
/// Each slot is one 64-bit word, so a reader sees an entry whole or not at all:
///
///     63                                16 15 14            0
///     +-----------------------------------+--+---------------+
///     |            MAC address            |S | remote + 1    |
///     +-----------------------------------+--+---------------+
///
/// `S` marks a static entry; the low 15 bits are a `RemoteTable` index plus one, so a zero word is
/// an empty slot. Open addressing with linear probing; deletion shifts later entries back (no
/// tombstones), which can make a concurrent reader miss an entry for an instant — it then floods
/// the frame, exactly as for an unknown MAC, and never gets a wrong answer, because the key
/// travels in the same word as the value.
public final class ForwardingTable: @unchecked Sendable {
    public let maxEntries: Int
    /// Slots written by the control thread only; read by workers through `View`.
    private let slots: UnsafeMutablePointer<Atomic<UInt64>>
    /// Monotonic seconds a learned entry was last confirmed by traffic. Workers refresh it with a
    /// relaxed store (any worker's recent value is good enough for ageing).
    private let lastSeen: UnsafeMutablePointer<Atomic<UInt32>>
    private let mask: Int
    /// Entries present; control thread only.
    public private(set) var count = 0

    public struct Entry: Equatable, Sendable, BitwiseCopyable {
        public var mac: MACAddress
        public var remote: RemoteIndex
        public var isStatic: Bool
    }

    public init(maxEntries: Int) {
        precondition(maxEntries > 0)
        self.maxEntries = maxEntries
        // Load factor ≤ 0.5 keeps probe sequences short.
        var size = 16
        while size < maxEntries * 2 { size <<= 1 }
        mask = size - 1
        slots = .allocate(capacity: size)
        lastSeen = .allocate(capacity: size)
        for i in 0..<size {
            (slots + i).initialize(to: Atomic(0))
            (lastSeen + i).initialize(to: Atomic(0))
        }
    }

    deinit {
        slots.deallocate()
        lastSeen.deallocate()
    }

    /// The lock-free read side, handed to workers. Valid while the table lives (the router keeps
    /// every table until all workers have stopped).
    public var view: View { View(slots: slots, lastSeen: lastSeen, mask: mask) }

    public struct View: BitwiseCopyable {
        let slots: UnsafeMutablePointer<Atomic<UInt64>>
        let lastSeen: UnsafeMutablePointer<Atomic<UInt32>>
        let mask: Int

        /// A found entry and where it sits, so the caller can refresh its age.
        public struct Hit: BitwiseCopyable {
            public var remote: RemoteIndex
            public var isStatic: Bool
            public var slot: Int
        }

        @inline(__always)
        public func lookup(_ mac: MACAddress) -> Hit? {
            var i = ForwardingTable.home(mac, mask: mask)
            while true {
                let word = slots[i].load(ordering: .acquiring)
                if word == 0 { return nil }
                if word >> 16 == mac.rawValue {
                    return Hit(
                        remote: RemoteIndex(rawValue: UInt16(truncatingIfNeeded: word & 0x7FFF) - 1),
                        isStatic: word & 0x8000 != 0, slot: i)
                }
                i = (i + 1) & mask
            }
        }

        /// Marks the entry in `slot` as seen at `now`; skips the store when nothing changed so a busy
        /// flow does not bounce the line between cores.
        @inline(__always)
        public func touch(slot: Int, now: UInt32) {
            if lastSeen[slot].load(ordering: .relaxed) != now {
                lastSeen[slot].store(now, ordering: .relaxed)
            }
        }
    }

    @inline(__always)
    static func home(_ mac: MACAddress, mask: Int) -> Int {
        Int(truncatingIfNeeded: FlowHash.mix(mac.rawValue)) & mask
    }

    @inline(__always)
    static func word(_ mac: MACAddress, _ remote: RemoteIndex, isStatic: Bool) -> UInt64 {
        mac.rawValue << 16 | (isStatic ? 0x8000 : 0) | UInt64(remote.rawValue + 1)
    }

    private func find(_ mac: MACAddress) -> Int? {
        var i = Self.home(mac, mask: mask)
        while true {
            let word = slots[i].load(ordering: .relaxed)
            if word == 0 { return nil }
            if word >> 16 == mac.rawValue { return i }
            i = (i + 1) & mask
        }
    }

    private func entry(at slot: Int) -> Entry {
        let word = slots[slot].load(ordering: .relaxed)
        return Entry(
            mac: MACAddress(unchecked: word >> 16),
            remote: RemoteIndex(rawValue: UInt16(truncatingIfNeeded: word & 0x7FFF) - 1),
            isStatic: word & 0x8000 != 0)
    }

    // MARK: Writer side (control thread only)

    public func lookup(_ mac: MACAddress) -> Entry? {
        find(mac).map(entry(at:))
    }

    public enum LearnOutcome: Equatable, Sendable {
        case added
        /// The MAC was behind another VTEP and now follows the new one.
        case moved(from: RemoteIndex)
        /// Already known there; its age was refreshed.
        case refreshed
        /// A static entry names this MAC; learning never overrides it.
        case staticKept
        /// The table holds `maxEntries` already.
        case full
    }

    /// Learns `mac` behind `remote` at time `now`.
    public func learn(_ mac: MACAddress, behind remote: RemoteIndex, now: UInt32) -> LearnOutcome {
        if let slot = find(mac) {
            let old = entry(at: slot)
            if old.isStatic { return .staticKept }
            lastSeen[slot].store(now, ordering: .relaxed)
            if old.remote == remote { return .refreshed }
            slots[slot].store(Self.word(mac, remote, isStatic: false), ordering: .releasing)
            return .moved(from: old.remote)
        }
        guard count < maxEntries else { return .full }
        insertNew(Self.word(mac, remote, isStatic: false), mac: mac, now: now)
        return .added
    }

    public enum StaticOutcome: Equatable, Sendable { case added, replaced, full }

    /// Adds or replaces a static entry (never aged; wins over learning).
    @discardableResult
    public func setStatic(_ mac: MACAddress, remote: RemoteIndex) -> StaticOutcome {
        let word = Self.word(mac, remote, isStatic: true)
        if let slot = find(mac) {
            slots[slot].store(word, ordering: .releasing)
            return .replaced
        }
        guard count < maxEntries else { return .full }
        insertNew(word, mac: mac, now: 0)
        return .added
    }

    private func insertNew(_ word: UInt64, mac: MACAddress, now: UInt32) {
        var i = Self.home(mac, mask: mask)
        while slots[i].load(ordering: .relaxed) != 0 { i = (i + 1) & mask }
        // Age first, then publish the entry: a reader that sees the entry sees a sane age.
        lastSeen[i].store(now, ordering: .relaxed)
        slots[i].store(word, ordering: .releasing)
        count += 1
    }

    /// Removes `mac`; returns the entry that was there.
    @discardableResult
    public func remove(_ mac: MACAddress) -> Entry? {
        guard let slot = find(mac) else { return nil }
        let old = entry(at: slot)
        removeSlot(slot)
        return old
    }

    /// Backward-shift deletion (Knuth 6.4, algorithm R): later entries of the probe run move up so
    /// no tombstone is left behind.
    private func removeSlot(_ start: Int) {
        var hole = start
        var j = start
        while true {
            j = (j + 1) & mask
            let word = slots[j].load(ordering: .relaxed)
            if word == 0 { break }
            let home = Self.home(MACAddress(unchecked: word >> 16), mask: mask)
            // Move the entry at j into the hole unless its home lies cyclically in (hole, j].
            let homeInRange = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j)
            if !homeInRange {
                lastSeen[hole].store(lastSeen[j].load(ordering: .relaxed), ordering: .relaxed)
                slots[hole].store(word, ordering: .releasing)
                hole = j
            }
        }
        slots[hole].store(0, ordering: .releasing)
        count -= 1
    }

    /// Removes learned entries not seen for more than `maxAge` seconds; calls `removed` for each.
    public func age(now: UInt32, maxAge: UInt32, removed: (Entry) -> Void) {
        removeLearned(where: { now &- $0 > maxAge }, removed: removed)
    }

    /// Removes every learned entry; static ones stay. Returns how many went.
    @discardableResult
    public func flushLearned() -> Int {
        var removedCount = 0
        removeLearned(where: { _ in true }) { _ in removedCount += 1 }
        return removedCount
    }

    private func removeLearned(where shouldRemove: (_ lastSeen: UInt32) -> Bool, removed: (Entry) -> Void) {
        var i = 0
        while i <= mask {
            let word = slots[i].load(ordering: .relaxed)
            if word != 0, word & 0x8000 == 0, shouldRemove(lastSeen[i].load(ordering: .relaxed)) {
                let old = entry(at: i)
                removeSlot(i)
                removed(old)
                // The shift may have pulled a later entry into slot i: look at it again. Entries
                // only ever move back into the hole, so none still unvisited moves below i.
                continue
            }
            i += 1
        }
    }

    /// Every entry with its last-seen time, for listings.
    public func entries() -> [(entry: Entry, lastSeen: UInt32)] {
        var result: [(Entry, UInt32)] = []
        result.reserveCapacity(count)
        for i in 0...mask where slots[i].load(ordering: .relaxed) != 0 {
            result.append((entry(at: i), lastSeen[i].load(ordering: .relaxed)))
        }
        return result
    }
}
