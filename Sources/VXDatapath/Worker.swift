import VXWire

/// A TAP queue as a worker sees it. Batch-shaped from the start (wireguard-go's `tun.Device`).
public protocol FrameDevice {
    /// Reads waiting frames into `batch` (each at `batch.data(i)`, behind the headroom), sets
    /// `batch.count`, and returns it; 0 when nothing is waiting. A device with virtio headers puts
    /// each frame's header in the `VirtioNetHeader.size` bytes just before `batch.data(i)` (in the
    /// headroom) and reads frames of up to `batch.dataCapacity` bytes.
    mutating func read(into batch: inout PacketBatch) -> Int
    /// Writes one frame; false when the kernel refused it. Only for devices without virtio headers.
    mutating func write(_ frame: UnsafeRawPointer, length: Int) -> Bool
    /// Writes one frame gathered from `pieces`, the first being its virtio header; false when the
    /// kernel refused it. Only for devices with virtio headers.
    mutating func write(pieces: UnsafeBufferPointer<FramePiece>) -> Bool
}

/// The UDP side as a worker sees it.
public protocol Underlay {
    /// Receives waiting datagrams (the UDP payload at `batch.data(i)`, the sender in
    /// `batch.sources[i]`, and, for several datagrams the kernel coalesced into one slot, their
    /// size in `batch.segmentSizes[i]`, else 0); a datagram larger than `batch.dataCapacity` is
    /// reported with length `dataCapacity + 1`. Sets and returns `batch.count`; 0 when nothing
    /// is waiting.
    mutating func receive(into batch: inout PacketBatch) -> Int
    /// Sends every packet of `packets` (UDP header + payload, to its destination; its bytes, then
    /// its tail when it has one) and sets each packet's status. Consecutive packets to one
    /// destination may leave as one GSO send.
    mutating func send(_ packets: inout PacketList)
}

/// One worker: the devices and socket it owns outright, its buffers, its forwarder. Driven by a
/// platform loop (which waits for readiness) or directly by tests with fakes. Owned by one thread.
///
/// With offloads (the devices carry virtio headers):
///  1. a TAP read returns frames of up to 64 KB; a GSO super-frame is cut into MSS-sized frames
///     in `segments`, a frame with a partial checksum gets it completed in place, and everything
///     is encapsulated as usual (the underlay turns runs of equal-sized packets into UDP GSO sends);
///  2. a receive may return coalesced datagrams (UDP GRO), taken apart by the forwarder; the
///     decapsulated frames go through the TCP coalescer and reach the TAP as super-frames, and a
///     frame whose inner checksum its sender left unfinished as NEEDS_CSUM (without offloads its
///     checksum is completed before the write).
public final class Worker<Device: FrameDevice, Link: Underlay> {
    /// By network slot; nil where no network is (a slot freed by a reload). Replaced only
    /// between batches, by `adopt` (NetworkGeneration.swift).
    public private(set) var devices: [Device?]
    public private(set) var link: Link
    public let forwarder: Forwarder
    /// The epoch of the network generation this worker serves (0: the one it was made with).
    public private(set) var epoch: UInt64 = 0
    /// Frames carry virtio headers both ways.
    public let offloads: Bool
    /// Every datagram the underlay delivers had its outer UDP checksum verified by the kernel
    /// (`OuterChecksum.vouchesForInner`, decided once for the link): the coalescer merges its
    /// TCP segments without summing them again.
    public let outerChecksumVouches: Bool
    private var deviceBatch: PacketBatch
    private var linkBatch: PacketBatch
    /// With offloads: the segments of one super-frame, each as its headers (encapsulated in place)
    /// with its payload left in the super-frame as the slot's tail.
    private var segments: PacketBatch
    /// The largest inner frame any network carries.
    private let maxFrame: Int
    private var outbound: PacketList
    /// `outbound` holds segments cut into `segments` (not frames of `deviceBatch`): for capture.
    /// Set while a super-frame's segments are encapsulated; everything is flushed before it changes.
    private var outboundHoldsSegments = false
    /// The monotonic second of the device batch in hand (for the station sightings it reports).
    private var deviceSecond: UInt32 = 0
    private var deliveries: PacketList
    private var coalescer = TCPCoalescer()
    /// One piece: a whole super-packet from the tunnel with its virtio header in front.
    private let superFramePiece = UnsafeMutablePointer<FramePiece>.allocate(capacity: 1)
    /// Without offloads: one segment of such a super-packet at a time.
    private let segmentScratch: UnsafeMutableRawPointer

    /// The largest frame an offloading TAP hands over: a 64 KB IP packet behind Ethernet and its tags.
    public static var maxSuperFrame: Int { 65535 + EthernetFrame.headerSize + 4 * FrameLayout.maxTags }
    /// The largest UDP payload a receive may return: a slot of datagrams UDP GRO coalesced, or one
    /// VXLAN datagram with a whole inner super-packet a same-host peer sent uncut (`TunnelSuperFrame`).
    public static var maxDatagram: Int { maxSuperFrame + VXLANHeader.size }
    /// The most header bytes a segment can carry: Ethernet, its VLAN tags, IPv4 with options (60)
    /// and TCP with options (60).
    static var maxSegmentHeaders: Int { EthernetFrame.headerSize + 4 * FrameLayout.maxTags + 60 + 60 }

    /// - Parameters:
    ///   - devices: one per network slot, in slot order.
    ///   - batchSize: packets per read or receive call.
    ///   - maxFrame: the largest inner frame any network carries.
    ///   - offloads: the devices read and write virtio headers (and may return super-frames), and
    ///     the underlay may return coalesced datagrams; buffers are sized for 64 KB.
    ///   - outerChecksumVouches: see the property (only the coalescer, so only with offloads).
    public init(
        devices: [Device?], link: Link, forwarder: Forwarder, batchSize: Int = 64, maxFrame: Int,
        offloads: Bool = false, outerChecksumVouches: Bool = false
    ) {
        self.devices = devices
        self.link = link
        self.forwarder = forwarder
        self.offloads = offloads
        self.outerChecksumVouches = outerChecksumVouches
        self.maxFrame = maxFrame
        segmentScratch = .allocate(byteCount: maxFrame, alignment: 8)
        if offloads {
            deviceBatch = PacketBatch(capacity: batchSize, dataCapacity: Self.maxSuperFrame)
            linkBatch = PacketBatch(capacity: batchSize, dataCapacity: Self.maxDatagram)
            segments = PacketBatch(capacity: TCPCoalescer.maxSegments, dataCapacity: Self.maxSegmentHeaders)
            // A coalesced datagram holds at most 64 KB / (8 + 14) frames worth decapsulating.
            deliveries = PacketList(capacity: max(batchSize, Self.maxDatagram / (VXLANHeader.size + 14) + 1))
        } else {
            deviceBatch = PacketBatch(capacity: batchSize, dataCapacity: maxFrame)
            // Room for a same-host peer's whole super-packet (cut into segments before the write);
            // anything larger is reported one byte over, never silently truncated.
            linkBatch = PacketBatch(capacity: batchSize, dataCapacity: Self.maxDatagram)
            segments = PacketBatch(capacity: 1, dataCapacity: 1)
            deliveries = PacketList(capacity: batchSize)
        }
        outbound = PacketList(capacity: max(batchSize, TCPCoalescer.maxSegments) + forwarder.maxFanOut)
    }

    /// Live reload: serves `generation` from the next batch on (its devices for worker `worker`,
    /// its networks' paths). Between batches only: nothing of the old generation is referenced
    /// after this returns. The largest frame stays `maxFrame` (the router sizes buffers for the
    /// underlay's, so a network added later fits).
    public func adopt(_ generation: NetworkGeneration<Device>, worker: Int) {
        devices = generation.devices[worker].map { $0 }  // a buffer of its own: written per packet
        forwarder.adopt(generation.networks)
        epoch = generation.epoch
    }

    deinit {
        forwarder.deallocate()
        superFramePiece.deallocate()
        segmentScratch.deallocate()
    }

    /// Reads one batch from network `network`'s device and sends it into the tunnel. Returns the
    /// number of frames read. `now`: the monotonic second (the sightings of the stations behind
    /// the TAP are reported at most every few seconds by it).
    @discardableResult
    public func serviceDevice(_ network: Int, now: UInt32 = 0) -> Int {
        let read = devices[network]?.read(into: &deviceBatch) ?? 0
        if read == 0 { return 0 }
        deviceSecond = now
        forwarder.capture?.beginBatch(capacity: deviceBatch.capacity)  // capture hook
        if offloads {
            serviceOffloadBatch(network)
        } else {
            encapsulate(network, from: 0, upTo: deviceBatch.count, of: &deviceBatch)
        }
        flushOutbound()
        flushReplies()
        return read
    }

    /// Encapsulates frames `start ..< end` of `batch` into `outbound`, sending whenever it fills.
    @inline(__always)
    private func encapsulate(_ network: Int, from start: Int, upTo end: Int, of batch: inout PacketBatch) {
        var next = start
        while next < end {
            next = forwarder.encapsulate(
                network: network, batch: batch, from: next, upTo: end, now: deviceSecond, into: &outbound)
            if next < end {
                flushOutbound()
                flushReplies()
            }
        }
    }

    /// PMTU signalling for a frame declined before encapsulation (`pathLimit`: the learned path
    /// MTU of its destination VTEP, in frame bytes, when that is what it did not fit).
    private func signalTooBig(_ network: Int, frame: UnsafeRawPointer, available: Int, pathLimit: Int = .max) {
        let path = forwarder.path(network: network)
        guard path.pmtuSignal else { return }
        if forwarder.signalTooBig(network: network, path: path, frame: frame, available: available, pathLimit: pathLimit)
            == .noRoom
        {
            flushReplies()
            _ = forwarder.signalTooBig(
                network: network, path: path, frame: frame, available: available, pathLimit: pathLimit)
        }
    }

    /// Writes the frames the forwarder answered with itself (LocalReplies) back to their TAPs.
    private func flushReplies() {
        let replies = forwarder.replies
        guard replies.count > 0 else { return }
        for k in 0..<replies.count {
            let network = replies.network(k)
            let written =
                offloads
                ? devices[network]?.write(pieces: replies.piecesWithHeader(k)) ?? false
                : devices[network]?.write(replies.frame(k), length: replies.length(k)) ?? false
            forwarder.accountReply(network: network, length: replies.length(k), written: written)
        }
        replies.removeAll()
    }

    private func serviceOffloadBatch(_ network: Int) {
        var runStart = 0
        for i in 0..<deviceBatch.count {
            let frame = deviceBatch.data(i)
            let length = deviceBatch.lengths[i]
            let header = VirtioNetHeader(decoding: frame - VirtioNetHeader.size)
            if header.gsoKind == VirtioNetHeader.gsoNone {
                if header.needsChecksum,
                    !Offload.completeChecksum(
                        frame: frame, length: length, start: Int(header.checksumStart),
                        offset: Int(header.checksumOffset))
                {
                    forwarder.dropDeviceFrame(.truncated, network: network, slot: i, frame: frame, length: length)
                    deviceBatch.lengths[i] = -1
                }
                continue
            }
            // A super-frame: what came before it leaves first, then its segments, in order.
            encapsulate(network, from: runStart, upTo: i, of: &deviceBatch)
            runStart = i + 1
            guard var segmenter = GSOSegmenter(header: header, frame: frame, length: length) else {
                forwarder.dropDeviceFrame(.truncated, network: network, slot: i, frame: frame, length: length)
                continue
            }
            guard segmenter.headerLength <= segments.dataCapacity else {
                forwarder.dropDeviceFrame(.oversize, network: network, slot: i, frame: frame, length: length)
                continue
            }
            // (The network's limit is within the worker's `maxFrame`.) The destination VTEP's learned
            // path MTU, when smaller, is the limit: the segment size the UDP GSO send would use.
            let limit = forwarder.frameLimit(network: network, frame: frame)
            if segmenter.maxSegmentLength > limit.limit {
                // Segments too big for this network's underlay or the path: one ICMP error for the
                // super-frame (not one per segment), which is dropped whole.
                signalTooBig(
                    network, frame: frame, available: min(length, deviceBatch.dataCapacity),
                    pathLimit: limit.learned ? limit.limit : .max)
                forwarder.dropDeviceFrame(.oversize, network: network, slot: i, frame: frame, length: length)
                continue
            }
            while !segmenter.isFinished {
                // The segments buffer is reused: what points into it must be sent first.
                flushOutbound()
                var n = 0
                while n < segments.capacity, let payload = segmenter.nextHeaders(into: segments.data(n)) {
                    segments.tails[n] = payload
                    segments.lengths[n] = segmenter.headerLength + payload.length
                    n += 1
                }
                segments.count = n
                forwarder.capture?.beginSegments(capacity: n)  // capture hook
                outboundHoldsSegments = true
                encapsulate(network, from: 0, upTo: n, of: &segments)
            }
            flushOutbound()
            outboundHoldsSegments = false
            forwarder.capture?.endSegments()  // capture hook
        }
        encapsulate(network, from: runStart, upTo: deviceBatch.count, of: &deviceBatch)
    }

    private func flushOutbound() {
        guard outbound.count > 0 else { return }
        link.send(&outbound)
        forwarder.accountSent(outbound)
        if let capture = forwarder.capture, capture.isActive {  // capture hook
            if outboundHoldsSegments {
                capture.sent(outbound, from: segments)
            } else {
                capture.sent(outbound, from: deviceBatch)
            }
        }
        outbound.removeAll()
    }

    /// Receives one batch from the underlay and writes the decapsulated frames to their devices.
    /// Returns the number of datagrams received.
    @discardableResult
    public func serviceUnderlay(now: UInt32) -> Int {
        let received = link.receive(into: &linkBatch)
        if received == 0 { return 0 }
        if let capture = forwarder.capture {  // capture hook
            capture.beginBatch(capacity: linkBatch.capacity * PacketBatch.datagramsPerSlot)
            if capture.isActive { capture.received(linkBatch) }
        }
        var next = 0
        while next < linkBatch.count {
            next = forwarder.decapsulate(batch: linkBatch, from: next, now: now, into: &deliveries)
            if offloads {
                deliverCoalesced()
            } else {
                for k in 0..<deliveries.count {
                    let packet = deliveries[k]
                    let written: Bool
                    if packet.superFrame.gsoType != VirtioNetHeader.gsoNone {
                        written = writeSegments(packet)
                    } else {
                        // No virtio header to say "partial": the checksum is finished here.
                        if packet.partialChecksum.isPresent { packet.partialChecksum.complete(packet.bytes) }
                        written = devices[packet.network]?.write(packet.bytes, length: packet.length) ?? false
                    }
                    forwarder.accountDelivered(packet, written: written)
                    if let capture = forwarder.capture, capture.isActive {  // capture hook
                        capture.delivered(packet, written: written, from: linkBatch)
                    }
                }
            }
            deliveries.removeAll()
        }
        return received
    }

    private func deliverCoalesced() {
        // Inner copies are taken before the coalescer rewrites the head frame of a group in place;
        // a group the TAP refuses is then recorded again, frame by frame, as drops.
        if let capture = forwarder.capture, capture.isActive {  // capture hook
            for k in 0..<deliveries.count { capture.deliveredInner(deliveries[k], from: linkBatch) }
        }
        for k in 0..<deliveries.count {
            let packet = deliveries[k]
            if packet.superFrame.gsoType != VirtioNetHeader.gsoNone {
                coalescer.flush { group in writeGroup(group) }
                writeSuperFrame(packet)
                continue
            }
            coalescer.add(
                index: k, tag: packet.network, frame: packet.bytes, length: packet.length,
                partial: packet.partialChecksum, vouched: outerChecksumVouches
            ) { group in
                writeGroup(group)
            }
        }
        coalescer.flush { group in writeGroup(group) }
    }

    /// Without offloads, a whole super-packet from the tunnel is cut here, as the kernel would
    /// have: each segment with its headers fixed up and its checksum computed. True when the TAP
    /// took every segment.
    private func writeSegments(_ packet: PacketRef) -> Bool {
        guard var segmenter = GSOSegmenter(header: packet.superFrame, frame: packet.bytes, length: packet.length),
            segmenter.maxSegmentLength <= maxFrame
        else { return false }
        var all = true
        while true {
            let length = segmenter.next(into: segmentScratch)
            if length == 0 { break }
            if devices[packet.network]?.write(segmentScratch, length: length) != true { all = false }
        }
        return all
    }

    /// A whole super-packet from the tunnel goes to the TAP as one GSO frame, its virtio header
    /// written in front of it over the VXLAN header (copies for capture were taken already).
    @inline(__always)
    private func writeSuperFrame(_ packet: PacketRef) {
        let start = packet.bytes - VirtioNetHeader.size
        packet.superFrame.encode(to: start)
        superFramePiece.pointee = FramePiece(base: start, length: VirtioNetHeader.size + packet.length)
        let written = devices[packet.network]?.write(pieces: UnsafeBufferPointer(start: superFramePiece, count: 1)) ?? false
        forwarder.accountDelivered(packet, written: written)
        if !written, let capture = forwarder.capture, capture.isActive {  // capture hook
            capture.refused(packet, from: linkBatch)
        }
    }

    @inline(__always)
    private func writeGroup(_ group: TCPCoalescer.Group) {
        let network = deliveries[group.first].network
        let written = devices[network]?.write(pieces: group.pieces) ?? false
        for k in group.first..<(group.first + group.count) {
            forwarder.accountDelivered(deliveries[k], written: written)
        }
        if !written, let capture = forwarder.capture, capture.isActive {  // capture hook
            for k in group.first..<(group.first + group.count) { capture.refused(deliveries[k], from: linkBatch) }
        }
    }
}
