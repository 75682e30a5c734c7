// The datapath's side of packet capture: how a worker hands copies of packets to the capture
// writer without slowing or stopping forwarding (the writer, filters and pcap files live in
// VXCapture).
//
//  1. one `CaptureTap` per router says whether a capture runs, which points it wants and which
//     VNI / remote VTEP it selects; the control thread changes it, workers only read it;
//  2. each worker reads the tap's state once per batch (one atomic load; nothing else happens
//     while no capture runs) and, when a capture runs, copies each selected packet — at most the
//     snap length — into a preallocated slot of its own `CaptureRing`;
//  3. a full ring refuses the copy and counts it; the packet itself is forwarded as always;
//  4. every copy carries a packet number (worker, batch, slot), shared by the inner and outer
//     copies of the same packet, so the records can be matched afterwards. With offloads, a TSO
//     super-frame read from a TAP is recorded as the segments it was cut into (each inner segment
//     shares its number with its outer packet), and a UDP GRO slot as the datagrams in it (the
//     receive side numbers `PacketBatch.datagramsPerSlot` datagrams per slot).
//
// BPF filters are not run here: they run on the writer's thread, on the copied bytes, so the
// datapath needs no libpcap and a capture's filter cost lands on the writer, not the forwarders.
import Synchronization
import VXWire

/// Where in the datapath a copy is taken.
public enum CapturePoint: UInt8, Sendable, CaseIterable {
    /// Frames read from and written to a network's TAP.
    case inner = 1
    /// VXLAN packets sent to and received from remote VTEPs.
    case outer = 2
    /// Packets the datapath declined, with the reason.
    case drop = 4

    public var name: String {
        switch self {
        case .inner: "inner"
        case .outer: "outer"
        case .drop: "drop"
        }
    }

    public init?(name: String) {
        guard let point = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = point
    }
}

/// Which way the packet was going when it was copied.
public enum CaptureDirection: UInt8, Sendable, CaseIterable {
    /// Read from a TAP (on its way into the tunnel).
    case fromTap = 0
    /// Sent (or, for a drop, refused on the way) to a remote VTEP.
    case toTunnel = 1
    /// Received from a remote VTEP.
    case fromTunnel = 2
    /// Written (or refused on the way) to a TAP.
    case toTap = 3

    public var name: String {
        switch self {
        case .fromTap: "from_tap"
        case .toTunnel: "to_tunnel"
        case .fromTunnel: "from_tunnel"
        case .toTap: "to_tap"
        }
    }
}

/// What a record's bytes start with.
public enum CaptureForm: UInt8, Sendable {
    /// An Ethernet frame.
    case frame = 0
    /// UDP header, VXLAN header, frame: an encapsulated packet as the datapath sends it.
    case udp = 1
    /// VXLAN header, frame: a UDP payload as received (the ports are in the record's header).
    case vxlan = 2
}

/// The fixed part of one copy, in front of its bytes in a ring slot.
public struct CaptureRecordHeader: BitwiseCopyable, Sendable, Equatable {
    /// The capture the copy was taken for; copies of an earlier capture are discarded.
    public var generation: UInt32
    public var point: UInt8
    public var direction: UInt8
    public var form: UInt8
    /// `DropReason.rawValue + 1`; 0 for copies that are not drops.
    public var reason: UInt8
    /// Network index; -1 when the packet could not be attributed to a network.
    public var network: Int32
    /// Worker index, the high part of the packet number.
    public var worker: UInt16
    /// The local UDP port (the VXLAN port) for outer copies.
    public var localPort: UInt16
    /// The remote VTEP (address and UDP port) for copies that have one; port 0 when unknown.
    public var remote: Endpoint
    public var hasRemote: Bool
    /// Per worker: batch base + slot index. Copies of the same packet share it.
    public var packet: UInt64
    /// Nanoseconds since the tap's `epoch` (monotonic clock).
    public var time: Int64
    /// The packet's length, and how much of it the slot holds.
    public var length: UInt32
    public var captured: UInt32

    public init(
        generation: UInt32 = 0, point: CapturePoint, direction: CaptureDirection, form: CaptureForm,
        reason: DropReason? = nil, network: Int = -1, worker: Int = 0, localPort: UInt16 = 0, remote: Endpoint? = nil,
        packet: UInt64 = 0, time: Int64 = 0, length: Int = 0, captured: Int = 0
    ) {
        self.generation = generation
        self.point = point.rawValue
        self.direction = direction.rawValue
        self.form = form.rawValue
        self.reason = reason.map { UInt8($0.rawValue + 1) } ?? 0
        self.network = Int32(network)
        self.worker = UInt16(truncatingIfNeeded: worker)
        self.localPort = localPort
        self.remote = remote ?? Endpoint(address: IPAddress(v4: 0), port: 0)
        self.hasRemote = remote != nil
        self.packet = packet
        self.time = time
        self.length = UInt32(truncatingIfNeeded: length)
        self.captured = UInt32(truncatingIfNeeded: captured)
    }

    public var capturePoint: CapturePoint { CapturePoint(rawValue: point) ?? .inner }
    public var captureDirection: CaptureDirection { CaptureDirection(rawValue: direction) ?? .fromTap }
    public var captureForm: CaptureForm { CaptureForm(rawValue: form) ?? .frame }
    public var dropReason: DropReason? { reason == 0 ? nil : DropReason(rawValue: Int(reason) - 1) }
    public var remoteEndpoint: Endpoint? { hasRemote ? remote : nil }
    /// The packet number as written in capture indexes: `worker-number`.
    public var packetID: String { "\(worker)-\(packet)" }
}

/// A single-producer/single-consumer ring of fixed-size byte slots (the producer is one worker,
/// the consumer the capture writer). Slots are allocated once; a push copies a header and at
/// most `dataCapacity` bytes into the next slot, or refuses (and counts) when the ring is full.
public final class CaptureRing: @unchecked Sendable {
    public static let headerSize = (MemoryLayout<CaptureRecordHeader>.size + 63) & ~63
    public let dataCapacity: Int
    private let indices: SPSCIndices
    private let stride: Int
    private let storage: UnsafeMutableRawPointer
    /// Copies refused because the ring was full; written by the producer only (on its own line).
    private let refusedCell: UnsafeMutablePointer<Atomic<UInt64>>

    public init(slots requested: Int, dataCapacity: Int) {
        precondition(requested > 0 && dataCapacity > 0)
        indices = SPSCIndices(capacity: requested)
        self.dataCapacity = dataCapacity
        stride = (Self.headerSize + dataCapacity + 63) & ~63
        storage = .allocate(byteCount: stride * indices.capacity, alignment: 64)
        refusedCell = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
            .bindMemory(to: Atomic<UInt64>.self, capacity: 1)
        refusedCell.initialize(to: Atomic(0))
    }

    deinit {
        storage.deallocate()
        refusedCell.deallocate()
    }

    /// Slots, `slots` rounded up to a power of two.
    public var slotCount: Int { indices.capacity }

    /// Copies refused so far (any thread).
    public var refused: UInt64 { refusedCell.pointee.load(ordering: .relaxed) }

    /// Producer side: copies `header` and the first `min(count + rest.length, dataCapacity)` bytes
    /// of `count` bytes at `bytes` followed by `rest` (setting `captured`). Returns false, copying
    /// nothing, when the ring is full.
    @inline(__always)
    @discardableResult
    public func push(
        _ header: CaptureRecordHeader, _ bytes: UnsafeRawPointer, count: Int, then rest: FramePiece = .empty
    ) -> Bool {
        guard let index = indices.reserve() else {
            refusedCell.pointee.store(refusedCell.pointee.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
            return false
        }
        let slot = storage + index * stride
        let fromHead = max(0, min(count, dataCapacity))
        let fromRest = rest.base == nil ? 0 : max(0, min(rest.length, dataCapacity - fromHead))
        var stored = header
        stored.captured = UInt32(fromHead + fromRest)
        slot.storeBytes(of: stored, as: CaptureRecordHeader.self)
        (slot + Self.headerSize).copyMemory(from: bytes, byteCount: fromHead)
        if fromRest > 0 { (slot + Self.headerSize + fromHead).copyMemory(from: rest.base!, byteCount: fromRest) }
        indices.commit()
        return true
    }

    /// Consumer side: the oldest copy, valid until `release()`; nil when the ring is empty.
    @inline(__always)
    public func peek() -> (header: CaptureRecordHeader, bytes: UnsafeRawBufferPointer)? {
        guard let index = indices.front() else { return nil }
        let slot = storage + index * stride
        let header = slot.load(as: CaptureRecordHeader.self)
        return (header, UnsafeRawBufferPointer(start: slot + Self.headerSize, count: Int(header.captured)))
    }

    /// Consumer side: frees the slot `peek` returned.
    @inline(__always)
    public func release() { indices.release() }
}

/// What a running capture selects, as the workers see it. Changed only while no capture runs.
public struct CaptureSelection: Sendable, Equatable {
    public var points: Set<CapturePoint>
    /// Only this VNI; nil = every VNI.
    public var vni: VNI?
    /// Only packets to or from this remote VTEP; nil = any.
    public var remote: IPAddress?
    /// Bytes copied per packet (bounded by the rings' slot size).
    public var snapLength: Int

    public init(points: Set<CapturePoint>, vni: VNI? = nil, remote: IPAddress? = nil, snapLength: Int) {
        self.points = points
        self.vni = vni
        self.remote = remote
        self.snapLength = snapLength
    }
}

/// The router-wide capture switch and the workers' rings. The control thread starts and stops
/// captures; workers read the state once per batch.
public final class CaptureTap: @unchecked Sendable {
    /// One per worker, in worker order.
    public let rings: [CaptureRing]
    /// VNI of each network, by slot (`Network.index`); the control thread sets a slot's VNI
    /// before it publishes a network generation that uses it (live reload).
    public let vnis: SlotVNIs
    /// Record times are nanoseconds after this instant.
    public let epoch = ContinuousClock.now
    /// `generation << 8 | point bits`; point bits 0 = no capture. Written by the control thread.
    private let state = Atomic<UInt64>(0)
    /// Written by the control thread only while the state's point bits are 0 (before the release
    /// store that starts a capture); read by workers after the acquiring load that saw them set.
    private let selection: UnsafeMutablePointer<Selected>
    // Control thread only.
    private var generation: UInt32 = 0

    struct Selected {
        var points: UInt8 = 0
        var vni: UInt32 = 0
        var anyVNI = true
        var remote = IPAddress(v4: 0)
        var anyRemote = true
        var snap = 0
    }

    /// - Parameters:
    ///   - workers: one ring per worker.
    ///   - networks: each network's VNI, in index order.
    ///   - slots: network slots to keep room for (live reload); at least `networks.count`.
    ///   - slots: slots per ring.
    ///   - slotBytes: the largest snap length a capture may ask for.
    public init(workers: Int, networks: [VNI], slots: Int = 1024, slotBytes: Int = 2048, networkSlots: Int = 0) {
        rings = (0..<workers).map { _ in CaptureRing(slots: slots, dataCapacity: slotBytes) }
        vnis = SlotVNIs(networks, slots: networkSlots)
        selection = .allocate(capacity: 1)
        selection.initialize(to: Selected())
    }

    deinit { selection.deallocate() }

    public var maxSnapLength: Int { rings.first?.dataCapacity ?? 0 }

    /// Control thread: starts a capture and returns its generation, which its copies carry.
    /// The previous capture must have been stopped.
    public func start(_ wanted: CaptureSelection) -> UInt32 {
        precondition(state.load(ordering: .relaxed) & 0xFF == 0, "a capture is already running")
        generation &+= 1
        if generation == 0 { generation = 1 }
        var bits: UInt8 = 0
        for point in wanted.points { bits |= point.rawValue }
        selection.pointee = Selected(
            points: bits, vni: wanted.vni?.rawValue ?? 0, anyVNI: wanted.vni == nil,
            remote: wanted.remote ?? IPAddress(v4: 0), anyRemote: wanted.remote == nil,
            snap: max(0, min(wanted.snapLength, maxSnapLength)))
        state.store(UInt64(generation) << 8 | UInt64(bits), ordering: .releasing)
        return generation
    }

    /// Any thread (the control thread, or the capture's writer when its count or duration is
    /// reached): no more copies are taken for capture `generation` (a worker mid-batch may still
    /// push a few, which carry its generation). A no-op when another capture runs by now.
    public func stop(generation stopped: UInt32) {
        var current = state.load(ordering: .relaxed)
        while UInt32(truncatingIfNeeded: current >> 8) == stopped, current & 0xFF != 0 {
            let (exchanged, seen) = state.compareExchange(
                expected: current, desired: UInt64(stopped) << 8, ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = seen
        }
    }

    /// Control thread: whether a capture runs.
    public var isRunning: Bool { state.load(ordering: .relaxed) & 0xFF != 0 }

    /// Copies refused by full rings, all workers (any thread).
    public var refusedTotal: UInt64 { rings.reduce(0) { $0 &+ $1.refused } }

    @inline(__always)
    func load() -> UInt64 { state.load(ordering: .acquiring) }

    @inline(__always)
    func selected() -> Selected { selection.pointee }

    /// Nanoseconds since `epoch`: the time base of record headers.
    @inline(__always)
    public func nanoseconds() -> Int64 {
        let elapsed = ContinuousClock.now - epoch
        let (seconds, attoseconds) = elapsed.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// One worker's producer handle on the tap. Owned by that worker (and its forwarder).
public final class WorkerCapture {
    unowned(unsafe) let tap: CaptureTap
    unowned(unsafe) let ring: CaptureRing
    let worker: Int
    let localPort: UInt16
    /// The capture seen at the start of the current batch; `points == 0` when none runs.
    private var current = CaptureTap.Selected()
    private var generation: UInt32 = 0
    private var time: Int64 = 0
    /// Packet numbers of the current batch start here (plus the slot index).
    private var batchBase: UInt64 = 0
    private var nextBase: UInt64 = 0
    /// The base every record is numbered from: `batchBase`, or, from `beginSegments` to
    /// `endSegments`, the segments' own — whatever records them (sent, refused, dropped).
    private var numberBase: UInt64 = 0

    public init(tap: CaptureTap, worker: Int, localPort: UInt16) {
        self.tap = tap
        ring = tap.rings[worker]
        self.worker = worker
        self.localPort = localPort
    }

    /// Once per batch: the only work done while no capture runs.
    @inline(__always)
    public func beginBatch(capacity: Int) {
        let state = tap.load()
        guard state & 0xFF != 0 else {
            current.points = 0
            return
        }
        current = tap.selected()
        generation = UInt32(truncatingIfNeeded: state >> 8)
        time = tap.nanoseconds()
        batchBase = nextBase
        numberBase = batchBase
        nextBase &+= UInt64(capacity)
    }

    /// Before the segments of a super-frame are encapsulated (after what pointed into the
    /// previous ones was sent): numbers for `count` of them, used by every record until
    /// `endSegments`.
    @inline(__always)
    public func beginSegments(capacity count: Int) {
        guard isActive else { return }
        numberBase = nextBase
        nextBase &+= UInt64(count)
    }

    /// After a super-frame's last segments were sent: records number the batch's frames again.
    @inline(__always)
    public func endSegments() {
        numberBase = batchBase
    }

    @inline(__always)
    public var isActive: Bool { current.points != 0 }

    @inline(__always)
    func wants(_ point: CapturePoint) -> Bool { current.points & point.rawValue != 0 }

    @inline(__always)
    func selects(network: Int, vxlan: UnsafeRawPointer?, length: Int, remote: IPAddress?) -> Bool {
        if !current.anyRemote {
            guard let remote, remote == current.remote else { return false }
        }
        if !current.anyVNI {
            if network >= 0 && network < tap.vnis.count { return tap.vnis[network].rawValue == current.vni }
            // Unattributed: the VNI the packet claims, when it has a header at all.
            guard let vxlan, length >= VXLANHeader.size else { return false }
            return UInt32(bigEndian: vxlan.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) >> 8 == current.vni
        }
        return true
    }

    @inline(__always)
    func record(
        _ point: CapturePoint, _ direction: CaptureDirection, _ form: CaptureForm, reason: DropReason? = nil,
        network: Int, remote: Endpoint?, slot: Int, bytes: UnsafeRawPointer, length: Int, tail: FramePiece = .empty
    ) {
        let header = CaptureRecordHeader(
            generation: generation, point: point, direction: direction, form: form, reason: reason, network: network,
            worker: worker, localPort: localPort, remote: remote, packet: numberBase &+ UInt64(slot), time: time,
            length: length)
        let head = min(length - tail.length, current.snap)
        ring.push(header, bytes, count: head, then: FramePiece(base: tail.base, length: min(tail.length, current.snap - head)))
    }

    /// After a send: the inner frames (once per frame), the outer packets as sent, and the ones
    /// the kernel refused as drops.
    @inline(__always)
    public func sent(_ out: borrowing PacketList, from batch: borrowing PacketBatch) {
        var lastInnerSlot = -1
        for k in 0..<out.count {
            let packet = out[k]
            let slot = batch.slot(of: packet.bytes)
            let status = out.statuses[k]
            if status != .sent {
                dropped(
                    status == .tooBig ? .oversize : .sendError, .toTunnel, .udp, network: packet.network,
                    remote: packet.destination, slot: slot, bytes: packet.bytes, length: packet.length,
                    tail: packet.tail)
                continue
            }
            guard current.points & (CapturePoint.inner.rawValue | CapturePoint.outer.rawValue) != 0,
                selects(network: packet.network, vxlan: nil, length: 0, remote: packet.destination.address)
            else { continue }
            let encapsulation = UDPHeader.size + VXLANHeader.size
            if wants(.inner), slot != lastInnerSlot {
                lastInnerSlot = slot
                record(
                    .inner, .fromTap, .frame, network: packet.network, remote: packet.destination, slot: slot,
                    bytes: packet.bytes + encapsulation, length: packet.length - encapsulation, tail: packet.tail)
            }
            if wants(.outer) {
                record(
                    .outer, .toTunnel, .udp, network: packet.network, remote: packet.destination, slot: slot,
                    bytes: packet.bytes, length: packet.length, tail: packet.tail)
            }
        }
    }

    /// After a receive, before decapsulation: every datagram as received (a slot the kernel
    /// coalesced, datagram by datagram).
    @inline(__always)
    public func received(_ batch: borrowing PacketBatch) {
        guard wants(.outer) else { return }
        for i in 0..<batch.count {
            for datagram in batch.datagrams(inSlot: i) {
                let payload = batch.data(i) + datagram.offset
                if selects(network: -1, vxlan: payload, length: datagram.stored, remote: batch.sources[i].address) {
                    record(
                        .outer, .fromTunnel, .vxlan, network: -1, remote: batch.sources[i], slot: datagram.number,
                        bytes: payload, length: datagram.stored)
                }
            }
        }
    }

    /// A decapsulated frame written to (or refused by) its TAP.
    @inline(__always)
    public func delivered(_ packet: PacketRef, written: Bool, from batch: borrowing PacketBatch) {
        if written { deliveredInner(packet, from: batch) } else { refused(packet, from: batch) }
    }

    /// A decapsulated frame on its way to its TAP (with offloads: taken before the coalescer
    /// merges it with its neighbours).
    @inline(__always)
    public func deliveredInner(_ packet: PacketRef, from batch: borrowing PacketBatch) {
        guard wants(.inner), selects(network: packet.network, vxlan: nil, length: 0, remote: packet.destination.address)
        else { return }
        record(
            .inner, .toTap, .frame, network: packet.network, remote: packet.destination,
            slot: batch.datagram(of: packet.bytes), bytes: packet.bytes, length: packet.length)
    }

    /// A decapsulated frame its TAP refused.
    @inline(__always)
    public func refused(_ packet: PacketRef, from batch: borrowing PacketBatch) {
        dropped(
            .tapWriteError, .toTap, .frame, network: packet.network, remote: packet.destination,
            slot: batch.datagram(of: packet.bytes), bytes: packet.bytes, length: packet.length)
    }

    /// A packet the datapath declined. `form` says what `bytes` starts with.
    @inline(__always)
    public func dropped(
        _ reason: DropReason, _ direction: CaptureDirection, _ form: CaptureForm, network: Int, remote: Endpoint?,
        slot: Int, bytes: UnsafeRawPointer, length: Int, tail: FramePiece = .empty
    ) {
        guard wants(.drop) else { return }
        let vxlan: UnsafeRawPointer? =
            switch form {
            case .vxlan: bytes
            case .udp: bytes + UDPHeader.size
            case .frame: nil
            }
        let headerLength = form == .udp ? length - UDPHeader.size : length
        guard selects(network: network, vxlan: vxlan, length: headerLength, remote: remote?.address) else { return }
        record(
            .drop, direction, form, reason: reason, network: network, remote: remote, slot: slot, bytes: bytes,
            length: max(0, length), tail: tail)
    }
}

/// VNI per network slot, for capture filters and records. Written by the control thread only for
/// a slot no published generation uses yet; read by workers and the capture writer.
public final class SlotVNIs: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<VNI>
    public let count: Int

    init(_ vnis: [VNI], slots: Int) {
        count = max(slots, vnis.count)
        storage = .allocate(capacity: max(count, 1))
        storage.initialize(repeating: VNI(0)!, count: max(count, 1))
        for (i, vni) in vnis.enumerated() { storage[i] = vni }
    }

    deinit { storage.deallocate() }

    public subscript(slot: Int) -> VNI { storage[slot] }

    /// Control thread: slot `slot` holds `vni` in the next generation.
    public func set(_ vni: VNI, slot: Int) { storage[slot] = vni }
}
