import Synchronization

/// What a worker counts besides drops. Packets and bytes are counted where they cross a boundary:
/// read from a TAP, sent into the tunnel, received from the tunnel, written to a TAP.
public enum TrafficCounter: Int, CaseIterable, Sendable {
    case tapRxPackets, tapRxBytes
    case tunnelTxPackets, tunnelTxBytes
    case tunnelRxPackets, tunnelRxBytes
    case tapTxPackets, tapTxBytes
    /// Frames that went to the flood list rather than one VTEP (one per frame, not per copy).
    case floodedFrames
    /// Learn events a worker could not queue to the control thread (the ring was full). The frame
    /// itself was forwarded; the MAC is learned from a later one.
    case learnQueueFull
    /// Frames from the tunnel whose TCP/UDP checksum the sender left unfinished (pseudo-header
    /// sum only: a same-host kernel peer's checksum offload) and that were accepted as partial.
    case checksumUnfinished
    /// ARP requests / IPv6 neighbour solicitations read from a TAP and answered from the
    /// network's MAC/IP entries (written back to the TAP, never sent into the tunnel).
    case neighAnswered
    /// ARP requests / solicitations for an address no entry knows: forwarded as before.
    case neighFlooded
    /// ARP or solicitations that break the protocol's rules: forwarded as before, not answered.
    case neighUnanswerable
    /// ICMP "fragmentation needed" / "packet too big" sent back to an inner sender whose frame did
    /// not fit the underlay (the frame itself is counted as an `oversize` drop).
    case pmtuSignalled
    /// Of `pmtuSignalled`, those sent because the frame did not fit a remote's learned path MTU
    /// (a router between the VTEPs with a smaller MTU), not the configured underlay MTU.
    case pmtuPathSignalled

    public var name: String {
        switch self {
        case .tapRxPackets: "tap_rx_packets"
        case .tapRxBytes: "tap_rx_bytes"
        case .tunnelTxPackets: "tunnel_tx_packets"
        case .tunnelTxBytes: "tunnel_tx_bytes"
        case .tunnelRxPackets: "tunnel_rx_packets"
        case .tunnelRxBytes: "tunnel_rx_bytes"
        case .tapTxPackets: "tap_tx_packets"
        case .tapTxBytes: "tap_tx_bytes"
        case .floodedFrames: "flooded_frames"
        case .learnQueueFull: "learn_queue_full"
        case .checksumUnfinished: "checksum_unfinished"
        case .neighAnswered: "neigh_answered"
        case .neighFlooded: "neigh_flooded"
        case .neighUnanswerable: "neigh_unanswerable"
        case .pmtuSignalled: "pmtu_signalled"
        case .pmtuPathSignalled: "pmtu_path_signalled"
        }
    }
}

/// One worker's counters: a row per network plus a last row for drops that cannot be attributed
/// to a network (a packet too short to carry a VNI, a VNI we do not serve).
///
/// Each counter is written by its worker only, with relaxed load + store (no read-modify-write
/// needed with a single writer, and as cheap as a plain add on x86); readers on the control side
/// load them relaxed and sum across workers. Reading never slows forwarding.
public final class WorkerCounters: @unchecked Sendable {
    public static let columns = TrafficCounter.allCases.count + DropReason.allCases.count
    public let rows: Int
    private let cells: UnsafeMutablePointer<Atomic<UInt64>>

    /// - Parameter networks: number of networks; one more row is kept for unattributed drops.
    public init(networks: Int) {
        rows = networks + 1
        let count = rows * Self.columns
        // Each worker's block starts on its own cache line.
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: count * MemoryLayout<Atomic<UInt64>>.stride, alignment: 128)
        cells = raw.bindMemory(to: Atomic<UInt64>.self, capacity: count)
        for i in 0..<count { (cells + i).initialize(to: Atomic(0)) }
    }

    deinit { UnsafeMutableRawPointer(cells).deallocate() }

    public var unattributedRow: Int { rows - 1 }

    public var view: View { View(cells: cells) }

    /// The writer's handle, held by the one worker that owns these counters.
    public struct View: BitwiseCopyable {
        let cells: UnsafeMutablePointer<Atomic<UInt64>>

        @inline(__always)
        public func add(_ counter: TrafficCounter, row: Int, _ amount: Int = 1) {
            bump(row * WorkerCounters.columns + counter.rawValue, amount)
        }

        @inline(__always)
        public func drop(_ reason: DropReason, row: Int, _ amount: Int = 1) {
            bump(row * WorkerCounters.columns + TrafficCounter.allCases.count + reason.rawValue, amount)
        }

        @inline(__always)
        func bump(_ index: Int, _ amount: Int) {
            let cell = cells + index
            cell.pointee.store(cell.pointee.load(ordering: .relaxed) &+ UInt64(amount), ordering: .relaxed)
        }
    }

    /// A copy of every counter, read without stopping the worker.
    public func snapshot() -> CounterSnapshot {
        var values = [UInt64](repeating: 0, count: rows * Self.columns)
        for i in values.indices { values[i] = cells[i].load(ordering: .relaxed) }
        return CounterSnapshot(rows: rows, values: values)
    }
}

/// Counters as read at one moment, summable across workers.
public struct CounterSnapshot: Sendable, Equatable {
    public let rows: Int
    public private(set) var values: [UInt64]

    public init(rows: Int) {
        self.rows = rows
        values = [UInt64](repeating: 0, count: rows * WorkerCounters.columns)
    }

    init(rows: Int, values: [UInt64]) {
        self.rows = rows
        self.values = values
    }

    public subscript(row: Int, counter: TrafficCounter) -> UInt64 {
        values[row * WorkerCounters.columns + counter.rawValue]
    }

    public subscript(row: Int, drop reason: DropReason) -> UInt64 {
        values[row * WorkerCounters.columns + TrafficCounter.allCases.count + reason.rawValue]
    }

    public func dropTotal(row: Int) -> UInt64 {
        DropReason.allCases.reduce(0) { $0 + self[row, drop: $1] }
    }

    public static func + (lhs: CounterSnapshot, rhs: CounterSnapshot) -> CounterSnapshot {
        precondition(lhs.rows == rhs.rows)
        var sum = lhs
        for i in sum.values.indices { sum.values[i] &+= rhs.values[i] }
        return sum
    }
}
