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
}
