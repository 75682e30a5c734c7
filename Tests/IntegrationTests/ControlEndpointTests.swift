// The control endpoint end to end: real routers in namespaces, driven through the API and the
// `vxrouter stats|fdb|flood|peers|events` commands.
//
// 1. Three routers on one switch: counters move with traffic; the event stream shows a learn;
//    a static entry steers unknown-unicast traffic to the VTEP it names, deleting it floods
//    again; flood-list changes, flush, peers, metrics (checked by promtool), human tables.
// 2. A router listening beyond loopback with a token: every kind of bad request is refused with
//    a 4xx JSON error and changes nothing; without a token file it refuses to start; a Unix
//    socket endpoint; schemathesis fuzzing against api/openapi.yaml finds no 5xx.
import Foundation
import LabSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What `Tools/lab/control_request.py` saw.
struct ControlReply: Sendable {
    let status: Int
    let contentType: String
    let body: String

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }

    var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }
}

extension Host {
    /// `vxrouter ARGS` (a client command) inside this host.
    @discardableResult
    func vxrouter(_ arguments: [String], check: Bool = true) async throws -> CommandResult {
        try LabEnvironment.requireRouter()
        // The lab's endpoint and token, unless the test names its own.
        var endpoint: [String] = []
        if !arguments.contains("--endpoint") { endpoint += ["--endpoint", "127.0.0.1:4790"] }
        if !arguments.contains("--token-file") { endpoint += ["--token-file", LabEnvironment.controlTokenFile] }
        return try await lab.run(
            command([LabEnvironment.routerBinary] + arguments + endpoint), timeout: .seconds(15), check: check)
    }

    /// `vxrouter ARGS --json`, parsed.
    func vxrouterJSON(_ arguments: [String]) async throws -> [String: Any] {
        let result = try await vxrouter(arguments + ["--json"])
        guard let object = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw LabFailure("`vxrouter \(arguments.joined(separator: " ")) --json` printed no JSON object: \(result.summary)")
        }
        return object
    }

    /// One raw HTTP request from this host.
    func control(
        _ method: String, _ path: String, body: String? = nil, bodySize: Int? = nil,
        token: String? = LabEnvironment.controlToken, url: String = LabEnvironment.controlURL
    ) async throws -> ControlReply {
        var arguments = [
            LabEnvironment.python, LabEnvironment.script("control_request.py"), "--url", url, "--method", method,
            "--path", path,
        ]
        if let body { arguments += ["--body", body] }
        if let bodySize { arguments += ["--body-size", String(bodySize)] }
        if let token { arguments += ["--token", token] }
        let result = try await lab.run(command(arguments), timeout: .seconds(15))
        guard let object = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
            let status = object["status"] as? Int
        else { throw LabFailure("control_request.py printed no reply: \(result.summary)") }
        return ControlReply(
            status: status, contentType: object["content_type"] as? String ?? "", body: object["body"] as? String ?? "")
    }
}

/// A remote's counters from `vxrouter peers --json`.
func remoteCounter(_ peers: [String: Any], _ address: String, _ key: String) -> Int {
    let remotes = peers["remotes"] as? [[String: Any]] ?? []
    return (remotes.first { $0["address"] as? String == address }?[key] as? NSNumber)?.intValue ?? 0
}

func networkTraffic(_ stats: [String: Any], vni: Int, _ key: String) -> Int {
    let networks = stats["networks"] as? [[String: Any]] ?? []
    let network = networks.first { ($0["vni"] as? NSNumber)?.intValue == vni }
    return ((network?["traffic"] as? [String: Any])?[key] as? NSNumber)?.intValue ?? 0
}

extension EndToEnd {
    @Suite("Control endpoint")
    struct ControlEndpoint {
        /// Polls `condition` on `peers --json` for up to a few seconds (counters are summed on
        /// demand, and a ping's last reply can race the read).
        func waitPeers(
            _ host: Host, timeout: Duration = .seconds(3), _ condition: ([String: Any]) -> Bool
        ) async throws -> [String: Any] {
            let deadline = ContinuousClock.now + timeout
            var peers = try await host.vxrouterJSON(["peers"])
            while !condition(peers) && ContinuousClock.now < deadline {
                await nap(milliseconds: 100)
                peers = try await host.vxrouterJSON(["peers"])
            }
            return peers
        }

        @Test(
            "counters, learn events, static steering, flood list, flush, peers, metrics, tables", .routerBinary,
            .timeLimit(.minutes(4)))
        func drivesTheRouter() async throws {
            try await withLab("ctl") { lab in
                let hosts = try await lab.hostsOnSwitch(count: 3)
                let (a, b, c) = (hosts[0], hosts[1], hosts[2])
                let taps = ["vxa", "vxb", "vxc"].map { lab.interfaceName($0) }
                _ = try await lab.startRouter(
                    on: a, tap: taps[0], remotes: [b.underlayAddress, c.underlayAddress], address: "198.19.0.1/24")
                _ = try await lab.startRouter(on: b, tap: taps[1], remotes: [a.underlayAddress], address: "198.19.0.2/24")
                _ = try await lab.startRouter(on: c, tap: taps[2], remotes: [a.underlayAddress], address: "198.19.0.3/24")

                // Health, version, config.
                let health = try await a.control("GET", "/v1/health")
                #expect(health.status == 200 && health.json["status"] as? String == "ok", "\(health)")
                let config = try await a.control("GET", "/v1/config")
                #expect(config.status == 200 && config.body.contains("\"workers\""), "\(config)")

                // The event stream, subscribed before the first frame.
                let events = try lab.spawn(
                    a.command([LabEnvironment.routerBinary, "events", "--json", "--count", "1"] + LabEnvironment.clientArguments), name: "events-a")
                var subscribed = false
                for _ in 0..<50 {
                    let stats = try await a.vxrouterJSON(["stats"])
                    if ((stats["events"] as? [String: Any])?["subscribers"] as? NSNumber)?.intValue == 1 {
                        subscribed = true
                        break
                    }
                    await nap(milliseconds: 100)
                }
                #expect(subscribed, "the event stream never showed a subscriber")

                // Traffic: counters move, b's MAC is learned (and announced). b's TAP announced
                // itself when it came up (gratuitous ARP), so a may know its MAC already: forget it.
                try await a.vxrouter(["fdb", "flush", "--vni", "42"])
                try await a.ping("198.19.0.2")
                let macB = try await b.macAddress(of: taps[1])
                #expect(await events.wait(timeout: .seconds(10)), "no event within 10 s")
                let eventText = events.stdout
                #expect(eventText.contains("\"type\":\"learn\"") && eventText.contains(macB), "events: \(eventText)")

                let stats = try await a.vxrouterJSON(["stats"])
                #expect(networkTraffic(stats, vni: 42, "tap_rx_packets") > 0, "\(stats)")
                #expect(networkTraffic(stats, vni: 42, "tunnel_tx_packets") > 0, "\(stats)")
                #expect(networkTraffic(stats, vni: 42, "tunnel_rx_packets") > 0, "\(stats)")
                let peers = try await waitPeers(a) { remoteCounter($0, b.underlayAddress, "rx_packets") > 0 }
                #expect(remoteCounter(peers, b.underlayAddress, "rx_packets") > 0, "\(peers)")
                #expect(remoteCounter(peers, b.underlayAddress, "tx_packets") > 0, "\(peers)")
                let fdb = try await a.vxrouterJSON(["fdb", "list", "--vni", "42"])
                let learned = (fdb["entries"] as? [[String: Any]] ?? []).first { $0["mac"] as? String == macB }
                #expect(learned?["type"] as? String == "learned" && learned?["remote"] as? String == b.underlayAddress, "\(fdb)")

                // A station nobody has: frames to it are unknown unicast and flood to b and c.
                let ghostIP = "198.19.0.99"
                let ghostMAC = "02:00:00:00:00:99"
                try await a.ip("neigh", "replace", ghostIP, "lladdr", ghostMAC, "dev", taps[0], "nud", "permanent")
                func sendToGhost(_ count: Int) async throws {
                    try await a.run("ping", "-n", "-c", String(count), "-i", "0.2", "-W", "1", ghostIP, check: false)
                }
                func txCounts() async throws -> (b: Int, c: Int) {
                    let peers = try await a.vxrouterJSON(["peers"])
                    return (remoteCounter(peers, b.underlayAddress, "tx_packets"), remoteCounter(peers, c.underlayAddress, "tx_packets"))
                }
                var before = try await txCounts()
                try await sendToGhost(3)
                var after = try await txCounts()
                #expect(after.b - before.b >= 3 && after.c - before.c >= 3, "unknown unicast should flood: \(before) → \(after)")

                // A static entry steers it to c alone, from the very next frame.
                let added = try await a.vxrouter(["fdb", "add", "--vni", "42", ghostMAC, c.underlayAddress])
                #expect(added.stdout.contains(ghostMAC), "\(added.summary)")
                before = try await txCounts()
                try await sendToGhost(3)
                after = try await txCounts()
                #expect(after.c - before.c >= 3 && after.b == before.b, "the static entry should steer to c only: \(before) → \(after)")
                let table = try await a.vxrouter(["fdb", "list"])
                #expect(table.stdout.contains("static") && table.stdout.contains(ghostMAC) && table.stdout.contains("VNI"), "\(table.summary)")

                // Deleted: it floods again.
                try await a.vxrouter(["fdb", "del", "--vni", "42", ghostMAC])
                before = try await txCounts()
                try await sendToGhost(3)
                after = try await txCounts()
                #expect(after.b - before.b >= 3 && after.c - before.c >= 3, "after delete, flooding again: \(before) → \(after)")

                // Flood list: without c, unknown unicast reaches b only; add it back.
                try await a.vxrouter(["flood", "del", "--vni", "42", c.underlayAddress])
                let flood = try await a.vxrouterJSON(["flood", "list", "--vni", "42"])
                #expect(flood["remotes"] as? [String] == [b.underlayAddress], "\(flood)")
                before = try await txCounts()
                try await sendToGhost(3)
                after = try await txCounts()
                #expect(after.b - before.b >= 3 && after.c == before.c, "c left the flood list: \(before) → \(after)")
                try await a.vxrouter(["flood", "add", "--vni", "42", c.underlayAddress])
                let restored = try await a.vxrouterJSON(["flood", "list", "--vni", "42"])
                #expect(Set(restored["remotes"] as? [String] ?? []) == [b.underlayAddress, c.underlayAddress], "\(restored)")

                // Flush: learned entries go.
                let flushed = try await a.vxrouter(["fdb", "flush", "--vni", "42"])
                #expect(flushed.stdout.contains("learned entries removed"), "\(flushed.summary)")
                let empty = try await a.vxrouterJSON(["fdb", "list", "--vni", "42"])
                #expect((empty["entries"] as? [Any])?.isEmpty == true, "\(empty)")

                // Human tables.
                let statsTable = try await a.vxrouter(["stats"])
                #expect(statsTable.stdout.contains("TUNNEL_TX") && statsTable.stdout.contains(taps[0]), "\(statsTable.summary)")
                let peersTable = try await a.vxrouter(["peers"])
                #expect(peersTable.stdout.contains("LAST_HEARD") && peersTable.stdout.contains(b.underlayAddress), "\(peersTable.summary)")

                // Metrics: conventional names, valid exposition format.
                let metrics = try await a.control("GET", "/metrics")
                #expect(metrics.status == 200 && metrics.contentType.hasPrefix("text/plain"), "\(metrics.contentType)")
                for series in [
                    "vxrouter_tap_rx_packets_total{vni=\"42\"}", "vxrouter_tunnel_tx_bytes_total{vni=\"42\"}",
                    "vxrouter_drops_total{vni=\"42\",reason=\"bad_flags\"}", "vxrouter_fdb_entries{vni=\"42\",type=\"learned\"}",
                    "vxrouter_remote_rx_packets_total{remote=\"\(b.underlayAddress)\"}", "vxrouter_worker_tap_rx_packets_total{worker=\"0\"}",
                ] {
                    #expect(metrics.body.contains(series), "no \(series) in /metrics")
                }
                let metricsPath = lab.logPath("metrics.txt")
                try metrics.body.write(toFile: metricsPath, atomically: true, encoding: .utf8)
                let promtool = LabEnvironment.tool("promtool")
                if FileManager.default.isExecutableFile(atPath: promtool) {
                    let check = try await lab.run(
                        ["/bin/sh", "-c", "\(promtool) check metrics < \(metricsPath)"], check: false)
                    #expect(check.succeeded, "promtool check metrics: \(check.summary)")
                } else {
                    #expect(!LabEnvironment.isCI, "promtool is missing (apt: prometheus); Tools/test.sh installs it")
                }

                // No router: a clear message and a non-zero exit.
                let nobody = try await a.vxrouter(["stats", "--endpoint", "127.0.0.1:4799"], check: false)
                #expect(nobody.status != 0 && nobody.stderr.contains("no router answers at 127.0.0.1:4799"), "\(nobody.summary)")
            }
        }

        @Test(
            "bad requests are refused and change nothing; token; loopback rule; unix socket; schemathesis",
            .routerBinary, .timeLimit(.minutes(6)))
        func refusesBadRequests() async throws {
            try await withLab("ctlbad") { lab in
                let (a, b) = try await lab.twoHosts()
                let tapA = lab.interfaceName("vxa")
                let tapB = lab.interfaceName("vxb")
                let token = "t0k3n-\(lab.id)"
                let tokenPath = lab.logPath("token")
                try "\(token)\n".write(toFile: tokenPath, atomically: true, encoding: .utf8)

                // Beyond loopback without a token file: refused before anything is created.
                let openConfig = """
                    underlay: { local: \(a.underlayAddress) }
                    control: { listen: "0.0.0.0:4790" }
                    networks:
                      - { vni: 42, tap: \(tapA), flood: [\(b.underlayAddress)], address: 198.19.0.1/24 }
                    """
                let openPath = lab.logPath("open.yaml")
                try openConfig.write(toFile: openPath, atomically: true, encoding: .utf8)
                let refused = try await lab.run(
                    a.command([LabEnvironment.routerBinary, "run", "--config", openPath]), timeout: .seconds(15), check: false)
                #expect(refused.status != 0 && (refused.stdout + refused.stderr).contains("control.token_file"), "\(refused.summary)")
                #expect(try await !a.deviceExists(tapA))

                _ = try await lab.startRouter(
                    on: a,
                    config: openConfig.replacingOccurrences(
                        of: "{ listen: \"0.0.0.0:4790\" }", with: "{ listen: \"0.0.0.0:4790\", token_file: \(tokenPath) }")
                        // Captures the fuzzer starts land in the lab's directory.
                        + "\ncapture: { directory: \(lab.logPath("captures")) }\n",
                    taps: [tapA])
                let socketPath = lab.logPath("b.sock")
                _ = try await lab.startRouter(
                    on: b, tap: tapB, remotes: [a.underlayAddress], address: "198.19.0.2/24",
                    extra: ["--control", "unix:\(socketPath)"])
                try await a.ping("198.19.0.2")

                // The endpoint answers over the underlay, from b.
                let url = "http://\(a.underlayAddress):4790"
                let remoteRead = try await b.control("GET", "/v1/stats", url: url)
                #expect(remoteRead.status == 200, "\(remoteRead)")

                func state() async throws -> String {
                    let fdb = try await a.control("GET", "/v1/networks/42/fdb", url: url)
                    let flood = try await a.control("GET", "/v1/networks/42/flood", url: url)
                    // Ages tick; compare what the entries are, not how old.
                    let entries = (fdb.json["entries"] as? [[String: Any]] ?? []).map {
                        "\($0["mac"] ?? "")@\($0["remote"] ?? "")/\($0["type"] ?? "")"
                    }
                    return entries.sorted().joined(separator: ",") + " | " + flood.body
                }
                let initial = try await state()
                let good = "{\"mac\": \"02:00:00:00:00:42\", \"remote\": \"198.18.0.7\"}"
                let cases: [(String, String, String?, Int?, String?, Int, String)] = [
                    ("POST", "/v1/networks/42/fdb", good, nil, nil, 401, "token"),
                    ("POST", "/v1/networks/42/fdb", good, nil, "wrong", 401, "token"),
                    ("DELETE", "/v1/networks/42/flood/\(b.underlayAddress)", nil, nil, nil, 401, "token"),
                    ("POST", "/v1/networks/42/fdb", "{\"mac\": \"02:00:00:00:00:42\", ", nil, token, 400, "not valid JSON"),
                    ("POST", "/v1/networks/42/fdb", "[1, 2]", nil, token, 400, "not a JSON object"),
                    ("POST", "/v1/networks/42/fdb", "{\"mac\": \"02:00:00:00:00:4g\", \"remote\": \"198.18.0.7\"}", nil, token, 400, "not a MAC address"),
                    ("POST", "/v1/networks/42/fdb", "{\"mac\": \"01:00:5e:00:00:01\", \"remote\": \"198.18.0.7\"}", nil, token, 400, "unicast"),
                    ("POST", "/v1/networks/42/fdb", "{\"mac\": \"02:00:00:00:00:42\", \"remote\": \"2001:db8::7\"}", nil, token, 400, "IPv6"),
                    ("POST", "/v1/networks/42/fdb", "{\"mac\": \"02:00:00:00:00:42\", \"remote\": \"not-an-ip\"}", nil, token, 400, "not an IP address"),
                    ("POST", "/v1/networks/42/fdb", "{\"mac\": \"02:00:00:00:00:42\"}", nil, token, 400, "missing field"),
                    ("POST", "/v1/networks/42/fdb", "{\"mac\": \"02:00:00:00:00:42\", \"remote\": \"198.18.0.7\", \"x\": 1}", nil, token, 400, "unknown field"),
                    ("POST", "/v1/networks/42/fdb", "{\"mac\": 42, \"remote\": \"198.18.0.7\"}", nil, token, 400, "must be a string"),
                    ("POST", "/v1/networks/43/fdb", good, nil, token, 404, "not served"),
                    ("POST", "/v1/networks/16777216/fdb", good, nil, token, 400, "not a VNI"),
                    ("POST", "/v1/networks/42/fdb", nil, 100_000, token, 413, "larger than"),
                    ("DELETE", "/v1/networks/42/fdb/02:00:00:00:00:43", nil, nil, token, 404, "no FDB entry"),
                    ("DELETE", "/v1/networks/42/fdb/banana", nil, nil, token, 400, "not a MAC address"),
                    ("POST", "/v1/networks/42/flood", "{\"remote\": \"\(a.underlayAddress)\"}", nil, token, 400, "own address"),
                    ("DELETE", "/v1/networks/42/flood/198.18.0.200", nil, nil, token, 404, "not on the flood list"),
                    ("POST", "/v1/networks/42/fdb/flush", "{\"all\": true}", nil, token, 400, "no parameters"),
                    ("GET", "/v1/routes/that/do/not/exist", nil, nil, nil, 404, "no such route"),
                    ("PUT", "/v1/networks/42/fdb", good, nil, token, 405, "not allowed"),
                ]
                for (method, path, body, size, tokenUsed, status, words) in cases {
                    let reply = try await b.control(method, path, body: body, bodySize: size, token: tokenUsed, url: url)
                    #expect(reply.status == status, "\(method) \(path) \(body ?? ""): \(reply.status) \(reply.body)")
                    #expect(reply.contentType.hasPrefix("application/json"), "\(method) \(path): \(reply.contentType)")
                    #expect(
                        reply.errorMessage?.contains(words) == true, "\(method) \(path): expected “\(words)” in \(reply.body)")
                    let now = try await state()
                    #expect(now == initial, "\(method) \(path) changed the router: \(initial) → \(now)")
                }

                // With the token, a change goes through; the CLI reads the token file.
                let added = try await b.control("POST", "/v1/networks/42/fdb", body: good, token: token, url: url)
                #expect(added.status == 201, "\(added)")
                let denied = try await a.vxrouter(["fdb", "del", "--vni", "42", "02:00:00:00:00:42"], check: false)
                #expect(denied.status == 1 && denied.stderr.contains("401"), "\(denied.summary)")
                try await a.vxrouter(["fdb", "del", "--vni", "42", "02:00:00:00:00:42", "--token-file", tokenPath])

                // The Unix socket endpoint.
                let overSocket = try await b.vxrouterJSON(["stats", "--endpoint", "unix:\(socketPath)"])
                #expect(networkTraffic(overSocket, vni: 42, "tunnel_rx_packets") > 0, "\(overSocket)")

                // A live capture exposes traffic: the token is needed although it is a GET.
                let stream = try await b.control("GET", "/v1/capture/stream?count=1", url: url)
                #expect(stream.status == 401, "\(stream)")

                // Fuzzing against the OpenAPI description: no 5xx, responses as documented.
                let schemathesis = LabEnvironment.tool("schemathesis")
                guard FileManager.default.isExecutableFile(atPath: schemathesis) else {
                    #expect(!LabEnvironment.isCI, "schemathesis is missing (pip install schemathesis); Tools/test.sh installs it")
                    return
                }
                let spec = LabEnvironment.packageRoot.appendingPathComponent("api/openapi.yaml").path
                let fuzz = try await lab.run(
                    b.command([
                        schemathesis, "run", spec, "--url", url, "--checks",
                        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                        "--max-examples", "20", "--phases", "examples,coverage,fuzzing", "--header",
                        "Authorization: Bearer \(token)", "--exclude-path", "/v1/events", "--exclude-path", "/v1/capture/stream", "--no-color",
                    ]), timeout: .seconds(240), check: false)
                #expect(fuzz.succeeded && fuzz.stdout.contains("passed"), "schemathesis: \(fuzz.summary)")
                let health = try await b.control("GET", "/v1/health", url: url)
                #expect(health.status == 200, "the router should survive the fuzzing: \(health)")
            }
        }
    }
}
