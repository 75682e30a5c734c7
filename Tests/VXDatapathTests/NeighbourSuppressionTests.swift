import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

/// ARP requests and neighbour solicitations, and the answers a VTEP owes them, written out byte by
/// byte (the NS and NA checksums were computed independently, in Python).
enum NeighbourFrames {
    static let asker: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]
    static let owner: [UInt8] = [0x02, 0, 0, 0, 0, 0x02]
    static let ownerMAC = MACAddress(0x02, 0, 0, 0, 0, 0x02)
    static let v6Asker: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x01]
    static let v6Owner: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x02]

    static func arpRequest(target: UInt8 = 2, operation: UInt8 = 1, sender: [UInt8] = [10, 0, 1, 1], vlan: [UInt8] = [])
        -> [UInt8]
    {
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] + asker + vlan + [0x08, 0x06]
            + [0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, operation] + asker + sender + [0, 0, 0, 0, 0, 0]
            + [10, 0, 1, target]
    }

    static func arpReply(target: UInt8 = 2, vlan: [UInt8] = []) -> [UInt8] {
        asker + owner + vlan + [0x08, 0x06]
            + [0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02] + owner + [10, 0, 1, target] + asker + [10, 0, 1, 1]
    }

    static func solicitation() -> [UInt8] {
        let solicitedNode: [UInt8] = [0xff, 0x02] + [UInt8](repeating: 0, count: 9) + [0x01, 0xff, 0x00, 0x00, 0x02]
        return [0x33, 0x33, 0xff, 0x00, 0x00, 0x02] + asker + [0x86, 0xdd]
            + [0x60, 0, 0, 0, 0x00, 32, 58, 255] + v6Asker + solicitedNode
            + [135, 0, 0x1c, 0x27, 0, 0, 0, 0] + v6Owner + [0x01, 0x01] + asker
    }

    static func advertisement() -> [UInt8] {
        asker + owner + [0x86, 0xdd] + [0x60, 0, 0, 0, 0x00, 32, 58, 255] + v6Owner + v6Asker
            + [136, 0, 0x8a, 0x71, 0x60, 0, 0, 0] + v6Owner + [0x02, 0x01] + owner
    }

    /// What the owner might send across the tunnel by itself: a gratuitous ARP and an unsolicited
    /// advertisement (S clear, O set) for 10.0.1.9 / 2001:db8::9 — which no entry holds.
    static func gratuitousARP(from mac: [UInt8]) -> [UInt8] {
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] + mac + [0x08, 0x06]
            + [0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01] + mac + [10, 0, 1, 9] + [0, 0, 0, 0, 0, 0] + [10, 0, 1, 9]
    }

    static func arpReplyFrom(_ mac: [UInt8]) -> [UInt8] {
        asker + mac + [0x08, 0x06]
            + [0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02] + mac + [10, 0, 1, 8] + asker + [10, 0, 1, 1]
    }

    static func unsolicitedAdvertisement(from mac: [UInt8]) -> [UInt8] {
        let allNodes: [UInt8] = [0xff, 0x02] + [UInt8](repeating: 0, count: 13) + [0x01]
        let nine: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x09]
        return [0x33, 0x33, 0, 0, 0, 1] + mac + [0x86, 0xdd] + [0x60, 0, 0, 0, 0x00, 32, 58, 255] + nine + allNodes
            + [136, 0, 0, 0, 0x20, 0, 0, 0] + nine + [0x02, 0x01] + mac
    }
}

@Suite("ARP/ND suppression on the encapsulation path")
struct NeighbourSuppressionTests {
    typealias F = NeighbourFrames
    let flood = ["192.0.2.10", "192.0.2.11"]

    func harness(suppression: Bool = true, offloads: Bool = false, batchSize: Int = 8) -> Harness {
        let h = Harness(
            [Harness.NetworkSpec(vni: 42, arpSuppression: suppression)], batchSize: batchSize, offloads: offloads)
        h.setFlood(0, flood)
        h.setStatic(0, F.ownerMAC, behind: "192.0.2.11")
        #expect(h.networks[0].neighbours.setIPs([IPAddress("10.0.1.2")!, IPAddress("2001:db8::2")!], of: F.ownerMAC) == .set)
        return h
    }

    @Test func aKnownIPv4AddressIsAnsweredLocally() {
        let h = harness()
        h.transmit([F.arpRequest()])
        #expect(h.taps[0].written == [F.arpReply()])
        #expect(h.link.sent.isEmpty, "never sent into the tunnel")
        let s = h.snapshot
        #expect(s[0, .neighAnswered] == 1)
        #expect(s[0, .neighFlooded] == 0)
        #expect(s[0, .tapRxPackets] == 1)
        #expect(s[0, .tapTxPackets] == 1)
        #expect(s[0, .tapTxBytes] == UInt64(F.arpReply().count))
        #expect(s[0, .floodedFrames] == 0)
        #expect(h.drops == [])
    }

    @Test func aKnownIPv6AddressIsAnsweredLocally() {
        let h = harness()
        h.transmit([F.solicitation()])
        #expect(h.taps[0].written == [F.advertisement()])
        #expect(h.link.sent.isEmpty)
        #expect(h.snapshot[0, .neighAnswered] == 1)
    }

    @Test func anUnknownAddressIsFloodedAsBefore() {
        let h = harness()
        let request = F.arpRequest(target: 3)
        h.transmit([request])
        #expect(h.taps[0].written == [])
        #expect(h.link.sent.map(\.destination.address) == flood.map { IPAddress($0)! })
        #expect(h.link.sent.allSatisfy { Encapsulated($0.bytes).inner == request })
        let s = h.snapshot
        #expect(s[0, .neighFlooded] == 1)
        #expect(s[0, .neighAnswered] == 0)
        #expect(s[0, .floodedFrames] == 1)
    }

    @Test func malformedIsCountedAndForwarded() {
        let h = harness()
        let truncated = Array(F.arpRequest().prefix(14 + 20))
        var badChecksum = F.solicitation()
        badChecksum[14 + 40 + 3] ^= 1
        h.transmit([truncated, badChecksum])
        #expect(h.taps[0].written == [])
        #expect(h.link.sent.count == 2 * flood.count)
        let s = h.snapshot
        #expect(s[0, .neighUnanswerable] == 2)
        #expect(s[0, .neighAnswered] == 0)
        #expect(s[0, .neighFlooded] == 0)
    }

    @Test func repliesAndAnnouncementsAreNotQuestions() {
        let h = harness()
        h.transmit([F.arpRequest(operation: 2), F.gratuitousARP(from: F.asker), F.arpRequest(sender: [0, 0, 0, 0])])
        #expect(h.taps[0].written == [])
        #expect(h.link.sent.count == 3 * flood.count, "all broadcast, all flooded")
        let s = h.snapshot
        #expect(s[0, .neighAnswered] + s[0, .neighFlooded] + s[0, .neighUnanswerable] == 0)
    }

    @Test func aVLANTaggedRequestGetsATaggedReply() {
        let h = harness()
        let tag: [UInt8] = [0x81, 0x00, 0x00, 0x64]
        h.transmit([F.arpRequest(vlan: tag)])
        #expect(h.taps[0].written == [F.arpReply(vlan: tag)])
        #expect(h.link.sent.isEmpty)
    }

    @Test func withOffloadsTheReplyCarriesAVirtioHeader() {
        let h = harness(offloads: true)
        let header = [UInt8](repeating: 0, count: VirtioNetHeader.size)
        h.transmit([header + F.arpRequest(), header + F.solicitation()])
        #expect(h.taps[0].written == [header + F.arpReply(), header + F.advertisement()])
        #expect(h.link.sent.isEmpty)
        #expect(h.snapshot[0, .neighAnswered] == 2)
    }

    @Test func offWhenSwitchedOff() {
        let h = harness(suppression: false)
        h.transmit([F.arpRequest(), F.solicitation()])
        #expect(h.taps[0].written == [])
        #expect(h.link.sent.count == 2 * flood.count)
        let s = h.snapshot
        #expect(s[0, .neighAnswered] + s[0, .neighFlooded] + s[0, .neighUnanswerable] == 0)
    }

    /// More answers than the worker has reply slots, between ordinary frames: every question is
    /// answered, in order, and every other frame still leaves.
    @Test func aBatchFullOfQuestions() {
        let h = harness(batchSize: 64)
        var frames: [[UInt8]] = []
        for k in 0..<40 {
            frames.append(F.arpRequest())
            if k % 10 == 0 { frames.append(Bytes.frame(to: F.ownerMAC, from: Bytes.mac(0x01))) }
        }
        h.transmit(frames)
        #expect(h.taps[0].written.count == 40)
        #expect(h.taps[0].written.allSatisfy { $0 == F.arpReply() })
        #expect(h.link.sent.count == 4, "the four ordinary frames, unicast to the owner's VTEP")
        #expect(h.snapshot[0, .neighAnswered] == 40)
        #expect(h.snapshot[0, .tapRxPackets] == 44)
    }

    @Test func aRefusedReplyIsCounted() {
        let h = harness()
        h.taps[0].acceptsWrites = false
        h.transmit([F.arpRequest()])
        #expect(h.link.sent.isEmpty)
        #expect(h.drops == ["0:tap_write_error=1"])
        #expect(h.snapshot[0, .neighAnswered] == 1)
    }

    @Test func theTableFollowsItsWriterAtOnce() {
        let h = harness()
        let table = h.networks[0].neighbours
        let other = MACAddress(0x02, 0, 0, 0, 0, 0x07)
        table.setIPs([IPAddress("10.0.1.2")!], of: other)
        h.transmit([F.arpRequest()])
        #expect(h.taps[0].written.first.map { Array($0[6..<12]) } == other.octets)
        table.removeIPs(of: other)
        h.transmit([F.arpRequest()])
        #expect(h.taps[0].written.count == 1, "removed: flooded instead")
        #expect(h.link.sent.count == flood.count)
    }

    /// Nothing from the tunnel writes the table: not a gratuitous ARP, not an ARP reply, not an
    /// unsolicited advertisement, not even one claiming an address the table holds.
    @Test func theTunnelNeverChangesTheTable() {
        let h = harness()
        let stranger: [UInt8] = [0x02, 0, 0, 0, 0, 0x66]
        var claim = F.gratuitousARP(from: stranger)
        claim[28 + 3] = 2  // sender IP 10.0.1.2: a stranger claiming the owner's address
        claim[38 + 3] = 2
        h.receive(
            [
                F.gratuitousARP(from: stranger), F.arpReplyFrom(stranger), F.unsolicitedAdvertisement(from: stranger), claim,
            ].map { (Bytes.datagram(vni: 42, $0), Endpoint(address: IPAddress("192.0.2.10")!, port: 4789)) })
        #expect(h.taps[0].written.count == 4, "delivered as usual")
        let table = h.networks[0].neighbours
        #expect(table.count == 2)
        #expect(table.lookup(IPAddress("10.0.1.9")!) == nil)
        #expect(table.lookup(IPAddress("2001:db8::9")!) == nil)
        #expect(table.lookup(IPAddress("10.0.1.2")!) == F.ownerMAC)
        h.transmit([F.arpRequest()])
        #expect(h.taps[0].written.last == F.arpReply(), "still answered with the entry's MAC")
    }
}
