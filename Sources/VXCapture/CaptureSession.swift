// One running capture: its writer thread, which turns the workers' ring copies into pcap records.
//
//  1. `start` arms the datapath's `CaptureTap` (one atomic store) and starts the writer thread;
//  2. the writer drains every worker's `CaptureRing`, skips copies of earlier captures (by
//     generation), runs the BPF filter on the inner frame (libpcap, on this thread — never in a
//     worker), synthesizes Ethernet/IP(/UDP) headers in front of outer copies, and hands the
//     record to its sink (rotating pcap files with a side index, or a live pcap byte stream);
//  3. it ends on `stop()`, on the count or duration, when the stream's client is gone, or on a
//     write error: it disarms the tap first, so workers go back to their one atomic load per
//     batch, then flushes and closes the sink. Copies the rings refused while it ran (full ring:
//     the capture lost them, forwarding did not) are in its summary.
import CPcap
import Foundation
import Synchronization
import VXControlAPI
import VXDatapath
import VXPlatform
import VXWire

/// Where records go. Used by the writer thread only.
public protocol CaptureSink: AnyObject {
    func write(_ record: CaptureRecord) throws(CaptureError)
    /// Called when the rings are empty: make what was written visible.
    func flush()
    func close()
    /// False once nobody reads any more (a stream's client disconnected).
    var isOpen: Bool { get }
    /// The files written and still kept (empty for streams).
    var keptFiles: [String] { get }
    /// Records handed to the sink that its reader was too slow to take (any thread).
    var lostRecords: UInt64 { get }
}

extension CaptureSink {
    public var lostRecords: UInt64 { 0 }
}

extension PcapFileWriter: CaptureSink {
    public var isOpen: Bool { true }
    public var keptFiles: [String] { files }
}

/// What a stream's reader did with a chunk of records.
public enum StreamDelivery: Sendable {
    case delivered
    /// The reader was too slow for too long: the chunk (whole records) was left out.
    case tooSlow
    /// The reader is gone.
    case closed
}

/// A live pcap byte stream: libpcap writes into memory, the bytes go to `deliver` (an HTTP
/// response). Chunks are whole records, so a chunk left out for a reader that is too slow
/// keeps the stream a valid pcap file; the records in it are counted (`lostRecords`).
public final class PcapStreamSink: CaptureSink, @unchecked Sendable {
    private let stream: PcapByteStream
    private let deliver: (_ bytes: [UInt8], _ wait: Bool) -> StreamDelivery
    private let finish: () -> Void
    /// After a chunk was left out, the next one is offered without waiting: a stuck reader
    /// costs one wait, not one per chunk (and never holds up a stop for long).
    private var readerStuck = false
    private var pending: [UInt8] = []
    private var pendingRecords: UInt64 = 0
    private var open = true
    /// Written by the writer thread, read by anyone.
    private let lost = Atomic<UInt64>(0)

    /// `deliver` takes whole records' bytes (waiting a little for room when `wait`); `finish`
    /// is called once, when the capture ends.
    public init(
        snapLength: Int, deliver: @escaping (_ bytes: [UInt8], _ wait: Bool) -> StreamDelivery,
        finish: @escaping () -> Void
    ) throws(CaptureError) {
        stream = try PcapByteStream(snapLength: snapLength)
        self.deliver = deliver
        self.finish = finish
        // The file header at once, so `tshark -r -` starts even before the first packet.
        // (Never left out: a reader that cannot take 24 bytes is treated as gone.)
        open = deliver(stream.take(), true) == .delivered
    }

    public func write(_ record: CaptureRecord) throws(CaptureError) {
        pending += stream.encode(record)
        pendingRecords += 1
        // Batched: one delivery per 64 KiB or per idle moment, not per packet.
        if pending.count >= 1 << 16 { flush() }
    }

    public func flush() {
        guard !pending.isEmpty, open else { return }
        switch deliver(pending, !readerStuck) {
        case .delivered: readerStuck = false
        case .tooSlow:
            readerStuck = true
            lost.add(pendingRecords, ordering: .relaxed)
        case .closed: open = false
        }
        pending.removeAll(keepingCapacity: true)
        pendingRecords = 0
    }

    public func close() {
        flush()
        finish()
    }

    public var isOpen: Bool { open }
    public var keptFiles: [String] { [] }
    public var lostRecords: UInt64 { lost.load(ordering: .relaxed) }
}

/// Why a capture ended.
public enum CaptureEnd: String, Sendable {
    case stopped, count, duration
    case clientGone = "client_gone"
    case writeError = "write_error"
}

/// What a capture did; any thread may read it while it runs. The API's own model (the control
/// endpoint returns it as it is, `CaptureSummary` in api/openapi.yaml), so the fields exist once.
public typealias CaptureSummary = CaptureInfo

public final class CaptureSession: @unchecked Sendable {
    public let spec: CaptureSpec
    let tap: CaptureTap
    let filter: InnerFilter?
    let sink: any CaptureSink
    let local: IPAddress
    private var generation: UInt32 = 0
    private var thread: OSThread?
    /// Writer thread only: the file sequence number last published to `state`.
    private var publishedSequence = 0
    private let stopRequested = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)
    // Written by the writer thread, read by anyone.
    private let records = Atomic<UInt64>(0)
    private let filtered = Atomic<UInt64>(0)
    private let refusedAtStart: UInt64
    private let refusedAtEnd = Atomic<UInt64>(UInt64.max)
    private let startedAt = ContinuousClock.now
    private let endedAfter = Atomic<Int64>(-1)
    private let state = Mutex<(end: CaptureEnd?, error: String?, files: [String])>((nil, nil, []))

    /// Bytes of headers the writer may put in front of a copy (Ethernet + IPv6 + UDP).
    public static let synthesizedHeaderRoom = 14 + 40 + 8

    /// Nothing runs until `start`. `filter` was compiled from `spec.filter`; `local` is the
    /// router's underlay address (the outer records' own end).
    public init(spec: CaptureSpec, tap: CaptureTap, filter: InnerFilter?, sink: any CaptureSink, local: IPAddress) {
        self.spec = spec
        self.tap = tap
        self.filter = filter
        self.sink = sink
        self.local = local
        refusedAtStart = tap.refusedTotal
        state.withLock { $0.files = sink.keptFiles }
    }

    /// Control thread: arms the tap and starts the writer. The tap must be idle.
    public func start() throws {
        generation = tap.start(
            CaptureSelection(points: spec.points, vni: spec.vni, remote: spec.remote, snapLength: spec.snapLength))
        do {
            thread = try OSThread.start(name: "vx-capture") { [self] in run() }
        } catch {
            tap.stop(generation: generation)
            finished.store(true, ordering: .releasing)
            throw error
        }
    }

    public var id: UInt32 { generation }

    /// Any thread: asks the writer to end (it finishes what the rings hold of this capture).
    public func stop() { stopRequested.store(true, ordering: .releasing) }

    public var isFinished: Bool { finished.load(ordering: .acquiring) }

    /// Waits for the writer thread to end (after `stop`, or by itself).
    public func join() {
        thread?.join()
        thread = nil
    }

    public var summary: CaptureSummary {
        let (end, error, files) = state.withLock { ($0.end, $0.error, $0.files) }
        let refusedNow = refusedAtEnd.load(ordering: .acquiring)
        let refused = (refusedNow == UInt64.max ? tap.refusedTotal : refusedNow) &- refusedAtStart
        let ended = endedAfter.load(ordering: .acquiring)
        let elapsed = ended >= 0 ? Double(ended) / 1e9 : seconds(ContinuousClock.now - startedAt)
        return CaptureSummary(
            id: generation, running: !isFinished, points: spec.pointNames, vni: spec.vni?.rawValue,
            remote: spec.remote?.description, filter: spec.filter, snaplen: spec.snapLength, file: spec.file,
            records: records.load(ordering: .relaxed) &- sink.lostRecords, filteredOut: filtered.load(ordering: .relaxed),
            ringFull: refused, slowClient: sink.lostRecords, files: files, seconds: elapsed, ended: end?.rawValue, error: error)
    }

    private func seconds(_ duration: Duration) -> Double {
        let (s, atto) = duration.components
        return Double(s) + Double(atto) / 1e18
    }

    // MARK: The writer thread

    private func run() {
        let wallOffset = Int64(Date().timeIntervalSince1970 * 1e9) - tap.nanoseconds()
        let deadline = spec.duration.map { startedAt + .nanoseconds(Int64($0 * 1e9)) }
        var end: CaptureEnd?
        var failure: String?
        var unflushed = false
        while end == nil {
            var taken = 0
            for ring in tap.rings {
                // A bounded share per ring and pass, so one busy worker cannot starve the checks.
                var n = 0
                while n < 1024, let (header, bytes) = ring.peek() {
                    n += 1
                    if header.generation == generation {
                        do {
                            try process(header, bytes, wallOffset: wallOffset)
                        } catch {
                            failure = error.description
                        }
                    }
                    ring.release()
                    if failure != nil || reachedCount { break }
                }
                taken += n
                if failure != nil || reachedCount { break }
            }
            if taken > 0 { unflushed = true }
            if failure != nil {
                end = .writeError
            } else if reachedCount {
                end = .count
            } else if stopRequested.load(ordering: .acquiring) {
                end = .stopped
            } else if let deadline, ContinuousClock.now >= deadline {
                end = .duration
            } else if !sink.isOpen {
                end = .clientGone
            } else if taken == 0 {
                if unflushed {
                    sink.flush()
                    unflushed = false
                } else {
                    usleep(1000)
                }
            }
        }
        tap.stop(generation: generation)
        endedAfter.store(
            { let (s, a) = (ContinuousClock.now - startedAt).components; return s * 1_000_000_000 + a / 1_000_000_000 }(),
            ordering: .releasing)
        // Copies taken before the tap was disarmed are still written (up to the count).
        if end == .stopped || end == .duration {
            for ring in tap.rings {
                while !reachedCount, let (header, bytes) = ring.peek() {
                    if header.generation == generation { try? process(header, bytes, wallOffset: wallOffset) }
                    ring.release()
                }
            }
        }
        refusedAtEnd.store(tap.refusedTotal, ordering: .releasing)
        sink.flush()
        sink.close()
        let files = sink.keptFiles
        state.withLock {
            $0.end = end
            $0.error = failure
            $0.files = files
        }
        finished.store(true, ordering: .releasing)
    }

    private var reachedCount: Bool {
        guard let count = spec.count else { return false }
        return records.load(ordering: .relaxed) >= UInt64(count)
    }

    private func process(_ header: CaptureRecordHeader, _ bytes: UnsafeRawBufferPointer, wallOffset: Int64)
        throws(CaptureError)
    {
        let form = header.captureForm
        let length = Int(header.length)
        let innerOffset = OuterFrame.innerOffset(form: form)
        var vni: VNI?
        if header.network >= 0, Int(header.network) < tap.vnis.count {
            vni = tap.vnis[Int(header.network)]
        } else if form != .frame, bytes.count >= innerOffset {
            let raw = bytes.loadUnaligned(fromByteOffset: innerOffset - VXLANHeader.size + 4, as: UInt32.self)
            vni = VNI(unchecked: UInt32(bigEndian: raw) >> 8)
        }
        if let filter {
            guard bytes.count > innerOffset,
                filter.matches(UnsafeRawBufferPointer(rebasing: bytes[innerOffset...]), length: length - innerOffset)
            else {
                filtered.add(1, ordering: .relaxed)
                return
            }
        }
        let remote = header.remoteEndpoint
        let built: (frame: [UInt8], length: Int)
        if form == .frame {
            built = (Array(bytes), length)
        } else {
            let far = remote ?? Endpoint(address: local.family == .v4 ? IPAddress(v4: 0) : IPAddress(v6High: 0, low: 0), port: 0)
            built = OuterFrame.build(
                form: form, direction: header.captureDirection,
                local: Endpoint(address: local, port: header.localPort), remote: far, bytes: bytes, length: length)
        }
        try sink.write(
            CaptureRecord(
                time: header.time &+ wallOffset, frame: built.frame, length: built.length, packet: header.packetID,
                point: header.capturePoint, direction: header.captureDirection, vni: vni,
                remote: remote?.address, reason: header.dropReason))
        records.add(1, ordering: .relaxed)
        // The file list changes only on rotation: published under the lock only then.
        if let writer = sink as? PcapFileWriter, writer.sequence != publishedSequence {
            publishedSequence = writer.sequence
            state.withLock { $0.files = writer.files }
        }
    }
}
