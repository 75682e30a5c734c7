// In-memory stand-ins for a TAP queue and the UDP underlay (wireguard-go's tests fake TUN and bind
// the same way), plus a harness that wires networks, FDBs, flood lists, counters and the learn
// ring into a Worker as the router does.
import Testing
import VXWire

@testable import VXDatapath

/// A TAP queue: serves queued frames to `read`, records what the worker writes. With
/// `virtioHeaders`, each pending frame starts with its 12-byte virtio header (put in the headroom
/// on read), and each written frame is recorded with its header.
final class FakeTap: FrameDevice {
    var pending: [[UInt8]] = []
    private(set) var written: [[UInt8]] = []
    /// Answer to `write`; a refused frame is not recorded.
    var acceptsWrites = true
    var virtioHeaders = false

    func read(into batch: inout PacketBatch) -> Int {
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
            let copied = min(frame.count, batch.dataCapacity)
            let slot = batch.data(n)
            frame.withUnsafeBytes { if copied > 0 { slot.copyMemory(from: $0.baseAddress!, byteCount: copied) } }
            // Like the underlay: more than fits reads as one byte over.
            batch.lengths[n] = frame.count > batch.dataCapacity ? batch.dataCapacity + 1 : frame.count
            n += 1
        }
        batch.count = n
        return n
    }

    func write(_ frame: UnsafeRawPointer, length: Int) -> Bool {
        guard acceptsWrites else { return false }
        written.append(Array(UnsafeRawBufferPointer(start: frame, count: length)))
        return true
    }

    func write(pieces: UnsafeBufferPointer<FramePiece>) -> Bool {
        guard acceptsWrites else { return false }
        written.append(pieces.flatMap { Array(UnsafeRawBufferPointer(start: $0.base, count: $0.length)) })
        return true
    }
}

/// The underlay: serves queued datagrams with their senders, records every packet sent.
final class FakeLink: Underlay {
    struct Sent: Equatable {
        var bytes: [UInt8]
        var destination: Endpoint
        var network: Int
    }

    var pending: [(payload: [UInt8], source: Endpoint)] = []
    /// Reported as every received slot's GRO segment size (0: single datagrams).
    var segmentSize = 0
    private(set) var sent: [Sent] = []
    /// Number of `send` calls.
    private(set) var sendCalls = 0
    /// What the "kernel" says about each packet.
    var status: (Sent) -> SendStatus = { _ in .sent }

    func receive(into batch: inout PacketBatch) -> Int {
        var n = 0
        while n < batch.capacity, !pending.isEmpty {
            let (payload, source) = pending.removeFirst()
            let copied = min(payload.count, batch.dataCapacity)
            let slot = batch.data(n)
            payload.withUnsafeBytes { if copied > 0 { slot.copyMemory(from: $0.baseAddress!, byteCount: copied) } }
            batch.lengths[n] = payload.count > batch.dataCapacity ? batch.dataCapacity + 1 : payload.count
            batch.sources[n] = source
            batch.segmentSizes[n] = segmentSize
            n += 1
        }
        batch.count = n
        return n
    }

    func send(_ packets: inout PacketList) {
        sendCalls += 1
        for k in 0..<packets.count {
            let packet = packets[k]
            var bytes = Array(UnsafeRawBufferPointer(start: packet.bytes, count: packet.headLength))
            if let tail = packet.tail.base { bytes += UnsafeRawBufferPointer(start: tail, count: packet.tail.length) }
            let record = Sent(
                bytes: bytes,
                destination: packet.destination, network: packet.network)
            let outcome = status(record)
            packets.statuses[k] = outcome
            if outcome == .sent { sent.append(record) }
        }
    }
}

/// One router's datapath with one worker, driven by hand.
final class Harness {
    struct NetworkSpec {
        var vni: UInt32
        var mtu = 1500
        var learning = true
        var maxEntries = 64
        var allowFrom: [String] = []
        var floodCapacity = 16
        var arpSuppression = true
        var pmtuSignal = true
    }

    static let port: UInt16 = 4789
    static let sourcePorts: ClosedRange<UInt16> = 49152...65535

    let networks: [Network]
    let remotes = RemoteTable(capacity: 1024)
    let counters: WorkerCounters
    let remoteCounters = RemoteCounters(capacity: 1024)
    let ring: SPSCRing<LearnEvent>
    let taps: [FakeTap]
    let link = FakeLink()
    let worker: Worker<FakeTap, FakeLink>

    init(
        _ specs: [NetworkSpec] = [NetworkSpec(vni: 42)], underlayMaxFrame: Int = 9000, ringCapacity: Int = 256,
        batchSize: Int = 8, workerMaxFrame: Int? = nil, offloads: Bool = false, captureTap: CaptureTap? = nil
    ) {
        networks = specs.enumerated().map { index, spec in
            Network(
                index: index, vni: VNI(unchecked: spec.vni), mtu: spec.mtu, underlayMaxFrame: underlayMaxFrame,
                learning: spec.learning, maxEntries: spec.maxEntries,
                allowFrom: spec.allowFrom.map { IPPrefix($0)! }, floodCapacity: spec.floodCapacity,
                arpSuppression: spec.arpSuppression, pmtuSignal: spec.pmtuSignal)
        }
        counters = WorkerCounters(networks: networks.count)
        ring = SPSCRing(capacity: ringCapacity)
        let forwarder = Forwarder(
            networks: networks, remotes: remotes, counters: counters, learnRing: ring, port: Self.port,
            sourcePorts: SourcePortRange(Self.sourcePorts), remoteCounters: remoteCounters,
            capture: captureTap.map { WorkerCapture(tap: $0, worker: 0, localPort: Self.port) })
        taps = networks.map { _ in FakeTap() }
        for tap in taps { tap.virtioHeaders = offloads }
        worker = Worker(
            devices: taps, link: link, forwarder: forwarder, batchSize: batchSize,
            maxFrame: workerMaxFrame ?? networks.map(\.maxFrame).max()!, offloads: offloads)
    }

    func remote(_ text: String) -> RemoteIndex { remotes.intern(IPAddress(text)!)! }

    func setFlood(_ network: Int, _ addresses: [String]) {
        #expect(networks[network].flood.set(addresses.map(remote)))
    }

    func setStatic(_ network: Int, _ mac: MACAddress, behind address: String) {
        #expect(networks[network].fdb.setStatic(mac, remote: remote(address)) == .added)
    }

    /// Queues frames on a network's TAP and services it until everything is read.
    func transmit(_ frames: [[UInt8]], on network: Int = 0) {
        taps[network].pending += frames
        while worker.serviceDevice(network) > 0 {}
    }

    /// Queues datagrams on the underlay and services it until everything is received.
    func receive(_ datagrams: [(payload: [UInt8], source: Endpoint)], now: UInt32 = 1) {
        link.pending += datagrams
        while worker.serviceUnderlay(now: now) > 0 {}
    }

    func receive(_ payload: [UInt8], from source: String, now: UInt32 = 1) {
        receive([(payload, Endpoint(address: IPAddress(source)!, port: 54321))], now: now)
    }

    /// Everything the worker queued for the control thread so far.
    func learnEvents() -> [LearnEvent] {
        var events: [LearnEvent] = []
        while let event = ring.pop() { events.append(event) }
        return events
    }

    var snapshot: CounterSnapshot { counters.snapshot() }
    var unattributed: Int { counters.unattributedRow }

    /// Every non-zero drop counter as "row:name=value", for compact assertions.
    var drops: [String] {
        let s = snapshot
        return (0..<s.rows).flatMap { row in
            DropReason.allCases.compactMap { reason in
                s[row, drop: reason] == 0
                    ? nil : "\(row == unattributed ? "-" : String(row)):\(reason.name)=\(s[row, drop: reason])"
            }
        }
    }
}

// MARK: Frames and datagrams

enum Bytes {
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    static func be32(_ v: UInt32) -> [UInt8] { be16(UInt16(v >> 16)) + be16(UInt16(v & 0xFFFF)) }

    static func mac(_ last: UInt8, first: UInt8 = 0x02) -> MACAddress { MACAddress(first, 0, 0, 0, 0, last) }

    /// An Ethernet frame of exactly `length` bytes (≥ 14): header, then a recognisable payload.
    static func frame(to dst: MACAddress, from src: MACAddress, length: Int = 100, etherType: UInt16 = 0x88B5)
        -> [UInt8]
    {
        precondition(length >= 14)
        return dst.octets + src.octets + be16(etherType)
            + (0..<(length - 14)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
    }

    /// An IPv4/UDP frame, for flows that should hash apart.
    static func udpFrame(to dst: MACAddress, from src: MACAddress, sourcePort: UInt16, destinationPort: UInt16 = 53)
        -> [UInt8]
    {
        var ip: [UInt8] = [0x45, 0] + be16(20 + 8 + 4) + [0, 1, 0x40, 0, 64, 17, 0, 0]
        ip += be32(0x0A00_0001) + be32(0x0A00_0002)
        return dst.octets + src.octets + be16(0x0800) + ip + be16(sourcePort) + be16(destinationPort) + be16(12) + [
            0, 0,
        ]
            + [1, 2, 3, 4]
    }

    static func vxlanHeader(vni: UInt32, flags: UInt8 = 0x08) -> [UInt8] {
        [flags, 0, 0, 0, UInt8(vni >> 16 & 0xFF), UInt8(vni >> 8 & 0xFF), UInt8(vni & 0xFF), 0]
    }

    static func datagram(vni: UInt32, _ frame: [UInt8], flags: UInt8 = 0x08) -> [UInt8] {
        vxlanHeader(vni: vni, flags: flags) + frame
    }
}

/// An encapsulated packet as the link saw it, taken apart.
struct Encapsulated {
    var sourcePort: UInt16
    var destinationPort: UInt16
    var udpLength: UInt16
    var checksum: UInt16
    var vxlan: [UInt8]
    var inner: [UInt8]

    init(_ bytes: [UInt8]) {
        func u16(_ i: Int) -> UInt16 { UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]) }
        sourcePort = u16(0)
        destinationPort = u16(2)
        udpLength = u16(4)
        checksum = u16(6)
        vxlan = Array(bytes[8..<16])
        inner = Array(bytes[16...])
    }
}
