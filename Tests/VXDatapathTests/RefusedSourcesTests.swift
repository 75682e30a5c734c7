// RefusedSources: strangers refused by allow_from, counted per source in a fixed per-worker table
// (evicting the smallest), merged across workers with a bounded list; and the Forwarder counting
// into it only for sources the remote table does not know.
import Testing
import VXWire

@testable import VXDatapath

@Suite("Refused sources")
struct RefusedSourcesTests {
    static func address(_ i: Int) -> IPAddress { IPAddress(v4: 0xC612_0000 | UInt32(i)) }  // 198.18.x.x

    @Test("counts each source; the counts and the evicted packets add up to every packet counted")
    func countsAndConserves() {
        let table = RefusedSources()
        for _ in 0..<5 { table.count(Self.address(1)) }
        table.count(Self.address(2))
        table.count(IPAddress("2001:db8::9")!)
        let snapshot = table.snapshot()
        let counts = Dictionary(uniqueKeysWithValues: snapshot.sources.map { ($0.address, $0.packets) })
        #expect(counts == [Self.address(1): 5, Self.address(2): 1, IPAddress("2001:db8::9")!: 1])
        #expect(snapshot.evicted == 0)

        // Far more sources than slots: the table stays at its size, nothing is lost from the sum.
        let many = 10 * RefusedSources.slots
        for i in 0..<many { table.count(Self.address(1000 + i)) }
        let after = table.snapshot()
        #expect(after.sources.count <= RefusedSources.slots)
        #expect(after.sources.reduce(0) { $0 + $1.packets } + after.evicted == UInt64(5 + 1 + 1 + many))
    }

    @Test("a steady source survives a stream of one-off (spoofed) sources: the smallest count is evicted")
    func heavySourceStays() {
        let table = RefusedSources()
        let steady = Self.address(7)
        for i in 0..<5000 {
            if i % 10 == 0 { table.count(steady) }
            table.count(Self.address(10_000 + i))
        }
        let listed = table.snapshot().sources.first { $0.address == steady }
        #expect(listed?.packets == 500)
    }

    @Test("merge sums the workers, lists the most refused first, and counts the rest as other")
    func mergesBounded() {
        let a: (sources: [(address: IPAddress, packets: UInt64)], evicted: UInt64) =
            ([(Self.address(1), 10), (Self.address(2), 3), (Self.address(3), 1)], 4)
        let b: (sources: [(address: IPAddress, packets: UInt64)], evicted: UInt64) =
            ([(Self.address(2), 9), (Self.address(4), 2)], 1)
        let merged = RefusedSources.merge([a, b], limit: 2)
        #expect(merged.sources.map(\.address) == [Self.address(2), Self.address(1)])
        #expect(merged.sources.map(\.packets) == [12, 10])
        #expect(merged.other == 4 + 1 + 1 + 2)  // evicted in both, and addresses 3 and 4 cut
        let all = RefusedSources.merge([a, b], limit: 16)
        #expect(all.sources.count == 4 && all.other == 5)
    }

    @Test("a reader racing the writer never sees a count that belongs to another address")
    func readerRacingWriter() async {
        let table = RefusedSources()
        // Every source is counted exactly `per` times, in rounds, so any count above `per` would
        // be one source's address paired with another's count.
        let per: UInt64 = 50
        let writer = Task.detached {
            for _ in 0..<per {
                for i in 0..<300 { table.count(Self.address(i)) }
            }
        }
        var snapshots = 0
        while snapshots < 200 {
            for source in table.snapshot().sources { #expect(source.packets <= per) }
            snapshots += 1
            await Task.yield()
        }
        await writer.value
        let final = table.snapshot()
        #expect(final.sources.reduce(0) { $0 + $1.packets } + final.evicted == 300 * per)
    }
}
