// Steady state allocates nothing: a worker forwarding batch after batch (encap with an FDB hit,
// decap with a learned source; with offloads, segmentation of TSO super-frames and coalescing of
// GRO-received segments) makes zero heap allocations per packet once warmed up. Counted with the
// malloc interposer in CMallocCounter, on the test's own thread (the test body is synchronous, so
// it stays on one thread throughout).
import CMallocCounter
import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

@Suite("Steady state allocates nothing")
struct AllocationTests {
    static let peer = SteadyDatapath.peer
    typealias Datapath = SteadyDatapath

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

    /// An IPv4 TCP frame (12 bytes of options) from the local MAC to the remote one.
    static func frame(payload: Int = 1400 - 66, seq: UInt32 = 1, pseudoOnly: Bool = false) -> [UInt8] {
        Bytes.tcpFrame(
            to: SteadyDatapath.remoteMAC, from: SteadyDatapath.localMAC, payload: payload, seq: seq,
            pseudoOnly: pseudoOnly)
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
        let device = ReplayDevice(frame: Self.frame(), perRead: 64)
        let link = ReplayUnderlay(source: Self.peer)
        let worker = datapath.worker(device: device, link: link)
        let counted = allocations { _ = worker.serviceDevice(0) }
        #expect(counted <= Self.allowed(packets: 2000 * 64), "\(counted) allocations for \(2000 * 64) frames")
        #expect(link.sent == 2020 * 64)
        withExtendedLifetime(datapath) {}
    }

    @Test func encapsulationWithSegmentation() {
        let datapath = Datapath()
        // A 64 KB-class TSO4 super-frame: 40 segments of 1398 bytes.
        let superFrame = Self.frame(payload: 40 * 1398, pseudoOnly: true)
        let device = ReplayDevice(frame: superFrame, header: Bytes.tso4Header(gsoSize: 1398), perRead: 4)
        let link = ReplayUnderlay(source: Self.peer)
        let worker = datapath.worker(device: device, link: link, offloads: true)
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
        let device = ReplayDevice(frame: [0], perRead: 0)
        let link = ReplayUnderlay(datagrams: Self.datagrams(64), gro: false, source: Self.peer)
        let worker = datapath.worker(device: device, link: link)
        let counted = allocations { _ = worker.serviceUnderlay(now: 2) }
        #expect(counted <= Self.allowed(packets: 2000 * 64), "\(counted) allocations for \(2000 * 64) datagrams")
        #expect(device.writes == 2020 * 64)
        withExtendedLifetime(datapath) {}
    }

    /// `vouched`: the outer checksum stands for the inner ones, so the coalescer skips its sums.
    @Test(arguments: [false, true])
    func decapsulationWithGROAndCoalescing(vouched: Bool) {
        let datapath = Datapath()
        let device = ReplayDevice(frame: [0], perRead: 0)
        let link = ReplayUnderlay(datagrams: Self.datagrams(40), gro: true, source: Self.peer)
        let worker = datapath.worker(device: device, link: link, offloads: true, outerChecksumVouches: vouched)
        let counted = allocations { _ = worker.serviceUnderlay(now: 2) }
        #expect(counted <= Self.allowed(packets: 2000 * 40), "\(counted) allocations for \(2000 * 40) datagrams")
        // 40 segments of 1334 bytes make one super-frame per receive.
        #expect(device.writes == 2020)
        withExtendedLifetime(datapath) {}
    }
}
