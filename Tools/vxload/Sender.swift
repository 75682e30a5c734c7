// Sending: each sender thread owns one end (its own socket or TAP queue), one FrameBatch and one
// frame source, and shares nothing with the others but its counters (atomics the main thread
// reads once a second).
//
// 1. Wait for the run's common start time.
// 2. Reserve a batch from the pacer (token bucket of this thread's share of --rate); sleep until
//    it is due — a sleep per batch, never a spinning core. Unlimited: no wait.
//    Timed replay instead waits for the next frame's capture time and takes every frame due.
// 3. Stamp the batch with one clock reading, fill it from the source, send it (one sendmmsg
//    when the kernel takes it all), count it, until the count, the duration or a stop.
import Glibc
import Synchronization
import VXPlatform
import VXWire

/// Nanoseconds on CLOCK_MONOTONIC: the clock of the probes' send times, one clock per host.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Sleeps until `deadline` (CLOCK_MONOTONIC ns), absolute, so sleeps do not drift.
func sleep(until deadline: UInt64) {
    var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
}

/// A token bucket at batch granularity: `reserve` says when a batch of n packets may go. Credit
/// left unused (the thread was descheduled, a slow moment) is kept up to the larger of `burst`
/// and `burstPackets` packets' worth, so a stall is caught up — the average rate holds — but
/// never in one unbounded burst. (A busy VM can wake a sleeper tens of milliseconds late.)
struct Pacer: Sendable {
    /// Nanoseconds per packet; nil when unlimited.
    let interval: Double?
    /// Nanoseconds of credit kept.
    let depth: Double
    private var next: Double

    init(packetsPerSecond: Double?, start: UInt64, burst: UInt64 = 20_000_000, burstPackets: Int = 1024) {
        let interval = packetsPerSecond.map { 1e9 / $0 }
        self.interval = interval
        depth = max(Double(burst), Double(burstPackets) * (interval ?? 0))
        next = Double(start)
    }

    /// The time the next `packets` may be sent (now or earlier: at once), and the reservation.
    mutating func reserve(_ packets: Int, now: UInt64) -> UInt64 {
        guard let interval else { return now }
        let current = Double(now)
        if next + depth < current { next = current - depth }
        let due = next
        next += Double(packets) * interval
        return due <= current ? now : UInt64(due)
    }

    /// A batch size that keeps sleeps about 200 µs apart at this rate: small batches at low
    /// rates (smooth), full ones when unlimited or fast.
    static func batchSize(packetsPerSecond: Double?, maximum: Int) -> Int {
        guard let rate = packetsPerSecond else { return maximum }
        return max(1, min(maximum, Int(rate * 0.0002)))
    }
}

// MARK: - Sources

protocol FrameSource {
    /// Writes the next frame into slot `slot` (length and VNI too); returns its length.
    mutating func next(into batch: FrameBatch, slot: Int, timestamp: UInt64) -> Int
}

/// Generated probe frames: this thread's flows in turn, the sizes in their cycle.
struct ProbeSource: FrameSource {
    let runID: UInt16
    private let flows: [FlowAddress]
    private var sequences: [UInt64]
    private let sizes: [Int]
    private var flowIndex = 0
    private var sizeIndex = 0

    /// Thread `thread` of `threads` sends flows thread, thread + threads, ...: one sequence per
    /// flow, written by one thread.
    init(runID: UInt16, plan: FlowPlan, sizes: FrameSizes, thread: Int, threads: Int) {
        self.runID = runID
        flows = Swift.stride(from: thread, to: plan.flows, by: threads).map { plan.address(of: $0) }
        sequences = [UInt64](repeating: 0, count: flows.count)
        self.sizes = sizes.pattern
        // Threads start at different points of the size cycle, so a mix stays a mix in sum.
        sizeIndex = (thread * 7) % sizes.pattern.count
    }

    @inline(__always)
    mutating func next(into batch: FrameBatch, slot: Int, timestamp: UInt64) -> Int {
        let flow = flows[flowIndex]
        let sequence = sequences[flowIndex]
        sequences[flowIndex] = sequence &+ 1
        flowIndex = flowIndex + 1 == flows.count ? 0 : flowIndex + 1
        let length = sizes[sizeIndex]
        sizeIndex = sizeIndex + 1 == sizes.count ? 0 : sizeIndex + 1
        ProbeFrame.write(
            to: batch.frame(slot), length: length, flow: flow,
            probe: Probe(runID: runID, flow: flow.id, sequence: sequence, timestamp: timestamp),
            ipID: UInt16(truncatingIfNeeded: sequence))
        batch.lengths[slot] = length
        batch.vnis[slot] = flow.vni.rawValue
        return length
    }
}

/// The frames of a capture, in order, loop after loop.
struct ReplaySource: FrameSource {
    let capture: Capture
    let vni: UInt32
    private(set) var index = 0
    private(set) var loop: UInt64 = 0

    init(capture: Capture, vni: UInt32) {
        self.capture = capture
        self.vni = vni
    }

    mutating func next(into batch: FrameBatch, slot: Int, timestamp: UInt64) -> Int {
        let frame = capture.frames[index]
        frame.withUnsafeBytes { batch.frame(slot).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        batch.lengths[slot] = frame.count
        batch.vnis[slot] = vni
        index += 1
        if index == capture.frames.count {
            index = 0
            loop += 1
        }
        return frame.count
    }

    /// When the next frame is due, in ns after the start, at `speed` times the captured pace.
    /// A loop lasts the capture's span plus one average gap, so the seam keeps the rhythm.
    func nextOffset(speed: Double) -> UInt64 {
        let offset = Double(capture.offsets[index]) + Double(loop) * Double(capture.loopPeriod)
        return UInt64(offset / speed)
    }
}

// MARK: - The sender thread

/// What one sender has done, read by the main thread while it runs.
final class SenderCounters: Sendable {
    let packets = Atomic<UInt64>(0)
    let bytes = Atomic<UInt64>(0)
    let retries = Atomic<UInt64>(0)
    /// When its last batch went (ns), for the achieved rate.
    let lastSend = Atomic<UInt64>(0)
    let finished = Atomic<Bool>(false)
}

/// Tells every thread of a run to wind down.
final class StopSignal: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}

struct SendPlan {
    /// The common start (CLOCK_MONOTONIC ns), set just before the threads start.
    var start: UInt64 = 0
    /// How long to send (ns), if limited.
    var duration: UInt64?
    /// Stop sending at this time, if set.
    var end: UInt64? { duration.map { start + $0 } }
    /// This thread's share of --count, if set.
    var count: UInt64?
    /// This thread's share of --rate; nil: unlimited.
    var rate: Double?
    var batchSize: Int
}

/// Where a sender's frames come from.
enum SenderSource {
    case probes(ProbeSource)
    /// A capture: paced by the plan's rate, or, with a speed, at its own timestamps.
    case replay(ReplaySource, speed: Double?)
}

final class SenderThread {
    let end: TransmitEnd
    let batch: FrameBatch
    let counters = SenderCounters()
    private var source: SenderSource
    private var plan: SendPlan
    private let stop: StopSignal
    private var thread: OSThread?
    /// Why this sender stopped early; written by its thread before `finished`, read after join.
    private(set) var failure: LoadError?
    private var packets: UInt64 = 0
    private var bytes: UInt64 = 0
    private var lastHealthCheck: UInt64 = 0

    init(end: TransmitEnd, batch: FrameBatch, source: SenderSource, plan: SendPlan, stop: StopSignal) {
        self.end = end
        self.batch = batch
        self.source = source
        self.plan = plan
        self.stop = stop
    }

    /// Starts sending at `start` (CLOCK_MONOTONIC ns), the same for every sender of the run.
    func start(name: String, at start: UInt64) throws {
        plan.start = start
        thread = try OSThread.start(name: name) { [self] in
            do throws(LoadError) {
                sleep(until: plan.start)
                switch source {
                case .probes(var probes): try runPaced(&probes)
                case .replay(var replay, nil): try runPaced(&replay)
                case .replay(var replay, let speed?): try runTimed(&replay, speed: speed)
                }
                try end.checkHealth()
            } catch {
                failure = error
                stop.set()
            }
            counters.retries.store(end.retries, ordering: .relaxed)
            counters.finished.store(true, ordering: .releasing)
        }
    }

    func join() {
        thread?.join()
        thread = nil
    }

    private var remaining: UInt64 { (plan.count ?? UInt64.max) - packets }

    /// At the plan's rate (or flat out): a batch per pacer reservation.
    private func runPaced<S: FrameSource>(_ source: inout S) throws(LoadError) {
        var pacer = Pacer(packetsPerSecond: plan.rate, start: plan.start)
        while remaining > 0, !stop.isSet {
            var now = monotonicNanoseconds()
            if let end = plan.end, now >= end { break }
            let n = Int(min(UInt64(plan.batchSize), remaining))
            let due = pacer.reserve(n, now: now)
            // Sleep in slices of at most 100 ms, so a stop is seen promptly.
            while due > now, !stop.isSet {
                sleep(until: min(due, now + 100_000_000))
                now = monotonicNanoseconds()
            }
            if stop.isSet { break }
            if let end = plan.end, now >= end { break }
            let stamp = monotonicNanoseconds()
            var batchBytes: UInt64 = 0
            for slot in 0..<n { batchBytes &+= UInt64(source.next(into: batch, slot: slot, timestamp: stamp)) }
            try transmit(n, bytes: batchBytes)
        }
    }

    /// A capture at its own pace: every frame due within the next 50 µs goes in one batch,
    /// otherwise sleep until the next one is due.
    private func runTimed(_ replay: inout ReplaySource, speed: Double) throws(LoadError) {
        let slack: UInt64 = 50_000
        while remaining > 0, !stop.isSet {
            let now = monotonicNanoseconds()
            if let end = plan.end, now >= end { break }
            let due = plan.start + replay.nextOffset(speed: speed)
            if due > now + slack {
                sleep(until: min(due, now + 100_000_000, plan.end ?? UInt64.max))
                continue
            }
            let limit = Int(min(UInt64(plan.batchSize), remaining))
            var n = 0
            var batchBytes: UInt64 = 0
            while n < limit, plan.start + replay.nextOffset(speed: speed) <= now + slack {
                batchBytes &+= UInt64(replay.next(into: batch, slot: n, timestamp: 0))
                n += 1
            }
            try transmit(n, bytes: batchBytes)
        }
    }

    @inline(__always)
    private func transmit(_ n: Int, bytes batchBytes: UInt64) throws(LoadError) {
        var done = 0
        while done < n { done += try end.send(batch, from: done, count: n - done) }
        packets += UInt64(n)
        bytes &+= batchBytes
        counters.packets.store(packets, ordering: .relaxed)
        counters.bytes.store(bytes, ordering: .relaxed)
        let now = monotonicNanoseconds()
        counters.lastSend.store(now, ordering: .relaxed)
        if now >= lastHealthCheck + 100_000_000 {
            lastHealthCheck = now
            try end.checkHealth()
        }
    }
}
