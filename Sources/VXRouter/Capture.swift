// Packet capture on the control side: one capture at a time, started from the config, from
// `POST /v1/capture` (files in the capture directory) or `GET /v1/capture/stream` (a live pcap
// byte stream, which `vxrouter capture` uses), stopped by `DELETE /v1/capture`, by its count or
// duration, or when the stream's client leaves.
//
// Every request is checked in full — points, VNI served, remote's family, the filter compiled by
// libpcap, the file created — before the datapath is armed: a bad one changes nothing.
import Foundation
import VXCapture
import VXConfig
import VXControlAPI
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

    /// `GET /v1/capture`: the running capture, else the last one, else none.
    func captureStatus() -> CaptureStatus {
        CaptureStatus(capture: capture?.summary ?? lastCapture, ringFullTotal: captureTap.refusedTotal)
    }

    /// `POST /v1/capture`.
    func startFileCapture(_ parameters: CaptureParameters) throws(ServiceError) -> CaptureStatus {
        var spec = try captureSpec(parameters, fileAllowed: true)
        guard let name = spec.file else {
            throw ServiceError(.invalid, "missing field \"file\": a file name in the capture directory \(captureDirectory)")
        }
        reapCapture()  // one that just reached its count is not "running"
        if capture != nil { throw ServiceError(.conflict, "a capture is already running; stop it first (DELETE /v1/capture)") }
        let filter = try compileFilter(spec.filter)
        do {
            try FileManager.default.createDirectory(
                atPath: captureDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ServiceError(.invalid, "cannot create the capture directory \(captureDirectory)")
        }
        spec.file = captureDirectory + "/" + name
        let writer: PcapFileWriter
        do {
            writer = try PcapFileWriter(
                path: spec.file!, snapLength: spec.snapLength + CaptureSession.synthesizedHeaderRoom,
                rotateBytes: spec.rotateBytes, rotateFiles: spec.rotateFiles)
        } catch {
            throw ServiceError(.invalid, error.description)
        }
        do {
            try startCapture(spec, filter: filter, sink: writer)
        } catch {
            throw ServiceError(.failed, "\(error)")
        }
        return CaptureStatus(capture: capture?.summary, ringFullTotal: captureTap.refusedTotal)
    }

    /// `DELETE /v1/capture`.
    func stopCaptureRequest() throws(ServiceError) -> CaptureStatus {
        reapCapture()
        guard capture != nil else { throw ServiceError(.notFound, "no capture is running") }
        let summary = stopCapture()
        return CaptureStatus(capture: summary, ringFullTotal: captureTap.refusedTotal)
    }

    /// `GET /v1/capture/stream`: checks the parameters and starts the capture into `sink`.
    func startStreamCapture(_ parameters: CaptureParameters, into sink: any CaptureStreamSink) throws(ServiceError) {
        let spec = try captureSpec(parameters, fileAllowed: false)
        reapCapture()
        if capture != nil {
            throw ServiceError(.conflict, "a capture is already running; stop it first (DELETE /v1/capture)")
        }
        let filter = try compileFilter(spec.filter)
        do {
            let stream = try PcapStreamSink(
                snapLength: spec.snapLength + CaptureSession.synthesizedHeaderRoom,
                deliver: { sink.offer($0, patience: $1 ? .milliseconds(200) : .zero) }, finish: { sink.finish() })
            try startCapture(spec, filter: filter, sink: stream)
        } catch {
            throw ServiceError(.invalid, "\(error)")
        }
    }

    func compileFilter(_ expression: String?) throws(ServiceError) -> InnerFilter? {
        guard let expression else { return nil }
        do {
            return try InnerFilter(expression)
        } catch {
            throw ServiceError(.invalid, error.description)
        }
    }

    /// A capture request from JSON fields or query parameters, checked by the rule the config's
    /// `capture:` section shares (`CaptureRequestRule`).
    func captureSpec(_ fields: CaptureParameters, fileAllowed: Bool) throws(ServiceError) -> CaptureSpec {
        let rule = CaptureRequestRule(
            served: ServedVNIs(networks.map(\.vni)), underlayFamily: config.underlay.local.family,
            captureDirectory: captureDirectory)
        do {
            return try rule.spec(fields, fileAllowed: fileAllowed)
        } catch {
            throw ServiceError(.invalid, error.message)
        }
    }
}

public struct CaptureStartError: Error, CustomStringConvertible {
    public let description: String
}
