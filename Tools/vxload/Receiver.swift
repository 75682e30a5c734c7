// Receiving: each receiver thread owns one end and one FrameBatch; all of them account into one
// Tally behind a lock, taken once per batch (flows can reach either thread: fanout and
// SO_REUSEPORT spread by hash, and a TAP by queue).
//
// 1. Poll the end (50 ms, to see a stop); read a batch without waiting; note the time once.
// 2. Under the lock: find each frame's probe (or, replaying, match the frame to the capture),
//    account its sequence, record its latency (arrival − send time) in the run's histogram and
//    in this second's.
// 3. Once stopped, read until the end is empty, then exit.
import Glibc
import Histogram
import Synchronization
import VXPlatform

/// Latency in ns: 1 ns to 100 s, three significant digits (HdrHistogram).
typealias LatencyHistogram = Histogram<UInt64>

func makeLatencyHistogram() -> LatencyHistogram {
    LatencyHistogram(lowestDiscernibleValue: 1, highestTrackableValue: 100_000_000_000, numberOfSignificantValueDigits: .three)
}

/// Everything the sink knows; guarded by the Collector's lock.
struct Tally: Sendable {
    /// The run being measured. Preset when one process drives both ends; otherwise the first
    /// probe seen picks it (or --run-id).
    var runID: UInt16?
    var flows = FlowTable()
    var replay: ReplayMatcher?
    /// Bytes of distinct packets delivered (probe runs; replay counts its own).
    var deliveredBytes: UInt64 = 0
    var latency = makeLatencyHistogram()
    var intervalLatency = makeLatencyHistogram()
    /// Probes that arrived "before" they were sent: sender and sink on different clocks.
    var clockMismatch: UInt64 = 0
    /// Probes of another run, and frames that were neither ours nor the capture's.
    var otherRuns: UInt64 = 0
    var otherFrames: UInt64 = 0
    /// From the sender's end marker: the packets it sent and its flows.
    var endMarker: (sent: UInt64, flows: UInt64)?
    var firstArrival: UInt64?
    var lastArrival: UInt64?

    @inline(__always)
    mutating func absorb(_ batch: FrameBatch, count: Int, now: UInt64) {
        for i in 0..<count {
            let length = batch.lengths[i]
            guard length > 0 else { continue }
            let frame = batch.frame(i)
            if replay != nil, replay!.record(frame, length: length) {
                arrived(now)
                continue
            }
            guard let probe = Probe.find(inFrame: frame, length: length) else {
                otherFrames += 1
                continue
            }
            if runID == nil { runID = probe.runID }
            guard probe.runID == runID else {
                otherRuns += 1
                continue
            }
            if probe.isEndMarker {
                endMarker = (probe.sequence, probe.timestamp)
                continue
            }
            if replay != nil {
                otherFrames += 1
                continue
            }
            arrived(now)
            if flows.record(flow: probe.flow, sequence: probe.sequence) == .duplicate { continue }
            deliveredBytes &+= UInt64(length)
            if now >= probe.timestamp {
                let value = max(1, min(now - probe.timestamp, latency.highestTrackableValue))
                latency.record(value)
                intervalLatency.record(value)
            } else {
                clockMismatch += 1
            }
        }
    }

    @inline(__always)
    private mutating func arrived(_ now: UInt64) {
        if firstArrival == nil { firstArrival = now }
        lastArrival = now
    }

    /// Distinct packets delivered so far (probe runs: any flow; replay: matched frames).
    var delivered: UInt64 { replay?.received ?? flows.totals.unique }
}

/// The sink's shared state.
final class Collector: Sendable {
    let tally: Mutex<Tally>

    init(runID: UInt16?, replay: ReplayMatcher?) {
        var t = Tally()
        t.runID = runID
        t.replay = replay
        tally = Mutex(t)
    }

    /// This second's latency histogram, and a fresh one in its place.
    func takeIntervalLatency() -> LatencyHistogram {
        tally.withLock { t in
            let h = t.intervalLatency
            t.intervalLatency = makeLatencyHistogram()
            return h
        }
    }
}

final class ReceiverThread {
    let end: ReceiveEnd
    let batch: FrameBatch
    private let collector: Collector
    private let stop: StopSignal
    private var thread: OSThread?
    /// Why this receiver stopped early; written by its thread before `failed`, read after join.
    private(set) var failure: LoadError?
    /// Set (once `failure` is written) when the thread gave up: the main thread watches this.
    let failed = Atomic<Bool>(false)

    init(end: ReceiveEnd, batch: FrameBatch, collector: Collector, stop: StopSignal) {
        self.end = end
        self.batch = batch
        self.collector = collector
        self.stop = stop
    }

    func start(name: String) throws {
        thread = try OSThread.start(name: name) { [self] in
            do throws(LoadError) { try run() } catch {
                failure = error
                failed.store(true, ordering: .releasing)
            }
        }
    }

    func join() {
        thread?.join()
        thread = nil
    }

    private func run() throws(LoadError) {
        var poller = pollfd(fd: end.fd.rawValue, events: Int16(POLLIN), revents: 0)
        while true {
            let n = try end.receive(into: batch)
            if n > 0 {
                let now = monotonicNanoseconds()
                collector.tally.withLock { $0.absorb(batch, count: n, now: now) }
                continue
            }
            if stop.isSet { return }
            poller.revents = 0
            _ = poll(&poller, 1, 50)
            if poller.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0, poller.revents & Int16(POLLIN) == 0 {
                throw LoadError("\(end.label): the end stopped delivering (did the interface go away?)")
            }
        }
    }
}
