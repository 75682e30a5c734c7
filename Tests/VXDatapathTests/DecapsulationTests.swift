import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

@Suite("Decapsulation: underlay → TAP")
struct DecapsulationTests {
    let remoteHost = Bytes.mac(0x21)
    let localHost = Bytes.mac(0x01)
    let vtep = "192.0.2.10"

    @Test func validPacketIsDeliveredAndItsSourceLearned() {
        let h = Harness()
        let frame = Bytes.frame(to: localHost, from: remoteHost, length: 98)
        h.receive(Bytes.datagram(vni: 42, frame), from: vtep, now: 7)

        #expect(h.taps[0].written == [frame])
        #expect(h.learnEvents() == [LearnEvent(network: 0, mac: remoteHost, remote: IPAddress(vtep)!)])
        let s = h.snapshot
        #expect(s[0, .tunnelRxPackets] == 1)
        #expect(s[0, .tunnelRxBytes] == 8 + 98)
        #expect(s[0, .tapTxPackets] == 1)
        #expect(s[0, .tapTxBytes] == 98)
        #expect(h.drops == [])
        #expect(h.link.sent == [], "split horizon")
    }

    @Test func learnsAgainstTheSendersAddressNotItsPort() {
        let h = Harness()
        let frame = Bytes.frame(to: localHost, from: remoteHost)
        let address = IPAddress("2001:db8::10")!
        h.receive([(Bytes.datagram(vni: 42, frame), Endpoint(address: address, port: 1111))], now: 1)
        _ = h.networks[0].fdb.learn(remoteHost, behind: h.remotes.intern(address)!, now: 1)
        h.receive([(Bytes.datagram(vni: 42, frame), Endpoint(address: address, port: 2222))], now: 2)
        #expect(h.learnEvents() == [LearnEvent(network: 0, mac: remoteHost, remote: address)])
        #expect(h.taps[0].written.count == 2)
    }

    @Test func knownMACFromItsVTEPRefreshesAndQueuesNothing() throws {
        let h = Harness()
        _ = h.networks[0].fdb.learn(remoteHost, behind: h.remote(vtep), now: 1)
        h.receive(Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: remoteHost)), from: vtep, now: 90)
        #expect(h.learnEvents() == [])
        let entry = try #require(h.networks[0].fdb.entries().first)
        #expect(entry.lastSeen == 90)
        #expect(h.taps[0].written.count == 1)
    }

    @Test func movedMACQueuesALearnEvent() {
        let h = Harness()
        _ = h.networks[0].fdb.learn(remoteHost, behind: h.remote("192.0.2.99"), now: 1)
        h.receive(Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: remoteHost)), from: vtep, now: 2)
        #expect(h.learnEvents() == [LearnEvent(network: 0, mac: remoteHost, remote: IPAddress(vtep)!)])
        #expect(h.taps[0].written.count == 1)
        // The FDB itself is the control thread's to change.
        #expect(h.networks[0].fdb.lookup(remoteHost)?.remote == h.remote("192.0.2.99"))
    }

    @Test func oneLearnEventPerMACPerSecond() {
        let h = Harness()
        let datagram = Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: remoteHost))
        h.receive(Array(repeating: (datagram, Endpoint(address: IPAddress(vtep)!, port: 1)), count: 5), now: 10)
        h.receive(datagram, from: vtep, now: 10)
        #expect(h.learnEvents().count == 1)
        h.receive(datagram, from: vtep, now: 11)
        #expect(h.learnEvents().count == 1)
        // The same MAC from another VTEP in the same second is a different event.
        h.receive(datagram, from: "192.0.2.11", now: 11)
        #expect(h.learnEvents() == [LearnEvent(network: 0, mac: remoteHost, remote: IPAddress("192.0.2.11")!)])
        #expect(h.taps[0].written.count == 8)
    }

    @Test func fullLearnRingIsCountedAndTheFrameStillDelivered() {
        let h = Harness(ringCapacity: 2)
        let datagrams = (0..<5).map { i in
            (
                Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: Bytes.mac(UInt8(0x30 + i)))),
                Endpoint(address: IPAddress(vtep)!, port: 1)
            )
        }
        h.receive(datagrams, now: 3)
        #expect(h.taps[0].written.count == 5)
        #expect(h.learnEvents().map(\.mac) == [Bytes.mac(0x30), Bytes.mac(0x31)])
        #expect(h.snapshot[0, .learnQueueFull] == 3)
        #expect(h.drops == [])
        // Refused events were not remembered as sent: the next packet in the same second retries.
        h.receive(datagrams[2].0, from: vtep, now: 3)
        #expect(h.learnEvents().map(\.mac) == [Bytes.mac(0x32)])
    }

    @Test func iFlagClearIsBadFlags() {
        let h = Harness()
        h.receive(Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: remoteHost), flags: 0x00), from: vtep)
        h.receive(Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: remoteHost), flags: 0xF7), from: vtep)
        #expect(h.taps[0].written == [])
        #expect(h.drops == ["-:bad_flags=2"])
        #expect(h.learnEvents() == [])
        #expect(h.snapshot[0, .tunnelRxPackets] == 0)
    }

    @Test func reservedBitsAreIgnored() {
        let h = Harness()
        var datagram = Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: remoteHost))
        datagram[0] = 0xFF
        datagram[1] = 0xFF
        datagram[7] = 0xFF
        h.receive(datagram, from: vtep)
        #expect(h.taps[0].written.count == 1)
        #expect(h.drops == [])
    }

    @Test func unknownVNI() {
        let h = Harness()
        h.receive(Bytes.datagram(vni: 41, Bytes.frame(to: localHost, from: remoteHost)), from: vtep)
        h.receive(Bytes.datagram(vni: 42 << 8, Bytes.frame(to: localHost, from: remoteHost)), from: vtep)
        #expect(h.taps[0].written == [])
        #expect(h.drops == ["-:unknown_vni=2"])
        #expect(h.learnEvents() == [])
    }

    @Test func shortDatagramsAreTruncatedUnattributed() {
        let h = Harness()
        h.receive([
            ([], Endpoint(address: IPAddress(vtep)!, port: 1)),
            ([0x08], Endpoint(address: IPAddress(vtep)!, port: 1)),
            (Array(Bytes.vxlanHeader(vni: 42).prefix(7)), Endpoint(address: IPAddress(vtep)!, port: 1)),
        ])
        #expect(h.taps[0].written == [])
        #expect(h.drops == ["-:truncated=3"])
    }

    @Test func shortInnerFrameIsTruncatedOnTheNetworksRow() {
        let h = Harness()
        h.receive(Bytes.vxlanHeader(vni: 42), from: vtep)  // no frame at all
        h.receive(Bytes.datagram(vni: 42, Array(Bytes.frame(to: localHost, from: remoteHost).prefix(13))), from: vtep)
        #expect(h.taps[0].written == [])
        #expect(h.drops == ["0:truncated=2"])
        h.receive(Bytes.datagram(vni: 42, Array(Bytes.frame(to: localHost, from: remoteHost).prefix(14))), from: vtep)
        #expect(h.taps[0].written.map(\.count) == [14])
    }

    @Test func oversizeInnerFrames() {
        // Network 0 carries 1518-byte frames; the worker's buffers are sized for network 1's 9000.
        let h = Harness([.init(vni: 42, mtu: 1500), .init(vni: 43, mtu: 9000)])
        h.receive(Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: remoteHost, length: 1518)), from: vtep)
        h.receive(Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: remoteHost, length: 1519)), from: vtep)
        #expect(h.taps[0].written.map(\.count) == [1518])
        // Larger than the receive buffer: reported one byte over, never cut short and delivered.
        h.receive(Bytes.datagram(vni: 43, Bytes.frame(to: localHost, from: remoteHost, length: 9000)), from: vtep)
        h.receive(Bytes.datagram(vni: 43, Bytes.frame(to: localHost, from: remoteHost, length: 9001)), from: vtep)
        h.receive(Bytes.datagram(vni: 43, Bytes.frame(to: localHost, from: remoteHost, length: 12000)), from: vtep)
        #expect(h.taps[1].written.map(\.count) == [9000])
        #expect(h.drops == ["0:oversize=1", "1:oversize=2"])
    }

    @Test(arguments: ["ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "33:33:00:00:00:01", "00:00:00:00:00:00"])
    func invalidInnerSourceIsDropped(source: String) {
        let h = Harness()
        h.receive(Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: MACAddress(source)!)), from: vtep)
        #expect(h.taps[0].written == [])
        #expect(h.drops == ["0:bad_inner_source=1"])
        #expect(h.learnEvents() == [])
    }

    @Test func broadcastDestinationIsDeliveredNotReflooded() {
        let h = Harness()
        h.setFlood(0, ["192.0.2.10", "192.0.2.11", "192.0.2.12"])
        let frame = Bytes.frame(to: .broadcast, from: remoteHost)
        h.receive(Bytes.datagram(vni: 42, frame), from: vtep)
        #expect(h.taps[0].written == [frame])
        #expect(h.link.sent == [])
        #expect(h.link.sendCalls == 0)
    }

    @Test func staticMACFromAnotherVTEPIsAConflict() {
        let h = Harness()
        h.setStatic(0, remoteHost, behind: "192.0.2.50")
        h.receive(Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: remoteHost)), from: vtep)
        #expect(h.taps[0].written == [])
        #expect(h.drops == ["0:static_conflict=1"])
        #expect(h.learnEvents() == [])
        #expect(h.snapshot[0, .tunnelRxPackets] == 0)
        // From the VTEP the static entry names: delivered, nothing to learn.
        h.receive(Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: remoteHost)), from: "192.0.2.50")
        #expect(h.taps[0].written.count == 1)
        #expect(h.learnEvents() == [])
        #expect(h.networks[0].fdb.entries().first?.lastSeen == 0, "static entries are not aged, so not touched")
    }

    @Test func allowFrom() {
        let h = Harness([.init(vni: 42, allowFrom: ["192.0.2.0/28", "2001:db8:1::/48"])])
        let frame = Bytes.frame(to: localHost, from: remoteHost)
        h.receive(Bytes.datagram(vni: 42, frame), from: "192.0.2.15")
        h.receive(Bytes.datagram(vni: 42, frame), from: "2001:db8:1:ffff::1")
        h.receive(Bytes.datagram(vni: 42, frame), from: "192.0.2.16")
        h.receive(Bytes.datagram(vni: 42, frame), from: "2001:db8:2::1")
        h.receive(Bytes.datagram(vni: 42, frame), from: "::ffff:192.0.2.1")
        #expect(h.taps[0].written.count == 2)
        #expect(h.drops == ["0:not_allowed=3"])
        #expect(h.learnEvents().map(\.address.description) == ["192.0.2.15", "2001:db8:1:ffff::1"])
    }

    /// `allow_from: known`: only the VTEPs the control thread marked known get in, counted
    /// `not_allowed` otherwise; a VTEP marked later (joined the flood list) is accepted from then on.
    @Test func allowFromKnown() {
        let h = Harness([.init(vni: 42, learning: false, knownOnly: true)])
        let frame = Bytes.frame(to: localHost, from: remoteHost)
        let member = h.remote("192.0.2.10")
        _ = h.remote("192.0.2.11")  // interned (the router heard of it) but not known to this network
        h.networks[0].known.set([member])
        h.receive(Bytes.datagram(vni: 42, frame), from: "192.0.2.10")
        h.receive(Bytes.datagram(vni: 42, frame), from: "192.0.2.11")
        h.receive(Bytes.datagram(vni: 42, frame), from: "192.0.2.99")  // a stranger: not even interned
        #expect(h.taps[0].written.count == 1)
        #expect(h.drops == ["0:not_allowed=2"])
        h.networks[0].known.set([member, h.remote("192.0.2.11")])
        h.receive(Bytes.datagram(vni: 42, frame), from: "192.0.2.11")
        #expect(h.taps[0].written.count == 2)
        h.networks[0].known.set([])
        h.receive(Bytes.datagram(vni: 42, frame), from: "192.0.2.10")
        #expect(h.taps[0].written.count == 2)
        #expect(h.drops == ["0:not_allowed=3"])
    }

    @Test func learningDisabled() {
        let h = Harness([.init(vni: 42, learning: false)])
        h.receive(Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: remoteHost)), from: vtep)
        h.receive(Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: Bytes.mac(0x22))), from: vtep, now: 2)
        #expect(h.taps[0].written.count == 2)
        #expect(h.learnEvents() == [])
        #expect(h.drops == [])
    }

    @Test func tapWriteRefusedIsCounted() {
        let h = Harness()
        h.taps[0].acceptsWrites = false
        h.receive(Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: remoteHost, length: 80)), from: vtep)
        #expect(h.drops == ["0:tap_write_error=1"])
        #expect(h.snapshot[0, .tunnelRxPackets] == 1)
        #expect(h.snapshot[0, .tapTxPackets] == 0)
    }

    @Test func vniIsolation() {
        let h = Harness([.init(vni: 42), .init(vni: 43)])
        let frame43 = Bytes.frame(to: localHost, from: remoteHost, length: 77)
        h.receive(Bytes.datagram(vni: 43, frame43), from: vtep)
        #expect(h.taps[0].written == [])
        #expect(h.taps[1].written == [frame43])
        #expect(h.learnEvents() == [LearnEvent(network: 1, mac: remoteHost, remote: IPAddress(vtep)!)])
        let frame42 = Bytes.frame(to: localHost, from: remoteHost, length: 66)
        h.receive(Bytes.datagram(vni: 42, frame42), from: vtep)
        #expect(h.taps[0].written == [frame42])
        #expect(h.taps[1].written == [frame43])
        let s = h.snapshot
        #expect(s[0, .tapTxPackets] == 1)
        #expect(s[1, .tapTxPackets] == 1)
        #expect(s[0, .tapTxBytes] == 66)
        #expect(s[1, .tapTxBytes] == 77)
    }

    @Test func aStaticEntryInOneNetworkDoesNotAffectAnother() {
        let h = Harness([.init(vni: 42), .init(vni: 43)])
        h.setStatic(0, remoteHost, behind: "192.0.2.50")
        h.receive(Bytes.datagram(vni: 43, Bytes.frame(to: localHost, from: remoteHost)), from: vtep)
        #expect(h.taps[1].written.count == 1)
        #expect(h.drops == [])
    }

    /// A mixed batch: every datagram ends up exactly once in a delivery or a drop counter, and
    /// nothing goes back into the tunnel.
    @Test func mixedBatchAccountsForEveryDatagram() {
        let h = Harness([.init(vni: 42), .init(vni: 43)], batchSize: 4)
        h.setStatic(0, Bytes.mac(0x50), behind: "192.0.2.50")
        h.setFlood(0, ["192.0.2.1", "192.0.2.2"])
        h.setFlood(1, ["192.0.2.1"])
        let source = Endpoint(address: IPAddress(vtep)!, port: 4789)
        let good = Bytes.frame(to: .broadcast, from: remoteHost, length: 60)
        let datagrams: [[UInt8]] = [
            Bytes.datagram(vni: 42, good),
            Bytes.datagram(vni: 43, good),
            Bytes.datagram(vni: 42, good, flags: 0),
            Bytes.datagram(vni: 44, good),
            [1, 2, 3],
            Bytes.datagram(vni: 42, [1, 2, 3]),
            Bytes.datagram(vni: 43, Bytes.frame(to: .broadcast, from: .broadcast)),
            Bytes.datagram(vni: 42, Bytes.frame(to: .broadcast, from: Bytes.mac(0x50))),
            Bytes.datagram(vni: 42, Bytes.frame(to: localHost, from: remoteHost, length: 1600)),
            Bytes.datagram(vni: 43, good),
        ]
        h.receive(datagrams.map { ($0, source) })
        #expect(h.link.sent == [])
        #expect(h.taps[0].written == [good])
        #expect(h.taps[1].written == [good, good])
        let s = h.snapshot
        #expect(s[0, .tunnelRxPackets] == 1)
        #expect(s[1, .tunnelRxPackets] == 2)
        #expect(s[0, .tunnelRxBytes] == 68)
        #expect(s[1, .tunnelRxBytes] == 136)
        let dropped = (0..<s.rows).reduce(0) { $0 + s.dropTotal(row: $1) }
        #expect(dropped + 3 == UInt64(datagrams.count))
        #expect(
            h.drops == [
                "0:truncated=1", "0:oversize=1", "0:static_conflict=1", "1:bad_inner_source=1",
                "-:truncated=1", "-:bad_flags=1", "-:unknown_vni=1",
            ])
    }
}

@Suite("Counters")
struct CounterTests {
    @Test func snapshotsAddUp() {
        let a = WorkerCounters(networks: 2)
        let b = WorkerCounters(networks: 2)
        a.view.add(.tapRxPackets, row: 0)
        a.view.add(.tapRxBytes, row: 0, 100)
        b.view.add(.tapRxBytes, row: 0, 50)
        a.view.drop(.oversize, row: 1)
        b.view.drop(.oversize, row: 1, 2)
        b.view.drop(.unknownVNI, row: b.unattributedRow)
        let sum = a.snapshot() + b.snapshot()
        #expect(sum[0, .tapRxPackets] == 1)
        #expect(sum[0, .tapRxBytes] == 150)
        #expect(sum[1, drop: .oversize] == 3)
        #expect(sum.dropTotal(row: 1) == 3)
        #expect(sum[2, drop: .unknownVNI] == 1)
        #expect(sum.dropTotal(row: 0) == 0)
        #expect(a.rows == 3)
        #expect(CounterSnapshot(rows: 3) + CounterSnapshot(rows: 3) == CounterSnapshot(rows: 3))
    }

    @Test func namesAreDistinctSnakeCase() {
        let names = TrafficCounter.allCases.map(\.name) + DropReason.allCases.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.allSatisfy { $0.allSatisfy { $0.isLowercase || $0 == "_" } })
    }
}
