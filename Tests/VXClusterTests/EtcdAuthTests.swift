// etcd with authentication on (`etcdctl user add`, `auth enable`) and simple tokens that expire
// after two idle seconds (--auth-token-ttl 2): the right credentials work and keep working past a
// token's expiry (unary calls and a watch made afterwards renew it once), wrong ones and none give
// a clear error — in a cluster client's status too, with nothing published and no crash.
import Foundation
import Logging
import Testing
import VXWire
@testable import VXCluster

@Suite("etcd with authentication", .serialized)
struct EtcdAuthTests {
    let vni = VNI(9)!
    static let password = "s3cret pass"  // a space on purpose: kept as it is
    static let tokenTTL = 2

    /// etcd with a root user and authentication enabled.
    static func authEtcd() async throws -> EtcdProcess {
        let etcd = try await EtcdProcess(arguments: ["--auth-token-ttl", "\(tokenTTL)"])
        do {
            for arguments in [
                ["user", "add", "root:\(password)"], ["role", "add", "root"], ["user", "grant-role", "root", "root"],
                ["auth", "enable"],
            ] {
                try etcdctl(etcd, arguments)
            }
        } catch {
            etcd.stop()
            throw error
        }
        return etcd
    }

    static func etcdctl(_ etcd: EtcdProcess, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/etcdctl")
        process.arguments = ["--endpoints", etcd.clientURL] + arguments
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw EtcdError.unreachable("etcdctl \(arguments.first ?? "") failed") }
    }

    /// Long enough for a simple token to expire (etcd checks every second).
    static func waitForTokenExpiry() async throws { try await Task.sleep(for: .seconds(tokenTTL + 2)) }

    @Test(.timeLimit(.minutes(2)))
    func rightCredentialsWorkAndSurviveTokenExpiry() async throws {
        let etcd = try await Self.authEtcd()
        defer { etcd.stop() }
        let client = EtcdClient(
            endpoints: [etcd.clientURL], callTimeout: .seconds(2),
            credentials: EtcdCredentials(username: "root", password: Self.password))
        defer { Task { await client.shutdown() } }
        try await client.put("/auth/k", value: Array("v".utf8))
        #expect(try await client.range("/auth/k", prefix: false).keyValues.map(\.value) == [Array("v".utf8)])
        #expect(client.authenticationCount == 1)

        // The token expires; the next call is refused for it, authenticates again and succeeds.
        try await Self.waitForTokenExpiry()
        #expect(try await client.range("/auth/k", prefix: false).keyValues.count == 1)
        #expect(client.authenticationCount == 2)

        // A watch made with an expired token: created with a fresh one, then delivers.
        try await Self.waitForTokenExpiry()
        let stream = client.watch(prefix: "/auth/", fromRevision: 0)
        var iterator = stream.makeAsyncIterator()
        guard case .created = try await iterator.next() else { Issue.record("no created"); return }
        #expect(client.authenticationCount == 3)
        let writer = EtcdClient(
            endpoints: [etcd.clientURL], credentials: EtcdCredentials(username: "root", password: Self.password))
        defer { Task { await writer.shutdown() } }
        try await writer.put("/auth/w", value: [1])
        var seen = false
        while let update = try await iterator.next() {
            if case .events(_, let events) = update, events.contains(where: { $0.keyValue.key == "/auth/w" }) {
                seen = true
                break
            }
        }
        #expect(seen)
    }

    @Test(.timeLimit(.minutes(2)))
    func wrongOrMissingCredentialsAreAClearError() async throws {
        let etcd = try await Self.authEtcd()
        defer { etcd.stop() }
        let wrong = EtcdClient(
            endpoints: [etcd.clientURL], callTimeout: .seconds(2), credentials: EtcdCredentials(username: "root", password: "nope"))
        let error = await #expect(throws: EtcdError.self) { _ = try await wrong.range("/auth/", prefix: true) }
        guard case .authenticationFailed(let why) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(why.contains("invalid user ID or password") && why.contains("user root") && !why.contains("nope"))
        await wrong.shutdown()

        let none = EtcdClient(endpoints: [etcd.clientURL], callTimeout: .seconds(2))
        let refused = await #expect(throws: EtcdError.self) { _ = try await none.range("/auth/", prefix: true) }
        #expect("\(String(describing: refused))".contains("configure cluster.username and cluster.password_file"))
        await none.shutdown()
    }

    @Test(.timeLimit(.minutes(2)))
    func aClusterClientWithWrongCredentialsSaysSoAndPublishesNothing() async throws {
        let etcd = try await Self.authEtcd()
        defer { etcd.stop() }
        var settings = ClusterSettings(
            endpoints: [etcd.clientURL], overlay: "auth", hostID: "bad", address: IPAddress("198.18.0.9")!, port: 4789,
            servedVNIs: [vni], leaseTTL: 5)
        settings.credentials = EtcdCredentials(username: "root", password: "wrong")
        settings.maxBackoff = .milliseconds(500)
        let client = ClusterClient(settings: settings, tables: FakeTables(stations: [:]), logger: Logger(label: "bad"))
        let run = Task { await client.run() }
        #expect(try await eventually { await client.status().lastError?.contains("authentication failed") == true })
        let status = await client.status()
        #expect(!status.connected)
        #expect(status.leaseID == nil)
        let observer = EtcdClient(
            endpoints: [etcd.clientURL], credentials: EtcdCredentials(username: "root", password: Self.password))
        defer { Task { await observer.shutdown() } }
        #expect(try await observer.range(ClusterKeys(overlay: "auth").prefix).keyValues.isEmpty)
        run.cancel()
        await run.value  // stops cleanly
    }

    @Test(.timeLimit(.minutes(2)))
    func aClusterClientKeepsWorkingPastTokenExpiry() async throws {
        let etcd = try await Self.authEtcd()
        defer { etcd.stop() }
        let credentials = EtcdCredentials(username: "root", password: Self.password)
        var settings = ClusterSettings(
            endpoints: [etcd.clientURL], overlay: "auth", hostID: "a", address: IPAddress("198.18.0.1")!, port: 4789,
            servedVNIs: [vni], leaseTTL: 30)
        settings.credentials = credentials
        settings.publishInterval = .milliseconds(200)
        settings.maxBackoff = .milliseconds(500)
        let mac = MACAddress("02:00:00:00:0a:09")!
        let tables = FakeTables(stations: [vni: [mac: []]])
        let client = ClusterClient(settings: settings, tables: tables, logger: Logger(label: "a"))
        let run = Task { await client.run() }
        defer { run.cancel() }
        let observer = EtcdClient(endpoints: [etcd.clientURL], credentials: credentials)
        defer { Task { await observer.shutdown() } }
        let keys = ClusterKeys(overlay: "auth")
        #expect(try await eventually { try await observer.range(keys.prefix).keyValues.count == 3 })

        // Idle past the token's life (keepalives every 10 s do not use it), then changes both ways.
        try await Self.waitForTokenExpiry()
        tables.stations.withLock { $0[vni]?[MACAddress("02:00:00:00:0a:0a")!] = [] }
        #expect(try await eventually { try await observer.range(keys.prefix).keyValues.count == 4 })
        let encoder = JSONEncoder()
        try await observer.put(keys.host("b"), value: Array(try encoder.encode(HostRecord(address: "198.18.0.2", port: 4789, incarnation: "1"))))
        try await observer.put(keys.flood(vni, "b"), value: Array(try encoder.encode(FloodRecord(incarnation: "1"))))
        #expect(try await eventually { tables.flood[vni] == [IPAddress("198.18.0.2")!] })
        let status = await client.status()
        #expect(status.connected)
        #expect(status.leasesGranted == 1)
    }
}
