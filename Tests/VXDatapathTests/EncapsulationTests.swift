import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

@Suite("Encapsulation: TAP → underlay")
struct EncapsulationTests {
    let local = Bytes.mac(0x01)
    let peer = Bytes.mac(0x02)

    @Test func unicastToAStaticEntryGoesToThatVTEPOnly() throws {
        let h = Harness()
        h.setFlood(0, ["192.0.2.10", "192.0.2.11"])
        h.setStatic(0, peer, behind: "192.0.2.11")
        let frame = Bytes.frame(to: peer, from: local, length: 200)
        h.transmit([frame])

        try #require(h.link.sent.count == 1)
        let sent = h.link.sent[0]
        #expect(sent.destination == Endpoint(address: IPAddress("192.0.2.11")!, port: 4789))
        #expect(sent.network == 0)
        let packet = Encapsulated(sent.bytes)
        #expect(packet.destinationPort == 4789)
        #expect(Harness.sourcePorts.contains(packet.sourcePort))
        #expect(packet.udpLength == UInt16(8 + 8 + 200))
        #expect(packet.checksum == 0)
        #expect(packet.vxlan == [0x08, 0, 0, 0, 0, 0, 0x2a, 0])
        #expect(packet.inner == frame)
        #expect(sent.bytes.count == 16 + 200)

        let s = h.snapshot
        #expect(s[0, .tapRxPackets] == 1)
        #expect(s[0, .tapRxBytes] == 200)
        #expect(s[0, .tunnelTxPackets] == 1)
        #expect(s[0, .tunnelTxBytes] == 216)
        #expect(s[0, .floodedFrames] == 0)
        #expect(h.drops == [])
        #expect(h.learnEvents() == [], "encapsulation learns nothing")
        #expect(h.taps[0].written == [], "nothing goes back to the TAP")
    }

    @Test func unicastToALearnedEntry() {
        let h = Harness()
        h.setFlood(0, ["192.0.2.10", "192.0.2.11"])
        _ = h.networks[0].fdb.learn(peer, behind: h.remote("192.0.2.10"), now: 1)
        h.transmit([Bytes.frame(to: peer, from: local)])
        #expect(h.link.sent.map(\.destination.address) == [IPAddress("192.0.2.10")!])
    }

    @Test func ipv6Underlay() {
        let h = Harness()
        h.setStatic(0, peer, behind: "2001:db8::11")
        h.transmit([Bytes.frame(to: peer, from: local)])
        #expect(h.link.sent.map(\.destination) == [Endpoint(address: IPAddress("2001:db8::11")!, port: 4789)])
    }

    @Test func broadcastGoesToEveryFloodListMemberOnce() {
        let h = Harness()
        let members = ["192.0.2.10", "192.0.2.11", "2001:db8::12"]
        h.setFlood(0, members)
        h.setStatic(0, peer, behind: "192.0.2.99")  // irrelevant to a broadcast
        let frame = Bytes.frame(to: .broadcast, from: local, length: 60, etherType: 0x0806)
        h.transmit([frame])

        #expect(h.link.sent.map(\.destination.address) == members.map { IPAddress($0)! })
        #expect(h.link.sent.allSatisfy { $0.destination.port == 4789 })
        let packets = h.link.sent.map { Encapsulated($0.bytes) }
        #expect(packets.allSatisfy { $0.inner == frame && $0.vxlan == Bytes.vxlanHeader(vni: 42) })
        #expect(Set(packets.map(\.sourcePort)).count == 1, "one frame, one flow, one source port")
        let s = h.snapshot
        #expect(s[0, .floodedFrames] == 1)
        #expect(s[0, .tapRxPackets] == 1)
        #expect(s[0, .tunnelTxPackets] == 3)
        #expect(s[0, .tunnelTxBytes] == 3 * (16 + 60))
    }

    @Test func multicastAndUnknownUnicastAreFlooded() throws {
        let h = Harness()
        h.setFlood(0, ["192.0.2.10", "192.0.2.11"])
        let multicast = try #require(MACAddress("01:00:5e:00:00:fb"))
        // A static entry for a multicast MAC is ignored: group destinations always flood.
        h.networks[0].fdb.setStatic(multicast, remote: h.remote("192.0.2.50"))
        h.transmit([Bytes.frame(to: multicast, from: local), Bytes.frame(to: Bytes.mac(0x77), from: local)])
        #expect(h.link.sent.count == 4)
        #expect(Set(h.link.sent.map(\.destination.address)) == [IPAddress("192.0.2.10")!, IPAddress("192.0.2.11")!])
        #expect(h.snapshot[0, .floodedFrames] == 2)
    }

    @Test func emptyFloodListDropsAsNoDestination() {
        let h = Harness()
        h.transmit([Bytes.frame(to: .broadcast, from: local), Bytes.frame(to: peer, from: local)])
        #expect(h.link.sent == [])
        #expect(h.link.sendCalls == 0)
        #expect(h.drops == ["0:no_destination=2"])
        #expect(h.snapshot[0, .tapRxPackets] == 2)
        #expect(h.snapshot[0, .tunnelTxPackets] == 0)
    }

    @Test func shortFramesAreTruncated() {
        let h = Harness()
        h.setFlood(0, ["192.0.2.10"])
        let short = Array(Bytes.frame(to: .broadcast, from: local).prefix(13))
        h.transmit([short, [], [0xff]])
        #expect(h.link.sent == [])
        #expect(h.drops == ["0:truncated=3"])
        #expect(h.snapshot[0, .tapRxPackets] == 3)
        #expect(h.snapshot[0, .tapRxBytes] == 14)
        // Exactly a header is enough.
        h.transmit([Array(Bytes.frame(to: .broadcast, from: local).prefix(14))])
        #expect(h.link.sent.count == 1)
        #expect(Encapsulated(h.link.sent[0].bytes).inner.count == 14)
    }

    @Test func framesOverMaxFrameAreOversize() {
        // MTU 1500: 1518-byte frames (one VLAN tag) pass, 1519 do not. The worker's buffers are
        // sized for a larger network so the frame arrives whole.
        let h = Harness([.init(vni: 42, mtu: 1500), .init(vni: 43, mtu: 9000)])
        #expect(h.networks[0].maxFrame == 1518)
        h.setFlood(0, ["192.0.2.10"])
        h.transmit([
            Bytes.frame(to: .broadcast, from: local, length: 1518),
            Bytes.frame(to: .broadcast, from: local, length: 1519),
        ])
        #expect(h.link.sent.map(\.bytes.count) == [16 + 1518])
        #expect(h.drops == ["0:oversize=1"])
        #expect(h.snapshot[0, .tapRxBytes] == 1518 + 1519)
    }

    @Test func frameLargerThanTheReadBufferIsOversize() {
        let h = Harness()
        h.setFlood(0, ["192.0.2.10"])
        h.transmit([Bytes.frame(to: .broadcast, from: local, length: 4000)])
        #expect(h.link.sent == [])
        #expect(h.drops == ["0:oversize=1"])
    }

    @Test func underlayLimitCapsMaxFrame() {
        // An underlay that carries 1464-byte frames (1500 − 36) caps a 1500-MTU network there.
        let h = Harness([.init(vni: 42, mtu: 1500)], underlayMaxFrame: 1464)
        #expect(h.networks[0].maxFrame == 1464)
        h.setFlood(0, ["192.0.2.10"])
        h.transmit([
            Bytes.frame(to: .broadcast, from: local, length: 1464),
            Bytes.frame(to: .broadcast, from: local, length: 1465),
        ])
        #expect(h.link.sent.count == 1)
        #expect(h.drops == ["0:oversize=1"])
    }

    @Test func sameFlowSameSourcePortDifferentFlowsDiffer() {
        let h = Harness()
        h.setStatic(0, peer, behind: "192.0.2.10")
        h.transmit([
            Bytes.udpFrame(to: peer, from: local, sourcePort: 1000),
            Bytes.udpFrame(to: peer, from: local, sourcePort: 1000),
        ])
        let repeated = Set(h.link.sent.map { Encapsulated($0.bytes).sourcePort })
        #expect(repeated.count == 1)

        h.transmit((0..<64).map { Bytes.udpFrame(to: peer, from: local, sourcePort: UInt16(2000 + $0)) })
        let ports = h.link.sent.dropFirst(2).map { Encapsulated($0.bytes).sourcePort }
        #expect(ports.count == 64)
        #expect(ports.allSatisfy { Harness.sourcePorts.contains($0) })
        #expect(Set(ports).count >= 32, "64 flows used \(Set(ports).count) source port(s)")
    }

    @Test func manyFramesAcrossSeveralReads() {
        // 20 frames with a batch size of 8: three reads, every frame sent once, in order.
        let h = Harness(batchSize: 8)
        h.setStatic(0, peer, behind: "192.0.2.10")
        let frames = (0..<20).map { i in Bytes.frame(to: peer, from: local, length: 60 + i) }
        h.taps[0].pending = frames
        #expect(h.worker.serviceDevice(0) == 8)
        #expect(h.worker.serviceDevice(0) == 8)
        #expect(h.worker.serviceDevice(0) == 4)
        #expect(h.worker.serviceDevice(0) == 0)
        #expect(h.link.sent.map { Encapsulated($0.bytes).inner } == frames)
        #expect(h.snapshot[0, .tunnelTxPackets] == 20)
    }

    /// A batch of floods that does not fit the outbound list in one go: the forwarder stops, the
    /// worker sends what is listed, and the rest follows. Every copy leaves exactly once.
    @Test func floodFanOutLargerThanTheOutboundList() {
        let h = Harness([.init(vni: 42, floodCapacity: 16)], batchSize: 8)
        let members = (1...16).map { "192.0.2.\($0)" }
        h.setFlood(0, members)
        let frames = (0..<8).map { i in Bytes.frame(to: .broadcast, from: Bytes.mac(UInt8(0x10 + i)), length: 64) }
        h.transmit(frames)
        #expect(h.link.sent.count == 8 * 16)
        #expect(h.link.sendCalls > 1)
        for (i, frame) in frames.enumerated() {
            let copies = h.link.sent.filter { Encapsulated($0.bytes).inner == frame }
            #expect(copies.map(\.destination.address) == members.map { IPAddress($0)! }, "frame \(i)")
        }
        #expect(h.snapshot[0, .floodedFrames] == 8)
        #expect(h.snapshot[0, .tunnelTxPackets] == 128)
    }

    @Test func eachNetworkUsesItsOwnVNIFDBAndFloodList() {
        let h = Harness([.init(vni: 42), .init(vni: 43)])
        h.setFlood(0, ["192.0.2.10"])
        h.setFlood(1, ["192.0.2.20", "192.0.2.21"])
        h.setStatic(1, peer, behind: "192.0.2.22")
        h.transmit([Bytes.frame(to: peer, from: local)], on: 0)  // unknown in network 0: flood
        h.transmit([Bytes.frame(to: peer, from: local)], on: 1)  // static in network 1
        h.transmit([Bytes.frame(to: .broadcast, from: local)], on: 1)
        #expect(
            h.link.sent.map(\.destination.address.description) == [
                "192.0.2.10", "192.0.2.22", "192.0.2.20", "192.0.2.21",
            ])
        #expect(h.link.sent.map(\.network) == [0, 1, 1, 1])
        #expect(h.link.sent.map { Encapsulated($0.bytes).vxlan[6] } == [42, 43, 43, 43])
        let s = h.snapshot
        #expect(s[0, .tunnelTxPackets] == 1)
        #expect(s[1, .tunnelTxPackets] == 3)
        #expect(s[0, .tapRxPackets] == 1)
        #expect(s[1, .tapRxPackets] == 2)
    }

    @Test func sendStatusesAreCounted() {
        let h = Harness()
        h.setFlood(0, ["192.0.2.1", "192.0.2.2", "192.0.2.3"])
        h.link.status = { sent in
            switch sent.destination.address.description {
            case "192.0.2.2": .tooBig
            case "192.0.2.3": .failed
            default: .sent
            }
        }
        h.transmit([Bytes.frame(to: .broadcast, from: local, length: 100)])
        #expect(h.link.sent.map(\.destination.address.description) == ["192.0.2.1"])
        #expect(h.drops == ["0:oversize=1", "0:send_error=1"])
        let s = h.snapshot
        #expect(s[0, .tunnelTxPackets] == 1)
        #expect(s[0, .tunnelTxBytes] == 116)
        #expect(s[0, .tapRxPackets] == 1)
    }

    @Test func unicastTooBigAndFailed() {
        let h = Harness()
        h.setStatic(0, peer, behind: "192.0.2.1")
        h.link.status = { _ in .tooBig }
        h.transmit([Bytes.frame(to: peer, from: local)])
        h.link.status = { _ in .failed }
        h.transmit([Bytes.frame(to: peer, from: local), Bytes.frame(to: peer, from: local)])
        #expect(h.drops == ["0:oversize=1", "0:send_error=2"])
        #expect(h.snapshot[0, .tunnelTxPackets] == 0)
        #expect(h.snapshot[0, .tapRxPackets] == 3)
    }
}
