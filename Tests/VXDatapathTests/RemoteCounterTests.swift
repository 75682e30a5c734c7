// Per-remote-VTEP counting: the worker's lock-free address → index lookup in the remote table,
// and what the forwarder counts against each remote, both ways.
import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

@Suite("Per-remote counters")
struct RemoteCounterTests {
    let station = Bytes.mac(0x21)
    let local = Bytes.mac(0x01)

    @Test func workersFindInternedAddressesOnly() {
        let table = RemoteTable(capacity: 64)
        let view = table.view
        #expect(view.index(of: IPAddress("192.0.2.1")!) == nil)
        var interned: [IPAddress: RemoteIndex] = [:]
        for i in 0..<64 {
            let address = i % 2 == 0 ? IPAddress(v4: 0xC000_0200 + UInt32(i)) : IPAddress(v6High: 0x2001_0db8 << 32, low: UInt64(i))
            interned[address] = table.intern(address)!
        }
        for (address, index) in interned { #expect(view.index(of: address) == index, "\(address)") }
        #expect(view.index(of: IPAddress("192.0.2.200")!) == nil)
        // Same bits, other family: a different remote.
        #expect(view.index(of: IPAddress(v6High: 0, low: 0xC000_0200)) == nil)
        #expect(table.existingIndex(IPAddress(v4: 0xC000_0200)) == interned[IPAddress(v4: 0xC000_0200)])
    }

    @Test func receivedPacketsAndDropsCountAgainstTheSender() {
        let h = Harness([Harness.NetworkSpec(vni: 42, allowFrom: ["192.0.2.0/28"])])
        let known = h.remote("192.0.2.10")
        let outsider = h.remote("198.51.100.1")
        let frame = Bytes.frame(to: local, from: station, length: 98)
        h.receive(Bytes.datagram(vni: 42, frame), from: "192.0.2.10")
        h.receive(Bytes.datagram(vni: 42, frame, flags: 0), from: "192.0.2.10")
        h.receive(Bytes.datagram(vni: 7, frame), from: "192.0.2.10")
        h.receive(Bytes.datagram(vni: 42, frame), from: "198.51.100.1")
        // Not interned yet: counted per network only.
        h.receive(Bytes.datagram(vni: 42, frame), from: "192.0.2.11")

        let s = h.remoteCounters.snapshot(rows: h.remotes.count)
        #expect(s[known, .rxPackets] == 1)
        #expect(s[known, .rxBytes] == 8 + 98)
        #expect(s[known, drop: .badFlags] == 1)
        #expect(s[known, drop: .unknownVNI] == 1)
        #expect(s[outsider, .rxPackets] == 0)
        #expect(s[outsider, drop: .notAllowed] == 1)
        #expect(h.snapshot[0, .tunnelRxPackets] == 2)
    }

    @Test func sentPacketsCountAgainstEachDestination() {
        let h = Harness()
        h.setFlood(0, ["192.0.2.10", "192.0.2.11"])
        h.setStatic(0, Bytes.mac(0x33), behind: "192.0.2.12")
        h.transmit([Bytes.frame(to: .broadcast, from: local, length: 60)])
        h.transmit([Bytes.frame(to: Bytes.mac(0x33), from: local, length: 60)])
        let s = h.remoteCounters.snapshot(rows: h.remotes.count)
        for address in ["192.0.2.10", "192.0.2.11", "192.0.2.12"] {
            #expect(s[h.remote(address), .txPackets] == 1, "\(address)")
            #expect(s[h.remote(address), .txBytes] == 8 + 8 + 60, "\(address)")
        }
    }

    @Test func snapshotsSumAcrossWorkersOfDifferentLengths() {
        let a = RemoteCounters(capacity: 8)
        let b = RemoteCounters(capacity: 8)
        a.view.add(.rxPackets, remote: RemoteIndex(rawValue: 3), 5)
        b.view.add(.rxPackets, remote: RemoteIndex(rawValue: 3), 2)
        b.view.drop(.oversize, remote: RemoteIndex(rawValue: 0))
        let sum = a.snapshot(rows: 2) + b.snapshot(rows: 4)
        #expect(sum[RemoteIndex(rawValue: 3), .rxPackets] == 2, "rows past a snapshot's end count as zero")
        #expect(sum[RemoteIndex(rawValue: 0), drop: .oversize] == 1)
        #expect(a.load(.rxPackets, remote: RemoteIndex(rawValue: 3)) == 5)
        // Out-of-range indexes are ignored, never written.
        a.view.add(.rxPackets, remote: RemoteIndex(rawValue: 100))
        #expect(a.load(.rxPackets, remote: RemoteIndex(rawValue: 100)) == 0)
    }
}
