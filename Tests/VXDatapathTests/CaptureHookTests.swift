// The datapath's capture hooks, driven through the worker with fakes: what is copied into the
// capture ring, with which point, direction, reason and packet number — and nothing while no
// capture runs.
import Testing
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
        h.setStatic(0, AllocationTests.remoteMAC, behind: "192.0.2.10")
        _ = tap.start(CaptureSelection(points: [.inner, .outer], snapLength: 2048))
        let header = VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum, gsoType: VirtioNetHeader.gsoTCPv4, headerLength: 66,
            gsoSize: 1398, checksumStart: 34, checksumOffset: 16)
        var virtio = [UInt8](repeating: 0, count: VirtioNetHeader.size)
        virtio.withUnsafeMutableBytes { header.encode(to: $0.baseAddress!) }
        h.transmit([virtio + AllocationTests.frame(payload: 3 * 1398, pseudoOnly: true)])
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
}
