// Steady state allocates nothing: a worker forwarding batch after batch (encap with an FDB hit,
// decap with a learned source; with offloads, segmentation of TSO super-frames and coalescing of
// GRO-received segments) makes zero heap allocations per packet once warmed up. Counted with the
// malloc interposer in CMallocCounter, on the test's own thread (the test body is synchronous, so
// it stays on one thread throughout).
import CMallocCounter
import Testing
import VXWire

@testable import VXDatapath

/// A TAP that serves the same frames (each with its virtio header, when given) to every read and
/// accepts every write, copying into the worker's own batch: no allocation of its own.
final class ReplayDevice: FrameDevice {
    let frames: UnsafeMutableRawBufferPointer
    let frameLength: Int
    let header: VirtioNetHeader?
    let perRead: Int
    private(set) var writes = 0

    init(frame: [UInt8], header: VirtioNetHeader? = nil, perRead: Int) {
        frames = .allocate(byteCount: frame.count, alignment: 8)
        frames.copyBytes(from: frame)
        frameLength = frame.count
        self.header = header
        self.perRead = perRead
    }

    deinit { frames.deallocate() }

    func read(into batch: inout PacketBatch) -> Int {
        let n = min(perRead, batch.capacity)
        for i in 0..<n {
            batch.data(i).copyMemory(from: frames.baseAddress!, byteCount: frameLength)
            if let header { header.encode(to: batch.data(i) - VirtioNetHeader.size) }
            batch.lengths[i] = frameLength
        }
        batch.count = n
        return n
    }

    func write(_ frame: UnsafeRawPointer, length: Int) -> Bool {
        writes += 1
        return true
    }

    func write(pieces: UnsafeBufferPointer<FramePiece>) -> Bool {
        writes += 1
        return true
    }
}

/// An underlay that serves the same datagrams to every receive (optionally as one GRO slot) and
/// counts what is sent.
final class ReplayUnderlay: Underlay {
    let datagrams: UnsafeMutableRawBufferPointer
    let count: Int
    let size: Int
    let gro: Bool
    let source: Endpoint
    private(set) var sent = 0

    /// `datagrams` all of one size.
    init(datagrams list: [[UInt8]], gro: Bool, source: Endpoint) {
        size = list[0].count
        count = list.count
        datagrams = .allocate(byteCount: size * count, alignment: 8)
        for (k, d) in list.enumerated() {
            UnsafeMutableRawBufferPointer(rebasing: datagrams[(k * size)..<((k + 1) * size)]).copyBytes(from: d)
        }
        self.gro = gro
        self.source = source
    }

    deinit { datagrams.deallocate() }

    func receive(into batch: inout PacketBatch) -> Int {
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

    func send(_ packets: inout PacketList) { sent += packets.count }
}

@Suite("Steady state allocates nothing")
struct AllocationTests {
    static let peer = Endpoint(address: IPAddress(v4: 0xC612_0002), port: 4789)  // 198.18.0.2
    static let localMAC = MACAddress(0x02, 0, 0, 0, 0, 0x01)
    static let remoteMAC = MACAddress(0x02, 0, 0, 0, 0, 0x02)

    /// One network (VNI 42, MTU 1450) with the remote MAC learned behind the peer, as steady
    /// traffic leaves it. Holds what the forwarder points at without owning.
    final class Datapath {
        let network = Network(
            index: 0, vni: VNI(unchecked: 42), mtu: 1450, underlayMaxFrame: 1500 - 36, learning: true,
            maxEntries: 1024, allowFrom: [])
        let remotes = RemoteTable(capacity: 16)
        let counters = WorkerCounters(networks: 1)
        let ring = SPSCRing<LearnEvent>(capacity: 1024)
        let forwarder: Forwarder

        init() {
            let peerIndex = remotes.intern(AllocationTests.peer.address)!
            _ = network.fdb.learn(AllocationTests.remoteMAC, behind: peerIndex, now: 1)
            _ = network.fdb.learn(AllocationTests.localMAC, behind: peerIndex, now: 1)
            forwarder = Forwarder(
                networks: [network], remotes: remotes, counters: counters, learnRing: ring, port: 4789,
                sourcePorts: SourcePortRange(49152...65535))
        }
    }

    /// The most allocations forwarding `packets` packets may make. Zero in an optimised build,
    /// what the router runs (`swift test -c release -Xswiftc -enable-testing --filter
    /// AllocationTests`; -enable-testing for the @testable imports). An unoptimised (debug) build
    /// allocates a few times per batch for things the optimiser removes (closure contexts,
    /// unspecialised generics), so there the bound is one per four packets: it still catches
    /// anything that allocates per packet.
    static func allowed(packets: Int) -> UInt64 {
        #if DEBUG
            return UInt64(packets / 4)
        #else
            return 0
        #endif
    }

    /// Allocations made by `body` run `rounds` times, after `warmUp` rounds not counted.
    func allocations(rounds: Int = 2000, warmUp: Int = 20, _ body: () -> Void) -> UInt64 {
        for _ in 0..<warmUp { body() }
        let before = vx_test_thread_allocations()
        for _ in 0..<rounds { body() }
        return vx_test_thread_allocations() - before
    }

    /// An IPv4 TCP frame (12 bytes of options) from the local MAC to the remote one, with its
    /// checksum complete, or holding only the pseudo-header sum as a NEEDS_CSUM super-frame does.
    static func frame(payload: Int = 1400 - 66, seq: UInt32 = 1, pseudoOnly: Bool = false) -> [UInt8] {
        func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        let l4Length = 32 + payload
        var bytes = remoteMAC.octets + localMAC.octets + [0x08, 0x00]
        bytes += [0x45, 0] + be16(20 + l4Length) + [0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 198, 19, 0, 1, 198, 19, 0, 2]
        bytes += be16(40000) + be16(5201) + be16(Int(seq >> 16)) + be16(Int(seq & 0xFFFF)) + [0, 0, 0x1E, 0x61]
        bytes += [0x80, 0x10] + be16(502) + [0, 0, 0, 0] + [1, 1, 8, 10, 0, 0, 3, 0xE8, 0, 0, 7, 0xD0]
        bytes += (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 3) }
        bytes.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            InternetChecksum.fillIPv4Header(base + 14, headerLength: 20)
            let pseudo = InternetChecksum.pseudoHeaderSum(addresses: base + 26, addressSize: 4, protocol: 6, length: l4Length)
            let value = pseudoOnly
                ? InternetChecksum.fold(pseudo) : InternetChecksum.finish(InternetChecksum.sum(base + 34, count: l4Length, initial: pseudo))
            base.storeBytes(of: value.bigEndian, toByteOffset: 50, as: UInt16.self)
        }
        return bytes
    }

    /// The counter sees allocations at all (else a zero below would prove nothing).
    @Test func theCounterCounts() {
        let counted = allocations(rounds: 100, warmUp: 0) {
            let array = [Int](repeating: 7, count: Int.random(in: 100...200))
            #expect(array.count >= 100)
        }
        #expect(counted >= 100)
    }

    @Test func encapsulation() {
        let datapath = Datapath()
        let (forwarder, network) = (datapath.forwarder, datapath.network)
        let device = ReplayDevice(frame: Self.frame(), perRead: 64)
        let link = ReplayUnderlay(datagrams: [[0]], gro: false, source: Self.peer)
        let worker = Worker(devices: [device], link: link, forwarder: forwarder, batchSize: 64, maxFrame: network.maxFrame)
        let counted = allocations { _ = worker.serviceDevice(0) }
        #expect(counted <= Self.allowed(packets: 2000 * 64), "\(counted) allocations for \(2000 * 64) frames")
        #expect(link.sent == 2020 * 64)
        withExtendedLifetime(datapath) {}
    }

    @Test func encapsulationWithSegmentation() {
        let datapath = Datapath()
        let (forwarder, network) = (datapath.forwarder, datapath.network)
        // A 64 KB-class TSO4 super-frame: 40 segments of 1398 bytes.
        let superFrame = Self.frame(payload: 40 * 1398, pseudoOnly: true)
        let header = VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum, gsoType: VirtioNetHeader.gsoTCPv4, headerLength: 66,
            gsoSize: 1398, checksumStart: 34, checksumOffset: 16)
        let device = ReplayDevice(frame: superFrame, header: header, perRead: 4)
        let link = ReplayUnderlay(datagrams: [[0]], gro: false, source: Self.peer)
        let worker = Worker(
            devices: [device], link: link, forwarder: forwarder, batchSize: 64, maxFrame: network.maxFrame,
            offloads: true)
        let counted = allocations(rounds: 500) { _ = worker.serviceDevice(0) }
        #expect(counted <= Self.allowed(packets: 500 * 4 * 40), "\(counted) allocations for \(500 * 4) super-frames")
        #expect(link.sent == 520 * 4 * 40)
        withExtendedLifetime(datapath) {}
    }

    /// VXLAN datagrams carrying consecutive TCP segments of one flow.
    static func datagrams(_ count: Int) -> [[UInt8]] {
        (0..<count).map { k in
            [0x08, 0, 0, 0, 0, 0, 42, 0] + frame(seq: 1 + UInt32(k * (1400 - 66)))
        }
    }

    @Test func decapsulation() {
        let datapath = Datapath()
        let (forwarder, network) = (datapath.forwarder, datapath.network)
        let device = ReplayDevice(frame: [0], perRead: 0)
        let link = ReplayUnderlay(datagrams: Self.datagrams(64), gro: false, source: Self.peer)
        let worker = Worker(devices: [device], link: link, forwarder: forwarder, batchSize: 64, maxFrame: network.maxFrame)
        let counted = allocations { _ = worker.serviceUnderlay(now: 2) }
        #expect(counted <= Self.allowed(packets: 2000 * 64), "\(counted) allocations for \(2000 * 64) datagrams")
        #expect(device.writes == 2020 * 64)
        withExtendedLifetime(datapath) {}
    }

    @Test func decapsulationWithGROAndCoalescing() {
        let datapath = Datapath()
        let (forwarder, network) = (datapath.forwarder, datapath.network)
        let device = ReplayDevice(frame: [0], perRead: 0)
        let link = ReplayUnderlay(datagrams: Self.datagrams(40), gro: true, source: Self.peer)
        let worker = Worker(
            devices: [device], link: link, forwarder: forwarder, batchSize: 64, maxFrame: network.maxFrame,
            offloads: true)
        let counted = allocations { _ = worker.serviceUnderlay(now: 2) }
        #expect(counted <= Self.allowed(packets: 2000 * 40), "\(counted) allocations for \(2000 * 40) datagrams")
        // 40 segments of 1334 bytes make one super-frame per receive.
        #expect(device.writes == 2020)
        withExtendedLifetime(datapath) {}
    }
}
