import Synchronization

#if canImport(Glibc)
    import Glibc  // calloc/free only: lazily mapped zero pages
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a worker counts per remote VTEP: VXLAN packets sent to it and accepted from it.
public enum RemoteCounter: Int, CaseIterable, Sendable {
    case txPackets, txBytes, rxPackets, rxBytes

    public var name: String {
        switch self {
        case .txPackets: "tx_packets"
        case .txBytes: "tx_bytes"
        case .rxPackets: "rx_packets"
        case .rxBytes: "rx_bytes"
        }
    }
}

/// One worker's counters per remote VTEP: a row per `RemoteIndex` (the table is append-only and
/// at most 32,767 long), columns for traffic and for drops by reason. Written by the one worker
/// that owns it, relaxed, no lock and no allocation; read (relaxed) and summed by the control side.
///
/// The cells come from `calloc`: zero pages the kernel maps on first touch, so a worker that only
/// ever hears from a handful of VTEPs pays for a handful of pages, not the full 32,767 rows.
/// `Atomic<UInt64>` is a plain 64-bit cell, so zeroed memory is a valid initial state.
public final class RemoteCounters: @unchecked Sendable {
    public static let columns = RemoteCounter.allCases.count + DropReason.allCases.count
    public let capacity: Int
    private let cells: UnsafeMutablePointer<Atomic<UInt64>>

    public init(capacity: Int = RemoteIndex.limit) {
        precondition(capacity > 0)
        self.capacity = capacity
        guard let raw = calloc(capacity * Self.columns, MemoryLayout<Atomic<UInt64>>.stride) else {
            fatalError("cannot allocate per-remote counters")
        }
        cells = raw.bindMemory(to: Atomic<UInt64>.self, capacity: capacity * Self.columns)
    }

    deinit { free(cells) }

    public var view: View { View(cells: cells, capacity: capacity) }

    /// The writer's handle, held by the one worker that owns these counters.
    public struct View: BitwiseCopyable {
        let cells: UnsafeMutablePointer<Atomic<UInt64>>
        let capacity: Int

        @inline(__always)
        public func add(_ counter: RemoteCounter, remote: RemoteIndex, _ amount: Int = 1) {
            bump(Int(remote.rawValue), counter.rawValue, amount)
        }

        @inline(__always)
        public func drop(_ reason: DropReason, remote: RemoteIndex) {
            bump(Int(remote.rawValue), RemoteCounter.allCases.count + reason.rawValue, 1)
        }

        @inline(__always)
        func bump(_ row: Int, _ column: Int, _ amount: Int) {
            guard row < capacity else { return }
            let cell = cells + row * RemoteCounters.columns + column
            cell.pointee.store(cell.pointee.load(ordering: .relaxed) &+ UInt64(amount), ordering: .relaxed)
        }
    }

    /// One counter of one remote, read without stopping the worker.
    public func load(_ counter: RemoteCounter, remote: RemoteIndex) -> UInt64 {
        let row = Int(remote.rawValue)
        guard row < capacity else { return 0 }
        return cells[row * Self.columns + counter.rawValue].load(ordering: .relaxed)
    }

    /// The first `rows` rows (the remotes interned so far), read without stopping the worker.
    public func snapshot(rows: Int) -> RemoteCounterSnapshot {
        let rows = min(rows, capacity)
        var values = [UInt64](repeating: 0, count: rows * Self.columns)
        for i in values.indices { values[i] = cells[i].load(ordering: .relaxed) }
        return RemoteCounterSnapshot(rows: rows, values: values)
    }
}

/// Per-remote counters as read at one moment, summable across workers.
public struct RemoteCounterSnapshot: Sendable, Equatable {
    public private(set) var rows: Int
    public private(set) var values: [UInt64]

    public init(rows: Int = 0) {
        self.rows = rows
        values = [UInt64](repeating: 0, count: rows * RemoteCounters.columns)
    }

    init(rows: Int, values: [UInt64]) {
        self.rows = rows
        self.values = values
    }

    public subscript(remote: RemoteIndex, counter: RemoteCounter) -> UInt64 {
        let row = Int(remote.rawValue)
        return row < rows ? values[row * RemoteCounters.columns + counter.rawValue] : 0
    }

    public subscript(remote: RemoteIndex, drop reason: DropReason) -> UInt64 {
        let row = Int(remote.rawValue)
        return row < rows ? values[row * RemoteCounters.columns + RemoteCounter.allCases.count + reason.rawValue] : 0
    }

    /// Element-wise sum; a shorter snapshot counts as zeros past its end.
    public static func + (lhs: RemoteCounterSnapshot, rhs: RemoteCounterSnapshot) -> RemoteCounterSnapshot {
        var long = lhs.rows >= rhs.rows ? lhs : rhs
        let short = lhs.rows >= rhs.rows ? rhs : lhs
        for i in short.values.indices { long.values[i] &+= short.values[i] }
        return long
    }
}
