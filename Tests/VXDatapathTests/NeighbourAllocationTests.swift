// Answering ARP requests locally allocates nothing either: the reply is built in the worker's
// LocalReplies slots and written from there, with and without virtio headers.
import CMallocCounter
import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

@Suite("Steady state allocates nothing: local replies")
struct NeighbourAllocationTests {
    @Test(arguments: [false, true])
    func answeringARPRequests(offloads: Bool) {
        let datapath = AllocationTests.Datapath()
        let network = datapath.network
        network.neighbours.setIPs([IPAddress(v4: 0x0A00_0102)], of: NeighbourFrames.ownerMAC)
        let device = ReplayDevice(
            frame: NeighbourFrames.arpRequest(), header: offloads ? VirtioNetHeader() : nil, perRead: 64)
        let link = ReplayUnderlay(source: AllocationTests.peer)
        let worker = datapath.worker(device: device, link: link, offloads: offloads)
        let counted = AllocationTests().allocations { _ = worker.serviceDevice(0) }
        #expect(counted <= AllocationTests.allowed(packets: 2000 * 64), "\(counted) allocations for \(2000 * 64) requests")
        #expect(device.writes == 2020 * 64)
        #expect(link.sent == 0)
        withExtendedLifetime(datapath) {}
    }
}
