// vxbench: release-mode microbenchmarks of the datapath's hot pieces, with no kernel in the loop.
//
//   swift run -c release vxbench [--quick] [--runs N] [FILTER...]
//
// Each benchmark is calibrated to about 20 ms of work per run (40 ms in full mode), run several
// times, and reported as ns per operation: the median with the fastest and slowest run. What one
// operation is:
//   encap N B        Forwarder.encapsulate of one N-byte frame to a known unicast MAC (FDB hit):
//                    length checks, FDB lookup, flow hash, UDP + VXLAN headers written in place,
//                    counters; measured over batches of 64 frames, like a worker's TAP read.
//   encap flood      the same for a broadcast frame to a flood list of 2 VTEPs (2 packets out).
//   worker encap     Worker.serviceDevice over a fake TAP and a fake link that copy nothing: the
//                    per-frame cost of the worker loop around encapsulate.
//   decap N B        Forwarder.decapsulate of one datagram: VXLAN validation, VNI lookup, allow
//                    check, FDB lookup of the inner source and refresh of its age, counters.
//   fdb hit/miss     ForwardingTable.View.lookup of a random MAC that is / is not in a table of
//                    1 K or 1 M learned entries (1 M entries: 32 MB of slots, so cache misses).
//   ring 1 thread    SPSCRing<LearnEvent> push then pop of the same item on one thread.
//   ring 2 threads   one producer thread pushing, one consumer thread popping, per item.
//
// Timings are for comparing builds on one machine; nothing asserts on them.
import Synchronization
import VXDatapath
import VXTestSupport
import VXWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// MARK: Timing

struct Options {
    var runs = 7
    var targetNanoseconds: Int64 = 40_000_000
    var filters: [String] = []
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        switch argument {
        case "--quick":
            options.runs = 3
            options.targetNanoseconds = 20_000_000
        case "--runs":
            guard let value = arguments.popFirst().flatMap({ Int($0) }), value > 0 else {
                fatalError("--runs needs a positive number")
            }
            options.runs = value
        case "-h", "--help":
            print(
                """
                usage: vxbench [--quick] [--runs N] [FILTER...]
                Microbenchmarks of encap, decap, FDB lookup and the SPSC ring; prints ns/op as a
                markdown table (median of N runs, with min–max). FILTERs select benchmarks whose
                name contains any of them.
                """)
            exit(0)
        default:
            options.filters.append(argument)
        }
    }
    return options
}

@inline(__always)
func nowNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// Keeps a value alive in the optimiser's eyes without costing more than a store.
final class Sink: @unchecked Sendable {
    var value: UInt64 = 0
    @inline(__always) func consume(_ v: UInt64) { value &+= v }
}

struct Result {
    var name: String
    var nsPerOp: [Double]
    var note: String
}

/// Runs `body(iterations)` — which performs `iterations` operations — calibrated to the target
/// duration, `runs` times; returns ns per operation of each run.
func measure(_ options: Options, opsPerCall: Int = 1, _ body: (Int) -> Void) -> [Double] {
    var iterations = 1
    while true {
        let start = nowNanoseconds()
        body(iterations)
        let elapsed = nowNanoseconds() - start
        if elapsed >= options.targetNanoseconds / 4 || iterations >= 1 << 40 {
            // Scale to the target from this probe.
            let perIteration = Double(elapsed) / Double(iterations)
            iterations = max(1, Int(Double(options.targetNanoseconds) / max(perIteration, 0.001)))
            break
        }
        iterations *= 4
    }
    var samples: [Double] = []
    for _ in 0..<options.runs {
        let start = nowNanoseconds()
        body(iterations)
        let elapsed = nowNanoseconds() - start
        samples.append(Double(elapsed) / Double(iterations * opsPerCall))
    }
    return samples
}

// MARK: Fixtures

/// An IPv4/UDP frame of `length` bytes (198.19.0.1 → 198.19.0.2, to port 5201).
func udpFrame(length: Int, to destination: MACAddress, from source: MACAddress, sourcePort: UInt16) -> [UInt8] {
    Bytes.udpFrame(
        to: destination, from: source, sourcePort: sourcePort, destinationPort: 5201, length: length,
        source: 0xC613_0001, destination: 0xC613_0002)
}

/// One network (VNI 42) with one remote VTEP learned and a flood list of two, wired as the router
/// wires a worker (VXTestSupport's SteadyDatapath).
typealias Datapath = SteadyDatapath

/// Fills every slot of `batch` with `frame` (offset `prefix` bytes into the slot), from `source`.
func fill(_ batch: inout PacketBatch, with frame: [UInt8], prefix: [UInt8] = [], source: Endpoint) {
    let bytes = prefix + frame
    for i in 0..<batch.capacity {
        bytes.withUnsafeBytes { batch.data(i).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        batch.lengths[i] = bytes.count
        batch.sources[i] = source
    }
    batch.count = batch.capacity
}

// MARK: Benchmarks

let batchSize = 64

func benchEncap(_ options: Options, frameLength: Int, broadcast: Bool) -> [Double] {
    let datapath = Datapath(maxEntries: 16384)
    var batch = PacketBatch(capacity: batchSize, dataCapacity: 1514)
    let destination = broadcast ? MACAddress.broadcast : Datapath.remoteMAC
    fill(
        &batch, with: udpFrame(length: frameLength, to: destination, from: Datapath.localMAC, sourcePort: 40000),
        source: Endpoint(address: IPAddress(v4: 0), port: 0))
    var out = PacketList(capacity: batchSize * 2 + 4)
    let sink = Sink()
    return measure(options, opsPerCall: batchSize) { iterations in
        for _ in 0..<iterations {
            var next = 0
            while next < batch.count {
                next = datapath.forwarder.encapsulate(network: 0, batch: batch, from: next, into: &out)
                sink.consume(UInt64(out.count))
                out.removeAll()
            }
        }
    }
}

func benchWorkerEncap(_ options: Options, frameLength: Int) -> [Double] {
    let datapath = Datapath(maxEntries: 16384)
    let frame = udpFrame(length: frameLength, to: Datapath.remoteMAC, from: Datapath.localMAC, sourcePort: 40000)
    // A TAP that copies its frame into the worker's batch once (the batch is reused), and a link
    // that receives nothing and counts what it is given: the worker loop's own cost.
    let worker = datapath.worker(
        device: ReplayDevice(frame: frame, perRead: batchSize, copyOnce: true),
        link: ReplayUnderlay(source: Datapath.peer), batchSize: batchSize)
    let sink = Sink()
    return measure(options, opsPerCall: batchSize) { iterations in
        for _ in 0..<iterations { sink.consume(UInt64(worker.serviceDevice(0))) }
    }
}

func benchDecap(_ options: Options, frameLength: Int) -> [Double] {
    let datapath = Datapath(maxEntries: 16384)
    var batch = PacketBatch(capacity: batchSize, dataCapacity: 1514 + VXLANHeader.size)
    var header = [UInt8](repeating: 0, count: VXLANHeader.size)
    header.withUnsafeMutableBytes { VXLANHeader.encode(vni: VNI(unchecked: 42), to: $0.baseAddress!) }
    fill(
        &batch, with: udpFrame(length: frameLength, to: Datapath.localMAC, from: Datapath.remoteMAC, sourcePort: 5201),
        prefix: header, source: Endpoint(address: Datapath.peer.address, port: 50000))
    var out = PacketList(capacity: batchSize)
    let sink = Sink()
    return measure(options, opsPerCall: batchSize) { iterations in
        for _ in 0..<iterations {
            datapath.forwarder.decapsulate(batch: batch, now: 1, into: &out)
            sink.consume(UInt64(out.count))
            out.removeAll()
        }
    }
}

/// Random locally administered unicast MACs, distinct.
func randomMACs(_ count: Int, seed: UInt64) -> [MACAddress] {
    var state = seed
    var seen = Set<UInt64>()
    var result: [MACAddress] = []
    result.reserveCapacity(count)
    while result.count < count {
        state = FlowHash.mix(state &+ 0x9E37_79B9_7F4A_7C15)
        // Clear the group bit, set the local bit.
        let raw = (state & 0xFEFF_FFFF_FFFF) | 0x0200_0000_0000
        if seen.insert(raw).inserted { result.append(MACAddress(unchecked: raw)) }
    }
    return result
}

func benchFDB(_ options: Options, entries: Int, hit: Bool) -> [Double] {
    let table = ForwardingTable(maxEntries: entries)
    let remotes = RemoteTable(capacity: 16)
    let remote = remotes.intern(IPAddress(v4: 0xC612_0002))!
    let present = randomMACs(entries, seed: 1)
    for mac in present { precondition(table.learn(mac, behind: remote, now: 1) == .added) }
    // Probe keys in an order unrelated to insertion; at 1 M, every probe is a likely cache miss.
    let probeCount = min(entries, 1 << 16)
    let probes: [MACAddress]
    if hit {
        probes = (0..<probeCount).map { present[Int(FlowHash.mix(UInt64($0)) % UInt64(entries))] }
    } else {
        let presentSet = Set(present.map(\.rawValue))
        probes = randomMACs(probeCount * 2, seed: 2).filter { !presentSet.contains($0.rawValue) }
            .prefix(probeCount).map { $0 }
    }
    let view = table.view
    let sink = Sink()
    let mask = probes.count - 1
    precondition(probes.count & mask == 0)
    return probes.withUnsafeBufferPointer { keys in
        measure(options) { iterations in
            var found: UInt64 = 0
            for i in 0..<iterations {
                if let h = view.lookup(keys[i & mask]) { found &+= UInt64(h.slot) }
            }
            sink.consume(found)
        }
    }
}

func benchRingSingle(_ options: Options) -> [Double] {
    let ring = SPSCRing<LearnEvent>(capacity: 1024)
    let event = LearnEvent(network: 0, mac: MACAddress(2, 0, 0, 0, 0, 1), remote: IPAddress(v4: 1))
    let sink = Sink()
    return measure(options) { iterations in
        var popped: UInt64 = 0
        for _ in 0..<iterations {
            _ = ring.push(event)
            if let e = ring.pop() { popped &+= e.mac.rawValue }
        }
        sink.consume(popped)
    }
}

/// The producer side of the two-thread ring benchmark, run on its own pthread.
final class RingProducer: @unchecked Sendable {
    let ring: SPSCRing<LearnEvent>
    let items: Int
    let go = Atomic<Bool>(false)
    init(ring: SPSCRing<LearnEvent>, items: Int) {
        self.ring = ring
        self.items = items
    }

    func run() {
        while !go.load(ordering: .acquiring) {}
        var event = LearnEvent(network: 0, mac: MACAddress(2, 0, 0, 0, 0, 1), remote: IPAddress(v4: 1))
        for i in 0..<items {
            event.network = i
            while !ring.push(event) {}
        }
    }
}

func benchRingCrossThread(_ options: Options) -> [Double] {
    // Fixed item count per run, sized to the target duration at ~20 ns per item.
    let items = Int(options.targetNanoseconds / 20)
    var samples: [Double] = []
    for _ in 0..<(options.runs + 1) {
        let ring = SPSCRing<LearnEvent>(capacity: 1024)
        let producer = RingProducer(ring: ring, items: items)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(producer).toOpaque()
        let created = pthread_create(
            &thread, nil,
            { context in
                let producer = Unmanaged<RingProducer>.fromOpaque(context!).takeRetainedValue()
                producer.run()
                return nil
            }, context)
        precondition(created == 0, "pthread_create failed")
        let start = nowNanoseconds()
        producer.go.store(true, ordering: .releasing)
        var received = 0
        var checksum = 0
        while received < items {
            if let e = ring.pop() {
                checksum &+= e.network
                received += 1
            }
        }
        let elapsed = nowNanoseconds() - start
        pthread_join(thread, nil)
        precondition(checksum == items * (items - 1) / 2, "ring lost or reordered items")
        samples.append(Double(elapsed) / Double(items))
    }
    return Array(samples.dropFirst())  // the first run warms up thread creation and caches
}

// MARK: Main

let options = parseOptions()

typealias Bench = (name: String, note: String, run: (Options) -> [Double])
// MARK: Offloads

/// An IPv4 TCP frame (32-byte TCP header) with `payload` bytes, checksums complete, or the TCP
/// checksum field holding only the pseudo-header sum (a NEEDS_CSUM super-frame).
func tcpFrame(seq: UInt32, payload: Int, pseudoOnly: Bool = false) -> [UInt8] {
    Bytes.tcpFrame(
        to: Datapath.remoteMAC, from: Datapath.localMAC, payload: payload, seq: seq, pseudoOnly: pseudoOnly)
}

func benchChecksum(_ options: Options, length: Int) -> [Double] {
    let data = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 8)
    for i in 0..<length { data[i] = UInt8(truncatingIfNeeded: i &* 7) }
    let sink = Sink()
    return measure(options) { iterations in
        var total: UInt64 = 0
        for _ in 0..<iterations { total &+= UInt64(InternetChecksum.fold(InternetChecksum.sum(data.baseAddress!, count: length))) }
        sink.consume(total)
    }
}

/// Cutting a 45-segment TSO4 super-frame (MSS 1398, as on a 1450-byte TAP), per segment: each
/// segment copied out whole (`next`), or, as the worker does, only its headers written and its
/// payload summed where it lies (`nextHeaders`, zero-copy).
func benchSegment(_ options: Options, zeroCopy: Bool) -> [Double] {
    let segments = 45
    let frame = tcpFrame(seq: 1, payload: segments * 1398, pseudoOnly: true)
    let header = VirtioNetHeader(
        flags: VirtioNetHeader.flagNeedsChecksum, gsoType: VirtioNetHeader.gsoTCPv4, headerLength: 66, gsoSize: 1398,
        checksumStart: 34, checksumOffset: 16)
    let out = UnsafeMutableRawPointer.allocate(byteCount: 1464 * segments, alignment: 64)
    let sink = Sink()
    return frame.withUnsafeBytes { raw in
        measure(options, opsPerCall: segments) { iterations in
            var total = 0
            for _ in 0..<iterations {
                var segmenter = GSOSegmenter(header: header, frame: raw.baseAddress!, length: raw.count)!
                var k = 0
                if zeroCopy {
                    while let payload = segmenter.nextHeaders(into: out + k * 1464) {
                        total &+= payload.length
                        k += 1
                    }
                } else {
                    while !segmenter.isFinished {
                        total &+= segmenter.next(into: out + k * 1464)
                        k += 1
                    }
                }
            }
            sink.consume(UInt64(total))
        }
    }
}

/// Coalescing 45 consecutive segments of one flow into one GSO frame (checksums verified), per
/// segment. The first frame's headers are restored each round (coalescing rewrites them).
func benchCoalesce(_ options: Options) -> [Double] {
    let segments = 45
    let frames = (0..<segments).map { tcpFrame(seq: 1 + UInt32($0 * 1398), payload: 1398) }
    let length = frames[0].count
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: length * segments, alignment: 64)
    for (k, f) in frames.enumerated() { f.withUnsafeBytes { (buffer + k * length).copyMemory(from: $0.baseAddress!, byteCount: length) } }
    var coalescer = TCPCoalescer()
    let sink = Sink()
    return frames[0].withUnsafeBytes { head in
        measure(options, opsPerCall: segments) { iterations in
            var groups = 0
            for _ in 0..<iterations {
                buffer.copyMemory(from: head.baseAddress!, byteCount: 66)
                for k in 0..<segments {
                    coalescer.add(index: k, tag: 0, frame: buffer + k * length, length: length) { _ in groups += 1 }
                }
                coalescer.flush { _ in groups += 1 }
            }
            sink.consume(UInt64(groups))
        }
    }
}

let benchmarks: [Bench] = [
    ("encap 64 B", "per frame, FDB hit", { benchEncap($0, frameLength: 64, broadcast: false) }),
    ("encap 1400 B", "per frame, FDB hit", { benchEncap($0, frameLength: 1400, broadcast: false) }),
    ("encap flood 64 B", "per frame, 2 copies", { benchEncap($0, frameLength: 64, broadcast: true) }),
    ("worker encap 64 B", "per frame, fake TAP and link", { benchWorkerEncap($0, frameLength: 64) }),
    ("decap 64 B", "per datagram, learned source", { benchDecap($0, frameLength: 64) }),
    ("decap 1400 B", "per datagram, learned source", { benchDecap($0, frameLength: 1400) }),
    ("fdb hit 1K", "per lookup", { benchFDB($0, entries: 1 << 10, hit: true) }),
    ("fdb miss 1K", "per lookup", { benchFDB($0, entries: 1 << 10, hit: false) }),
    ("fdb hit 1M", "per lookup, 2^20 entries", { benchFDB($0, entries: 1 << 20, hit: true) }),
    ("fdb miss 1M", "per lookup, 2^20 entries", { benchFDB($0, entries: 1 << 20, hit: false) }),
    ("ring 1 thread", "push + pop, LearnEvent", { benchRingSingle($0) }),
    ("ring 2 threads", "per item, producer and consumer threads", { benchRingCrossThread($0) }),
    ("checksum 1448 B", "per sum (RFC 1071)", { benchChecksum($0, length: 1448) }),
    ("segment TSO4 64 KB", "per segment (copy + headers + TCP checksum), 45 per super-frame",
     { benchSegment($0, zeroCopy: false) }),
    ("segment TSO4 64 KB zero-copy", "per segment (headers + TCP checksum over the payload in place), as the worker does",
     { benchSegment($0, zeroCopy: true) }),
    ("coalesce 45 segments", "per segment (checks + checksum verify), 45 per GSO frame", { benchCoalesce($0) }),
]

func format(_ value: Double) -> String {
    value >= 100 ? String(Int(value.rounded())) : String(Double(Int((value * 10).rounded())) / 10)
}

print("| benchmark | ns/op (median) | min–max | what one op is |")
print("|---|---:|---:|---|")
for bench in benchmarks {
    if !options.filters.isEmpty, !options.filters.contains(where: { bench.name.contains($0) }) { continue }
    let samples = bench.run(options).sorted()
    let median = samples[samples.count / 2]
    print("| \(bench.name) | \(format(median)) | \(format(samples.first!))–\(format(samples.last!)) | \(bench.note) |")
}
