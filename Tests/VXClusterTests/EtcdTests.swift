// The etcd client against a real etcd: every call cluster mode relies on, the failure kinds
// the client must tell apart (compaction, a lost lease) included.
import Foundation
import Testing
@testable import VXCluster

@Suite("EtcdClient against a real etcd", .serialized)
struct EtcdTests {
    @Test func putRangeDelete() async throws {
        let etcd = try await EtcdProcess()
        defer { etcd.stop() }
        let client = EtcdClient(endpoints: [etcd.clientURL])
        defer { Task { await client.shutdown() } }

        let first = try await client.put("/t/a/1", value: Array("one".utf8))
        try await client.put("/t/a/2", value: [0, 255, 10])
        try await client.put("/t/b", value: Array("other".utf8))
        let listing = try await client.range("/t/a/")
        #expect(listing.keyValues.map(\.key) == ["/t/a/1", "/t/a/2"])
        #expect(listing.keyValues.map(\.value) == [Array("one".utf8), [0, 255, 10]])
        #expect(listing.revision > first)
        #expect(try await client.range("/t/b", prefix: false).keyValues.map(\.key) == ["/t/b"])

        #expect(try await client.delete("/t/a/", prefix: true) == 2)
        #expect(try await client.range("/t/a/").keyValues.isEmpty)
        #expect(try await client.range("/t/").keyValues.map(\.key) == ["/t/b"])
        #expect(try await client.delete("/t/nothing") == 0)
    }

    @Test func leaseKeepaliveExpiryAndRevoke() async throws {
        let etcd = try await EtcdProcess()
        defer { etcd.stop() }
        let client = EtcdClient(endpoints: [etcd.clientURL])
        defer { Task { await client.shutdown() } }

        let lease = try await client.grantLease(ttl: 2)
        #expect(lease.ttl == 2)
        try await client.put("/t/leased", value: [1], lease: lease.id)
        #expect(try await client.range("/t/leased", prefix: false).keyValues.first?.lease == lease.id)
        #expect(try await client.keepAlive(lease.id) > 0)

        // Left alone, the lease expires and takes its key with it; a keepalive then says so.
        #expect(try await eventually { try await client.range("/t/leased", prefix: false).keyValues.isEmpty })
        await #expect(throws: EtcdError.leaseNotFound) { try await client.keepAlive(lease.id) }

        let second = try await client.grantLease(ttl: 60)
        try await client.put("/t/revoked", value: [2], lease: second.id)
        try await client.revoke(second.id)
        #expect(try await client.range("/t/revoked", prefix: false).keyValues.isEmpty)
        await #expect(throws: EtcdError.leaseNotFound) { try await client.keepAlive(second.id) }
    }

    @Test func keepaliveHoldsTheLease() async throws {
        let etcd = try await EtcdProcess()
        defer { etcd.stop() }
        let client = EtcdClient(endpoints: [etcd.clientURL])
        defer { Task { await client.shutdown() } }

        let lease = try await client.grantLease(ttl: 2)
        try await client.put("/t/kept", value: [1], lease: lease.id)
        // Keepalives every 500 ms across three TTLs: the key must still be there.
        for _ in 0..<12 {
            try await client.keepAlive(lease.id)
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(try await client.range("/t/kept", prefix: false).keyValues.count == 1)
    }

    @Test func watchFromARevisionSeesPutsAndDeletes() async throws {
        let etcd = try await EtcdProcess()
        defer { etcd.stop() }
        let client = EtcdClient(endpoints: [etcd.clientURL])
        defer { Task { await client.shutdown() } }

        try await client.put("/t/w/x", value: Array("before".utf8))
        let start = try await client.put("/t/w/a", value: Array("1".utf8))
        try await client.put("/t/w/a", value: Array("2".utf8))
        try await client.put("/t/outside", value: [9])
        try await client.delete("/t/w/x")

        var seen: [EtcdEvent] = []
        var created = false
        let stream = client.watch(prefix: "/t/w/", fromRevision: start)
        for try await update in stream {
            switch update {
            case .created: created = true
            case .events(_, let events): seen += events
            }
            if seen.count == 3 { break }
        }
        #expect(created)
        #expect(seen.map(\.kind) == [.put, .put, .delete])
        #expect(seen.map(\.keyValue.key) == ["/t/w/a", "/t/w/a", "/t/w/x"])
        #expect(seen[0].keyValue.value == Array("1".utf8))
        #expect(seen[1].previous?.value == Array("1".utf8))
        #expect(seen[2].previous?.value == Array("before".utf8))
        #expect(seen[0].keyValue.modRevision == start)

        // A live watch sees a change made after it started.
        let live = client.watch(prefix: "/t/w/", fromRevision: 0)
        var iterator = live.makeAsyncIterator()
        guard case .created = try await iterator.next() else {
            Issue.record("no created first")
            return
        }
        try await client.put("/t/w/live", value: [7])
        guard case .events(_, let events)? = try await iterator.next() else {
            Issue.record("no events")
            return
        }
        #expect(events.map(\.keyValue.key) == ["/t/w/live"])
    }

    @Test func compactedRevisionIsReportedAsSuch() async throws {
        let etcd = try await EtcdProcess()
        defer { etcd.stop() }
        let client = EtcdClient(endpoints: [etcd.clientURL])
        defer { Task { await client.shutdown() } }

        let old = try await client.put("/t/c", value: [1])
        try await client.put("/t/c", value: [2])
        let latest = try await client.put("/t/c", value: [3])
        try await client.compact(revision: latest)

        await #expect(throws: EtcdError.compacted(compactRevision: latest)) {
            for try await _ in client.watch(prefix: "/t/", fromRevision: old) {}
        }
        await #expect(throws: EtcdError.compacted(compactRevision: 0)) {
            _ = try await client.range("/t/", revision: old)
        }
        // The re-list the caller then makes works at the current revision.
        #expect(try await client.range("/t/").keyValues.map(\.value) == [[3]])
    }

    @Test func unreachableEndpointsAreReportedAndTheNextOneIsTried() async throws {
        let deadPort = try EtcdProcess.freePort()
        let dead = EtcdClient(endpoints: ["http://127.0.0.1:\(deadPort)"], callTimeout: .seconds(1))
        defer { Task { await dead.shutdown() } }
        await #expect {
            _ = try await dead.range("/t/")
        } throws: { error in
            if case EtcdError.unreachable = error { return true }
            return false
        }

        let etcd = try await EtcdProcess()
        defer { etcd.stop() }
        let client = EtcdClient(endpoints: ["http://127.0.0.1:\(deadPort)", etcd.clientURL])
        defer { Task { await client.shutdown() } }
        try await client.put("/t/failover", value: [1])
        #expect(try await client.range("/t/failover", prefix: false).keyValues.count == 1)
    }

    @Test func prefixEnd() {
        #expect(EtcdClient.prefixEnd("/a/") == Array("/a0".utf8))
        #expect(EtcdClient.prefixEnd("") == [0])
    }
}
