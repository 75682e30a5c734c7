// vxcluster-sim: plays N VTEPs as etcd writers only — each with its own lease, host record,
// VNI memberships and MACs (with IPs) — so one machine can put a real router into a large
// overlay. Then, optionally, churn: MAC moves between simulated hosts, hosts leaving and
// joining, and a mass death (every lease left to expire).
//
//   swift run -c release vxcluster-sim --endpoints http://127.0.0.1:2379 --overlay lab \
//       --hosts 1000 --vnis 100,101 --macs 20 --duration 60 --moves-per-second 20
//
// With --probes N --router http://127.0.0.1:4790: once the router holds every simulated MAC
// (its GET /v1/cluster), N MACs are moved one at a time and each timed from the etcd put to the
// router's `mac_moved` event (p50/p99, HdrHistogram) — Tools/cluster-bench.sh.
import ArgumentParser
import AsyncHTTPClient
import Foundation
import Synchronization
import VXCluster
import VXWire

@main
struct ClusterSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vxcluster-sim", abstract: "Simulate N VTEPs in a vxrouter cluster (etcd writers only).")

    @Option(help: "etcd endpoints, comma-separated http://HOST:PORT.")
    var endpoints: String = "http://127.0.0.1:2379"
    @Option(help: "The overlay (cluster name).")
    var overlay: String
    @Option(help: "Simulated hosts.")
    var hosts: Int = 100
    @Option(help: "VNIs every host serves, comma-separated.")
    var vnis: String = "100"
    @Option(help: "MACs per host per VNI.")
    var macs: Int = 20
    @Option(help: "Lease TTL in seconds.")
    var ttl: Int64 = 15
    @Option(help: "First underlay address; host i gets this plus i (IPv4).")
    var firstAddress: String = "198.18.128.1"
    @Option(help: "Seconds to keep the hosts alive after loading (0: until interrupted).")
    var duration: Int = 30
    @Option(help: "MAC moves per second between simulated hosts while alive.")
    var movesPerSecond: Int = 0
    @Option(help: "Host leaves-and-rejoins per second while alive.")
    var churnPerSecond: Int = 0
    @Option(help: "Concurrent etcd requests.")
    var parallel: Int = 16
    @Flag(help: "At the end, let every lease expire (mass death) instead of revoking them.")
    var massDeath = false
    @Option(help: "MAC moves to time against --router (0: none).")
    var probes: Int = 0
    @Option(help: "The router's control endpoint for --probes, http://HOST:PORT.")
    var router: String?
    @Option(help: "The bearer token file of --router.")
    var routerTokenFile: String?

    func run() async throws {
        let vniList = vnis.split(separator: ",").compactMap { UInt32($0).flatMap { VNI($0) } }
        guard !vniList.isEmpty, let base = IPAddress(firstAddress), base.family == .v4 else {
            throw ValidationError("--vnis must list VNIs and --first-address must be IPv4")
        }
        let etcd = EtcdClient(endpoints: endpoints.split(separator: ",").map(String.init), callTimeout: .seconds(10))
        let keys = ClusterKeys(overlay: overlay)
        let requests = Atomic<Int>(0)
        var world = SimWorld(keys: keys, vnis: vniList, macsPerVNI: macs, base: base)
        for index in 0..<hosts { world.addHost(index) }

        let started = ContinuousClock.now
        let snapshot = world.hosts
        let leases = Mutex([Int: Int64]())
        // Every lease granted is kept alive by this task, from loading to the end, in parallel:
        // never inline in the main loop, where a long probe (200 moves, each waited for) once
        // held the keepalives back past the TTL and every simulated host expired mid-run.
        let ttlSeconds = ttl
        let width = parallel
        let keepalive = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(max(1, ttlSeconds / 3)))
                let current = leases.withLock { Array($0.values) }
                try? await forEachParallel(current, width: width) { lease in
                    _ = try? await etcd.keepAlive(lease)
                    requests.add(1, ordering: .relaxed)
                }
            }
        }
        try await forEachParallel(Array(snapshot.indices), width: parallel) { index in
            let (lease, writes) = try await snapshot[index].publish(etcd: etcd, ttl: ttl, keys: keys)
            leases.withLock { $0[index] = lease }
            requests.add(writes, ordering: .relaxed)
        }
        for (index, lease) in leases.withLock({ $0 }) { world.hosts[index].lease = lease }
        let loadTime = ContinuousClock.now - started
        print("loaded \(hosts) hosts x \(vniList.count) VNIs x \(macs) MACs "
              + "(\(world.hosts.count * vniList.count * (macs + 1) + world.hosts.count) keys) in \(loadTime), "
              + "\(requests.load(ordering: .relaxed)) requests")

        var watcher: MoveWatcher?
        var follower: Task<Void, Never>?
        if probes > 0, let router {
            let token = try routerTokenFile.map { try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) }
            let moves = MoveWatcher()
            watcher = moves
            follower = Task { await moves.follow(router: router, token: token) }
        }
        let expectedEntries = hosts * vniList.count * macs
        var probed = false
        let deadline = duration == 0 ? nil : ContinuousClock.now + .seconds(duration)
        var second = 0
        requests.store(0, ordering: .relaxed)
        var windowStart = ContinuousClock.now
        while deadline.map({ ContinuousClock.now < $0 }) ?? true {
            for _ in 0..<movesPerSecond {
                if try await world.moveRandomMAC(etcd: etcd) != nil { requests.add(2, ordering: .relaxed) }
            }
            if let watcher, !probed, watcher.isConnected, let router,
                let entries = await routerEntries(router, http: watcher.http), entries >= expectedEntries
            {
                probed = true
                let (histogram, lost) = try await probeLatency(world: &world, etcd: etcd, watcher: watcher, count: probes)
                requests.add(2 * probes, ordering: .relaxed)
                print(
                    "probe: \(histogram.totalCount) moves, etcd put -> router table (mac_moved event): "
                        + "p50 \(histogram.valueAtPercentile(50)) us, p99 \(histogram.valueAtPercentile(99)) us, "
                        + "max \(histogram.max) us, \(lost) not seen within 5 s")
            }
            for _ in 0..<churnPerSecond {
                let index = Int.random(in: world.hosts.indices)
                if let lease = world.hosts[index].lease { try? await etcd.revoke(lease) }
                let (lease, writes) = try await world.hosts[index].publish(etcd: etcd, ttl: ttl, keys: keys)
                world.hosts[index].lease = lease
                leases.withLock { $0[index] = lease }
                requests.add(1 + writes, ordering: .relaxed)
            }
            try await Task.sleep(for: .seconds(1))
            second += 1
            if second % 10 == 0 {
                let elapsed = ContinuousClock.now - windowStart
                let rate = Double(requests.exchange(0, ordering: .relaxed)) / (Double(elapsed.components.seconds) + 1e-9)
                print("t=\(second)s etcd requests/s: \(Int(rate))")
                windowStart = ContinuousClock.now
            }
        }
        keepalive.cancel()
        if massDeath {
            print("mass death: \(world.hosts.count) leases left to expire within \(ttl) s")
        } else {
            try await forEachParallel(world.hosts.compactMap(\.lease), width: parallel) { try? await etcd.revoke($0) }
            print("revoked \(world.hosts.count) leases")
        }
        follower?.cancel()
        if let watcher { try? await watcher.http.shutdown() }
        await etcd.shutdown()
    }

    /// The router's cluster entries (GET /v1/cluster), nil while it does not answer.
    func routerEntries(_ router: String, http: HTTPClient) async -> Int? {
        struct Info: Decodable { let entries: Int }
        guard let response = try? await http.execute(HTTPClientRequest(url: router + "/v1/cluster"), timeout: .seconds(2)),
            response.status == .ok, let body = try? await response.body.collect(upTo: 1 << 20)
        else { return nil }
        return (try? JSONDecoder().decode(Info.self, from: Data(body.readableBytesView)))?.entries
    }
}

/// The simulated hosts and their MACs.
struct SimWorld {
    let keys: ClusterKeys
    let vnis: [VNI]
    let macsPerVNI: Int
    let base: IPAddress
    var hosts: [SimHost] = []

    mutating func addHost(_ index: Int) {
        let address = IPAddress(v4: base.v4Value &+ UInt32(index))
        var stations: [VNI: [MACAddress: MACRecord]] = [:]
        let incarnation = String(UInt64.random(in: 1...UInt64.max), radix: 16)
        for (v, vni) in vnis.enumerated() {
            for m in 0..<macsPerVNI {
                // 02:5e:<vni index>:<host hi>:<host lo>:<mac>: unique, locally administered.
                let mac = MACAddress(0x02, 0x5E, UInt8(v & 0xFF), UInt8((index >> 8) & 0xFF), UInt8(index & 0xFF), UInt8(m & 0xFF))
                let ip = IPAddress(v4: 0xC613_0000 | UInt32((index * macsPerVNI + m) & 0xFFFF))  // 198.19.x.y
                stations[vni, default: [:]][mac] = MACRecord(ips: [ip.description], sequence: 0, incarnation: incarnation)
            }
        }
        hosts.append(SimHost(id: "sim-\(index)", address: address, incarnation: incarnation, stations: stations))
    }

    /// Moves one MAC from one simulated host to another (higher sequence, old claim withdrawn);
    /// the MAC moved, `before` called with it just before the first write.
    mutating func moveRandomMAC(etcd: EtcdClient, before: (String) -> Void = { _ in }) async throws -> String? {
        let from = Int.random(in: hosts.indices)
        var to = Int.random(in: hosts.indices)
        if to == from { to = (from + 1) % hosts.count }
        guard from != to, let vni = vnis.randomElement(), let (mac, record) = hosts[from].stations[vni]?.randomElement(),
            let lease = hosts[to].lease
        else { return nil }
        let moved = MACRecord(ips: record.ips, sequence: record.sequence + 1, incarnation: hosts[to].incarnation)
        before(mac.description)
        try await etcd.put(keys.mac(vni, mac, hosts[to].id), value: Array(JSONEncoder().encode(moved)), lease: lease)
        try await etcd.delete(keys.mac(vni, mac, hosts[from].id))
        hosts[from].stations[vni]?[mac] = nil
        hosts[to].stations[vni, default: [:]][mac] = moved
        return mac.description
    }
}

struct SimHost: Sendable {
    let id: String
    let address: IPAddress
    var incarnation: String
    var stations: [VNI: [MACAddress: MACRecord]]
    var lease: Int64? = nil

    /// Grants a lease and writes every record under it; the lease and the number of requests made.
    func publish(etcd: EtcdClient, ttl: Int64, keys: ClusterKeys) async throws -> (lease: Int64, writes: Int) {
        let lease = try await etcd.grantLease(ttl: ttl).id
        let encoder = JSONEncoder()
        try await etcd.put(
            keys.host(id), value: Array(encoder.encode(HostRecord(address: address.description, port: 4789, incarnation: incarnation))),
            lease: lease)
        var writes = 2
        for (vni, macs) in stations {
            try await etcd.put(keys.flood(vni, id), value: Array(encoder.encode(FloodRecord(incarnation: incarnation))), lease: lease)
            writes += 1
            for (mac, record) in macs {
                try await etcd.put(keys.mac(vni, mac, id), value: Array(encoder.encode(record)), lease: lease)
                writes += 1
            }
        }
        return (lease, writes)
    }
}

/// Runs `body` over `items` with at most `width` at once.
func forEachParallel<T: Sendable>(_ items: [T], width: Int, _ body: @escaping @Sendable (T) async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        var iterator = items.makeIterator()
        for _ in 0..<max(1, width) {
            guard let item = iterator.next() else { break }
            group.addTask { try await body(item) }
        }
        while try await group.next() != nil {
            if let item = iterator.next() { group.addTask { try await body(item) } }
        }
    }
}
