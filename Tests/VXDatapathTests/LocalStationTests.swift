import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

/// The stations behind a TAP: what a frame says (`StationSighting`), what the worker reports
/// (`.tap` learn events, at most every few seconds per station), and the control thread's table
/// (`LocalStations`: bounded, aged).
@Suite("Local stations: sightings, reports, the table")
struct LocalStationTests {
    typealias F = NeighbourFrames
    let asker = MACAddress(0x02, 0, 0, 0, 0, 0x01)

    func sighting(_ frame: [UInt8]) -> StationSighting? {
        frame.withUnsafeBytes { StationSighting.of(frame: $0.baseAddress!, length: $0.count) }
    }

    @Test func arpGivesTheSenderAddress() {
        #expect(sighting(F.arpRequest()) == StationSighting(mac: asker, ip: IPAddress("10.0.1.1")!))
        #expect(sighting(F.arpReply()) == StationSighting(mac: F.ownerMAC, ip: IPAddress("10.0.1.2")!))
        #expect(
            sighting(F.arpRequest(vlan: [0x81, 0x00, 0x00, 0x05])) == StationSighting(mac: asker, ip: IPAddress("10.0.1.1")!))
    }

    @Test func arpThatClaimsNothingGivesTheMACAlone() {
        // A probe (RFC 5227) tests an address; it does not hold it.
        #expect(sighting(F.arpRequest(sender: [0, 0, 0, 0])) == StationSighting(mac: asker))
        #expect(sighting(F.arpRequest(sender: [224, 0, 0, 1])) == StationSighting(mac: asker))
        #expect(sighting(F.arpRequest(sender: [127, 0, 0, 1])) == StationSighting(mac: asker))
        #expect(sighting(F.arpRequest(sender: [255, 255, 255, 255])) == StationSighting(mac: asker))
        // The sender hardware address is not the frame's source: a proxy, not the holder.
        var proxied = F.arpRequest()
        proxied[14 + 8 + 5] = 0x77
        #expect(sighting(proxied) == StationSighting(mac: asker))
        // Not a request or a reply.
        #expect(sighting(F.arpRequest(operation: 3)) == StationSighting(mac: asker))
        // Truncated ARP.
        #expect(sighting(Array(F.arpRequest().prefix(30))) == StationSighting(mac: asker))
    }

    @Test func neighbourDiscoveryGivesTheClaimedAddress() {
        #expect(sighting(F.solicitation()) == StationSighting(mac: asker, ip: IPAddress("2001:db8::1")!))
        #expect(sighting(F.advertisement()) == StationSighting(mac: F.ownerMAC, ip: IPAddress("2001:db8::2")!))
    }

    @Test func neighbourDiscoveryThatIsWrongClaimsNothing() {
        var badSum = F.advertisement()
        badSum[14 + 42] ^= 0xFF
        #expect(sighting(badSum) == StationSighting(mac: F.ownerMAC))
        var hop = F.advertisement()
        hop[14 + 7] = 64  // not from this link
        #expect(sighting(hop) == StationSighting(mac: F.ownerMAC))
        var badSolicitation = F.solicitation()
        badSolicitation[14 + 42] ^= 0xFF
        #expect(sighting(badSolicitation) == StationSighting(mac: asker))
        #expect(sighting(Array(F.advertisement().prefix(14 + 50))) == StationSighting(mac: F.ownerMAC))
    }

    @Test func otherFramesGiveTheMACAndNoneFromAGroupOrZeroSource() {
        let local = Bytes.mac(0x01)
        #expect(sighting(Bytes.frame(to: Bytes.mac(0x02), from: local)) == StationSighting(mac: local))
        #expect(sighting(Bytes.frame(to: Bytes.mac(0x02), from: MACAddress(0x03, 0, 0, 0, 0, 1))) == nil)
        #expect(sighting(Bytes.frame(to: Bytes.mac(0x02), from: .zero)) == nil)
        #expect(sighting(Array(repeating: 2, count: 13)) == nil)
    }

    @Test func theWorkerReportsEachStationOnceUntilItIsDue() {
        let h = Harness()
        h.setFlood(0, ["192.0.2.10"])
        h.transmit([F.arpRequest(), F.arpRequest(), Bytes.frame(to: Bytes.mac(0x02), from: asker)])
        let station = LearnEvent.station(network: 0, StationSighting(mac: asker, ip: IPAddress("10.0.1.1")!))
        let bare = LearnEvent.station(network: 0, StationSighting(mac: asker))
        #expect(h.stationEvents() == [station, bare])
        #expect(h.learnEvents() == [])
        // Within the refresh interval: nothing again; after it, reported again (it keeps the
        // station from ageing out while it talks).
        h.taps[0].pending = [F.arpRequest()]
        while h.worker.serviceDevice(0, now: Forwarder.stationRefresh - 1) > 0 {}
        #expect(h.stationEvents() == [])
        h.taps[0].pending = [F.arpRequest()]
        while h.worker.serviceDevice(0, now: Forwarder.stationRefresh) > 0 {}
        #expect(h.stationEvents() == [station])
    }

    @Test func aFrameAnsweredLocallyStillReportsItsSender() {
        let h = Harness()
        #expect(h.networks[0].neighbours.setIPs([IPAddress("10.0.1.2")!], of: F.ownerMAC) == .set)
        h.transmit([F.arpRequest()])
        #expect(h.stationEvents() == [.station(network: 0, StationSighting(mac: asker, ip: IPAddress("10.0.1.1")!))])
    }

    /// MAC → its IPs, sorted.
    func ips(_ table: LocalStations) -> [MACAddress: [IPAddress]] { table.stations.mapValues { $0.addresses.keys.sorted() } }

    @Test func tableRefreshesAddsAddressesAndAges() {
        var table = LocalStations()
        let ip1 = IPAddress("10.0.1.1")!
        let ip2 = IPAddress("2001:db8::1")!
        #expect(table.sighted(asker, ip: nil, now: 10) == .added)
        #expect(table.sighted(asker, ip: ip1, now: 11) == .newAddress)
        #expect(table.sighted(asker, ip: ip1, now: 12) == .refreshed)
        #expect(table.sighted(asker, ip: ip2, now: 100) == .newAddress)
        #expect(ips(table) == [asker: [ip1, ip2]])
        // ip1 last claimed at 12: gone after 300 s; the station (seen at 100) and ip2 stay.
        #expect(table.age(now: 313, maxAge: 300) == [])
        #expect(ips(table) == [asker: [ip2]])
        #expect(table.age(now: 401, maxAge: 300) == [asker])
        #expect(ips(table).isEmpty)
    }

    @Test func tableIsBounded() {
        var table = LocalStations()
        for i in 0..<LocalStations.maxStations {
            #expect(table.sighted(MACAddress(unchecked: 0x0200_0000_0000 + UInt64(i)), ip: nil, now: 1) == .added)
        }
        #expect(table.sighted(MACAddress(unchecked: 0x02FF_0000_0000), ip: nil, now: 1) == .full)
        #expect(table.refused == 1)
        // A known one is still refreshed; its addresses stay at most `maxAddresses`, newest kept.
        let mac = MACAddress(unchecked: 0x0200_0000_0000)
        for i in 0...LocalStations.maxAddresses {
            table.sighted(mac, ip: IPAddress(v4: 0x0A00_0000 + UInt32(i)), now: 2 + UInt32(i))
        }
        let kept = table.stations[mac]!.addresses
        #expect(kept.count == LocalStations.maxAddresses)
        #expect(kept[IPAddress(v4: 0x0A00_0000)] == nil)
        #expect(kept[IPAddress(v4: 0x0A00_0000 + UInt32(LocalStations.maxAddresses))] != nil)
    }
}
