import VXWire

/// A TAP queue as a worker sees it. Batch-shaped from the start (wireguard-go's `tun.Device`).
public protocol FrameDevice {
    /// Reads waiting frames into `batch` (each at `batch.data(i)`, behind the headroom), sets
    /// `batch.count`, and returns it; 0 when nothing is waiting.
    mutating func read(into batch: inout PacketBatch) -> Int
    /// Writes one frame; false when the kernel refused it.
    mutating func write(_ frame: UnsafeRawPointer, length: Int) -> Bool
}

/// The UDP side as a worker sees it.
public protocol Underlay {
    /// Receives waiting datagrams (the UDP payload at `batch.data(i)`, the sender in
    /// `batch.sources[i]`); a datagram larger than `batch.dataCapacity` is reported with length
    /// `dataCapacity + 1`. Sets and returns `batch.count`; 0 when nothing is waiting.
    mutating func receive(into batch: inout PacketBatch) -> Int
    /// Sends every packet of `packets` (UDP header + payload, to its destination) and sets each
    /// packet's status.
    mutating func send(_ packets: inout PacketList)
}

/// One worker: the devices and socket it owns outright, its buffers, its forwarder. Driven by a
/// platform loop (which waits for readiness) or directly by tests with fakes. Owned by one thread.
public final class Worker<Device: FrameDevice, Link: Underlay> {
    public private(set) var devices: [Device]
    public private(set) var link: Link
    public let forwarder: Forwarder
    private var deviceBatch: PacketBatch
    private var linkBatch: PacketBatch
    private var outbound: PacketList
    private var deliveries: PacketList

    /// - Parameters:
    ///   - devices: one per network, in network index order.
    ///   - batchSize: packets per read or receive call.
    ///   - maxFrame: the largest inner frame any network carries.
    public init(devices: [Device], link: Link, forwarder: Forwarder, batchSize: Int = 64, maxFrame: Int) {
        self.devices = devices
        self.link = link
        self.forwarder = forwarder
        deviceBatch = PacketBatch(capacity: batchSize, dataCapacity: maxFrame)
        // A datagram carries the VXLAN header before the frame; one byte more than that shows
        // an oversize datagram instead of silently truncating it.
        linkBatch = PacketBatch(capacity: batchSize, dataCapacity: maxFrame + VXLANHeader.size)
        outbound = PacketList(capacity: batchSize + forwarder.maxFanOut)
        deliveries = PacketList(capacity: batchSize)
    }

    deinit { forwarder.deallocate() }

    /// Reads one batch from network `network`'s device and sends it into the tunnel. Returns the
    /// number of frames read.
    @discardableResult
    public func serviceDevice(_ network: Int) -> Int {
        let read = devices[network].read(into: &deviceBatch)
        if read == 0 { return 0 }
        forwarder.capture?.beginBatch(capacity: deviceBatch.capacity)  // capture hook
        var next = 0
        while next < deviceBatch.count {
            next = forwarder.encapsulate(network: network, batch: deviceBatch, from: next, into: &outbound)
            flushOutbound()
        }
        return read
    }

    private func flushOutbound() {
        guard outbound.count > 0 else { return }
        link.send(&outbound)
        forwarder.accountSent(outbound)
        if let capture = forwarder.capture, capture.isActive { capture.sent(outbound, from: deviceBatch) }  // capture hook
        outbound.removeAll()
    }

    /// Receives one batch from the underlay and writes the decapsulated frames to their devices.
    /// Returns the number of datagrams received.
    @discardableResult
    public func serviceUnderlay(now: UInt32) -> Int {
        let received = link.receive(into: &linkBatch)
        if received == 0 { return 0 }
        if let capture = forwarder.capture {  // capture hook
            capture.beginBatch(capacity: linkBatch.capacity)
            if capture.isActive { capture.received(linkBatch) }
        }
        forwarder.decapsulate(batch: linkBatch, now: now, into: &deliveries)
        for k in 0..<deliveries.count {
            let packet = deliveries[k]
            let written = devices[packet.network].write(packet.bytes, length: packet.length)
            forwarder.accountDelivered(packet, written: written)
            if let capture = forwarder.capture, capture.isActive { capture.delivered(packet, written: written, from: linkBatch) }  // capture hook
        }
        deliveries.removeAll()
        return received
    }
}
