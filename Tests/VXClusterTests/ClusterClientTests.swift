// ClusterClient against a real etcd, with fake tables in place of the router: two clients find
// each other, a dead one's records vanish with its lease, a lost lease is replaced and the
// records republished, etcd paused keeps the tables as they were.
import Foundation
import Logging
import Synchronization
import Testing
import VXWire
@testable import VXCluster

/// Tables in memory: what the cluster client programmed, and the stations it publishes.
final class FakeTables: ClusterTables, @unchecked Sendable {
    let state = Mutex(ClusterTablesState())
    let stations: Mutex<[VNI: [MACAddress: [IPAddress]]]>

    init(stations: [VNI: [MACAddress: [IPAddress]]]) { self.stations = Mutex(stations) }

    func apply(_ action: ClusterAction) async throws {
        state.withLock { state in
            switch action {
            case .addFlood(let vni, let remote): state.flood[vni, default: []].insert(remote)
            case .removeFlood(let vni, let remote): state.flood[vni]?.remove(remote)
            case .setEntry(let vni, let mac, let entry): state.entries[vni, default: [:]][mac] = entry
            case .removeEntry(let vni, let mac): state.entries[vni]?[mac] = nil
            }
        }
    }

    func actual(of programmed: ClusterTablesState) async throws -> ClusterTablesState {
        state.withLock { $0 }
    }

    func localStations() async throws -> [VNI: [MACAddress: [IPAddress]]] { stations.withLock { $0 } }

    var flood: [VNI: Set<IPAddress>] { state.withLock { $0.flood } }
    func entry(_ vni: VNI, _ mac: MACAddress) -> RemoteMACEntry? { state.withLock { $0.entries[vni]?[mac] } }
}

@Suite("ClusterClient against a real etcd", .serialized)
struct ClusterClientTests {
    let vni = VNI(100)!
    let macA = MACAddress("02:00:00:00:0a:01")!
    let macB = MACAddress("02:00:00:00:0b:01")!

    func settings(_ etcd: EtcdProcess, id: String, address: String, ttl: Int64 = 2) -> ClusterSettings {
        var settings = ClusterSettings(
            endpoints: [etcd.clientURL], overlay: "t", hostID: id, address: IPAddress(address)!, port: 4789,
            servedVNIs: [vni], leaseTTL: ttl)
        settings.publishInterval = .milliseconds(200)
        settings.antiEntropyInterval = .seconds(1)
        settings.maxBackoff = .milliseconds(500)
        return settings
    }

    @Test func twoRoutersFindEachOtherAndADeadOneVanishesWithItsLease() async throws {
        let etcd = try await EtcdProcess()
        defer { etcd.stop() }
        let tablesA = FakeTables(stations: [vni: [macA: [IPAddress("198.19.0.1")!]]])
        let tablesB = FakeTables(stations: [vni: [macB: [IPAddress("198.19.0.2")!]]])
        let a = ClusterClient(settings: settings(etcd, id: "a", address: "198.18.0.1"), tables: tablesA, logger: Logger(label: "a"))
        let b = ClusterClient(settings: settings(etcd, id: "b", address: "198.18.0.2"), tables: tablesB, logger: Logger(label: "b"))
        let runA = Task { await a.run() }
        let runB = Task { await b.run() }
        defer { runA.cancel(); runB.cancel() }

        #expect(try await eventually {
            tablesA.entry(vni, macB)?.remote == IPAddress("198.18.0.2") && tablesB.entry(vni, macA)?.remote == IPAddress("198.18.0.1")
        })
        #expect(tablesA.flood[vni] == [IPAddress("198.18.0.2")!])
        #expect(tablesB.flood[vni] == [IPAddress("198.18.0.1")!])
        #expect(tablesA.entry(vni, macB)?.ips == [IPAddress("198.19.0.2")!])
        #expect(tablesA.entry(vni, macA) == nil)  // its own station is never a remote entry
        #expect(await a.status().connected)

        // A station goes away on b: withdrawn, removed on a.
        tablesB.stations.withLock { $0 = [:] }
        #expect(try await eventually { tablesA.entry(vni, macB) == nil })

        // b dies without a word (no revoke: the etcd client is simply gone with its task's
        // keepalives): its lease expires and everything of it leaves a's tables.
        await b.abandonForTest()
        runB.cancel()
        #expect(try await eventually { tablesA.flood[vni, default: []].isEmpty })
        #expect(await a.status().members == ["a"])
    }

    @Test func aLostLeaseIsReplacedAndTheRecordsRepublished() async throws {
        let etcd = try await EtcdProcess()
        defer { etcd.stop() }
        let tablesA = FakeTables(stations: [vni: [macA: []]])
        let a = ClusterClient(settings: settings(etcd, id: "a", address: "198.18.0.1", ttl: 30), tables: tablesA, logger: Logger(label: "a"))
        let runA = Task { await a.run() }
        defer { runA.cancel() }
        let observer = EtcdClient(endpoints: [etcd.clientURL])
        defer { Task { await observer.shutdown() } }
        let keys = ClusterKeys(overlay: "t")

        #expect(try await eventually { (try await observer.range(keys.prefix)).keyValues.count == 3 })
        let lease = try #require(try await observer.range(keys.host("a"), prefix: false).keyValues.first?.lease)
        try await observer.revoke(lease)  // an operator, or an expiry during a partition

        #expect(try await eventually {
            let listing = try await observer.range(keys.prefix)
            return listing.keyValues.count == 3 && listing.keyValues.allSatisfy { $0.lease != 0 && $0.lease != lease }
        })
        #expect(await a.status().leasesGranted == 2)
    }

    @Test func etcdPausedKeepsTheTablesAndResumes() async throws {
        let etcd = try await EtcdProcess()
        defer { etcd.stop() }
        let tablesA = FakeTables(stations: [:])
        let tablesB = FakeTables(stations: [vni: [macB: []]])
        let a = ClusterClient(settings: settings(etcd, id: "a", address: "198.18.0.1", ttl: 10), tables: tablesA, logger: Logger(label: "a"))
        let b = ClusterClient(settings: settings(etcd, id: "b", address: "198.18.0.2", ttl: 10), tables: tablesB, logger: Logger(label: "b"))
        let runA = Task { await a.run() }
        let runB = Task { await b.run() }
        defer { runA.cancel(); runB.cancel() }
        #expect(try await eventually { tablesA.entry(vni, macB) != nil })

        etcd.pause(true)
        #expect(try await eventually { await a.status().connected == false })
        // Nothing purged while etcd is away.
        #expect(tablesA.entry(vni, macB)?.remote == IPAddress("198.18.0.2"))
        #expect(tablesA.flood[vni] == [IPAddress("198.18.0.2")!])
        etcd.pause(false)
        #expect(try await eventually { await a.status().connected })

        // And changes flow again after the resume.
        let macB2 = MACAddress("02:00:00:00:0b:02")!
        tablesB.stations.withLock { $0[vni]?[macB2] = [] }
        #expect(try await eventually { tablesA.entry(vni, macB2) != nil })
        #expect(tablesA.entry(vni, macB) != nil)
    }

    @Test func antiEntropyRepairsTablesChangedBehindTheClientsBack() async throws {
        let etcd = try await EtcdProcess()
        defer { etcd.stop() }
        let tablesA = FakeTables(stations: [:])
        let tablesB = FakeTables(stations: [vni: [macB: []]])
        let a = ClusterClient(settings: settings(etcd, id: "a", address: "198.18.0.1", ttl: 5), tables: tablesA, logger: Logger(label: "a"))
        let b = ClusterClient(settings: settings(etcd, id: "b", address: "198.18.0.2", ttl: 5), tables: tablesB, logger: Logger(label: "b"))
        let runA = Task { await a.run() }
        let runB = Task { await b.run() }
        defer { runA.cancel(); runB.cancel() }
        #expect(try await eventually { tablesA.entry(vni, macB) != nil })

        tablesA.state.withLock { $0.entries = [:] }  // say, an API flush
        await a.antiEntropy()
        #expect(tablesA.entry(vni, macB) != nil)
        #expect(await a.status().corrections >= 1)
    }
}
