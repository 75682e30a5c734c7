// `vxrouter capture`: a running router's packets into a pcap file or stdout (a live stream),
// or into a file the router writes itself (--router-file), without restarting it.
import ArgumentParser
import Foundation
import Synchronization
import VXControlAPI
import VXWire

/// Set by SIGINT while `vxrouter capture --router-file` follows a capture.
let captureInterrupted = Atomic<Bool>(false)

struct Capture: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Capture a running router's packets into a pcap file (or stdout), without restarting it.",
        discussion: """
            Points: inner (frames to/from the TAPs), outer (VXLAN packets as sent and received, written as complete Ethernet/IP/UDP/VXLAN frames), drop (packets the datapath declined). The filter is tcpdump syntax, compiled by libpcap and applied to the INNER frame, also for outer packets. Ends after --count packets, after --duration seconds, or on Ctrl-C. With -w the router streams pcap to this command. With --router-file the router writes the file in its capture directory, with a side index <file>.idx (inner/outer packet numbers, drop reasons) and optional rotation; Ctrl-C stops it.

              vxrouter capture --vni 42 --point outer --filter 'icmp' -w out.pcap -c 10
              vxrouter capture --point inner -w - | tshark -r -
              vxrouter capture --point drop --router-file drops.pcap --rotate-bytes 100000000 --rotate-files 5
            """)

    @Option(help: "Only this VNI.") var vni: VNI?
    @Option(name: .long, help: "Capture point: inner, outer or drop (repeatable; default inner and outer).")
    var point: [String] = []
    @Option(help: "tcpdump-syntax filter on the inner frame.") var filter: String?
    @Option(help: "Only packets to or from this remote VTEP.") var remote: IPAddress?
    @Option(help: "Bytes kept per packet (64-2048) before synthesized outer headers.") var snaplen: Int?
    @Option(name: .shortAndLong, help: "Stop after this many packets.") var count: Int?
    @Option(help: "Stop after this many seconds.") var duration: Int?
    @Option(name: .customShort("w"), help: ArgumentHelp("The pcap file to write, or - for stdout.", valueName: "file"))
    var write: String?
    @Option(
        help: ArgumentHelp(
            "Instead of -w: the router writes NAME in its capture directory, with the side index (packet numbers, drop reasons) and rotation.",
            valueName: "name"))
    var routerFile: String?
    @Option(help: "With --router-file: start a new file before one would pass this many bytes.") var rotateBytes: Int?
    @Option(help: "With --router-file and --rotate-bytes: keep this many files.") var rotateFiles: Int?
    @OptionGroup var options: EndpointOptions

    func validate() throws {
        guard (write == nil) != (routerFile == nil) else {
            throw ValidationError("give exactly one of -w FILE and --router-file NAME")
        }
        if routerFile == nil, rotateBytes != nil || rotateFiles != nil {
            throw ValidationError("--rotate-bytes and --rotate-files need --router-file (the router rotates its own files)")
        }
    }

    func run() throws {
        if let routerFile { return try runOnRouter(routerFile) }
        let write = self.write!
        let query = request(file: nil).queryItems
        let path =
            APIPath.captureStream
            + (query.isEmpty ? "" : "?" + query.map { "\(Self.percentEncode($0.0))=\(Self.percentEncode($0.1))" }.joined(separator: "&"))
        let client = try options.client()
        // The output is opened before the capture starts: an unwritable path is refused first.
        let toStdout = write == "-"
        guard let file = toStdout ? fdopen(1, "w") : fopen(write, "w") else {
            printError("vxrouter: cannot write \(write): \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        // Only whole records reach the file, so an interrupted capture still reads cleanly.
        var pending: [UInt8] = []
        var isPcap: Bool?
        var headerDone = false
        var records = 0
        let magic: [[UInt8]] = [[0xD4, 0xC3, 0xB2, 0xA1], [0x4D, 0x3C, 0xB2, 0xA1]]
        do {
            let head = try client.stream("GET", path) { bytes in
                pending += bytes
                if isPcap == nil, pending.count >= 4 { isPcap = magic.contains(Array(pending.prefix(4))) }
                guard isPcap == true else { return true }
                var used = 0
                if !headerDone, pending.count >= 24 {
                    used = 24
                    headerDone = true
                }
                while headerDone, pending.count - used >= 16 {
                    let caplen = pending[used + 8..<used + 12].reversed().reduce(0) { $0 << 8 | Int($1) }
                    guard pending.count - used >= 16 + caplen else { break }
                    used += 16 + caplen
                    records += 1
                }
                if used > 0 {
                    _ = pending.withUnsafeBytes { fwrite($0.baseAddress, 1, used, file) }
                    fflush(file)
                    pending.removeFirst(used)
                }
                return true
            }
            if head.status != 200 || isPcap != true {
                let message =
                    (try? JSONDecoder().decode(ErrorBody.self, from: Data(pending)))?.error.message
                    ?? String(decoding: pending, as: UTF8.self)
                printError("vxrouter: capture: \(head.status): \(message)")
                if !toStdout {
                    fclose(file)
                    unlink(write)
                }
                throw ExitCode(1)
            }
        } catch let error as ControlClientError {
            printError("vxrouter: \(error.description)")
            if !toStdout {
                fclose(file)
                unlink(write)
            }
            throw ExitCode(2)
        }
        if !toStdout { fclose(file) }
        var summary = "\(records) packets captured"
        if let last = try? client.request("GET", APIPath.capture),
            let capture = (try? JSONDecoder().decode(CaptureStatus.self, from: Data(last.body)))?.capture
        {
            summary +=
                ", \(capture.ringFull) lost to full capture rings, \(capture.slowClient) to a slow reader, "
                + "\(capture.filteredOut) filtered out"
        }
        printError(summary)
    }

    /// The options as the API's capture request.
    func request(file: String?) -> CaptureRequest {
        CaptureRequest(
            file: file, points: point.isEmpty ? nil : point.flatMap { $0.split(separator: ",").map(String.init) },
            vni: vni.map { Int($0.rawValue) }, remote: remote?.description, filter: filter, snaplen: snaplen, count: count,
            duration: duration, rotateBytes: rotateBytes, rotateFiles: rotateFiles)
    }

    /// `--router-file`: `POST /v1/capture`, then follow it until it ends; Ctrl-C stops it.
    func runOnRouter(_ name: String) throws {
        let client = try options.client()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let text = String(decoding: try encoder.encode(request(file: name)), as: UTF8.self)
        // Before the POST: a Ctrl-C while it is under way must still reach the DELETE below, or the
        // capture would outlive this command. (glibc's signal() restarts an interrupted read, so a
        // request in flight completes first.)
        signal(SIGINT) { _ in captureInterrupted.store(true, ordering: .relaxed) }
        let started = try call(client, "POST", APIPath.capture, json: text)
        let id = started?.capture?.id
        var last: CaptureInfo?
        while true {
            if captureInterrupted.load(ordering: .relaxed) {
                last = try call(client, "DELETE", APIPath.capture, acceptNotFound: true)?.capture ?? last
                break
            }
            guard let capture = try call(client, "GET", APIPath.capture)?.capture, capture.id == id else { break }
            last = capture
            if !capture.running { break }
            usleep(200_000)
        }
        let files = (last?.files ?? []).joined(separator: " ")
        printError(
            "\(last.map { String($0.records) } ?? "-") packets captured, \(last.map { String($0.ringFull) } ?? "-") lost to full capture rings, "
                + "\(last.map { String($0.filteredOut) } ?? "-") filtered out; ended: \(last?.ended ?? "stopped"); files: \(files)")
        if let error = last?.error { printError("vxrouter: capture: \(error)") }
    }

    /// One request; a 2xx answer decoded (nil for an accepted 404), anything else printed as the
    /// router's reason (exit 1).
    func call(_ client: ControlClient, _ method: String, _ path: String, json: String? = nil, acceptNotFound: Bool = false)
        throws -> CaptureStatus?
    {
        let response: ControlResponse
        do {
            response = try client.request(method, path, json: json)
        } catch {
            printError("vxrouter: \(error.description)")
            throw ExitCode(2)
        }
        if acceptNotFound, response.status == 404 { return nil }
        guard (200..<300).contains(response.status) else {
            printError("vxrouter: capture: \(response.status): \(errorMessage(response))")
            throw ExitCode(1)
        }
        return try decodeAnswer(CaptureStatus.self, response, "\(method) \(path)")
    }

    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x7E
            {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return out
    }
}
