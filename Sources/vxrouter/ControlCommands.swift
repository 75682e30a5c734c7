// The commands that talk to a running router's control endpoint: aligned tables by default,
// the API's JSON with --json, and a clear message when no router answers.
import ArgumentParser
import Foundation
import Synchronization
import VXConfig
import VXRouter
import VXWire

struct EndpointOptions: ParsableArguments {
    @Option(help: "The router's control endpoint: ADDRESS:PORT, [IPV6]:PORT or unix:PATH.")
    var endpoint: String = "127.0.0.1:4790"

    @Option(help: "File holding the bearer token (needed for changes when the router has control.token_file).")
    var tokenFile: String?

    @Flag(help: "Print the API's JSON instead of a table.")
    var json = false

    func client() throws -> ControlClient {
        guard let address = ControlAddress(endpoint) else {
            throw ValidationError("--endpoint \(endpoint) is not ADDRESS:PORT, [IPV6]:PORT or unix:PATH")
        }
        var token: String?
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw ValidationError("--token-file \(tokenFile): cannot read it")
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return ControlClient(endpoint: address, token: token)
    }

    /// Sends one request; on success returns the parsed JSON (and prints it with --json).
    /// Failures print the router's reason to stderr and exit 1.
    @discardableResult
    func call(_ method: String, _ path: String, body: [String: String]? = nil, printJSON: Bool = true) throws -> Any {
        let client = try client()
        var text: String?
        if let body {
            let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
            text = String(decoding: data, as: UTF8.self)
        }
        let response: ControlResponse
        do {
            response = try client.request(method, path, json: text)
        } catch {
            if error.unreachable {
                printError("vxrouter: \(error.description) (is `vxrouter run` running with its control endpoint on? try --endpoint)")
            } else {
                printError("vxrouter: \(error.description)")
            }
            throw ExitCode(2)
        }
        let parsed = try? JSONSerialization.jsonObject(with: Data(response.body), options: [])
        guard (200..<300).contains(response.status) else {
            let message = ((parsed as? [String: Any])?["error"] as? [String: Any])?["message"] as? String ?? response.text
            printError("vxrouter: \(method) \(path): \(response.status): \(message)")
            throw ExitCode(1)
        }
        if json && printJSON { print(response.text, terminator: response.text.hasSuffix("\n") ? "" : "\n") }
        return parsed ?? [:]
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Columns padded to their widest cell; numbers right-aligned.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String], numeric: Bool) -> String {
        cells.enumerated().map { i, cell in
            let pad = String(repeating: " ", count: widths[i] - cell.count)
            let isNumber = numeric && !cell.isEmpty && cell.allSatisfy { $0.isNumber }
            return isNumber ? pad + cell : (i == cells.count - 1 ? cell : cell + pad)
        }.joined(separator: "  ")
    }
    print(line(header, numeric: false))
    for row in rows { print(line(row, numeric: true)) }
}

func number(_ value: Any?) -> String {
    switch value {
    case let n as NSNumber: return n.stringValue
    case let s as String: return s
    default: return "-"
    }
}

func int(_ value: Any?) -> UInt64 { (value as? NSNumber)?.uint64Value ?? 0 }

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a running router's counters.")
    @OptionGroup var options: EndpointOptions

    func run() throws {
        let body = try options.call("GET", "/v1/stats") as? [String: Any] ?? [:]
        if options.json { return }
        let networks = body["networks"] as? [[String: Any]] ?? []
        print("uptime \(number(body["uptime_seconds"]))s")
        printTable(
            ["VNI", "TAP", "TAP_RX", "TAP_TX", "TUNNEL_RX", "TUNNEL_TX", "FLOODED", "DROPS", "FDB", "FLOOD"],
            networks.map { net in
                let t = net["traffic"] as? [String: Any] ?? [:]
                return [
                    number(net["vni"]), number(net["tap"]), number(t["tap_rx_packets"]), number(t["tap_tx_packets"]),
                    number(t["tunnel_rx_packets"]), number(t["tunnel_tx_packets"]), number(t["flooded_frames"]),
                    number(t["drops_total"]), number(net["fdb_entries"]), number(net["flood_remotes"]),
                ]
            })
        var drops: [[String]] = []
        for net in networks {
            let d = (net["traffic"] as? [String: Any])?["drops"] as? [String: Any] ?? [:]
            for (reason, value) in d.sorted(by: { $0.key < $1.key }) where int(value) > 0 {
                drops.append([number(net["vni"]), reason, number(value)])
            }
        }
        let unattributed = (body["unattributed"] as? [String: Any])?["drops"] as? [String: Any] ?? [:]
        for (reason, value) in unattributed.sorted(by: { $0.key < $1.key }) where int(value) > 0 {
            drops.append(["-", reason, number(value)])
        }
        if !drops.isEmpty {
            print("")
            printTable(["VNI", "DROP_REASON", "PACKETS"], drops)
        }
        let workers = body["workers"] as? [[String: Any]] ?? []
        print("")
        printTable(
            ["WORKER", "TAP_RX", "TUNNEL_TX", "TUNNEL_RX", "TAP_TX", "DROPS"],
            workers.map { w in
                let t = w["traffic"] as? [String: Any] ?? [:]
                return [
                    number(w["worker"]), number(t["tap_rx_packets"]), number(t["tunnel_tx_packets"]),
                    number(t["tunnel_rx_packets"]), number(t["tap_tx_packets"]), number(t["drops_total"]),
                ]
            })
    }
}

struct Peers: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the remote VTEPs a running router knows.")
    @OptionGroup var options: EndpointOptions

    func run() throws {
        let body = try options.call("GET", "/v1/remotes") as? [String: Any] ?? [:]
        if options.json { return }
        let remotes = body["remotes"] as? [[String: Any]] ?? []
        printTable(
            ["REMOTE", "LAST_HEARD", "RX_PACKETS", "RX_BYTES", "TX_PACKETS", "TX_BYTES", "DROPS", "FDB", "FLOOD_VNIS"],
            remotes.map { r in
                let drops = (r["drops"] as? [String: Any] ?? [:]).values.reduce(UInt64(0)) { $0 + int($1) }
                let heard = r["last_heard_seconds_ago"].map { "\(number($0))s ago" } ?? "never"
                let vnis = (r["flood_vnis"] as? [Any] ?? []).map { number($0) }.joined(separator: ",")
                return [
                    number(r["address"]), heard, number(r["rx_packets"]), number(r["rx_bytes"]), number(r["tx_packets"]),
                    number(r["tx_bytes"]), String(drops), number(r["fdb_entries"]), vnis.isEmpty ? "-" : vnis,
                ]
            })
    }
}

/// Every VNI the router serves, for listings without --vni.
func servedVNIs(_ options: EndpointOptions) throws -> [Int] {
    let body = try options.call("GET", "/v1/networks", printJSON: false) as? [String: Any] ?? [:]
    return (body["networks"] as? [[String: Any]] ?? []).compactMap { ($0["vni"] as? NSNumber)?.intValue }
}

struct FDB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fdb", abstract: "List and change a running router's forwarding database.",
        subcommands: [List.self, Add.self, Del.self, Flush.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List FDB entries (learned and static).")
        @Option(help: "Only this VNI (default: every network).") var vni: Int?
        @OptionGroup var options: EndpointOptions

        func run() throws {
            let vnis = try vni.map { [$0] } ?? servedVNIs(options)
            var rows: [[String]] = []
            var bodies: [Any] = []
            for vni in vnis {
                let body = try options.call("GET", "/v1/networks/\(vni)/fdb", printJSON: false)
                bodies.append(body)
                for entry in (body as? [String: Any])?["entries"] as? [[String: Any]] ?? [] {
                    let age = entry["age_seconds"].map { "\(number($0))s" } ?? "-"
                    rows.append([String(vni), number(entry["mac"]), number(entry["type"]), number(entry["remote"]), age])
                }
            }
            if options.json {
                let data = try JSONSerialization.data(
                    withJSONObject: vni == nil ? ["networks": bodies] : bodies[0], options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            printTable(["VNI", "MAC", "TYPE", "REMOTE", "AGE"], rows)
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add (or replace) a static entry: MAC lives behind REMOTE.")
        @Option(help: "The network.") var vni: Int
        @Argument(help: "The station's MAC address, aa:bb:cc:dd:ee:ff.") var mac: String
        @Argument(help: "The remote VTEP's underlay address.") var remote: String
        @OptionGroup var options: EndpointOptions

        func run() throws {
            try options.call("POST", "/v1/networks/\(vni)/fdb", body: ["mac": mac, "remote": remote])
            if !options.json { print("vni \(vni): \(mac) → \(remote) (static)") }
        }
    }

    struct Del: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "del", abstract: "Delete an entry (static or learned).")
        @Option(help: "The network.") var vni: Int
        @Argument(help: "The MAC address.") var mac: String
        @OptionGroup var options: EndpointOptions

        func run() throws {
            let path = "/v1/networks/\(vni)/fdb/\(mac.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? mac)"
            try options.call("DELETE", path)
            if !options.json { print("vni \(vni): \(mac) deleted") }
        }
    }

    struct Flush: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove every learned entry (static ones stay).")
        @Option(help: "The network (default: every network).") var vni: Int?
        @OptionGroup var options: EndpointOptions

        func run() throws {
            for vni in try vni.map({ [$0] }) ?? servedVNIs(options) {
                let body = try options.call("POST", "/v1/networks/\(vni)/fdb/flush") as? [String: Any] ?? [:]
                if !options.json { print("vni \(vni): \(number(body["removed"])) learned entries removed") }
            }
        }
    }
}

struct Flood: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flood", abstract: "List and change a running router's flood lists (head-end replication).",
        subcommands: [List.self, Add.self, Del.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List each network's flood list.")
        @Option(help: "Only this VNI (default: every network).") var vni: Int?
        @OptionGroup var options: EndpointOptions

        func run() throws {
            var rows: [[String]] = []
            var bodies: [Any] = []
            for vni in try vni.map({ [$0] }) ?? servedVNIs(options) {
                let body = try options.call("GET", "/v1/networks/\(vni)/flood", printJSON: false)
                bodies.append(body)
                for remote in (body as? [String: Any])?["remotes"] as? [String] ?? [] { rows.append([String(vni), remote]) }
            }
            if options.json {
                let data = try JSONSerialization.data(
                    withJSONObject: vni == nil ? ["networks": bodies] : bodies[0], options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            printTable(["VNI", "REMOTE"], rows)
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a remote VTEP to a flood list.")
        @Option(help: "The network.") var vni: Int
        @Argument(help: "The remote VTEP's underlay address.") var remote: String
        @OptionGroup var options: EndpointOptions

        func run() throws {
            try options.call("POST", "/v1/networks/\(vni)/flood", body: ["remote": remote])
            if !options.json { print("vni \(vni): \(remote) added to the flood list") }
        }
    }

    struct Del: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "del", abstract: "Remove a remote VTEP from a flood list.")
        @Option(help: "The network.") var vni: Int
        @Argument(help: "The remote VTEP's underlay address.") var remote: String
        @OptionGroup var options: EndpointOptions

        func run() throws {
            try options.call("DELETE", "/v1/networks/\(vni)/flood/\(remote)")
            if !options.json { print("vni \(vni): \(remote) removed from the flood list") }
        }
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow a running router's FDB events (learn, move, age_out, fdb_full) until interrupted.")
    @Option(help: "Exit after this many events.") var count: Int?
    @OptionGroup var options: EndpointOptions

    func run() throws {
        let client = try options.client()
        var seen = 0
        var pending: [UInt8] = []
        var event = ""
        var data = ""
        do {
            let head = try client.stream("GET", "/v1/events") { bytes in
                pending += bytes
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[..<newline], as: UTF8.self)
                    pending.removeFirst(newline + 1)
                    if line.isEmpty {
                        if !data.isEmpty {
                            show(event: event.isEmpty ? "message" : event, data: data)
                            seen += 1
                            if let count, seen >= count { return false }
                        }
                        event = ""
                        data = ""
                    } else if line.hasPrefix("event:") {
                        event = String(line.dropFirst(6)).trimmingCharacters(in: .whitespaces)
                    } else if line.hasPrefix("data:") {
                        data += String(line.dropFirst(5)).trimmingCharacters(in: .whitespaces)
                    }
                }
                return true
            }
            if head.status != 200 {
                printError("vxrouter: GET /v1/events: \(head.status)")
                throw ExitCode(1)
            }
        } catch let error as ControlClientError {
            printError("vxrouter: \(error.description)")
            throw ExitCode(2)
        }
    }

    func show(event: String, data: String) {
        // Followed live, often through a pipe: every event goes out at once.
        defer { fflush(nil) }
        if options.json {
            print(data)
            return
        }
        let fields = (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] ?? [:]
        var text = "\(number(fields["time"]))  \(event)"
        for key in ["vni", "mac", "remote", "from", "max_entries", "count"] where fields[key] != nil {
            text += "  \(key)=\(number(fields[key]))"
        }
        print(text)
    }
}

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

    @Option(help: "Only this VNI.") var vni: Int?
    @Option(name: .long, help: "Capture point: inner, outer or drop (repeatable; default inner and outer).")
    var point: [String] = []
    @Option(help: "tcpdump-syntax filter on the inner frame.") var filter: String?
    @Option(help: "Only packets to or from this remote VTEP.") var remote: String?
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
        var query: [(String, String)] = []
        if let vni { query.append(("vni", String(vni))) }
        if !point.isEmpty { query.append(("points", point.joined(separator: ","))) }
        if let filter { query.append(("filter", filter)) }
        if let remote { query.append(("remote", remote)) }
        if let snaplen { query.append(("snaplen", String(snaplen))) }
        if let count { query.append(("count", String(count))) }
        if let duration { query.append(("duration", String(duration))) }
        let path =
            "/v1/capture/stream"
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
                let parsed = try? JSONSerialization.jsonObject(with: Data(pending)) as? [String: Any]
                let message = (parsed?["error"] as? [String: Any])?["message"] as? String ?? String(decoding: pending, as: UTF8.self)
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
        if let last = try? client.request("GET", "/v1/capture"),
            let body = try? JSONSerialization.jsonObject(with: Data(last.body)) as? [String: Any],
            let capture = body["capture"] as? [String: Any]
        {
            summary +=
                ", \(number(capture["ring_full"])) lost to full capture rings, \(number(capture["slow_client"])) to a slow reader, "
                + "\(number(capture["filtered_out"])) filtered out"
        }
        printError(summary)
    }

    /// `--router-file`: `POST /v1/capture`, then follow it until it ends; Ctrl-C stops it.
    func runOnRouter(_ name: String) throws {
        var body: [String: Any] = ["file": name]
        if let vni { body["vni"] = vni }
        if !point.isEmpty { body["points"] = point.flatMap { $0.split(separator: ",").map(String.init) } }
        if let filter { body["filter"] = filter }
        if let remote { body["remote"] = remote }
        if let snaplen { body["snaplen"] = snaplen }
        if let count { body["count"] = count }
        if let duration { body["duration"] = duration }
        if let rotateBytes { body["rotate_bytes"] = rotateBytes }
        if let rotateFiles { body["rotate_files"] = rotateFiles }
        let client = try options.client()
        let text = String(decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]), as: UTF8.self)
        // Before the POST: a Ctrl-C while it is under way must still reach the DELETE below, or the
        // capture would outlive this command. (glibc's signal() restarts an interrupted read, so a
        // request in flight completes first.)
        signal(SIGINT) { _ in captureInterrupted.store(true, ordering: .relaxed) }
        let started = try request(client, "POST", "/v1/capture", json: text)
        let id = ((started["capture"] as? [String: Any])?["id"] as? NSNumber)?.intValue
        var last: [String: Any] = [:]
        while true {
            if captureInterrupted.load(ordering: .relaxed) {
                last = (try request(client, "DELETE", "/v1/capture", acceptNotFound: true)["capture"] as? [String: Any]) ?? last
                break
            }
            let status = try request(client, "GET", "/v1/capture")
            guard let capture = status["capture"] as? [String: Any], (capture["id"] as? NSNumber)?.intValue == id else { break }
            last = capture
            if capture["running"] as? Bool != true { break }
            usleep(200_000)
        }
        let files = (last["files"] as? [String] ?? []).joined(separator: " ")
        printError(
            "\(number(last["records"])) packets captured, \(number(last["ring_full"])) lost to full capture rings, "
                + "\(number(last["filtered_out"])) filtered out; ended: \(number(last["ended"] ?? "stopped")); files: \(files)")
        if let error = last["error"] as? String { printError("vxrouter: capture: \(error)") }
    }

    /// One request; 2xx answers parsed, anything else printed as the router's reason (exit 1).
    func request(_ client: ControlClient, _ method: String, _ path: String, json: String? = nil, acceptNotFound: Bool = false)
        throws -> [String: Any]
    {
        let response: ControlResponse
        do {
            response = try client.request(method, path, json: json)
        } catch {
            printError("vxrouter: \(error.description)")
            throw ExitCode(2)
        }
        let parsed = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        if acceptNotFound, response.status == 404 { return [:] }
        guard (200..<300).contains(response.status) else {
            let message = (parsed["error"] as? [String: Any])?["message"] as? String ?? response.text
            printError("vxrouter: capture: \(response.status): \(message)")
            throw ExitCode(1)
        }
        return parsed
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
