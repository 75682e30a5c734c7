import Testing
import VXWire

@testable import VXDatapath

@Suite("NeighbourTable: MAC/IP entries")
struct NeighbourTableTests {
    let a = MACAddress(0x02, 0, 0, 0, 0, 0x0a)
    let b = MACAddress(0x02, 0, 0, 0, 0, 0x0b)
    func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    @Test func setLookupAndRemove() {
        let table = NeighbourTable(maxEntries: 8)
        #expect(table.setIPs([ip("10.0.1.2"), ip("2001:db8::2")], of: a) == .set)
        #expect(table.view.lookup(ip("10.0.1.2")) == a)
        #expect(table.view.lookup(ip("2001:db8::2")) == a)
        #expect(table.view.lookup(ip("10.0.1.3")) == nil)
        #expect(table.count == 2)
        #expect(table.removeIPs(of: a) == [ip("10.0.1.2"), ip("2001:db8::2")])
        #expect(table.view.lookup(ip("10.0.1.2")) == nil)
        #expect(table.view.lookup(ip("2001:db8::2")) == nil)
        #expect(table.count == 0)
        #expect(table.removeIPs(of: a) == [])
    }

    @Test func familiesDoNotAlias() {
        // ::a00:102 has the same low word as 10.0.1.2.
        let table = NeighbourTable(maxEntries: 8)
        table.setIPs([ip("10.0.1.2")], of: a)
        #expect(table.view.lookup(ip("::a00:102")) == nil)
        table.setIPs([ip("::a00:102")], of: b)
        #expect(table.view.lookup(ip("10.0.1.2")) == a)
        #expect(table.view.lookup(ip("::a00:102")) == b)
    }

    @Test func settingAgainReplacesTheList() {
        let table = NeighbourTable(maxEntries: 8)
        table.setIPs([ip("10.0.1.2"), ip("10.0.1.3")], of: a)
        table.setIPs([ip("10.0.1.3"), ip("10.0.1.4")], of: a)
        #expect(table.view.lookup(ip("10.0.1.2")) == nil)
        #expect(table.view.lookup(ip("10.0.1.3")) == a)
        #expect(table.view.lookup(ip("10.0.1.4")) == a)
        #expect(table.ips(of: a) == [ip("10.0.1.3"), ip("10.0.1.4")])
        #expect(table.count == 2)
        table.setIPs([], of: a)
        #expect(table.count == 0)
        #expect(table.entries.isEmpty)
    }

    @Test func anAddressMovesToTheNewestMAC() {
        let table = NeighbourTable(maxEntries: 8)
        table.setIPs([ip("10.0.1.2"), ip("10.0.1.5")], of: a)
        table.setIPs([ip("10.0.1.2")], of: b)
        #expect(table.view.lookup(ip("10.0.1.2")) == b)
        #expect(table.ips(of: a) == [ip("10.0.1.5")])
        #expect(table.count == 2)
        table.removeIPs(of: a)
        #expect(table.view.lookup(ip("10.0.1.2")) == b, "removing a's list leaves b's address")
    }

    @Test func fullRefusesWithoutChanging() {
        let table = NeighbourTable(maxEntries: 2)
        #expect(table.setIPs([ip("10.0.1.1"), ip("10.0.1.2")], of: a) == .set)
        #expect(table.setIPs([ip("10.0.1.3")], of: b) == .full)
        #expect(table.view.lookup(ip("10.0.1.3")) == nil)
        #expect(table.setIPs([ip("10.0.1.3")], of: a) == .set, "a replaces its own: room enough")
        #expect(table.view.lookup(ip("10.0.1.1")) == nil)
    }

    /// Many entries in a small table, removed in a scrambled order: backward-shift deletion must
    /// keep every remaining entry findable.
    @Test func removalKeepsProbeRunsIntact() {
        let table = NeighbourTable(maxEntries: 64)
        let macs = (0..<64).map { MACAddress(0x02, 0, 0, 0, 1, UInt8($0)) }
        for (k, mac) in macs.enumerated() { table.setIPs([IPAddress(v4: 0x0A00_0000 + UInt32(k))], of: mac) }
        var remaining = Set(0..<64)
        for k in (0..<64).map({ ($0 * 37) % 64 }) {
            table.removeIPs(of: macs[k])
            remaining.remove(k)
            for r in remaining {
                #expect(table.view.lookup(IPAddress(v4: 0x0A00_0000 + UInt32(r))) == macs[r])
            }
        }
        #expect(table.count == 0)
    }
}
