// One run, from opened ends to the final result, on the main thread:
//
// 1. Load the capture (replay), open the receiving ends, then the sending ones (each inside its
//    namespace), and check the frame sizes against what the sending end carries.
// 2. Start the receivers, then the senders, all at one common start time a moment ahead.
// 3. Once a second: sum the senders' counters and the tally into an interval, print it (live
//    line on a terminal, a line with --verbose). Watch for the end: senders done (then drain
//    until everything sent arrived, or --drain passes), the sender's end marker (sink), a
//    signal, or a failed end.
// 4. Stop and join every thread; the send mode sends its end marker; build the result.
import Glibc
import VXPlatform
import VXWire

enum Mode: String { case run, send, sink }

struct RunConfig {
    var mode: Mode
    var tx: EndSpec?
    var rx: EndSpec?
    var txNamespace: String?
    var rxNamespace: String?
    var sizes = "64"
    var plan = FlowPlan()
    var rate = Rate.unlimited
    var duration: Double?
    var count: UInt64?
    var threads = 1
    var rxThreads = 1
    var batch = 64
    var pcap: String?
    var loops = 1
    var speed: Double?
    var drain = 1.0
    var runID: UInt16?
    var idle: Double?
    var verbose = false
    /// Live progress on standard error (a terminal, or --verbose).
    var progress = Console.stderrIsTerminal
}

final class Runner {
    let config: RunConfig
    private let opened = OpenedEnds()
    private let stop = StopSignal()
    private var senders: [SenderThread] = []
    private var receivers: [ReceiverThread] = []
    private var collector: Collector?
    private var capture: Capture?
    private var frameSizes: FrameSizes?
    private let runID: UInt16
    private var start: UInt64 = 0

    init(config: RunConfig) {
        self.config = config
        runID = config.runID ?? UInt16.random(in: 1...0xFFFE)
    }

    deinit { opened.close() }

    /// Everything that can go wrong before traffic flows throws here: bad input, a capture
    /// that cannot be read, an end that cannot be opened.
    func prepare() throws {
        try config.plan.validate()
        guard (1...64).contains(config.threads) else { throw LoadError("--threads must be 1...64") }
        guard (1...64).contains(config.rxThreads) else { throw LoadError("--rx-threads must be 1...64") }
        guard (1...1024).contains(config.batch) else { throw LoadError("--batch must be 1...1024") }
        if let d = config.duration, !(d > 0 && d <= 86_400 * 7) { throw LoadError("--duration must be more than 0 s and at most a week") }
        if let c = config.count, c == 0 { throw LoadError("--count must be at least 1") }
        guard config.drain >= 0, config.drain <= 600 else { throw LoadError("--drain must be 0...600 s") }
        if let path = config.pcap {
            guard config.threads == 1 else { throw LoadError("--pcap replays in order from one thread: drop --threads") }
            if let speed = config.speed, !(speed > 0 && speed <= 1e6) { throw LoadError("--speed must be more than 0") }
            if config.speed != nil, config.rate != .unlimited {
                throw LoadError("--speed (the capture's own timing) and --rate exclude each other")
            }
            guard config.loops >= 0 else { throw LoadError("--loop must be 0 (until --duration/--count) or more") }
            capture = try Capture.load(path: path)
        }
        if config.mode != .send {
            let replay = capture.map { ReplayMatcher(frames: $0.frames) }
            // One process driving both ends knows the run id; a lone sink learns it (or is told).
            collector = Collector(runID: config.mode == .run ? runID : config.runID, replay: replay)
        }
        // A tap: end may create its TAP, which the other end may then name: open it first.
        if case .tap? = config.tx {
            try openTransmitters()
            try openReceivers()
        } else {
            try openReceivers()
            try openTransmitters()
        }
    }

    private func openReceivers() throws {
        guard let rx = config.rx else { return }
        let batches = (0..<config.rxThreads).map { _ in FrameBatch(capacity: 64, frameCapacity: 16_384) }
        let ends = try EndOpener.receivers(rx, batches: batches, namespace: config.rxNamespace, into: opened)
        for (end, batch) in zip(ends, batches) {
            receivers.append(ReceiverThread(end: end, batch: batch, collector: collector!, stop: stop))
        }
    }

    private func openTransmitters() throws {
        guard let tx = config.tx else { return }
        let ends = try EndOpener.transmitters(
            tx, count: config.threads, batchCapacity: config.batch, namespace: config.txNamespace, into: opened)
        let largest = ends.map(\.largestFrame).min() ?? 1514
        if let capture {
            if let (index, frame) = capture.frames.enumerated().first(where: { $0.element.count > largest }) {
                throw LoadError(
                    "--pcap \(capture.path): frame \(index + 1) is \(frame.count) bytes, more than \(tx) carries (\(largest))")
            }
        } else {
            frameSizes = try FrameSizes.parse(config.sizes, largest: largest)
        }
        let frameCapacity = max(capture?.largestFrame ?? 0, frameSizes?.largest ?? 0)
        let plans = sendPlans()
        for (t, end) in ends.enumerated() {
            let batch = FrameBatch(capacity: config.batch, frameCapacity: frameCapacity)
            let source: SenderSource
            if let capture {
                source = .replay(ReplaySource(capture: capture, vni: config.plan.baseVNI), speed: config.speed)
            } else {
                source = .probes(
                    ProbeSource(runID: runID, plan: config.plan, sizes: frameSizes!, thread: t, threads: config.threads))
            }
            senders.append(SenderThread(end: end, batch: batch, source: source, plan: plans[t], stop: stop))
        }
    }

    /// Each thread's share of the count and the rate, and how long to send.
    private func sendPlans() -> [SendPlan] {
        let threads = config.threads
        var count = config.count
        var duration = config.duration
        if let capture, config.loops > 0 {
            let frames = UInt64(capture.frames.count) * UInt64(config.loops)
            count = count.map { min($0, frames) } ?? frames
        }
        // Neither a count nor a duration (nor a capture to finish): ten seconds.
        if count == nil && duration == nil { duration = 10 }
        let nanoseconds = duration.map { UInt64($0 * 1e9) }
        let perThreadRate: Double? = {
            if case .packetsPerSecond(let r) = config.rate { return r / Double(threads) }
            return nil
        }()
        let batch = Pacer.batchSize(packetsPerSecond: perThreadRate, maximum: config.batch)
        return (0..<threads).map { t in
            let share = count.map { $0 / UInt64(threads) + (UInt64(t) < $0 % UInt64(threads) ? 1 : 0) }
            return SendPlan(duration: nanoseconds, count: share, rate: perThreadRate, batchSize: batch)
        }
    }

    /// Runs to the end and returns what happened. `signals` is read for SIGINT/SIGTERM.
    func execute(signals: ControlSignals) -> RunResult {
        var result = RunResult(mode: config.mode.rawValue)
        result.tx = config.tx.map { describe($0, config.txNamespace) }
        result.rx = config.rx.map { describe($0, config.rxNamespace) }
        result.runID = config.mode == .sink ? nil : runID
        result.sizes = config.tx != nil && capture == nil ? frameSizes?.description : nil
        result.flows = config.tx != nil && capture == nil ? config.plan.flows : nil
        result.targetRate = config.tx != nil && config.speed == nil ? config.rate : nil
        result.pcap = config.pcap

        // A moment ahead, so every thread is up and waiting when it comes.
        start = monotonicNanoseconds() + 20_000_000
        do {
            for (i, r) in receivers.enumerated() { try r.start(name: "vxload-rx\(i)") }
            for (i, s) in senders.enumerated() { try s.start(name: "vxload-tx\(i)", at: start) }
        } catch {
            stop.set()
            result.complete = false
            result.errors.append("cannot start threads: \(error)")
            joinAll()
            return result
        }

        var interrupted: String?
        var stoppedBy = ""
        var previousSent: UInt64 = 0, previousDelivered: UInt64 = 0, previousHoles: UInt64 = 0
        var second = 0
        var nextTick = start + 1_000_000_000
        var sendersDoneAt: UInt64?
        var markerSeenAt: UInt64?
        let drainNs = UInt64(config.drain * 1e9)
        let sinkEnd: UInt64? = config.mode == .sink ? config.duration.map { start + UInt64($0 * 1e9) } : nil

        loop: while true {
            let now = monotonicNanoseconds()
            let wait = Int32(max(1, min(100, (Int64(nextTick) - Int64(now)) / 1_000_000)))
            waitReadable(signals.fd, timeoutMilliseconds: wait)
            for request in signals.pending() {
                if case .stop(let name) = request { interrupted = name }
            }
            if interrupted != nil { stoppedBy = "signal"; break }
            let t = monotonicNanoseconds()

            if t >= nextTick {
                second += 1
                nextTick += 1_000_000_000
                let (interval, sent, delivered, holes) = sample(
                    second: second, previousSent: previousSent, previousDelivered: previousDelivered, previousHoles: previousHoles)
                previousSent = sent ?? 0
                previousDelivered = delivered ?? 0
                previousHoles = holes ?? 0
                result.intervals.append(interval)
                if config.progress {
                    let line = RunResult.progressLine(interval, totalSent: config.mode == .run ? sent : nil, totalDelivered: delivered)
                    if Console.stderrIsTerminal && !config.verbose { Console.live(line) } else { Console.error(line) }
                }
            }

            if stop.isSet { stoppedBy = "failure"; break }  // a sender failed
            if receivers.contains(where: { $0.failed.load(ordering: .acquiring) }) { stoppedBy = "failure"; break }

            switch config.mode {
            case .run, .send:
                if sendersDoneAt == nil, senders.allSatisfy({ $0.counters.finished.load(ordering: .acquiring) }) {
                    sendersDoneAt = t
                }
                guard let doneAt = sendersDoneAt else { continue loop }
                if config.mode == .send { break loop }
                let sent = senders.reduce(UInt64(0)) { $0 + $1.counters.packets.load(ordering: .relaxed) }
                let delivered = collector!.tally.withLock { $0.delivered }
                if delivered >= sent || t >= doneAt + drainNs { break loop }
            case .sink:
                let (marker, delivered, last) = collector!.tally.withLock { ($0.endMarker, $0.delivered, $0.lastArrival) }
                if let marker {
                    if markerSeenAt == nil { markerSeenAt = t }
                    if delivered >= marker.sent || t >= markerSeenAt! + drainNs { stoppedBy = "marker"; break loop }
                }
                if let sinkEnd, t >= sinkEnd { stoppedBy = "duration"; break loop }
                if let idle = config.idle, let last, t >= last + UInt64(idle * 1e9) { stoppedBy = "idle"; break loop }
            }
        }
        if config.progress && Console.stderrIsTerminal && !config.verbose { Console.endLive() }

        stop.set()
        joinSenders()
        if config.mode == .send, stoppedBy != "failure" {
            sendEndMarkers()
        }
        joinReceivers()
        finish(&result, interrupted: interrupted, stoppedBy: stoppedBy)
        opened.close()
        return result
    }

    private func describe(_ spec: EndSpec, _ namespace: String?) -> String {
        namespace.map { "\(spec)@\($0)" } ?? spec.description
    }

    /// One second's numbers, and the running totals they were taken from.
    private func sample(second: Int, previousSent: UInt64, previousDelivered: UInt64, previousHoles: UInt64)
        -> (Interval, UInt64?, UInt64?, UInt64?)
    {
        var interval = Interval(second: second)
        var sent: UInt64?
        if !senders.isEmpty {
            let total = senders.reduce(UInt64(0)) { $0 + $1.counters.packets.load(ordering: .relaxed) }
            interval.sent = total - previousSent
            sent = total
        }
        guard let collector else { return (interval, sent, nil, nil) }
        let (delivered, holes, replaying) = collector.tally.withLock { t in
            (t.delivered, t.flows.totals.holes, t.replay != nil)
        }
        interval.delivered = delivered - min(delivered, previousDelivered)
        if !replaying { interval.lost = holes > previousHoles ? holes - previousHoles : 0 }
        interval.latency = LatencySummary(collector.takeIntervalLatency())
        return (interval, sent, delivered, holes)
    }

    /// The sender's count for a sink in another process: five copies of the end marker, 20 ms
    /// apart, after everything else.
    private func sendEndMarkers() {
        guard let sender = senders.first else { return }
        let total = senders.reduce(UInt64(0)) { $0 + $1.counters.packets.load(ordering: .relaxed) }
        let flow = config.plan.address(of: 0)
        let probe = Probe(runID: runID, flow: Probe.endFlow, sequence: total, timestamp: UInt64(config.plan.flows))
        for _ in 0..<5 {
            ProbeFrame.write(to: sender.batch.frame(0), length: Probe.minimumFrame, flow: flow, probe: probe, ipID: 0)
            sender.batch.lengths[0] = Probe.minimumFrame
            sender.batch.vnis[0] = flow.vni.rawValue
            _ = try? sender.end.send(sender.batch, from: 0, count: 1)
            usleep(20_000)
        }
    }

    private func joinSenders() {
        for s in senders { s.join() }
    }

    private func joinReceivers() {
        for r in receivers { r.join() }
    }

    private func joinAll() {
        stop.set()
        joinSenders()
        joinReceivers()
        opened.close()
    }

    private func finish(_ result: inout RunResult, interrupted: String?, stoppedBy: String) {
        if let interrupted {
            result.complete = false
            result.errors.append("interrupted by \(interrupted)")
        }
        for s in senders { if let f = s.failure { result.complete = false; result.errors.append(f.description) } }
        for r in receivers { if let f = r.failure { result.complete = false; result.errors.append(f.description) } }

        // Sending side.
        var lastSend: UInt64 = 0
        if !senders.isEmpty {
            result.sent = senders.reduce(0) { $0 + $1.counters.packets.load(ordering: .relaxed) }
            result.sentBytes = senders.reduce(0) { $0 + $1.counters.bytes.load(ordering: .relaxed) }
            result.sendRetries = senders.reduce(0) { $0 + $1.counters.retries.load(ordering: .relaxed) }
            lastSend = senders.map { $0.counters.lastSend.load(ordering: .relaxed) }.max() ?? 0
            result.duration = lastSend > start ? Double(lastSend - start) / 1e9 : 0
            if case .packetsPerSecond(let target) = config.rate, interrupted == nil, stoppedBy != "failure",
                let sent = result.sent, result.duration > 0
            {
                let achieved = Double(sent) / result.duration
                // A count-limited run is judged over its packets, a timed one over its time.
                if achieved < 0.9 * target {
                    result.errors.append(
                        "could not reach --rate \(formatCount(target)): sent \(formatCount(achieved)) pps "
                            + "(the sender, or the end pushing back, is the limit: add --threads or lower --rate)")
                }
            }
        }

        guard let collector else { return }
        let tally = collector.tally.withLock { $0 }
        result.sinkDrops = receivers.reduce(0) { $0 + $1.end.kernelDrops() }
        result.latency = LatencySummary(tally.latency)
        if tally.clockMismatch > 0 {
            result.notes.append(
                "\(tally.clockMismatch) probes arrived before their send time: sender and sink are on different clocks, "
                    + "latency covers only the rest")
        }
        if tally.otherRuns > 0 { result.notes.append("ignored \(tally.otherRuns) probes of another run") }

        if config.mode == .sink {
            if let first = tally.firstArrival, let last = tally.lastArrival, last > first {
                result.duration = Double(last - first) / 1e9
            }
            result.runID = tally.runID
            if let marker = tally.endMarker {
                result.sent = marker.sent
            } else {
                result.complete = false
                let why =
                    switch stoppedBy {
                    case "duration": "--duration passed"
                    case "idle": "nothing arrived for --idle seconds"
                    default: "it stopped"
                    }
                result.errors.append("the sender's end marker never arrived before \(why): the sender's count is unknown")
                if tally.replay == nil, tally.firstArrival != nil {
                    result.notes.append("loss below is estimated from sequence numbers (packets lost at the end are not seen)")
                    result.sent = tally.flows.totals.impliedSent
                }
            }
        }

        if let replay = tally.replay {
            if let sent = result.sent {
                let r = replay.result(sent: sent)
                result.delivered = r.delivered
                result.deliveredBytes = r.deliveredBytes
                result.duplicates = r.duplicates
            } else {
                result.delivered = replay.received
            }
            result.reordered = nil
            result.notes.append("replayed frames carry no timestamp or sequence: no latency or reordering figures")
        } else {
            let totals = tally.flows.totals
            result.delivered = totals.unique
            result.deliveredBytes = tally.deliveredBytes
            result.reordered = totals.reordered
            result.duplicates = totals.duplicates
        }
        if config.mode == .run, stoppedBy == "", let sent = result.sent, let delivered = result.delivered, delivered < sent {
            result.notes.append("the drain (\(formatDecimal(config.drain, places: 1)) s) ended with \(sent - delivered) packets missing: counted as lost")
        }
    }
}
