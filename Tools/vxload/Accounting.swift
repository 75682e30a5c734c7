// What the sink makes of what arrives: per flow, which sequence numbers came, in what order, how
// often. Pure and single-threaded; the receiving threads share one Tally under a lock.
//
// 1. A sequence above the highest seen so far is new; the ones it skipped become holes.
// 2. One below it is late (reordered, RFC 4737's sense) if its hole is still open, a duplicate
//    if the window remembers it arrived already.
// 3. The window remembers the last 1024 sequences of a flow; one older than that is counted as
//    reordered (it cannot be told from a duplicate that late, and duplicates that late are rare).
// 4. Loss is what the sender sent minus the distinct packets that arrived; holes are the live
//    estimate while the run is going (the last packets may still be in flight).

struct SequenceTracker: Sendable {
    static let window = 1024

    /// The highest sequence seen, or nil before the first packet.
    private(set) var highest: UInt64?
    /// Distinct packets that arrived.
    private(set) var unique: UInt64 = 0
    private(set) var duplicates: UInt64 = 0
    private(set) var reordered: UInt64 = 0
    /// Sequences skipped and not (yet) filled in by a late arrival: the loss so far, below `highest`.
    private(set) var holes: UInt64 = 0
    /// A ring of bits: bit (s mod window) set when sequence s (within the window) arrived.
    private var seen = [UInt64](repeating: 0, count: window / 64)

    enum Outcome: Equatable { case inOrder, reordered, duplicate }

    @discardableResult
    mutating func record(_ sequence: UInt64) -> Outcome {
        guard let top = highest else {
            // The first packet of a flow: everything before it was lost (or is still coming).
            highest = sequence
            holes = sequence
            unique = 1
            mark(sequence)
            return .inOrder
        }
        if sequence > top {
            let gap = sequence - top - 1
            holes += gap
            // Forget the bits the window slides over.
            if sequence - top >= UInt64(Self.window) {
                for i in seen.indices { seen[i] = 0 }
            } else {
                var s = top + 1
                while s < sequence {
                    clear(s)
                    s += 1
                }
            }
            highest = sequence
            unique += 1
            mark(sequence)
            return .inOrder
        }
        if top - sequence >= UInt64(Self.window) {
            // Too old for the window: a late arrival that fills a hole, as far as we can tell.
            if holes > 0 { holes -= 1 }
            unique += 1
            reordered += 1
            return .reordered
        }
        if isMarked(sequence) {
            duplicates += 1
            return .duplicate
        }
        mark(sequence)
        holes -= 1
        unique += 1
        reordered += 1
        return .reordered
    }

    /// How many the sender sent on this flow by the sink's own evidence: one past the highest.
    var impliedSent: UInt64 { highest.map { $0 + 1 } ?? 0 }

    @inline(__always) private mutating func mark(_ s: UInt64) {
        let bit = Int(s % UInt64(Self.window))
        seen[bit >> 6] |= 1 << UInt64(bit & 63)
    }

    @inline(__always) private mutating func clear(_ s: UInt64) {
        let bit = Int(s % UInt64(Self.window))
        seen[bit >> 6] &= ~(1 << UInt64(bit & 63))
    }

    @inline(__always) private func isMarked(_ s: UInt64) -> Bool {
        let bit = Int(s % UInt64(Self.window))
        return seen[bit >> 6] & (1 << UInt64(bit & 63)) != 0
    }
}

/// The totals over every flow of a run.
struct FlowTotals: Equatable, Sendable {
    var unique: UInt64 = 0
    var duplicates: UInt64 = 0
    var reordered: UInt64 = 0
    var holes: UInt64 = 0
    var impliedSent: UInt64 = 0
}

/// Every flow's tracker, indexed by flow id (flows are dense from 0).
struct FlowTable: Sendable {
    private(set) var trackers: [SequenceTracker] = []

    @inline(__always)
    mutating func record(flow: UInt16, sequence: UInt64) -> SequenceTracker.Outcome {
        let index = Int(flow)
        if index >= trackers.count {
            trackers.reserveCapacity(index + 1)
            while trackers.count <= index { trackers.append(SequenceTracker()) }
        }
        return trackers[index].record(sequence)
    }

    var totals: FlowTotals {
        var t = FlowTotals()
        for tracker in trackers {
            t.unique += tracker.unique
            t.duplicates += tracker.duplicates
            t.reordered += tracker.reordered
            t.holes += tracker.holes
            t.impliedSent += tracker.impliedSent
        }
        return t
    }
}

/// Replayed frames carry no probe: the sink recognises them by content. Frames with the same
/// bytes are one entry; the sender sends the file in order, loop after loop, so after N frames
/// sent, frame i of F went out N / F times, plus once more if i < N mod F.
struct ReplayMatcher: Sendable {
    private struct Entry: Sendable {
        var bytes: [UInt8]
        var indices: [Int]
        var received: UInt64 = 0
    }

    private var entries: [Entry] = []
    /// Content hash → entries with that hash (collisions compared byte for byte).
    private var byHash: [UInt64: [Int]] = [:]
    let frameCount: Int

    init(frames: [[UInt8]]) {
        frameCount = frames.count
        for (index, frame) in frames.enumerated() {
            let hash = ReplayMatcher.hash(frame)
            if let existing = byHash[hash]?.first(where: { entries[$0].bytes == frame }) {
                entries[existing].indices.append(index)
            } else {
                byHash[hash, default: []].append(entries.count)
                entries.append(Entry(bytes: frame, indices: [index]))
            }
        }
    }

    /// Counts a received frame; false if it is not one of the file's.
    @inline(__always)
    mutating func record(_ base: UnsafeRawPointer, length: Int) -> Bool {
        let bytes = UnsafeRawBufferPointer(start: base, count: length)
        guard let candidates = byHash[ReplayMatcher.hash(bytes)] else { return false }
        for candidate in candidates where entries[candidate].bytes.elementsEqual(bytes) {
            entries[candidate].received += 1
            return true
        }
        return false
    }

    struct Result: Equatable, Sendable {
        var delivered: UInt64 = 0
        var duplicates: UInt64 = 0
        var deliveredBytes: UInt64 = 0
    }

    /// Delivered and duplicated frames once `sent` frames went out.
    func result(sent: UInt64) -> Result {
        guard frameCount > 0 else { return Result() }
        let loops = sent / UInt64(frameCount), partial = sent % UInt64(frameCount)
        var r = Result()
        for entry in entries {
            var expected: UInt64 = 0
            for index in entry.indices { expected += loops + (UInt64(index) < partial ? 1 : 0) }
            let delivered = Swift.min(expected, entry.received)
            r.delivered += delivered
            r.deliveredBytes += delivered * UInt64(entry.bytes.count)
            r.duplicates += entry.received - delivered
        }
        return r
    }

    /// Matched frames, whatever was sent (for the live line).
    var received: UInt64 { entries.reduce(0) { $0 + $1.received } }

    /// FNV-1a, 64 bits: cheap and good enough to spread a capture's frames.
    @inline(__always)
    static func hash<C: Collection<UInt8>>(_ bytes: C) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h &*= 0x100_0000_01b3
        }
        return h
    }
}
