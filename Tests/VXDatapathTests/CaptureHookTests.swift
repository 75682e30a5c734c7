// The datapath's capture hooks, driven through the worker with fakes: what is copied into the
// capture ring, with which point, direction, reason and packet number — and nothing while no
// capture runs.
import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

@Suite("Capture hooks in the worker")
struct CaptureHookTests {
    let local = Bytes.mac(0x01)
    let peer = Bytes.mac(0x21)

    func drain(_ tap: CaptureTap) -> [(header: CaptureRecordHeader, bytes: [UInt8])] {
        var out: [(CaptureRecordHeader, [UInt8])] = []
        while let (header, bytes) = tap.rings[0].peek() {
            out.append((header, Array(bytes)))
            tap.rings[0].release()
        }
        return out
    }

    @Test func nothingIsCopiedWhileNoCaptureRuns() {
        let tap = CaptureTap(workers: 1, networks: [VNI(42)!], slots: 64, slotBytes: 2048)
        let h = Harness(captureTap: tap)
        h.setFlood(0, ["192.0.2.10"])
        h.transmit([Bytes.frame(to: .broadcast, from: local)])
        h.receive(Bytes.datagram(vni: 42, Bytes.frame(to: local, from: peer)), from: "192.0.2.10")
        #expect(drain(tap).isEmpty)
        #expect(h.link.sent.count == 1 && h.taps[0].written.count == 1, "forwarding as always")
    }

    @Test func innerAndOuterCopiesShareAPacketNumber() {
        let tap = CaptureTap(workers: 1, networks: [VNI(42)!], slots: 64, slotBytes: 2048)
        let h = Harness(captureTap: tap)
        h.setFlood(0, ["192.0.2.10", "192.0.2.11"])
        let generation = tap.start(CaptureSelection(points: [.inner, .outer, .drop], snapLength: 2048))
        let frame = Bytes.frame(to: .broadcast, from: local)
        h.transmit([frame])
        var copies = drain(tap)
        #expect(copies.map(\.header.capturePoint) == [.inner, .outer, .outer], "one inner, one outer per flood copy")
        #expect(Set(copies.map(\.header.packet)).count == 1, "one packet number for all of them")
        #expect(copies.allSatisfy { $0.header.generation == generation && $0.header.network == 0 })
        #expect(copies[0].bytes == frame && copies[0].header.captureDirection == .fromTap)
        #expect(copies[1].header.captureForm == .udp && copies[1].bytes.count == 16 + frame.count)
        #expect(Set(copies.dropFirst().compactMap { $0.header.remoteEndpoint?.address.description }) == ["192.0.2.10", "192.0.2.11"])

        let inbound = Bytes.frame(to: local, from: peer)
        h.receive(Bytes.datagram(vni: 42, inbound), from: "192.0.2.10")
        copies = drain(tap)
        #expect(copies.map(\.header.capturePoint) == [.outer, .inner])
        #expect(copies[0].header.captureDirection == .fromTunnel && copies[0].header.captureForm == .vxlan)
        #expect(copies[1].header.captureDirection == .toTap && copies[1].bytes == inbound)
        #expect(copies[0].header.packet == copies[1].header.packet)

        h.receive(Bytes.datagram(vni: 42, inbound, flags: 0x00), from: "192.0.2.10")
        copies = drain(tap)
        #expect(copies.map(\.header.capturePoint) == [.outer, .drop])
        #expect(copies[1].header.dropReason == .badFlags)
        #expect(copies[0].header.packet == copies[1].header.packet)

        tap.stop(generation: generation)
        h.transmit([frame])
        #expect(drain(tap).isEmpty, "stopped: no more copies")
    }

    @Test func selectsByVNIAndRemoteAndCutsAtTheSnapLength() {
        let tap = CaptureTap(workers: 1, networks: [VNI(42)!, VNI(43)!], slots: 64, slotBytes: 2048)
        let h = Harness([.init(vni: 42), .init(vni: 43)], captureTap: tap)
        h.setFlood(0, ["192.0.2.10", "192.0.2.11"])
        h.setFlood(1, ["192.0.2.10"])
        _ = tap.start(
            CaptureSelection(points: [.outer], vni: VNI(42), remote: IPAddress("192.0.2.11"), snapLength: 64))
        h.transmit([Bytes.frame(to: .broadcast, from: local, length: 300)], on: 0)
        h.transmit([Bytes.frame(to: .broadcast, from: local, length: 300)], on: 1)
        let copies = drain(tap)
        #expect(copies.count == 1, "\(copies.map(\.header))")
        #expect(copies.first?.header.remoteEndpoint?.address == IPAddress("192.0.2.11"))
        #expect(copies.first?.bytes.count == 64 && copies.first?.header.length == 16 + 300)
    }

    @Test func noDestinationIsADropWithItsReason() {
        let tap = CaptureTap(workers: 1, networks: [VNI(42)!], slots: 64, slotBytes: 2048)
        let h = Harness(captureTap: tap)
        _ = tap.start(CaptureSelection(points: [.drop], snapLength: 2048))
        h.transmit([Bytes.frame(to: .broadcast, from: local)])
        let copies = drain(tap)
        #expect(copies.count == 1 && copies.first?.header.dropReason == .noDestination)
        #expect(copies.first?.header.captureDirection == .fromTap)
    }

    /// With offloads, a TSO super-frame is recorded as the segments it leaves as: each inner
    /// segment (a whole, checksummed frame) shares its number with its outer packet.
    @Test func aSuperFrameIsRecordedAsItsSegments() {
        let tap = CaptureTap(workers: 1, networks: [VNI(42)!], slots: 64, slotBytes: 2048)
        let h = Harness(offloads: true, captureTap: tap)
        h.setStatic(0, SteadyDatapath.remoteMAC, behind: "192.0.2.10")
        _ = tap.start(CaptureSelection(points: [.inner, .outer], snapLength: 2048))
        h.transmit([Bytes.tso4SuperFrame(segments: 3, gsoSize: 1398)])
        let copies = drain(tap)
        #expect(h.link.sent.count == 3)
        #expect(copies.map(\.header.capturePoint) == [.inner, .outer, .inner, .outer, .inner, .outer])
        #expect(Set(copies.map(\.header.packet)).count == 3, "one number per segment")
        for k in stride(from: 0, to: copies.count - 1, by: 2) {
            #expect(copies[k].header.packet == copies[k + 1].header.packet)
            #expect(copies[k].bytes.count == 66 + 1398, "a segment, not the super-frame")
            #expect(Array(copies[k + 1].bytes.dropFirst(16)) == copies[k].bytes, "the outer packet carries it")
            // Zero-copy segments: the copy gathers the headers and the payload left in the super-frame.
            #expect(Array(h.link.sent[k / 2].bytes.dropFirst(16)) == copies[k].bytes, "what was sent")
        }
    }

    /// With offloads, a slot the kernel coalesced (UDP GRO) is recorded datagram by datagram,
    /// each inner frame taken before the TCP coalescer merges them, numbered as its datagram.
    @Test func aGROSlotIsRecordedDatagramByDatagram() {
        let tap = CaptureTap(workers: 1, networks: [VNI(42)!], slots: 64, slotBytes: 2048)
        let h = Harness(offloads: true, captureTap: tap)
        _ = tap.start(CaptureSelection(points: [.inner, .outer], snapLength: 2048))
        let datagrams = AllocationTests.datagrams(3)
        h.link.segmentSize = datagrams[0].count
        h.receive(datagrams.flatMap { $0 }, from: "192.0.2.10")
        let copies = drain(tap)
        #expect(h.taps[0].written.count == 1, "coalesced into one super-frame")
        #expect(copies.map(\.header.capturePoint) == [.outer, .outer, .outer, .inner, .inner, .inner])
        #expect(Set(copies.map(\.header.packet)).count == 3, "one number per datagram")
        for k in 0..<3 {
            #expect(copies[k].bytes == datagrams[k])
            #expect(copies[3 + k].header.packet == copies[k].header.packet)
            #expect(copies[3 + k].bytes == Array(datagrams[k].dropFirst(8)), "as it was before coalescing")
        }
    }

    /// Drops recorded while a super-frame's segments are encapsulated (here: nowhere to send
    /// them) are numbered as those segments, never as frames of the batch it was read in.
    @Test func dropsOfSegmentsAreNumberedAsSegments() {
        let tap = CaptureTap(workers: 1, networks: [VNI(42)!], slots: 64, slotBytes: 2048)
        let h = Harness(offloads: true, captureTap: tap)
        _ = tap.start(CaptureSelection(points: [.drop], snapLength: 2048))
        let plain = [UInt8](repeating: 0, count: VirtioNetHeader.size) + Bytes.frame(to: .broadcast, from: local)
        h.transmit([plain, Bytes.tso4SuperFrame(segments: 3, gsoSize: 1398), plain])
        let copies = drain(tap)
        #expect(copies.map(\.bytes.count) == [100, 66 + 1398, 66 + 1398, 66 + 1398, 100], "frame, 3 segments, frame")
        #expect(copies.allSatisfy { $0.header.dropReason == .noDestination })
        let numbers = copies.map(\.header.packet)
        #expect(Set(numbers).count == 5, "no two drops share a number: \(numbers)")
        #expect(numbers[4] == numbers[0] + 2, "the batch's frames keep their slots' numbers")
        #expect(numbers[1...3].allSatisfy { $0 >= numbers[0] + 8 }, "segments numbered after the batch: \(numbers)")
    }

    /// A slot that did not fit its buffer is one datagram to capture and forwarder alike, GRO
    /// segment size or not: one outer record and one oversize drop, under one number.
    @Test func anOverCapacityGROSlotIsOneDatagram() {
        let tap = CaptureTap(workers: 1, networks: [VNI(42)!], slots: 64, slotBytes: 2048)
        let h = Harness(offloads: true, captureTap: tap)
        _ = tap.start(CaptureSelection(points: [.outer, .drop], snapLength: 2048))
        let datagram = AllocationTests.datagrams(1)[0]
        h.link.segmentSize = datagram.count
        h.receive(Array(repeating: datagram, count: 60).flatMap { $0 }, from: "192.0.2.10")
        let copies = drain(tap)
        #expect(copies.map(\.header.capturePoint) == [.outer, .drop])
        #expect(copies.last?.header.dropReason == .oversize)
        #expect(Set(copies.map(\.header.packet)).count == 1)
        #expect(h.drops == ["0:oversize=1"])
        #expect(h.taps[0].written.isEmpty)
    }
}

@Suite("Datagrams of a receive slot")
struct SlotDatagramsTests {
    struct Seen: Equatable {
        var offset: Int
        var length: Int
        var stored: Int
        var number: Int
    }

    func walk(slot: Int = 2, length: Int, segment: Int, capacity: Int = 1000) -> [Seen] {
        let datagrams = SlotDatagrams(slot: slot, length: length, segmentSize: segment, capacity: capacity)
        let seen = datagrams.map { Seen(offset: $0.offset, length: $0.length, stored: $0.stored, number: $0.number) }
        #expect(seen.count == datagrams.count)
        return seen
    }

    @Test func oneDatagram() {
        #expect(walk(length: 300, segment: 0) == [Seen(offset: 0, length: 300, stored: 300, number: 128)])
        #expect(walk(length: 300, segment: 300) == [Seen(offset: 0, length: 300, stored: 300, number: 128)])
        #expect(walk(length: 300, segment: 400) == [Seen(offset: 0, length: 300, stored: 300, number: 128)])
        #expect(walk(length: 0, segment: 0) == [Seen(offset: 0, length: 0, stored: 0, number: 128)])
    }

    @Test func coalescedDatagrams() {
        #expect(
            walk(length: 250, segment: 100) == [
                Seen(offset: 0, length: 100, stored: 100, number: 128),
                Seen(offset: 100, length: 100, stored: 100, number: 129),
                Seen(offset: 200, length: 50, stored: 50, number: 130),
            ])
        #expect(walk(length: 200, segment: 100).map(\.length) == [100, 100])
    }

    /// Over capacity: one datagram, stored in part, whatever the segment size says.
    @Test func overCapacityIsOneDatagram() {
        #expect(walk(length: 1001, segment: 100) == [Seen(offset: 0, length: 1001, stored: 1000, number: 128)])
        #expect(!SlotDatagrams(slot: 0, length: 1001, segmentSize: 0, capacity: 1000).map(\.fits).contains(true))
    }

    /// A whole super-packet in the slot is one datagram, which carries the inner segment size.
    @Test func superFrameIsOneDatagram() {
        let walk = SlotDatagrams(slot: 1, length: 5000, segmentSize: 1000, capacity: 70000, superFrame: true)
        #expect(walk.map(\.superFrameSegment) == [1000])
        #expect(walk.map(\.stored) == [5000] && walk.count == 1)
        #expect(SlotDatagrams(slot: 1, length: 5000, segmentSize: 1000, capacity: 70000).map(\.superFrameSegment) == [0, 0, 0, 0, 0])
    }

    /// Numbers stay inside the slot's range, and pointers map back to their datagram's number.
    @Test func numbersStayInTheSlot() {
        let many = walk(slot: 1, length: 70 * 10, segment: 10)
        #expect(many.count == 70 && many.last?.number == 64 + 63)
        let batch = PacketBatch(capacity: 4, dataCapacity: 1000)
        batch.lengths[1] = 250
        batch.segmentSizes[1] = 100
        #expect(batch.datagram(of: batch.data(1) + 8) == 64)
        #expect(batch.datagram(of: batch.data(1) + 108) == 65)
        #expect(batch.datagram(of: batch.data(1) + 208) == 66)
    }
}
