import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

@Suite("ForwardingTable")
struct ForwardingTableTests {
    let a = RemoteIndex(rawValue: 0)
    let b = RemoteIndex(rawValue: 1)
    let c = RemoteIndex(rawValue: 2)

    func mac(_ n: UInt64) -> MACAddress { MACAddress(unchecked: 0x0200_0000_0000 | n) }

    /// Table slots for `maxEntries` (load factor ≤ 0.5, at least 16), as `ForwardingTable.init` sizes them.
    func slotCount(_ maxEntries: Int) -> Int {
        var size = 16
        while size < maxEntries * 2 { size <<= 1 }
        return size
    }

    /// `count` distinct unicast MACs whose home slot is in `homes`, so their probe runs collide.
    func colliding(_ count: Int, homes: Set<Int>, slots: Int) -> [MACAddress] {
        var result: [MACAddress] = []
        var n: UInt64 = 1
        while result.count < count {
            let candidate = mac(n)
            if homes.contains(ForwardingTable.home(candidate, mask: slots - 1)) { result.append(candidate) }
            n += 1
        }
        return result
    }

    func lastSeen(_ table: ForwardingTable, _ mac: MACAddress) -> UInt32? {
        table.entries().first { $0.entry.mac == mac }?.lastSeen
    }

    @Test func learnAddsAnEntry() {
        let table = ForwardingTable(maxEntries: 8)
        #expect(table.lookup(mac(1)) == nil)
        #expect(table.view.lookup(mac(1)) == nil)
        #expect(table.learn(mac(1), behind: a, now: 10) == .added)
        #expect(table.count == 1)
        #expect(table.lookup(mac(1)) == .init(mac: mac(1), remote: a, isStatic: false))
        let hit = table.view.lookup(mac(1))
        #expect(hit?.remote == a)
        #expect(hit?.isStatic == false)
        #expect(lastSeen(table, mac(1)) == 10)
        #expect(table.lookup(mac(2)) == nil)
    }

    @Test func learningAgainRefreshes() {
        let table = ForwardingTable(maxEntries: 8)
        _ = table.learn(mac(1), behind: a, now: 10)
        #expect(table.learn(mac(1), behind: a, now: 25) == .refreshed)
        #expect(table.count == 1)
        #expect(lastSeen(table, mac(1)) == 25)
    }

    @Test func learningElsewhereMoves() {
        let table = ForwardingTable(maxEntries: 8)
        _ = table.learn(mac(1), behind: a, now: 10)
        #expect(table.learn(mac(1), behind: b, now: 11) == .moved(from: a))
        #expect(table.lookup(mac(1))?.remote == b)
        #expect(table.view.lookup(mac(1))?.remote == b)
        #expect(lastSeen(table, mac(1)) == 11)
        #expect(table.count == 1)
        #expect(table.learn(mac(1), behind: a, now: 12) == .moved(from: b))
    }

    @Test func staticWinsOverLearning() {
        let table = ForwardingTable(maxEntries: 8)
        #expect(table.setStatic(mac(1), remote: a) == .added)
        #expect(table.learn(mac(1), behind: b, now: 10) == .staticKept)
        #expect(table.learn(mac(1), behind: a, now: 10) == .staticKept)
        #expect(table.lookup(mac(1)) == .init(mac: mac(1), remote: a, isStatic: true))
        #expect(table.view.lookup(mac(1))?.isStatic == true)
        // A static entry replaces a learned one and then sticks.
        _ = table.learn(mac(2), behind: b, now: 10)
        #expect(table.setStatic(mac(2), remote: c) == .replaced)
        #expect(table.lookup(mac(2)) == .init(mac: mac(2), remote: c, isStatic: true))
        #expect(table.learn(mac(2), behind: b, now: 11) == .staticKept)
        #expect(table.count == 2)
        // And a static entry can be re-pointed.
        #expect(table.setStatic(mac(1), remote: c) == .replaced)
        #expect(table.lookup(mac(1))?.remote == c)
    }

    @Test func maxEntriesIsEnforced() {
        let table = ForwardingTable(maxEntries: 3)
        #expect(table.learn(mac(1), behind: a, now: 1) == .added)
        #expect(table.setStatic(mac(2), remote: a) == .added)
        #expect(table.learn(mac(3), behind: a, now: 1) == .added)
        #expect(table.learn(mac(4), behind: a, now: 1) == .full)
        #expect(table.setStatic(mac(5), remote: a) == .full)
        #expect(table.count == 3)
        #expect(table.lookup(mac(4)) == nil)
        // Known MACs still refresh, move and go static when the table is full.
        #expect(table.learn(mac(1), behind: a, now: 2) == .refreshed)
        #expect(table.learn(mac(1), behind: b, now: 3) == .moved(from: a))
        #expect(table.setStatic(mac(3), remote: c) == .replaced)
        // Room again after a removal.
        #expect(table.remove(mac(1)) != nil)
        #expect(table.learn(mac(4), behind: a, now: 4) == .added)
    }

    @Test func highestRemoteIndexRoundTrips() {
        let table = ForwardingTable(maxEntries: 4)
        let last = RemoteIndex(rawValue: UInt16(RemoteIndex.limit - 1))
        _ = table.learn(mac(1), behind: last, now: 1)
        table.setStatic(MACAddress(unchecked: 0xFEFF_FFFF_FFFF), remote: last)
        #expect(table.lookup(mac(1))?.remote == last)
        #expect(table.view.lookup(MACAddress(unchecked: 0xFEFF_FFFF_FFFF))?.remote == last)
        #expect(table.view.lookup(MACAddress(unchecked: 0xFEFF_FFFF_FFFF))?.isStatic == true)
    }

    @Test func removeReturnsTheEntry() {
        let table = ForwardingTable(maxEntries: 8)
        _ = table.learn(mac(1), behind: b, now: 1)
        #expect(table.remove(mac(1)) == .init(mac: mac(1), remote: b, isStatic: false))
        #expect(table.remove(mac(1)) == nil)
        #expect(table.remove(mac(9)) == nil)
        #expect(table.count == 0)
        #expect(table.view.lookup(mac(1)) == nil)
    }

    /// Entries piled onto a few home slots, straddling the end of the array so their probe run
    /// wraps: removing any of them must leave every other one reachable (no tombstones, no holes).
    @Test(arguments: [0, 1, 2])
    func backwardShiftKeepsEveryOtherEntryFindable(pattern: Int) {
        let maxEntries = 64
        let slots = slotCount(maxEntries)
        let macs = colliding(48, homes: [slots - 3, slots - 2, slots - 1, 0, 5], slots: slots)
        let table = ForwardingTable(maxEntries: maxEntries)
        for (i, m) in macs.enumerated() {
            #expect(table.learn(m, behind: RemoteIndex(rawValue: UInt16(i)), now: UInt32(i)) == .added)
        }
        let removed = macs.indices.filter {
            switch pattern {
            case 0: $0 % 3 == 0
            case 1: $0 < 24
            default: $0 % 2 == 1
            }
        }
        for i in removed {
            #expect(table.remove(macs[i])?.remote == RemoteIndex(rawValue: UInt16(i)))
            // After every single removal, not just at the end.
            for (j, m) in macs.enumerated() {
                let expectedPresent = !removed.contains(j) || j > i
                let hit = table.view.lookup(m)
                if expectedPresent {
                    #expect(hit?.remote == RemoteIndex(rawValue: UInt16(j)), "mac \(j) lost after removing \(i)")
                } else {
                    #expect(hit == nil, "mac \(j) still there")
                }
            }
        }
        #expect(table.count == macs.count - removed.count)
        // Ages travel with the entries they belong to.
        for entry in table.entries() {
            let j = macs.firstIndex(of: entry.entry.mac)!
            #expect(entry.lastSeen == UInt32(j))
        }
    }

    @Test func ageingRemovesOnlyStaleLearnedEntries() {
        let table = ForwardingTable(maxEntries: 16)
        _ = table.learn(mac(1), behind: a, now: 10)  // stale
        _ = table.learn(mac(2), behind: a, now: 100)  // exactly maxAge old: kept
        _ = table.learn(mac(3), behind: b, now: 150)
        table.setStatic(mac(4), remote: c)  // never aged
        var removed: [ForwardingTable.Entry] = []
        table.age(now: 220, maxAge: 120) { removed.append($0) }
        #expect(removed == [.init(mac: mac(1), remote: a, isStatic: false)])
        #expect(table.lookup(mac(1)) == nil)
        #expect(table.lookup(mac(2)) != nil)
        #expect(table.lookup(mac(3)) != nil)
        #expect(table.count == 3)

        removed = []
        table.age(now: .max, maxAge: 0) { removed.append($0) }
        #expect(Set(removed.map(\.mac)) == [mac(2), mac(3)])
        #expect(table.lookup(mac(4)) == .init(mac: mac(4), remote: c, isStatic: true))
        #expect(table.count == 1)
    }

    @Test func ageingHonoursTouchesFromWorkers() throws {
        let table = ForwardingTable(maxEntries: 8)
        _ = table.learn(mac(1), behind: a, now: 10)
        let hit = try #require(table.view.lookup(mac(1)))
        table.view.touch(slot: hit.slot, now: 500)
        #expect(lastSeen(table, mac(1)) == 500)
        var removed = 0
        table.age(now: 600, maxAge: 300) { _ in removed += 1 }
        #expect(removed == 0)
        table.age(now: 801, maxAge: 300) { _ in removed += 1 }
        #expect(removed == 1)
    }

    @Test func ageingSurvivesClockWrap() {
        let table = ForwardingTable(maxEntries: 8)
        _ = table.learn(mac(1), behind: a, now: UInt32.max - 5)
        var removed = 0
        table.age(now: 10, maxAge: 60) { _ in removed += 1 }  // 16 seconds later, across the wrap
        #expect(removed == 0)
    }

    /// Ageing removes while it walks; the backward shift must not make it skip or double-remove.
    @Test func ageingThroughCollidingRuns() {
        let maxEntries = 64
        let slots = slotCount(maxEntries)
        let macs = colliding(50, homes: [slots - 2, slots - 1, 0, 1], slots: slots)
        let table = ForwardingTable(maxEntries: maxEntries)
        for (i, m) in macs.enumerated() {
            if i % 7 == 3 {
                table.setStatic(m, remote: c)
            } else {
                _ = table.learn(m, behind: a, now: i % 2 == 0 ? 0 : 1000)  // even: stale
            }
        }
        var removed: [MACAddress] = []
        table.age(now: 1000, maxAge: 100) { removed.append($0.mac) }
        let expectedRemoved = macs.indices.filter { $0 % 7 != 3 && $0 % 2 == 0 }.map { macs[$0] }
        #expect(removed.count == expectedRemoved.count, "each stale entry removed exactly once")
        #expect(Set(removed) == Set(expectedRemoved))
        for (i, m) in macs.enumerated() {
            let stale = i % 7 != 3 && i % 2 == 0
            #expect((table.view.lookup(m) == nil) == stale, "mac \(i)")
        }
    }

    @Test func flushLearnedKeepsStatic() {
        let maxEntries = 32
        let macs = colliding(20, homes: [0, 1], slots: slotCount(maxEntries))
        let table = ForwardingTable(maxEntries: maxEntries)
        for (i, m) in macs.enumerated() {
            if i % 4 == 0 { table.setStatic(m, remote: b) } else { _ = table.learn(m, behind: a, now: 5) }
        }
        #expect(table.flushLearned() == 15)
        #expect(table.count == 5)
        for (i, m) in macs.enumerated() {
            #expect((table.view.lookup(m) != nil) == (i % 4 == 0))
        }
        #expect(table.flushLearned() == 0)
    }

    @Test func entriesListsEverything() {
        let table = ForwardingTable(maxEntries: 8)
        #expect(table.entries().isEmpty)
        _ = table.learn(mac(1), behind: a, now: 7)
        table.setStatic(mac(2), remote: b)
        _ = table.learn(mac(3), behind: c, now: 9)
        let listed = table.entries().sorted { $0.entry.mac < $1.entry.mac }
        #expect(
            listed.map(\.entry) == [
                .init(mac: mac(1), remote: a, isStatic: false),
                .init(mac: mac(2), remote: b, isStatic: true),
                .init(mac: mac(3), remote: c, isStatic: false),
            ])
        #expect(listed.map(\.lastSeen) == [7, 0, 9])
    }

    /// Random learns, statics, removals and ageing against a dictionary, on a small table where
    /// most MACs collide.
    @Test func matchesAModelUnderRandomOperations() {
        struct ModelEntry: Equatable {
            var remote: RemoteIndex
            var isStatic: Bool
            var lastSeen: UInt32
        }
        let maxEntries = 24
        let slots = slotCount(maxEntries)
        let pool = colliding(30, homes: [slots - 1, 0, 1], slots: slots) + (100..<120).map { mac($0) }
        let table = ForwardingTable(maxEntries: maxEntries)
        var model: [MACAddress: ModelEntry] = [:]
        var rng = SplitMix64(seed: 2024)
        var now: UInt32 = 0
        for step in 0..<20_000 {
            now &+= UInt32(rng.next() % 3)
            let m = pool[Int(rng.next() % UInt64(pool.count))]
            let remote = RemoteIndex(rawValue: UInt16(rng.next() % 4))
            switch rng.next() % 10 {
            case 0..<5:
                let outcome = table.learn(m, behind: remote, now: now)
                let expected: ForwardingTable.LearnOutcome
                if var old = model[m] {
                    if old.isStatic {
                        expected = .staticKept
                    } else {
                        expected = old.remote == remote ? .refreshed : .moved(from: old.remote)
                        old.remote = remote
                        old.lastSeen = now
                        model[m] = old
                    }
                } else if model.count < maxEntries {
                    expected = .added
                    model[m] = ModelEntry(remote: remote, isStatic: false, lastSeen: now)
                } else {
                    expected = .full
                }
                #expect(outcome == expected, "step \(step)")
            case 5:
                let outcome = table.setStatic(m, remote: remote)
                if var old = model[m] {
                    #expect(outcome == .replaced)
                    old.remote = remote
                    old.isStatic = true
                    model[m] = old
                } else if model.count < maxEntries {
                    #expect(outcome == .added)
                    model[m] = ModelEntry(remote: remote, isStatic: true, lastSeen: 0)
                } else {
                    #expect(outcome == .full)
                }
            case 6..<9:
                let removed = table.remove(m)
                let old = model.removeValue(forKey: m)
                #expect(removed?.remote == old?.remote && removed?.isStatic == old?.isStatic, "step \(step)")
            default:
                let maxAge = UInt32(rng.next() % 20)
                var removed: [MACAddress] = []
                table.age(now: now, maxAge: maxAge) { removed.append($0.mac) }
                let stale = model.filter { !$0.value.isStatic && now &- $0.value.lastSeen > maxAge }.map(\.key)
                for key in stale { model[key] = nil }
                #expect(removed.count == stale.count && Set(removed) == Set(stale), "step \(step)")
            }
            #expect(table.count == model.count)
            for candidate in pool {
                let hit = table.view.lookup(candidate)
                let want = model[candidate]
                if hit?.remote != want?.remote || hit?.isStatic != want?.isStatic {
                    Issue.record(
                        "step \(step): \(candidate) is \(String(describing: hit)), model \(String(describing: want))")
                    return
                }
            }
        }
        let listed = Dictionary(
            uniqueKeysWithValues: table.entries().map {
                ($0.entry.mac, ModelEntry(remote: $0.entry.remote, isStatic: $0.entry.isStatic, lastSeen: $0.lastSeen))
            })
        #expect(listed == model)
    }
}
