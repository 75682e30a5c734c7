// A three-member etcd cluster on loopback ports and two cluster clients given all three
// endpoints: the member both talk to is killed (SIGKILL) and they keep going through the other
// two — the lease kept alive (their records outlive several TTLs), a change published after the
// kill reaches the other client through a watch re-established elsewhere.
import Foundation
import Glibc
import Logging
import Testing
import VXWire
@testable import VXCluster

/// Three etcd members (`m0`…`m2`), each with its own data directory and loopback ports.
final class EtcdCluster: @unchecked Sendable {
    let clientURLs: [String]
    private let processes: [Process]
    private let dataDirectories: [URL]

    init() async throws {
        var clients: [String] = []
        var peers: [String] = []
        for _ in 0..<3 {
            clients.append("http://127.0.0.1:\(try EtcdProcess.freePort())")
            peers.append("http://127.0.0.1:\(try EtcdProcess.freePort())")
        }
        let initialCluster = peers.enumerated().map { "m\($0.offset)=\($0.element)" }.joined(separator: ",")
        let etcd = try EtcdProcess.etcdPath()
        var processes: [Process] = []
        var directories: [URL] = []
        for i in 0..<3 {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vxc-etcd3-\(getpid())-\(i)-\(clients[i].suffix(5))")
            try? FileManager.default.removeItem(at: directory)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: etcd)
            process.arguments = [
                "--name", "m\(i)", "--data-dir", directory.path,
                "--listen-client-urls", clients[i], "--advertise-client-urls", clients[i],
                "--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
                "--initial-cluster", initialCluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", "vxc-\(getpid())-\(clients[0].suffix(5))",
            ]
            let log = FileHandle(forWritingAtPath: "/dev/null")
            process.standardOutput = log
            process.standardError = log
            try process.run()
            processes.append(process)
            directories.append(directory)
        }
        self.clientURLs = clients
        self.processes = processes
        self.dataDirectories = directories
        // Up once a write commits (a quorum of members has elected a leader).
        let client = EtcdClient(endpoints: clients, callTimeout: .seconds(2))
        defer { Task { await client.shutdown() } }
        for _ in 0..<300 {
            if (try? await client.put("/probe", value: [1])) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        stop()
        throw EtcdError.unreachable("the three-member test etcd did not start")
    }

    func kill(member: Int) {
        let process = processes[member]
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    func stop() {
        for member in processes.indices { kill(member: member) }
        for directory in dataDirectories { try? FileManager.default.removeItem(at: directory) }
    }
}

@Suite("ClusterClient against a three-member etcd", .serialized)
struct EtcdClusterTests {
    let vni = VNI(100)!
    let macA = MACAddress("02:00:00:00:0a:01")!
    let macB = MACAddress("02:00:00:00:0b:01")!
    let macB2 = MACAddress("02:00:00:00:0b:02")!

    func settings(_ endpoints: [String], id: String, address: String, ttl: Int64) -> ClusterSettings {
        var settings = ClusterSettings(
            endpoints: endpoints, overlay: "t3", hostID: id, address: IPAddress(address)!, port: 4789,
            servedVNIs: [vni], leaseTTL: ttl)
        settings.publishInterval = .milliseconds(200)
        settings.antiEntropyInterval = .seconds(2)
        settings.maxBackoff = .milliseconds(500)
        return settings
    }

    @Test(.timeLimit(.minutes(2)))
    func clientsKeepGoingThroughTheOtherMembersWhenOneIsKilled() async throws {
        let etcd = try await EtcdCluster()
        defer { etcd.stop() }
        // Long enough to ride out the election that follows the kill when m0 led (a keepalive
        // can wait a call timeout on the dead member before trying the next one).
        let ttl: Int64 = 5
        let tablesA = FakeTables(stations: [vni: [macA: [IPAddress("198.19.0.1")!]]])
        let tablesB = FakeTables(stations: [vni: [macB: [IPAddress("198.19.0.2")!]]])
        // Both list m0 first: it is the member they use until it fails.
        let a = ClusterClient(
            settings: settings(etcd.clientURLs, id: "a", address: "198.18.0.1", ttl: ttl), tables: tablesA,
            logger: Logger(label: "a"))
        let b = ClusterClient(
            settings: settings(etcd.clientURLs, id: "b", address: "198.18.0.2", ttl: ttl), tables: tablesB,
            logger: Logger(label: "b"))
        let runA = Task { await a.run() }
        let runB = Task { await b.run() }
        defer {
            runA.cancel()
            runB.cancel()
        }
        #expect(try await eventually {
            tablesA.entry(vni, macB)?.remote == IPAddress("198.18.0.2") && tablesB.entry(vni, macA)?.remote == IPAddress("198.18.0.1")
        })
        #expect(await a.status().endpoint == etcd.clientURLs[0])
        let leasesBefore = (await a.status().leasesGranted, await b.status().leasesGranted)

        etcd.kill(member: 0)

        // A change after the kill reaches a: b published it through m1 or m2, and a's watch was
        // set up again on one of them.
        tablesB.stations.withLock { $0[self.vni]?[self.macB2] = [IPAddress("198.19.0.3")!] }
        #expect(try await eventually { tablesA.entry(vni, macB2)?.remote == IPAddress("198.18.0.2") })
        for client in [a, b] {
            #expect(try await eventually {
                let status = await client.status()
                return status.connected && status.endpoint != etcd.clientURLs[0]
            })
        }

        // Several TTLs later: both leases were kept alive through the others (nothing expired,
        // no new lease needed), and the tables still hold each other's records.
        try await Task.sleep(for: .seconds(ttl * 2 + 1))
        let (statusA, statusB) = (await a.status(), await b.status())
        #expect(statusA.leasesGranted == leasesBefore.0, "a: \(statusA)")
        #expect(statusB.leasesGranted == leasesBefore.1, "b: \(statusB)")
        #expect(tablesA.entry(vni, macB)?.remote == IPAddress("198.18.0.2"))
        #expect(tablesB.entry(vni, macA)?.remote == IPAddress("198.18.0.1"))
        #expect(tablesA.flood[vni] == [IPAddress("198.18.0.2")!])
    }
}
