// Loss, reordering and duplicates as the sink counts them, and replayed frames matched by content.
import Testing

@testable import vxload

@Suite("Sink accounting")
struct AccountingTests {
    private func track(_ sequences: [UInt64]) -> (SequenceTracker, [SequenceTracker.Outcome]) {
        var tracker = SequenceTracker()
        let outcomes = sequences.map { tracker.record($0) }
        return (tracker, outcomes)
    }

    @Test("in order: everything unique, nothing else")
    func inOrder() {
        let (t, outcomes) = track(Array(0..<100))
        #expect(outcomes.allSatisfy { $0 == .inOrder })
        #expect(t.unique == 100 && t.holes == 0 && t.reordered == 0 && t.duplicates == 0)
        #expect(t.impliedSent == 100)
    }

    @Test("a gap is a hole until the late packet fills it; that one counts as reordered")
    func lateArrival() {
        let (t, outcomes) = track([0, 1, 3, 4, 2, 5])
        #expect(outcomes == [.inOrder, .inOrder, .inOrder, .inOrder, .reordered, .inOrder])
        #expect(t.unique == 6 && t.holes == 0 && t.reordered == 1 && t.duplicates == 0)
    }

    @Test("lost packets stay holes")
    func loss() {
        let (t, _) = track([0, 1, 5, 6, 9])
        #expect(t.unique == 5 && t.holes == 5 && t.reordered == 0)
        #expect(t.impliedSent - t.unique == 5)
    }

    @Test("a packet seen twice is a duplicate, in order or late")
    func duplicates() {
        let (t, outcomes) = track([0, 1, 1, 2, 0, 3, 2])
        #expect(outcomes == [.inOrder, .inOrder, .duplicate, .inOrder, .duplicate, .inOrder, .duplicate])
        #expect(t.unique == 4 && t.duplicates == 3 && t.reordered == 0 && t.holes == 0)
    }

    @Test("a late filler is not taken for a duplicate of an older sequence sharing its window bit")
    func windowWraps() {
        let w = UInt64(SequenceTracker.window)
        // Sequence 5 arrived; then a jump of less than a window leaves 5 + w's bit clear.
        let (t, outcomes) = track([5, w + 10, w + 5])
        #expect(outcomes == [.inOrder, .inOrder, .reordered])
        #expect(t.duplicates == 0 && t.reordered == 1)
        // The first packet of a flow may be late: the ones before it are holes, then fillers.
        let (first, _) = track([3, 0, 1, 2])
        #expect(first.unique == 4 && first.holes == 0 && first.reordered == 3)
    }

    @Test("a jump of more than a window forgets the window; far-late packets count as reordered")
    func bigJump() {
        let w = UInt64(SequenceTracker.window)
        let (t, outcomes) = track([0, 1, 3 * w, 2, 3 * w])
        #expect(outcomes == [.inOrder, .inOrder, .inOrder, .reordered, .duplicate])
        #expect(t.holes == 3 * w - 2 - 1)
        #expect(t.unique == 4)
    }

    @Test("the flow table sums its flows")
    func table() {
        var table = FlowTable()
        _ = table.record(flow: 2, sequence: 0)
        _ = table.record(flow: 2, sequence: 2)
        _ = table.record(flow: 0, sequence: 0)
        _ = table.record(flow: 0, sequence: 0)
        let totals = table.totals
        #expect(totals.unique == 3 && totals.duplicates == 1 && totals.holes == 1 && totals.impliedSent == 4)
    }

    @Test("replayed frames: expected copies follow the file order, extras are duplicates")
    func replayMatching() {
        let a: [UInt8] = [1, 2, 3], b: [UInt8] = [4, 5, 6, 7], other: [UInt8] = [9, 9]
        // a twice in the file: a, b, a.
        var matcher = ReplayMatcher(frames: [a, b, a])
        func receive(_ frame: [UInt8]) -> Bool { frame.withUnsafeBytes { matcher.record($0.baseAddress!, length: $0.count) } }
        // 7 frames sent: two full loops (a b a a b a) and then a.
        for _ in 0..<5 { #expect(receive(a)) }
        for _ in 0..<2 { #expect(receive(b)) }
        #expect(!receive(other))
        let r = matcher.result(sent: 7)
        #expect(r.delivered == 7 && r.duplicates == 0)
        #expect(r.deliveredBytes == 5 * 3 + 2 * 4)
        // One more b than was sent is a duplicate; a missing a is lost (delivered falls short).
        #expect(receive(b))
        let r2 = matcher.result(sent: 8)  // two loops, then a, b: 5 a and 3 b expected
        #expect(r2.delivered == 8 && r2.duplicates == 0)
        let r3 = matcher.result(sent: 6)  // two loops: 4 a, 2 b expected; 5 a and 3 b arrived
        #expect(r3.delivered == 6 && r3.duplicates == 2)
    }
}

@Suite("Traffic shape")
struct ShapeTests {
    @Test("fixed, listed and weighted sizes; imix interleaves 7:4:1 and clamps to the end")
    func sizes() throws {
        #expect(try FrameSizes.parse("64").pattern == [64])
        #expect(try FrameSizes.parse("64, 512,1400").pattern == [64, 512, 1400])
        let imix = try FrameSizes.parse("imix", largest: 1464)
        #expect(imix.pattern.count == 12)
        #expect(imix.pattern.filter { $0 == 64 }.count == 7)
        #expect(imix.pattern.filter { $0 == 594 }.count == 4)
        #expect(imix.pattern.filter { $0 == 1464 }.count == 1)
        #expect(imix.description == "imix (64:7,594:4,1464:1)")
        // Smooth: never more than two small frames in a row.
        #expect(!imix.pattern.indices.contains { i in (0..<3).allSatisfy { imix.pattern[(i + $0) % 12] == 64 } })
        let weighted = try FrameSizes.parse("100:3,200:1")
        #expect(weighted.pattern.sorted() == [100, 100, 100, 200])
        #expect(weighted.mean == 125)
    }

    @Test("sizes that cannot be sent are refused with the reason", arguments: ["63", "1515", "abc", "64:0", "", "64,,128"])
    func badSizes(text: String) {
        #expect(throws: LoadError.self) { try FrameSizes.parse(text, largest: 1514) }
    }

    @Test("rates: plain, with suffixes, max; nonsense refused")
    func rates() throws {
        #expect(try Rate.parse("5000") == .packetsPerSecond(5000))
        #expect(try Rate.parse("250k") == .packetsPerSecond(250_000))
        #expect(try Rate.parse("1.5M") == .packetsPerSecond(1_500_000))
        #expect(try Rate.parse("max") == .unlimited)
        for bad in ["0", "-5", "fast", "2G", "inf"] {
            #expect(throws: LoadError.self, "\(bad)") { try Rate.parse(bad) }
        }
    }

    @Test("ends: iface, tap, vxlan with and without host and port")
    func ends() throws {
        #expect(try EndSpec.parse("iface:vx42") == .interface("vx42"))
        #expect(try EndSpec.parse("tap:t0") == .tap("t0"))
        #expect(try EndSpec.parse("vxlan:10.0.0.1:4790").description == "vxlan:10.0.0.1:4790")
        #expect(try EndSpec.parse("vxlan:10.0.0.1").description == "vxlan:10.0.0.1:4789")
        #expect(try EndSpec.parse("vxlan:4789").description == "vxlan:0.0.0.0:4789")
        #expect(try EndSpec.parse("vxlan:[2001:db8::1]:8472").description == "vxlan:[2001:db8::1]:8472")
        #expect(try EndSpec.parse("vxlan:2001:db8::1").description == "vxlan:[2001:db8::1]:4789")
        for bad in ["vx42", "eth:vx42", "iface:", "iface:a/b", "iface:abcdefghijklmnop", "vxlan:1.2.3:4", "vxlan:1.2.3.4:0"] {
            #expect(throws: LoadError.self, "\(bad)") { try EndSpec.parse(bad) }
        }
    }

    @Test("the pacer spaces batches at the rate, catches up a stall within its depth, never waits when unlimited")
    func pacer() {
        var p = Pacer(packetsPerSecond: 1000, start: 1_000_000_000, burst: 10_000_000, burstPackets: 4)
        #expect(p.reserve(1, now: 1_000_000_000) == 1_000_000_000)
        #expect(p.reserve(1, now: 1_000_000_000) == 1_001_000_000)  // 1 ms per packet
        #expect(p.reserve(10, now: 1_000_500_000) == 1_002_000_000)
        // A second late: only 10 ms of credit is kept (more than 4 packets' worth), so the
        // catch-up burst is ten packets and the one due now.
        let late: UInt64 = 2_012_000_000
        var sentAtOnce = 0
        while p.reserve(1, now: late) <= late { sentAtOnce += 1 }
        #expect(sentAtOnce == 11)
        // At a low rate the depth is counted in packets: 1024 of them at 100 pps is ~10 s.
        var slow = Pacer(packetsPerSecond: 100, start: 0)
        #expect(slow.depth == 1024 * 10_000_000)
        var caughtUp = 0
        while slow.reserve(1, now: 5_000_000_000) <= 5_000_000_000 { caughtUp += 1 }
        #expect(caughtUp == 501)  // a 5 s stall is caught up entirely
        var unlimited = Pacer(packetsPerSecond: nil, start: 0)
        #expect(unlimited.reserve(64, now: 5) == 5)
        #expect(Pacer.batchSize(packetsPerSecond: 5000, maximum: 64) == 1)
        #expect(Pacer.batchSize(packetsPerSecond: 100_000, maximum: 64) == 20)
        #expect(Pacer.batchSize(packetsPerSecond: nil, maximum: 64) == 64)
    }

    @Test("threads split the flows and start the size cycle at different points")
    func probeSourcesSplitFlows() throws {
        var plan = FlowPlan()
        plan.flows = 5
        let sizes = try FrameSizes.parse("64")
        let batch = FrameBatch(capacity: 8, frameCapacity: 64)
        var source = ProbeSource(runID: 1, plan: plan, sizes: sizes, thread: 1, threads: 2)
        var seen: [(UInt16, UInt64)] = []
        for slot in 0..<6 {
            _ = source.next(into: batch, slot: slot % 8, timestamp: 42)
            let probe = Probe.find(inFrame: batch.frame(slot % 8), length: batch.lengths[slot % 8])!
            #expect(probe.timestamp == 42 && probe.runID == 1)
            seen.append((probe.flow, probe.sequence))
        }
        // Thread 1 of 2 owns flows 1 and 3, each with its own sequence.
        #expect(seen.map(\.0) == [1, 3, 1, 3, 1, 3])
        #expect(seen.map(\.1) == [0, 0, 1, 1, 2, 2])
    }
}

@Suite("Reports")
struct ReportTests {
    @Test("JSON strings are escaped, numbers are JSON numbers")
    func jsonPieces() {
        #expect(jsonString("a\"b\\c\nd\u{1}") == "\"a\\\"b\\\\c\\nd\\u0001\"")
        #expect(jsonNumber(3) == "3")
        #expect(jsonNumber(0.000015) == "1.5e-05")
        #expect(jsonNumber(.nan) == "null")
    }

    @Test("a result says loss, and says when it is incomplete")
    func result() {
        var r = RunResult(mode: "run")
        r.sent = 1000
        r.delivered = 900
        r.duration = 2
        #expect(r.lost == 100)
        #expect(r.lossRatio == 0.1)
        #expect(r.ratePPS == 450)
        #expect(r.json.contains("\"lost\":100"))
        #expect(r.json.contains("\"loss_ratio\":0.1"))
        #expect(r.json.contains("\"complete\":true"))
        #expect(r.text.contains("lost"))
        r.complete = false
        r.errors = ["interrupted by SIGINT"]
        #expect(r.json.contains("\"complete\":false"))
        #expect(r.text.contains("INCOMPLETE"))
        #expect(!r.succeeded)
    }
}
