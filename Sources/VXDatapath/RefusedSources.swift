import Synchronization
import VXWire

/// Strangers refused by `allow_from`, counted per source address: a VTEP the router knows has
/// its own counters (`RemoteCounters`, indexed through the remote table), but a sender that is
/// not in the remote table has no row, and giving every stranger one would let anyone who can
/// spoof source addresses grow the table. So each worker keeps this small fixed table instead:
///
///  1. an address hashes to a home slot and is looked for in `probes` slots from there;
///  2. found: its count goes up (one relaxed atomic store: the worker is the only writer);
///  3. not found: it takes the probed slot with the smallest count (an empty slot has 0), whose
///     packets move to `evicted` — so the counts plus `evicted` are every refused stranger packet,
///     and a steady source stays listed while one-off spoofed addresses replace each other;
///  4. the control thread reads the slots (`snapshot`) and merges the workers' tables (`merge`).
///
/// No allocation and no lock per packet. Only the refused path touches it. A slot's address is
/// changed under a sequence number (odd while it changes), so a reader never pairs one source's
/// address with another's count; a reader that races a change retries, then skips the slot.
public final class RefusedSources: @unchecked Sendable {
    /// Slots per worker (a power of two).
    public static let slots = 64
    static let probes = 4
    /// Per slot: sequence, family (0 = empty), high, low, packets.
    static let words = 5

    // Written only by the owning worker; read by the control thread.
    private let cells: UnsafeMutablePointer<Atomic<UInt64>>
    private let evictedPackets = Atomic<UInt64>(0)

    public init() {
        let count = Self.slots * Self.words
        cells = .allocate(capacity: count)
        for i in 0..<count { (cells + i).initialize(to: Atomic(0)) }
    }

    deinit {
        cells.deinitialize(count: Self.slots * Self.words)
        cells.deallocate()
    }

    /// Worker: one more packet refused from `source`, a stranger.
    @inline(__always)
    public func count(_ source: IPAddress) {
        let family = UInt64(source.family.rawValue)
        let home = Int(truncatingIfNeeded: FlowHash.mix(source.high ^ source.low &* 0x9E37_79B9_7F4A_7C15 ^ family))
        var victim = 0
        var least = UInt64.max
        for k in 0..<Self.probes {
            let slot = cells + ((home &+ k) & (Self.slots - 1)) * Self.words
            let packets = slot[4].load(ordering: .relaxed)
            if slot[1].load(ordering: .relaxed) == family, slot[2].load(ordering: .relaxed) == source.high,
                slot[3].load(ordering: .relaxed) == source.low
            {
                slot[4].store(packets &+ 1, ordering: .relaxed)
                return
            }
            if packets < least {
                least = packets
                victim = (home &+ k) & (Self.slots - 1)
            }
        }
        let slot = cells + victim * Self.words
        if least > 0 { evictedPackets.store(evictedPackets.load(ordering: .relaxed) &+ least, ordering: .relaxed) }
        let sequence = slot[0].load(ordering: .relaxed)
        slot[0].store(sequence &+ 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        slot[1].store(family, ordering: .relaxed)
        slot[2].store(source.high, ordering: .relaxed)
        slot[3].store(source.low, ordering: .relaxed)
        slot[4].store(1, ordering: .relaxed)
        slot[0].store(sequence &+ 2, ordering: .releasing)
    }

    /// Control thread: the sources in the table with their packets, and the packets of sources
    /// that were evicted.
    public func snapshot() -> (sources: [(address: IPAddress, packets: UInt64)], evicted: UInt64) {
        var sources: [(address: IPAddress, packets: UInt64)] = []
        for i in 0..<Self.slots {
            let slot = cells + i * Self.words
            for _ in 0..<3 {
                let before = slot[0].load(ordering: .acquiring)
                if before & 1 != 0 { continue }
                let family = slot[1].load(ordering: .relaxed)
                let high = slot[2].load(ordering: .relaxed)
                let low = slot[3].load(ordering: .relaxed)
                let packets = slot[4].load(ordering: .relaxed)
                atomicMemoryFence(ordering: .acquiring)
                guard slot[0].load(ordering: .relaxed) == before else { continue }
                if packets > 0, let family = IPAddress.Family(rawValue: UInt8(truncatingIfNeeded: family)) {
                    sources.append((family == .v4 ? IPAddress(v4: UInt32(truncatingIfNeeded: low)) : IPAddress(v6High: high, low: low), packets))
                }
                break
            }
        }
        return (sources, evictedPackets.load(ordering: .relaxed))
    }

    /// Control thread: the workers' tables as one list, most packets first (ties by address), cut
    /// to `limit`; `other` counts the packets of every source not listed (evicted or cut).
    public static func merge(
        _ snapshots: [(sources: [(address: IPAddress, packets: UInt64)], evicted: UInt64)], limit: Int
    ) -> (sources: [(address: IPAddress, packets: UInt64)], other: UInt64) {
        var totals: [IPAddress: UInt64] = [:]
        var other: UInt64 = 0
        for snapshot in snapshots {
            other &+= snapshot.evicted
            for source in snapshot.sources { totals[source.address, default: 0] &+= source.packets }
        }
        let sorted = totals.map { (address: $0.key, packets: $0.value) }.sorted {
            $0.packets != $1.packets ? $0.packets > $1.packets : $0.address < $1.address
        }
        for source in sorted.dropFirst(limit) { other &+= source.packets }
        return (Array(sorted.prefix(limit)), other)
    }
}
