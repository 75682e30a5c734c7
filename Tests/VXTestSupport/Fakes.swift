// In-memory stand-ins for a TAP queue and the UDP underlay, at the datapath's protocol boundary
// (FrameDevice, Underlay), as wireguard-go's tuntest and bindtest fake TUN and bind. Two kinds:
//  - recording fakes (FakeTap, FakeLink): serve queued bytes, keep everything written or sent,
//    for tests that look at what came out;
//  - replay fakes (ReplayDevice, ReplayUnderlay): serve the same bytes to every read, keep only
//    counts, allocate nothing after start: for the allocation tests and vxbench.
import VXDatapath
import VXWire

/// A TAP queue: serves queued frames to `read`, records what the worker writes. With
/// `virtioHeaders`, each pending frame starts with its 12-byte virtio header (put in the headroom
/// on read), and each written frame is recorded with its header.
public final class FakeTap: FrameDevice {
    public var pending: [[UInt8]] = []
    public private(set) var written: [[UInt8]] = []
    /// Answer to `write`; a refused frame is not recorded.
    public var acceptsWrites = true
    public var virtioHeaders = false

    public init(virtioHeaders: Bool = false) { self.virtioHeaders = virtioHeaders }

    public func read(into batch: inout PacketBatch) -> Int {
        var n = 0
        while n < batch.capacity, !pending.isEmpty {
            var frame = pending.removeFirst()
            if virtioHeaders {
                let header = Array(frame.prefix(VirtioNetHeader.size))
                frame.removeFirst(VirtioNetHeader.size)
                header.withUnsafeBytes {
                    (batch.data(n) - VirtioNetHeader.size).copyMemory(from: $0.baseAddress!, byteCount: VirtioNetHeader.size)
                }
            }
            batch.lengths[n] = copy(frame, into: batch, slot: n)
            n += 1
        }
        batch.count = n
        return n
    }

    public func write(_ frame: UnsafeRawPointer, length: Int) -> Bool {
        guard acceptsWrites else { return false }
        written.append(Array(UnsafeRawBufferPointer(start: frame, count: length)))
        return true
    }

    public func write(pieces: UnsafeBufferPointer<FramePiece>) -> Bool {
        guard acceptsWrites else { return false }
        written.append(pieces.flatMap { Array(UnsafeRawBufferPointer(start: $0.base, count: $0.length)) })
        return true
    }
}

/// The underlay: serves queued datagrams with their senders, records every packet sent.
public final class FakeLink: Underlay {
    public struct Sent: Equatable {
        public var bytes: [UInt8]
        public var destination: Endpoint
        public var network: Int
    }

    public var pending: [(payload: [UInt8], source: Endpoint)] = []
    /// Reported as every received slot's GRO segment size (0: single datagrams).
    public var segmentSize = 0
    public private(set) var sent: [Sent] = []
    /// Number of `send` calls.
    public private(set) var sendCalls = 0
    /// What the "kernel" says about each packet.
    public var status: (Sent) -> SendStatus = { _ in .sent }

    public init() {}

    public func receive(into batch: inout PacketBatch) -> Int {
        var n = 0
        while n < batch.capacity, !pending.isEmpty {
            let (payload, source) = pending.removeFirst()
            batch.lengths[n] = copy(payload, into: batch, slot: n)
            batch.sources[n] = source
            batch.segmentSizes[n] = segmentSize
            n += 1
        }
        batch.count = n
        return n
    }

    public func send(_ packets: inout PacketList) {
        sendCalls += 1
        for k in 0..<packets.count {
            let packet = packets[k]
            var bytes = Array(UnsafeRawBufferPointer(start: packet.bytes, count: packet.headLength))
            if let tail = packet.tail.base { bytes += UnsafeRawBufferPointer(start: tail, count: packet.tail.length) }
            let record = Sent(bytes: bytes, destination: packet.destination, network: packet.network)
            let outcome = status(record)
            packets.statuses[k] = outcome
            if outcome == .sent { sent.append(record) }
        }
    }
}

/// Copies `bytes` into slot `slot` of `batch` and returns the length to report: like the kernel,
/// more than fits reads as one byte over.
func copy(_ bytes: [UInt8], into batch: borrowing PacketBatch, slot: Int) -> Int {
    let copied = min(bytes.count, batch.dataCapacity)
    let data = batch.data(slot)
    bytes.withUnsafeBytes { if copied > 0 { data.copyMemory(from: $0.baseAddress!, byteCount: copied) } }
    return bytes.count > batch.dataCapacity ? batch.dataCapacity + 1 : bytes.count
}

/// A TAP that serves the same frame (with its virtio header, when given) `perRead` times to every
/// read and accepts every write, copying into the worker's own batch: no allocation of its own.
/// With `copyOnce`, the bytes are copied on the first read only (the worker reuses its batch), so
/// later reads cost no copy: what vxbench measures the worker loop with.
public final class ReplayDevice: FrameDevice {
    let frames: UnsafeMutableRawBufferPointer
    let frameLength: Int
    let header: VirtioNetHeader?
    let perRead: Int
    let copyOnce: Bool
    var primed = false
    public private(set) var writes = 0

    public init(frame: [UInt8], header: VirtioNetHeader? = nil, perRead: Int, copyOnce: Bool = false) {
        frames = .allocate(byteCount: max(frame.count, 1), alignment: 8)
        frames.copyBytes(from: frame)
        frameLength = frame.count
        self.header = header
        self.perRead = perRead
        self.copyOnce = copyOnce
    }

    deinit { frames.deallocate() }

    public func read(into batch: inout PacketBatch) -> Int {
        let n = min(perRead, batch.capacity)
        let copies = !(copyOnce && primed)
        primed = true
        for i in 0..<n {
            if copies {
                batch.data(i).copyMemory(from: frames.baseAddress!, byteCount: frameLength)
                if let header { header.encode(to: batch.data(i) - VirtioNetHeader.size) }
            }
            batch.lengths[i] = frameLength
        }
        batch.count = n
        return n
    }

    public func write(_ frame: UnsafeRawPointer, length: Int) -> Bool {
        writes &+= 1
        return true
    }

    public func write(pieces: UnsafeBufferPointer<FramePiece>) -> Bool {
        writes &+= 1
        return true
    }
}

/// An underlay that serves the same datagrams to every receive (optionally as one GRO slot; none
/// at all when given none) and counts what is sent.
public final class ReplayUnderlay: Underlay {
    let datagrams: UnsafeMutableRawBufferPointer
    let count: Int
    let size: Int
    let gro: Bool
    let source: Endpoint
    public private(set) var sent = 0

    /// `datagrams` all of one size.
    public init(datagrams list: [[UInt8]] = [], gro: Bool = false, source: Endpoint) {
        size = list.first?.count ?? 0
        count = list.count
        datagrams = .allocate(byteCount: max(size * count, 1), alignment: 8)
        for (k, d) in list.enumerated() {
            precondition(d.count == size, "replayed datagrams are all of one size")
            UnsafeMutableRawBufferPointer(rebasing: datagrams[(k * size)..<((k + 1) * size)]).copyBytes(from: d)
        }
        self.gro = gro
        self.source = source
    }

    deinit { datagrams.deallocate() }

    public func receive(into batch: inout PacketBatch) -> Int {
        guard count > 0 else {
            batch.count = 0
            return 0
        }
        if gro {
            batch.data(0).copyMemory(from: datagrams.baseAddress!, byteCount: size * count)
            batch.lengths[0] = size * count
            batch.segmentSizes[0] = size
            batch.sources[0] = source
            batch.count = 1
            return 1
        }
        let n = min(count, batch.capacity)
        for i in 0..<n {
            batch.data(i).copyMemory(from: datagrams.baseAddress! + i * size, byteCount: size)
            batch.lengths[i] = size
            batch.segmentSizes[i] = 0
            batch.sources[i] = source
        }
        batch.count = n
        return n
    }

    public func send(_ packets: inout PacketList) { sent &+= packets.count }
}
