// Packet capture on the control side: one capture at a time, started from the config, from
// `POST /v1/capture` (files in the capture directory) or `GET /v1/capture/stream` (a live pcap
// byte stream, which `vxrouter capture` uses), stopped by `DELETE /v1/capture`, by its count or
// duration, or when the stream's client leaves.
//
// Every request is checked in full — points, VNI served, remote's family, the filter compiled by
// libpcap, the file created — before the datapath is armed: a bad one changes nothing.
import VXConfig
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import VXCapture
import VXDatapath
import VXWire

extension Router {
    /// Where `POST /v1/capture` writes: a name, never a path, so the endpoint cannot make the
    /// router (root) write anywhere else.
    var captureDirectory: String { config.captureDirectory }

    /// Opens the config's capture file (and compiles its filter) before anything else starts.
    static func openCaptureFile(_ spec: CaptureSpec) throws -> (CaptureSpec, InnerFilter?, PcapFileWriter) {
        do {
            let filter = try spec.filter.map { expression throws(CaptureError) in try InnerFilter(expression) }
            let writer = try PcapFileWriter(
                path: spec.file ?? "", snapLength: spec.snapLength + CaptureSession.synthesizedHeaderRoom,
                rotateBytes: spec.rotateBytes, rotateFiles: spec.rotateFiles)
            return (spec, filter, writer)
        } catch {
            throw CaptureStartError(description: "capture: \(error.description)")
        }
    }

    /// Control thread: arms the datapath for `spec`. No capture may be running.
    func startCapture(_ spec: CaptureSpec, filter: InnerFilter?, sink: any CaptureSink) throws {
        let session = CaptureSession(
            spec: spec, tap: captureTap, filter: filter, sink: sink, local: config.underlay.local)
        try session.start()
        capture = session
        logger.info(
            "capture started",
            metadata: [
                "id": "\(session.id)", "points": "\(spec.pointNames.joined(separator: ","))",
                "vni": "\(spec.vni.map { "\($0)" } ?? "any")", "filter": "\(spec.filter ?? "")",
                "file": "\(spec.file ?? "stream")",
            ])
    }

    /// Control thread, every loop: notices a capture that ended by itself.
    func reapCapture() {
        guard let session = capture, session.isFinished else { return }
        session.join()
        finishCapture(session)
    }

    /// Control thread: stops the running capture (if any) and waits for its writer.
    @discardableResult
    func stopCapture() -> CaptureSummary? {
        guard let session = capture else { return nil }
        session.stop()
        session.join()
        return finishCapture(session)
    }

    @discardableResult
    private func finishCapture(_ session: CaptureSession) -> CaptureSummary {
        capture = nil
        let summary = session.summary
        lastCapture = summary
        logger.info(
            "capture ended",
            metadata: [
                "id": "\(summary.id)", "ended": "\(summary.ended ?? "?")", "records": "\(summary.records)",
                "ring_full": "\(summary.ringFull)", "slow_client": "\(summary.slowClient)", "filtered_out": "\(summary.filteredOut)",
                "error": "\(summary.error ?? "")",
            ])
        return summary
    }

    // MARK: Requests

    struct CaptureBody: Encodable {
        var capture: CaptureSummary?
        var ringFullTotal: UInt64
        enum CodingKeys: String, CodingKey { case capture, ringFullTotal = "ring_full_total" }
    }

    /// `GET /v1/capture`: the running capture, else the last one, else null.
    func captureStatus() throws -> APIResponse {
        try encode(CaptureBody(capture: capture?.summary ?? lastCapture, ringFullTotal: captureTap.refusedTotal))
    }

    /// `POST /v1/capture`.
    func startFileCapture(_ body: [UInt8]) throws -> APIResponse {
        let object = try jsonObject(body)
        var spec = try captureSpec(object, fileAllowed: true)
        guard let name = spec.file else {
            throw ErrorWithStatus(.badRequest, "missing field \"file\": a file name in the capture directory \(captureDirectory)")
        }
        reapCapture()  // one that just reached its count is not "running"
        if capture != nil { throw ErrorWithStatus(.conflict, "a capture is already running; stop it first (DELETE /v1/capture)") }
        let filter = try compileFilter(spec.filter)
        do {
            try FileManager.default.createDirectory(
                atPath: captureDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ErrorWithStatus(.badRequest, "cannot create the capture directory \(captureDirectory)")
        }
        spec.file = captureDirectory + "/" + name
        let writer: PcapFileWriter
        do {
            writer = try PcapFileWriter(
                path: spec.file!, snapLength: spec.snapLength + CaptureSession.synthesizedHeaderRoom,
                rotateBytes: spec.rotateBytes, rotateFiles: spec.rotateFiles)
        } catch {
            throw ErrorWithStatus(.badRequest, error.description)
        }
        try startCapture(spec, filter: filter, sink: writer)
        return try encode(CaptureBody(capture: capture?.summary, ringFullTotal: captureTap.refusedTotal), status: .created)
    }

    /// `DELETE /v1/capture`.
    func stopCaptureRequest() throws -> APIResponse {
        reapCapture()
        guard capture != nil else { throw ErrorWithStatus(.notFound, "no capture is running") }
        let summary = stopCapture()
        return try encode(CaptureBody(capture: summary, ringFullTotal: captureTap.refusedTotal))
    }

    /// `GET /v1/capture/stream`: checks the query and starts the capture into `connection`;
    /// nil when it started (the handler then answers 200 and streams), else the error response.
    func startStreamCapture(_ query: [String: String], connection: CaptureStreamConnection) -> APIResponse? {
        do {
            let spec = try captureSpec(query.mapValues { $0 as Any }, fileAllowed: false)
            reapCapture()
            if capture != nil {
                throw ErrorWithStatus(.conflict, "a capture is already running; stop it first (DELETE /v1/capture)")
            }
            let filter = try compileFilter(spec.filter)
            let sink = try PcapStreamSink(
                snapLength: spec.snapLength + CaptureSession.synthesizedHeaderRoom,
                deliver: { connection.offer($0, patience: $1 ? .milliseconds(200) : .zero) }, finish: { connection.finish() })
            try startCapture(spec, filter: filter, sink: sink)
            return nil
        } catch let error as ErrorWithStatus {
            return .error(error.status, error.message)
        } catch {
            return .error(.badRequest, "\(error)")
        }
    }

    func compileFilter(_ expression: String?) throws -> InnerFilter? {
        guard let expression else { return nil }
        do {
            return try InnerFilter(expression)
        } catch {
            throw ErrorWithStatus(.badRequest, error.description)
        }
    }

    func jsonObject(_ body: [UInt8]) throws -> [String: Any] {
        guard !body.isEmpty else { throw ErrorWithStatus(.badRequest, "the request body is empty; expected a JSON object") }
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(body), options: []) else {
            throw ErrorWithStatus(.badRequest, "the request body is not valid JSON")
        }
        guard let object = parsed as? [String: Any] else {
            throw ErrorWithStatus(.badRequest, "the request body is not a JSON object")
        }
        return object
    }

    static let captureKeys = [
        "points", "vni", "remote", "filter", "snaplen", "count", "duration", "file", "rotate_bytes", "rotate_files",
    ]

    /// A capture request from JSON fields or query parameters (all strings; `points` then
    /// comma-separated).
    func captureSpec(_ fields: [String: Any], fileAllowed: Bool) throws -> CaptureSpec {
        let allowed = fileAllowed ? Self.captureKeys : Self.captureKeys.filter { !["file", "rotate_bytes", "rotate_files"].contains($0) }
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ErrorWithStatus(.badRequest, "unknown parameter \(jsonString(unknown)) (allowed: \(allowed.joined(separator: ", ")))")
        }
        func integer(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let value = fields[key] else { return nil }
            var number: Int?
            if let text = value as? String {
                number = text.utf8.count <= 19 ? Int(text) : nil
            } else if let n = value as? NSNumber, !(value is Bool) {
                number = Int(exactly: n.doubleValue.rounded(.towardZero)) == nil ? nil : Int(exactly: n.doubleValue)
            }
            guard let number else { throw ErrorWithStatus(.badRequest, "\(key) must be an integer") }
            guard range.contains(number) else {
                throw ErrorWithStatus(.badRequest, "\(key) \(number) is out of range (\(range.lowerBound)-\(range.upperBound))")
            }
            return number
        }
        func string(_ key: String) throws -> String? {
            guard let value = fields[key] else { return nil }
            guard let text = value as? String else { throw ErrorWithStatus(.badRequest, "\(key) must be a string") }
            return text
        }
        var spec = CaptureSpec()
        if let value = fields["points"] {
            let names: [String]
            if let text = value as? String {
                names = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            } else if let list = value as? [Any], list.allSatisfy({ $0 is String }) {
                names = list.map { $0 as! String }
            } else {
                throw ErrorWithStatus(.badRequest, "points must be a list of inner, outer, drop")
            }
            var points: Set<CapturePoint> = []
            for name in names {
                guard let point = CapturePoint(name: name) else {
                    throw ErrorWithStatus(.badRequest, "\(jsonString(name)) is not a capture point (inner, outer, drop)")
                }
                points.insert(point)
            }
            spec.points = points
        }
        if let value = try integer("vni", 0...Int(VNI.max)) {
            guard let network = networks.first(where: { Int($0.vni.rawValue) == value }) else {
                throw ErrorWithStatus(
                    .badRequest,
                    "vni \(value) is not served by this router (served: \(networks.map { "\($0.vni)" }.joined(separator: ", ")))")
            }
            spec.vni = network.vni
        }
        if let text = try string("remote") {
            guard let address = IPAddress(text) else {
                throw ErrorWithStatus(.badRequest, "remote \(jsonString(text)) is not an IP address")
            }
            if address.family != config.underlay.local.family {
                throw ErrorWithStatus(
                    .badRequest,
                    "remote \(address) is \(familyName(address.family)) but the underlay is \(familyName(config.underlay.local.family))")
            }
            spec.remote = address
        }
        spec.filter = try string("filter")
        if let value = try integer("snaplen", CaptureSpec.Limits.snapLength) { spec.snapLength = value }
        spec.count = try integer("count", CaptureSpec.Limits.count)
        if let value = try integer("duration", 1...Int(CaptureSpec.Limits.duration.upperBound)) { spec.duration = Double(value) }
        spec.rotateBytes = try integer("rotate_bytes", CaptureSpec.Limits.rotateBytes)
        spec.rotateFiles = try integer("rotate_files", CaptureSpec.Limits.rotateFiles)
        if let name = try string("file") {
            guard !name.isEmpty, name.utf8.count <= 200, !name.contains("/"), !name.hasPrefix("."),
                name.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
            else {
                throw ErrorWithStatus(
                    .badRequest,
                    "file \(jsonString(name)) must be a plain file name (printable ASCII, no '/', not starting with '.'), written in \(captureDirectory)")
            }
            spec.file = name
        }
        if let (key, reason) = spec.problem() { throw ErrorWithStatus(.badRequest, "\(key): \(reason)") }
        return spec
    }
}

public struct CaptureStartError: Error, CustomStringConvertible {
    public let description: String
}

/// One `GET /v1/capture/stream` client: the capture writer offers pcap bytes (whole records),
/// the connection's event loop writes them. A slow client makes the writer wait (bounded), so
/// the workers' rings fill and further copies are refused and counted — forwarding never waits.
final class CaptureStreamConnection: Sendable {
    static let maxPending = 4 << 20

    private struct State {
        var pending: [UInt8] = []
        var ready = false
        var closed = false
        var finished = false
        var drainScheduled = false
    }

    let channel: any Channel
    private let state = Mutex(State())

    init(channel: any Channel) { self.channel = channel }

    /// Writer thread: queues `bytes` (whole records). Waits up to `patience` for room — so a
    /// briefly slow client costs ring copies (counted), not stream records — then leaves the
    /// chunk out; a stop request is never held up for longer than that.
    func offer(_ bytes: [UInt8], patience: Duration = .milliseconds(200)) -> StreamDelivery {
        let deadline = ContinuousClock.now + patience
        while true {
            var schedule = false
            let outcome: StreamDelivery? = state.withLock { state in
                if state.closed { return .closed }
                if state.pending.count + bytes.count > Self.maxPending, !state.pending.isEmpty { return nil }
                state.pending += bytes
                if state.ready, !state.drainScheduled {
                    state.drainScheduled = true
                    schedule = true
                }
                return .delivered
            }
            if schedule { channel.eventLoop.execute { self.drain() } }
            if let outcome { return outcome }
            if ContinuousClock.now >= deadline { return .tooSlow }
            usleep(1000)
        }
    }

    /// Writer thread: the capture ended; the response ends once what is queued is written.
    func finish() {
        var schedule = false
        state.withLock { state in
            state.finished = true
            if state.ready, !state.drainScheduled {
                state.drainScheduled = true
                schedule = true
            }
        }
        if schedule { channel.eventLoop.execute { self.drain() } }
    }

    /// Event loop: the response head is written; bytes may follow.
    func open() {
        state.withLock { $0.ready = true }
        drain()
    }

    /// Event loop: the client went away.
    func close() { state.withLock { $0.closed = true } }

    /// Event loop.
    func drain() {
        guard channel.isWritable, state.withLock({ $0.ready }) else {
            state.withLock { $0.drainScheduled = false }
            return
        }
        let (bytes, finished) = state.withLock { state in
            let taken = (state.pending, state.finished && !state.closed)
            state.pending.removeAll(keepingCapacity: true)
            state.drainScheduled = false
            if taken.1 { state.closed = true }
            return taken
        }
        if !bytes.isEmpty {
            var buffer = channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: nil)
        }
        if finished {
            let channel = self.channel
            channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
