// Live reload's datapath side: the set of networks the workers serve, published one immutable
// generation at a time (read-copy-update, as the Linux kernel's RCU and DPDK's rte_rcu_qsbr do it).
//
// Until live reload the workers' devices and the forwarder's per-network state were fixed at start.
// Now:
//  1. a network keeps one slot (its `index`) for life: counters, learn events and capture copies
//     are keyed by slot, so what did not change keeps its counters and tables across a reload;
//  2. the control thread builds a new `NetworkGeneration` (the live networks, and per worker its TAP
//     queue per slot; queues of new networks are opened by the control thread) and `publish`es it
//     with one atomic store;
//  3. each worker looks for a newer generation between batches (never mid-batch), copies what it
//     needs (devices, the networks' `NetworkPath`s) and acknowledges the epoch;
//  4. once every worker acknowledged, `collect` hands the older generations back to the control
//     thread, which only then closes removed TAPs and drops the old generation (and with it any
//     `Network` no longer served: its tables, its allow list).
// No lock: one atomic pointer and one atomic epoch per worker. The per-packet path never reads
// this type; a worker reads it once per wake-up (an acquiring load).
import Synchronization

/// One generation of the network set. Immutable once published.
public final class NetworkGeneration<Device>: @unchecked Sendable {
    public let epoch: UInt64
    /// The networks served, in config order; each at its slot (`Network.index`).
    public let networks: [Network]
    /// Per worker, its device per slot (nil: no network in that slot).
    public let devices: [[Device?]]

    public init(epoch: UInt64, networks: [Network], devices: [[Device?]]) {
        self.epoch = epoch
        self.networks = networks
        self.devices = devices
    }
}

/// Where the control thread publishes generations and the workers acknowledge them.
public final class NetworkExchange<Device>: @unchecked Sendable {
    /// The latest generation, unretained: `held` keeps it alive (written only by the control thread).
    private let latest = Atomic<Unmanaged<NetworkGeneration<Device>>?>(nil)
    /// Per worker: the epoch of the generation it runs now.
    private let acknowledged: [Epoch]
    /// The published generations still (possibly) in use, oldest first. Control thread only.
    private var held: [NetworkGeneration<Device>] = []

    final class Epoch: Sendable {
        let value = Atomic<UInt64>(0)
    }

    /// - Parameter first: the generation every worker starts with (epoch acknowledged already).
    public init(workers: Int, first: NetworkGeneration<Device>) {
        acknowledged = (0..<workers).map { _ in Epoch() }
        for epoch in acknowledged { epoch.value.store(first.epoch, ordering: .relaxed) }
        held = [first]
        latest.store(Unmanaged.passUnretained(first), ordering: .releasing)
    }

    /// Control thread: the generation published last.
    public var current: NetworkGeneration<Device> { held[held.count - 1] }

    /// Control thread: makes `generation` the one workers pick up next. Its epoch must be higher.
    public func publish(_ generation: NetworkGeneration<Device>) {
        precondition(generation.epoch > current.epoch, "generations are published in epoch order")
        held.append(generation)
        latest.store(Unmanaged.passUnretained(generation), ordering: .releasing)
    }

    /// Worker `worker`, between batches: a generation newer than `epoch`, or nil. Safe because the
    /// control thread drops a generation only after every worker acknowledged a newer one.
    @inline(__always)
    public func newer(than epoch: UInt64) -> NetworkGeneration<Device>? {
        guard let unmanaged = latest.load(ordering: .acquiring) else { return nil }
        return unmanaged._withUnsafeGuaranteedRef { $0.epoch } == epoch ? nil : unmanaged.takeUnretainedValue()
    }

    /// Worker `worker`: it runs generation `epoch` now and holds nothing of older ones.
    public func acknowledge(worker: Int, epoch: UInt64) {
        acknowledged[worker].value.store(epoch, ordering: .releasing)
    }

    /// Control thread: whether every worker runs the latest generation.
    public var settled: Bool {
        let latestEpoch = current.epoch
        return acknowledged.allSatisfy { $0.value.load(ordering: .acquiring) == latestEpoch }
    }

    /// Control thread: the oldest epoch any worker still runs.
    public var oldestAcknowledged: UInt64 {
        acknowledged.map { $0.value.load(ordering: .acquiring) }.min() ?? current.epoch
    }

    /// Control thread: hands back (and forgets) the generations no worker can still be reading.
    public func collect() -> [NetworkGeneration<Device>] {
        let oldest = oldestAcknowledged
        let done = held.prefix { $0.epoch < oldest }
        held.removeFirst(done.count)
        return Array(done)
    }
}
