import VXWire

/// A worker's receive buffers: `capacity` slots allocated once, each with `headroom` bytes in front
/// of the data so the outer UDP + VXLAN headers are written in place, never copied (wireguard-go
/// reads TUN packets at an offset for the same reason).
///
/// Owned by one worker thread. Noncopyable: the memory lives exactly as long as the batch.
public struct PacketBatch: ~Copyable {
    public let capacity: Int
    public let headroom: Int
    /// Bytes available to a packet after the headroom.
    public let dataCapacity: Int
    public let stride: Int
    /// Slots filled by the last read.
    public var count = 0

    let storage: UnsafeMutableRawPointer
    /// Per slot: bytes of data. A receive that did not fit reports `dataCapacity + 1`.
    public let lengths: UnsafeMutablePointer<Int>
    /// Per slot: where an underlay packet came from (unused for TAP reads).
    public let sources: UnsafeMutablePointer<Endpoint>
    /// Per slot: for a datagram the kernel coalesced (UDP GRO), the size of each datagram in it
    /// (the last may be shorter); 0 for a single datagram. Unused for TAP reads.
    public let segmentSizes: UnsafeMutablePointer<Int>
    /// Per slot: the frame's bytes that lie elsewhere, after the slot's own — a TSO segment's
    /// payload left in its super-frame (zero-copy segmentation) — or an empty piece. `lengths`
    /// counts both; the slot holds `lengths[i] - tails[i].length` bytes, every header among them.
    public let tails: UnsafeMutablePointer<FramePiece>

    public init(capacity: Int, dataCapacity: Int, headroom: Int = 64) {
        precondition(capacity > 0 && dataCapacity > 0 && headroom >= UDPHeader.size + VXLANHeader.size)
        self.capacity = capacity
        self.headroom = headroom
        self.dataCapacity = dataCapacity
        // Cache-line aligned slots keep two packets off one line.
        stride = (headroom + dataCapacity + 63) & ~63
        storage = UnsafeMutableRawPointer.allocate(byteCount: stride * capacity, alignment: 64)
        lengths = .allocate(capacity: capacity)
        lengths.initialize(repeating: 0, count: capacity)
        sources = .allocate(capacity: capacity)
        sources.initialize(repeating: Endpoint(address: IPAddress(v4: 0), port: 0), count: capacity)
        segmentSizes = .allocate(capacity: capacity)
        segmentSizes.initialize(repeating: 0, count: capacity)
        tails = .allocate(capacity: capacity)
        tails.initialize(repeating: FramePiece(base: nil, length: 0), count: capacity)
    }

    deinit {
        storage.deallocate()
        lengths.deallocate()
        sources.deallocate()
        segmentSizes.deallocate()
        tails.deallocate()
    }

    /// The start of slot `index`'s data (after its headroom).
    @inline(__always)
    public func data(_ index: Int) -> UnsafeMutableRawPointer {
        storage + index * stride + headroom
    }
}

extension PacketBatch {
    /// Receive-side packet numbers leave room for this many datagrams per slot: the most UDP GRO
    /// coalesces into one (the kernel's UDP_GRO_CNT_MAX).
    public static let datagramsPerSlot = 64

    /// The datagrams in receive slot `slot` (see `SlotDatagrams`).
    @inline(__always)
    public func datagrams(inSlot slot: Int) -> SlotDatagrams {
        let length = lengths[slot]
        let segment = segmentSizes[slot]
        let superFrame =
            segment > 0 && length <= dataCapacity
            && TunnelSuperFrame.isOne(payload: data(slot), length: length, segmentSize: segment)
        return SlotDatagrams(
            slot: slot, length: length, segmentSize: segment, capacity: dataCapacity, superFrame: superFrame)
    }

    /// The receive-side number of the datagram holding `pointer`: its slot's, plus its place
    /// among the datagrams UDP GRO coalesced into that slot.
    @inline(__always)
    public func datagram(of pointer: UnsafeRawPointer) -> Int {
        let slot = slot(of: pointer)
        return datagrams(inSlot: slot).number(atOffset: UnsafeRawPointer(data(slot)).distance(to: pointer))
    }

    /// The slot holding `pointer` (anywhere in its headroom or data).
    @inline(__always)
    public func slot(of pointer: UnsafeRawPointer) -> Int {
        (UnsafeRawPointer(storage).distance(to: pointer)) / stride
    }
}

/// The datagrams one receive slot holds: one, or — for a slot the kernel coalesced (UDP GRO) —
/// one every `segmentSizes[slot]` bytes, the last possibly shorter. The one walk the forwarder
/// and capture share, so both see the same datagrams under the same numbers. A slot that did not
/// fit its buffer is one datagram, stored in part, whatever its segment size says: its bytes end
/// where the buffer did, not where a datagram does. So is a slot holding one VXLAN datagram with
/// a whole inner super-packet (`TunnelSuperFrame`), whose segment size is the inner one.
public struct SlotDatagrams: Sequence, IteratorProtocol {
    public struct Datagram {
        /// Where it starts in the slot's data.
        public var offset: Int
        /// Its length as received: more than `stored` when the slot did not fit.
        public var length: Int
        /// Its bytes in the slot.
        public var stored: Int
        /// Its receive-side packet number: the slot's base plus its place in the slot.
        public var number: Int
        /// For a datagram carrying a whole inner super-packet: the inner segment size; else 0.
        public var superFrameSegment: Int

        @inline(__always)
        public var fits: Bool { length == stored }
    }

    let reported: Int
    let stored: Int
    /// Bytes from one datagram to the next (the whole slot when it holds one).
    let step: Int
    let base: Int
    let superFrameSegment: Int
    var offset = 0
    var done = false

    @inline(__always)
    public init(slot: Int, length: Int, segmentSize: Int, capacity: Int, superFrame: Bool = false) {
        reported = length
        stored = Swift.max(0, Swift.min(length, capacity))
        let coalesced = !superFrame && length <= capacity && segmentSize > 0 && segmentSize < length
        step = coalesced ? segmentSize : Swift.max(stored, 1)
        base = slot * PacketBatch.datagramsPerSlot
        superFrameSegment = superFrame ? segmentSize : 0
    }

    /// How many datagrams the walk yields (at least one, if only an empty one).
    @inline(__always)
    public var count: Int { Swift.max(1, (stored + step - 1) / step) }

    /// The number of the datagram holding byte `offset` of the slot (the slot's last number for
    /// anything beyond it).
    @inline(__always)
    public func number(atOffset offset: Int) -> Int {
        base + Swift.min(Swift.max(0, offset) / step, PacketBatch.datagramsPerSlot - 1)
    }

    @inline(__always)
    public mutating func next() -> Datagram? {
        guard !done else { return nil }
        let piece = Swift.min(step, stored - offset)
        let datagram = Datagram(
            offset: offset, length: reported > stored ? reported : piece, stored: piece, number: number(atOffset: offset),
            superFrameSegment: superFrameSegment)
        offset += step
        done = offset >= stored
        return datagram
    }
}

/// Where one outgoing packet goes: to a remote VTEP (encap) or to a network's TAP (decap).
public struct PacketRef: BitwiseCopyable {
    /// The packet's first `headLength` bytes (all of it when `tail` is empty).
    public var bytes: UnsafeMutableRawPointer
    /// The whole packet's length, `tail` included.
    public var length: Int
    /// Index of the network the packet belongs to, for counting.
    public var network: Int
    /// The remote VTEP, for packets bound for the underlay.
    public var destination: Endpoint
    /// The remote VTEP's table index when known (sent to it, or received from it), for per-remote
    /// counting.
    public var remote: RemoteIndex? = nil
    /// The rest of the packet, after `bytes`, when it lies elsewhere (a TSO segment's payload in
    /// its super-frame); else empty. Senders gather both pieces.
    public var tail = FramePiece(base: nil, length: 0)
    /// For a frame from the tunnel: its TCP/UDP checksum was left unfinished by the sender and
    /// still has to be completed (by the kernel, as NEEDS_CSUM, or in software before the write).
    public var partialChecksum = PartialChecksum.none
    /// For a frame from the tunnel that is a whole GSO super-packet: the virtio header that
    /// writes it to an offloading TAP as one (gso type none otherwise).
    public var superFrame = VirtioNetHeader()

    /// Bytes at `bytes`.
    @inline(__always)
    public var headLength: Int { length - tail.length }
}

/// The outcome of sending one packet, filled in by the underlay.
public enum SendStatus: UInt8, BitwiseCopyable {
    case sent
    /// The kernel said the packet does not fit the path (EMSGSIZE).
    case tooBig
    case failed
}

/// A list of packets ready to leave, built by the forwarder and consumed by one device or socket
/// call. Points into a `PacketBatch`; owned by one worker.
public struct PacketList: ~Copyable {
    public let capacity: Int
    public private(set) var count = 0
    public let packets: UnsafeMutablePointer<PacketRef>
    public let statuses: UnsafeMutablePointer<SendStatus>

    public init(capacity: Int) {
        self.capacity = capacity
        packets = .allocate(capacity: capacity)
        statuses = .allocate(capacity: capacity)
        statuses.initialize(repeating: .sent, count: capacity)
    }

    deinit {
        packets.deallocate()
        statuses.deallocate()
    }

    public var remaining: Int { capacity - count }

    @inline(__always)
    public mutating func append(_ packet: PacketRef) {
        precondition(count < capacity)
        (packets + count).initialize(to: packet)
        statuses[count] = .sent
        count += 1
    }

    @inline(__always)
    public mutating func removeAll() { count = 0 }

    public subscript(index: Int) -> PacketRef {
        @inline(__always) get { packets[index] }
    }
}
