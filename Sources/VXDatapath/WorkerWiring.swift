import VXWire

/// One worker's share of the datapath, wired the one way the router, the unit-test harness, the
/// allocation tests and vxbench all wire it:
///
///  1. the tables every worker reads (`networks`, `remotes`) come from the caller, shared;
///  2. the worker's own counters, per-remote counters and learn ring are made here, one set per
///     worker (owned by that worker, read by the control thread);
///  3. the forwarder over them, with the worker's capture hook when the caller keeps a capture tap;
///  4. the worker over the caller's devices (one per network) and underlay link, by `worker(...)`.
///
/// Steps 1–3 come before the link because a real link is sized by `forwarder.maxFanOut`.
/// The router passes `slots` (rows for networks a live reload may add) and its per-worker table
/// of refused strangers; tests and vxbench leave both out.
public struct WorkerWiring {
    /// The learn ring's size when the caller does not choose (the router's).
    public static let defaultRingCapacity = 4096

    public let counters: WorkerCounters
    public let remoteCounters: RemoteCounters
    public let learnRing: SPSCRing<LearnEvent>
    public let forwarder: Forwarder

    public init(
        networks: [Network], remotes: RemoteTable, port: UInt16, sourcePorts: ClosedRange<UInt16>,
        ringCapacity: Int = defaultRingCapacity, capture: WorkerCapture? = nil, slots: Int = 0,
        refusedSources: RefusedSources? = nil
    ) {
        counters = WorkerCounters(networks: max(slots, (networks.map(\.index).max() ?? -1) + 1, 1))
        remoteCounters = RemoteCounters(capacity: remotes.capacity)
        learnRing = SPSCRing(capacity: ringCapacity)
        forwarder = Forwarder(
            networks: networks, remotes: remotes, counters: counters, learnRing: learnRing, port: port,
            sourcePorts: SourcePortRange(sourcePorts), remoteCounters: remoteCounters, capture: capture, slots: slots,
            refusedSources: refusedSources)
    }

    /// The worker over `devices` (one per network slot, nil for a free slot) and `link`.
    /// `maxFrame`: the largest inner frame any of `networks` carries (`Network.maxFrame`).
    /// `outerChecksumVouches`: `OuterChecksum.vouchesForInner` for `link`'s receive path.
    public func worker<Device: FrameDevice, Link: Underlay>(
        devices: [Device?], link: Link, batchSize: Int = 64, maxFrame: Int, offloads: Bool = false,
        outerChecksumVouches: Bool = false
    ) -> Worker<Device, Link> {
        Worker(
            devices: devices, link: link, forwarder: forwarder, batchSize: batchSize, maxFrame: maxFrame,
            offloads: offloads, outerChecksumVouches: outerChecksumVouches)
    }

    /// The largest frame any of `networks` carries: what `worker(maxFrame:)` wants.
    public static func maxFrame(of networks: [Network]) -> Int { networks.map(\.maxFrame).max() ?? 1514 }
}
