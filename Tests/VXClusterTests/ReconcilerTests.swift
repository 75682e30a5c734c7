// The reconciler against a fake store: the store keeps keys and a revision and hands out
// listings and watch events as etcd would; the tests drive joins, moves, conflicts, restarts,
// compaction re-lists and drift, and check the actions planned.
import Foundation
import Testing
import VXWire
@testable import VXCluster

/// An in-memory etcd: keys, a revision, and the events each change produces.
struct FakeStore {
    var data: [String: [UInt8]] = [:]
    var revision: Int64 = 1
    var pending: [EtcdEvent] = []

    mutating func put(_ key: String, _ record: some Encodable) {
        let value = try! JSONEncoder().encode(record)
        putRaw(key, Array(value))
    }

    mutating func putRaw(_ key: String, _ value: [UInt8]) {
        revision += 1
        let previous = data[key].map { EtcdKeyValue(key: key, value: $0) }
        data[key] = value
        pending.append(EtcdEvent(kind: .put, keyValue: EtcdKeyValue(key: key, value: value, modRevision: revision), previous: previous))
    }

    mutating func delete(_ key: String) {
        guard let old = data.removeValue(forKey: key) else { return }
        revision += 1
        pending.append(
            EtcdEvent(kind: .delete, keyValue: EtcdKeyValue(key: key, value: [], modRevision: revision),
                      previous: EtcdKeyValue(key: key, value: old)))
    }

    /// Deletes every key under `prefix` (a lease expiring takes all its keys).
    mutating func deleteAll(under prefix: String) {
        for key in data.keys.sorted() where key.hasPrefix(prefix) { delete(key) }
    }

    func listing() -> [EtcdKeyValue] {
        data.sorted { $0.key < $1.key }.map { EtcdKeyValue(key: $0.key, value: $0.value) }
    }

    /// The events since the last call (what a watch would have delivered).
    mutating func drain() -> [EtcdEvent] {
        defer { pending = [] }
        return pending
    }
}

/// A simulated host writing its records into the fake store.
struct FakeHost {
    let id: String
    let address: String
    var incarnation: String
    var port: UInt16 = 4789

    func join(_ store: inout FakeStore, _ keys: ClusterKeys) {
        store.put(keys.host(id), HostRecord(address: address, port: port, incarnation: incarnation))
    }

    func flood(_ store: inout FakeStore, _ keys: ClusterKeys, _ vni: VNI) {
        store.put(keys.flood(vni, id), FloodRecord(incarnation: incarnation))
    }

    func claim(_ store: inout FakeStore, _ keys: ClusterKeys, _ vni: VNI, _ mac: MACAddress, seq: UInt64, ips: [String] = []) {
        store.put(keys.mac(vni, mac, id), MACRecord(ips: ips, sequence: seq, incarnation: incarnation))
    }
}

@Suite("Cluster reconciler")
struct ReconcilerTests {
    let keys = ClusterKeys(overlay: "lab")
    let vni = VNI(100)!
    let other = VNI(200)!
    let mac = MACAddress("02:00:00:00:00:01")!
    let a = FakeHost(id: "a", address: "198.18.0.1", incarnation: "a1")
    let b = FakeHost(id: "b", address: "198.18.0.2", incarnation: "b1")
    let me = FakeHost(id: "me", address: "198.18.0.9", incarnation: "m1")

    func reconciler() -> ClusterReconciler {
        ClusterReconciler(keys: keys, selfID: "me", servedVNIs: [vni])
    }

    /// Watch events since the last step, then a plan whose actions are all applied.
    func step(_ r: inout ClusterReconciler, _ store: inout FakeStore) -> (actions: [ClusterAction], events: [ClusterEvent]) {
        let hostEvents = r.apply(store.drain(), revision: store.revision)
        let (actions, events) = r.plan()
        for action in actions { r.applied(action) }
        return (actions, hostEvents + events)
    }

    func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    @Test func addMoveRemove() {
        var store = FakeStore()
        var r = reconciler()
        a.join(&store, keys)
        b.join(&store, keys)
        a.flood(&store, keys, vni)
        b.flood(&store, keys, vni)
        a.claim(&store, keys, vni, mac, seq: 0, ips: ["198.19.0.1", "2001:db8::1"])
        let first = step(&r, &store)
        #expect(first.actions == [
            .addFlood(vni: vni, remote: ip("198.18.0.1")), .addFlood(vni: vni, remote: ip("198.18.0.2")),
            .setEntry(vni: vni, mac: mac, entry: RemoteMACEntry(
                remote: ip("198.18.0.1"), ips: [ip("198.19.0.1"), ip("2001:db8::1")], owner: "a", sequence: 0)),
        ])
        #expect(first.events.contains(.joined(host: "a", address: "198.18.0.1")))

        // The MAC moves to b with a higher sequence while a's claim lingers: b wins, no conflict.
        b.claim(&store, keys, vni, mac, seq: 1, ips: ["198.19.0.1"])
        let moved = step(&r, &store)
        #expect(moved.actions == [.setEntry(vni: vni, mac: mac, entry: RemoteMACEntry(
            remote: ip("198.18.0.2"), ips: [ip("198.19.0.1")], owner: "b", sequence: 1))])
        #expect(moved.events == [.moved(vni: vni, mac: mac, from: "a", to: "b")])
        #expect(r.conflicts == 0 && r.moves == 1)

        // a withdraws its stale claim: nothing to do. b withdraws: the entry goes.
        store.delete(keys.mac(vni, mac, "a"))
        #expect(step(&r, &store).actions.isEmpty)
        store.delete(keys.mac(vni, mac, "b"))
        #expect(step(&r, &store).actions == [.removeEntry(vni: vni, mac: mac)])

        // Only the IPs change: the entry is replaced (suppression table follows).
        a.claim(&store, keys, vni, mac, seq: 2, ips: ["198.19.0.1"])
        _ = step(&r, &store)
        a.claim(&store, keys, vni, mac, seq: 2, ips: ["198.19.0.1", "198.19.0.7"])
        #expect(step(&r, &store).actions == [.setEntry(vni: vni, mac: mac, entry: RemoteMACEntry(
            remote: ip("198.18.0.1"), ips: [ip("198.19.0.1"), ip("198.19.0.7")], owner: "a", sequence: 2))])

        // b's lease expires: its host record and flood membership vanish with it.
        store.deleteAll(under: keys.prefix + "hosts/b")
        store.delete(keys.flood(vni, "b"))
        let gone = step(&r, &store)
        #expect(gone.actions == [.removeFlood(vni: vni, remote: ip("198.18.0.2"))])
        #expect(gone.events.contains(.left(host: "b")))
    }

    @Test func twoHostsClaimingOneMACIsReportedNotFlapped() {
        var store = FakeStore()
        var r = reconciler()
        a.join(&store, keys)
        b.join(&store, keys)
        b.claim(&store, keys, vni, mac, seq: 3)
        #expect(step(&r, &store).actions.count == 1)  // b's entry programmed

        // a claims the same MAC at the same sequence: reported once, b kept (it is programmed).
        a.claim(&store, keys, vni, mac, seq: 3)
        let tie = step(&r, &store)
        #expect(tie.actions.isEmpty)
        #expect(tie.events == [.conflict(vni: vni, mac: mac, claimants: ["a", "b"], kept: "b")])
        #expect(r.conflicts == 1)
        // Passes while it lasts neither flap nor count again.
        for _ in 0..<3 { #expect(step(&r, &store).actions.isEmpty) }
        #expect(r.conflicts == 1)
        #expect(r.programmed.entries[vni]?[mac]?.owner == "b")

        // A higher sequence settles it (a move, not a conflict); a new tie counts again.
        a.claim(&store, keys, vni, mac, seq: 4)
        #expect(step(&r, &store).actions == [.setEntry(vni: vni, mac: mac, entry: RemoteMACEntry(
            remote: ip("198.18.0.1"), ips: [], owner: "a", sequence: 4))])
        #expect(r.activeConflicts.isEmpty)
        b.claim(&store, keys, vni, mac, seq: 4)
        #expect(step(&r, &store).actions.isEmpty)
        #expect(r.conflicts == 2)
    }

    @Test func tieWithNothingProgrammedPicksTheLowestHostIDDeterministically() {
        var store = FakeStore()
        var r = reconciler()
        b.join(&store, keys)
        a.join(&store, keys)
        b.claim(&store, keys, vni, mac, seq: 0)
        a.claim(&store, keys, vni, mac, seq: 0)
        let planned = step(&r, &store)
        #expect(planned.actions == [.setEntry(vni: vni, mac: mac, entry: RemoteMACEntry(
            remote: ip("198.18.0.1"), ips: [], owner: "a", sequence: 0))])
        #expect(r.conflicts == 1)
    }

    @Test func aRestartedHostsNewIncarnationReplacesTheOldOnesEntries() {
        var store = FakeStore()
        var r = reconciler()
        a.join(&store, keys)
        a.flood(&store, keys, vni)
        a.claim(&store, keys, vni, mac, seq: 5)
        let mac2 = MACAddress("02:00:00:00:00:02")!
        a.claim(&store, keys, vni, mac2, seq: 0)
        #expect(step(&r, &store).actions.count == 3)

        // a restarts: a new host record (new incarnation) while the old lease's keys linger.
        var restarted = a
        restarted.incarnation = "a2"
        restarted.join(&store, keys)
        let replaced = step(&r, &store)
        #expect(replaced.events == [.restarted(host: "a")])
        #expect(replaced.actions == [
            .removeEntry(vni: vni, mac: mac), .removeEntry(vni: vni, mac: mac2),
            .removeFlood(vni: vni, remote: ip("198.18.0.1")),
        ])
        // The new incarnation republishes what it has: it counts at once.
        restarted.flood(&store, keys, vni)
        restarted.claim(&store, keys, vni, mac, seq: 0)
        #expect(step(&r, &store).actions == [
            .addFlood(vni: vni, remote: ip("198.18.0.1")),
            .setEntry(vni: vni, mac: mac, entry: RemoteMACEntry(remote: ip("198.18.0.1"), ips: [], owner: "a", sequence: 0)),
        ])
        // The old lease expiring later deletes keys already overwritten or dead: nothing changes.
        store.delete(keys.mac(vni, mac2, "a"))
        #expect(step(&r, &store).actions.isEmpty)
    }

    @Test func reListAfterCompactionAppliesExactlyTheDifference() {
        var store = FakeStore()
        var r = reconciler()
        a.join(&store, keys)
        b.join(&store, keys)
        a.flood(&store, keys, vni)
        a.claim(&store, keys, vni, mac, seq: 0)
        _ = step(&r, &store)

        // Changes happen while the watch is down, and the history is compacted: the events are
        // lost (drained, not applied), only a listing is left.
        _ = store.drain()
        let mac2 = MACAddress("02:00:00:00:00:02")!
        store.delete(keys.mac(vni, mac, "a"))
        b.flood(&store, keys, vni)
        b.claim(&store, keys, vni, mac2, seq: 0, ips: ["198.19.0.2"])
        _ = store.drain()

        let events = r.relist(store.listing(), revision: store.revision)
        #expect(events.isEmpty)
        #expect(r.revision == store.revision)
        let (actions, _) = r.plan()
        #expect(actions == [
            .addFlood(vni: vni, remote: ip("198.18.0.2")),
            .setEntry(vni: vni, mac: mac2, entry: RemoteMACEntry(
                remote: ip("198.18.0.2"), ips: [ip("198.19.0.2")], owner: "b", sequence: 0)),
            .removeEntry(vni: vni, mac: mac),
        ])
        for action in actions { r.applied(action) }
        // The same listing again changes nothing (level-triggered, idempotent).
        _ = r.relist(store.listing(), revision: store.revision)
        #expect(r.plan().actions.isEmpty)
    }

    @Test func ownEntriesAreIgnoredAndALocalClaimWinsOverAStaleRemoteOne() {
        var store = FakeStore()
        var r = reconciler()
        me.join(&store, keys)
        me.flood(&store, keys, vni)
        me.claim(&store, keys, vni, mac, seq: 0)
        let step1 = step(&r, &store)
        #expect(step1.actions.isEmpty)
        #expect(step1.events.isEmpty)

        // b had the MAC programmed; it moves here (our higher sequence): the remote entry goes.
        b.join(&store, keys)
        b.claim(&store, keys, vni, MACAddress("02:00:00:00:00:03")!, seq: 0)
        _ = step(&r, &store)
        let mac3 = MACAddress("02:00:00:00:00:03")!
        #expect(r.sequenceForLocal(vni: vni, mac: mac3) == 1)
        #expect(r.sequenceForLocal(vni: vni, mac: mac) == 0)
        me.claim(&store, keys, vni, mac3, seq: r.sequenceForLocal(vni: vni, mac: mac3))
        #expect(step(&r, &store).actions == [.removeEntry(vni: vni, mac: mac3)])
    }

    @Test func unservedVNIsUnknownKeysAndBadRecordsChangeNothing() {
        var store = FakeStore()
        var r = reconciler()
        a.join(&store, keys)
        a.flood(&store, keys, other)
        a.claim(&store, keys, other, mac, seq: 0)
        store.putRaw(keys.prefix + "future/kind", [1])
        store.putRaw(keys.prefix + "vni/notanumber/flood/a", [1])
        store.putRaw(keys.mac(vni, mac, "a"), Array("not json".utf8))
        store.putRaw("/elsewhere/hosts/x", [1])
        #expect(step(&r, &store).actions.isEmpty)
        #expect(r.snapshot.undecodable == 1)
        // A claim whose host has no record (not live) counts for nothing either.
        FakeHost(id: "ghost", address: "198.18.0.77", incarnation: "g").claim(&store, keys, vni, mac, seq: 9)
        #expect(step(&r, &store).actions.isEmpty)
    }

    @Test func antiEntropyRepairsAndCountsDrift() {
        var store = FakeStore()
        var r = reconciler()
        a.join(&store, keys)
        a.flood(&store, keys, vni)
        a.claim(&store, keys, vni, mac, seq: 0)
        _ = step(&r, &store)
        #expect(r.antiEntropy(actual: r.programmed).actions.isEmpty)
        #expect(r.corrections == 0)

        // Someone removed the entry behind our back and added a flood member we do not want.
        let actual = ClusterTablesState(flood: [vni: [ip("198.18.0.1"), ip("198.18.0.50")]], entries: [:])
        let (actions, _) = r.antiEntropy(actual: actual)
        #expect(actions == [
            .setEntry(vni: vni, mac: mac, entry: RemoteMACEntry(remote: ip("198.18.0.1"), ips: [], owner: "a", sequence: 0)),
            .removeFlood(vni: vni, remote: ip("198.18.0.50")),
        ])
        #expect(r.corrections == 2)
    }

    @Test func keyLayoutRoundTrips() {
        #expect(keys.parse(keys.host("h1")) == .host(id: "h1"))
        #expect(keys.parse(keys.flood(vni, "h1")) == .flood(vni: vni, id: "h1"))
        #expect(keys.parse(keys.mac(vni, mac, "h1")) == .mac(vni: vni, mac: mac, id: "h1"))
        #expect(keys.mac(vni, mac, "h1") == "/vxrouter/v1/lab/vni/100/mac/02:00:00:00:00:01/h1")
        #expect(keys.parse("/vxrouter/v1/lab/vni/99999999/flood/h") == nil)
        #expect(keys.parse("/vxrouter/v1/lab/hosts/") == nil)
    }

    // MARK: Underlay ports

    @Test func aMemberOnAnotherPortIsReportedNotProgrammed() {
        var store = FakeStore()
        var r = ClusterReconciler(keys: keys, selfID: "me", servedVNIs: [vni], port: 4789)
        var c = FakeHost(id: "c", address: "198.18.0.3", incarnation: "c1")
        c.port = 4790
        let macC = MACAddress("02:00:00:00:00:0c")!
        for host in [a, c] {
            host.join(&store, keys)
            host.flood(&store, keys, vni)
        }
        c.claim(&store, keys, vni, macC, seq: 0)
        let first = step(&r, &store)
        #expect(first.actions == [.addFlood(vni: vni, remote: ip("198.18.0.1"))])
        #expect(first.events.contains(.portMismatch(host: "c", address: "198.18.0.3", port: 4790, expected: 4789)))
        #expect(r.portMismatches == 1)
        #expect(r.excluded["c"]?.port == 4790)
        #expect(r.excluded["c"]?.reason.contains("4790") == true)
        #expect(r.excluded["a"] == nil)

        // Reported once while it lasts, not on every pass.
        c.claim(&store, keys, vni, MACAddress("02:00:00:00:00:0d")!, seq: 0)
        let again = step(&r, &store)
        #expect(again.actions.isEmpty)
        #expect(!again.events.contains { if case .portMismatch = $0 { true } else { false } })
        #expect(r.portMismatches == 1)

        // c restarts on our port: programmed at once, no longer excluded.
        c.incarnation = "c2"
        c.port = 4789
        c.join(&store, keys)
        c.flood(&store, keys, vni)
        c.claim(&store, keys, vni, macC, seq: 0)
        let fixed = step(&r, &store)
        #expect(fixed.actions == [
            .addFlood(vni: vni, remote: ip("198.18.0.3")),
            .setEntry(vni: vni, mac: macC, entry: RemoteMACEntry(remote: ip("198.18.0.3"), ips: [], owner: "c", sequence: 0)),
        ])
        #expect(r.excluded.isEmpty)

        // And moves to another port again (a new incarnation): reported again and withdrawn.
        c.incarnation = "c3"
        c.port = 8472
        c.join(&store, keys)
        c.flood(&store, keys, vni)
        c.claim(&store, keys, vni, macC, seq: 0)
        let broken = step(&r, &store)
        #expect(broken.actions == [.removeEntry(vni: vni, mac: macC), .removeFlood(vni: vni, remote: ip("198.18.0.3"))])
        #expect(broken.events.contains(.portMismatch(host: "c", address: "198.18.0.3", port: 8472, expected: 4789)))
        #expect(r.portMismatches == 2)

        // It leaves: forgotten.
        store.deleteAll(under: keys.host("c"))
        _ = step(&r, &store)
        #expect(r.excluded.isEmpty)
    }

    @Test func aMACThatMovesToAMemberOnAnotherPortLosesItsEntry() {
        var store = FakeStore()
        var r = ClusterReconciler(keys: keys, selfID: "me", servedVNIs: [vni], port: 4789)
        var c = FakeHost(id: "c", address: "198.18.0.3", incarnation: "c1")
        c.port = 4790
        a.join(&store, keys)
        c.join(&store, keys)
        a.claim(&store, keys, vni, mac, seq: 0)
        #expect(step(&r, &store).actions == [
            .setEntry(vni: vni, mac: mac, entry: RemoteMACEntry(remote: ip("198.18.0.1"), ips: [], owner: "a", sequence: 0))
        ])
        // c claims it with a higher sequence while a's claim lingers: the MAC is behind c now,
        // which we cannot reach; the entry does not stay on a.
        c.claim(&store, keys, vni, mac, seq: 1)
        #expect(step(&r, &store).actions == [.removeEntry(vni: vni, mac: mac)])
    }

    @Test func withoutAPortEveryLiveMemberCounts() {
        // The overview (`cluster status --cluster`) sees every member whatever its port.
        var store = FakeStore()
        var r = reconciler()
        var c = FakeHost(id: "c", address: "198.18.0.3", incarnation: "c1")
        c.port = 4790
        c.join(&store, keys)
        c.flood(&store, keys, vni)
        #expect(step(&r, &store).actions == [.addFlood(vni: vni, remote: ip("198.18.0.3"))])
        #expect(r.excluded.isEmpty && r.portMismatches == 0)
    }

    @Test func aCatchUpBatchWithTheCurrentRevisionInItsHeaderLosesNoLaterEvent() {
        // etcd's syncWatchers sends a lagging watch its first 1,000 revisions with the store's
        // current revision in the header, then the rest: the rest must still count.
        var store = FakeStore()
        var r = reconciler()
        a.join(&store, keys)
        a.flood(&store, keys, vni)
        _ = step(&r, &store)
        let mac2 = MACAddress("02:00:00:00:00:02")!
        a.claim(&store, keys, vni, mac, seq: 0)
        b.join(&store, keys)
        b.claim(&store, keys, vni, mac2, seq: 0)
        let events = store.drain()
        let current = store.revision
        _ = r.apply(Array(events.prefix(1)), revision: current)
        #expect(r.revision == events[0].keyValue.modRevision)  // where a resumed watch must start
        _ = r.apply(Array(events.dropFirst()), revision: current)
        #expect(r.revision == current)
        let (actions, _) = r.plan()
        #expect(actions.contains(.setEntry(vni: vni, mac: mac2, entry: RemoteMACEntry(
            remote: ip("198.18.0.2"), ips: [], owner: "b", sequence: 0))))
        #expect(actions.contains { if case .setEntry(_, mac, _) = $0 { true } else { false } })
        // A progress notification (no events) moves to its header's revision.
        _ = r.apply([], revision: current + 5)
        #expect(r.revision == current + 5)
    }
}
