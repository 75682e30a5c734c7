// Every route of the control endpoint, good and bad requests, through the real HTTP pipeline
// (NIO's codec and `ControlHTTPHandler`) on an in-memory channel, answered by a fake service:
// no root, no sockets, no router. The lab's ControlEndpointTests repeat a few against a real one.
import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import VXControlAPI
import VXPlatform
import VXRouter

@testable import VXControl

/// A parsed HTTP/1.1 response.
struct HTTPReply: CustomStringConvertible {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
    var errorMessage: String? { (try? JSONDecoder().decode(ErrorBody.self, from: Data(body)))?.error.message }
    var description: String { "\(status) \(headers) \(text.prefix(300))" }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONDecoder().decode(T.self, from: Data(body)) }
    func decoded<T: Decodable>(_ type: T.Type) -> T? { try? decode(T.self) }
}

/// Sends `raw` (one or more requests as bytes) into a fresh endpoint pipeline and reads one response.
/// `controlGroup` set: the endpoint of a Unix socket, whose caller is `caller` (nil: unreadable).
func exchange(
    _ raw: String, service: FakeRouterService, token: String? = "secret", controlGroup: ControlGroup? = nil,
    caller: PeerCredentials? = nil, routes: RouteTable = .control
) async throws -> HTTPReply {
    let channel = NIOAsyncTestingChannel()
    try await channel.eventLoop.submit {
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
        try channel.pipeline.syncOperations.addHandler(
            ControlHTTPHandler(
                token: token.map { Array($0.utf8) }, controlGroup: controlGroup, service: service, routes: routes,
                readPeer: { channel in channel.eventLoop.makeSucceededFuture(caller) }))
    }.get()
    try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4790))
    do {
        try await channel.writeInbound(ByteBuffer(string: raw))
    } catch {
        // A request NIO's codec cannot parse: its error handler has answered 400 (read below).
    }
    var bytes: [UInt8] = []
    func complete() -> HTTPReply? {
        guard let end = bytes.indices.dropLast(3).first(where: { bytes[$0..<$0 + 4] == [13, 10, 13, 10][...] }) else {
            return nil
        }
        let head = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(head[0].split(separator: " ")[1]) ?? 0
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = Array(bytes[(end + 4)...])
        if raw.hasPrefix("HEAD ") { return HTTPReply(status: status, headers: headers, body: []) }
        if let length = headers["content-length"].flatMap({ Int($0) }) {
            return body.count >= length ? HTTPReply(status: status, headers: headers, body: Array(body.prefix(length))) : nil
        }
        // Streams: the chunks' data, once the first whole chunk is in.
        if headers["transfer-encoding"] == "chunked" {
            var data: [UInt8] = []
            var rest = body[...]
            while let lineEnd = rest.indices.dropLast().first(where: { rest[$0] == 13 && rest[$0 + 1] == 10 }),
                let size = Int(String(decoding: rest[..<lineEnd], as: UTF8.self), radix: 16),
                rest.count >= lineEnd - rest.startIndex + 2 + size + 2
            {
                data += rest[(lineEnd + 2)..<(lineEnd + 2 + size)]
                rest = rest[(lineEnd + 2 + size + 2)...]
                if size == 0 { break }
            }
            return data.isEmpty ? nil : HTTPReply(status: status, headers: headers, body: data)
        }
        return HTTPReply(status: status, headers: headers, body: body)
    }
    while true {
        let data = try await channel.waitForOutboundWrite(as: IOData.self)
        if case .byteBuffer(let buffer) = data { bytes += Array(buffer.readableBytesView) }
        if let reply = complete() {
            _ = try? await channel.close()
            return reply
        }
    }
}

func request(
    _ method: String, _ path: String, body: String? = nil, token: String? = "secret", headers: [String] = []
) -> String {
    var text = "\(method) \(path) HTTP/1.1\r\nHost: test\r\n"
    if let token { text += "Authorization: Bearer \(token)\r\n" }
    for header in headers { text += header + "\r\n" }
    if let body { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body }
    else { text += method == "GET" ? "\r\n" : "Content-Length: 0\r\n\r\n" }
    return text
}

@Suite struct RouteTests {
    let good = #"{"mac": "02:00:00:00:00:42", "remote": "198.18.0.7"}"#

    // MARK: Reads

    @Test func readsAnswerTheirModels() async throws {
        let service = FakeRouterService()
        let health = try await exchange(request("GET", "/v1/health", token: nil), service: service)
        #expect(health.status == 200 && health.headers["content-type"] == "application/json", "\(health)")
        #expect(try health.decode(Health.self) == Health(uptimeSeconds: 7))
        #expect(try await exchange(request("GET", "/v1/version", token: nil), service: service).decode(VersionInfo.self).version == vxrouterVersion)
        #expect(try await exchange(request("GET", "/v1/config", token: nil), service: service).decode(EffectiveConfig.self).workers == 2)
        let stats = try await exchange(request("GET", "/v1/stats", token: nil), service: service).decode(Stats.self)
        #expect(stats.totals["tap_rx_packets"] == 3 && stats.totals.dropsTotal == 1 && stats.networks.count == 2)
        #expect(try await exchange(request("GET", "/v1/remotes", token: nil), service: service).decode(RemoteList.self).remotes.first?.address == "198.18.0.2")
        #expect(try await exchange(request("GET", "/v1/networks", token: nil), service: service).decode(NetworkList.self).networks.map(\.vni) == [42, 43])
        let metrics = try await exchange(request("GET", "/metrics", token: nil), service: service)
        #expect(metrics.status == 200 && metrics.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        #expect(metrics.text.contains("vxrouter_workers 2"))
        let fdb = try await exchange(request("GET", "/v1/networks/42/fdb", token: nil), service: service)
        #expect(try fdb.decode(FDBList.self) == FDBList(vni: 42, entries: []), "\(fdb)")
        let flood = try await exchange(request("GET", "/v1/networks/43/flood", token: nil), service: service)
        #expect(try flood.decode(FloodList.self) == FloodList(vni: 43, remotes: []), "\(flood)")
        let capture = try await exchange(request("GET", "/v1/capture", token: nil), service: service)
        #expect(try capture.decode(CaptureStatus.self) == CaptureStatus(capture: nil, ringFullTotal: 0), "\(capture)")
    }

    @Test func vniInThePath() async throws {
        let service = FakeRouterService()
        for (path, status, words) in [
            ("/v1/networks/44/fdb", 404, "vni 44 is not served by this router (served: 42, 43)"),
            ("/v1/networks/16777216/fdb", 400, "not a VNI"), ("/v1/networks/abc/flood", 400, "not a VNI"),
            ("/v1/networks/-1/flood", 400, "not a VNI"),
        ] {
            let reply = try await exchange(request("GET", path, token: nil), service: service)
            #expect(reply.status == status && reply.errorMessage?.contains(words) == true, "\(path): \(reply)")
        }
        #expect(service.calls.isEmpty, "\(service.calls)")
    }

    // MARK: Changes

    @Test func staticEntryAddReplaceDelete() async throws {
        let service = FakeRouterService()
        let added = try await exchange(request("POST", "/v1/networks/42/fdb", body: good), service: service)
        #expect(added.status == 201, "\(added)")
        #expect(try added.decode(FDBEntry.self) == FDBEntry(mac: "02:00:00:00:00:42", remote: "198.18.0.7", type: .static))
        let replaced = try await exchange(request("POST", "/v1/networks/42/fdb", body: good), service: service)
        #expect(replaced.status == 200, "\(replaced)")
        let listed = try await exchange(request("GET", "/v1/networks/42/fdb"), service: service).decode(FDBList.self)
        #expect(listed.entries.map(\.mac) == ["02:00:00:00:00:42"])
        // Percent-encoded colons in the path are decoded first.
        let deleted = try await exchange(request("DELETE", "/v1/networks/42/fdb/02%3A00:00:00:00:42"), service: service)
        #expect(deleted.status == 200 && deleted.decoded(FDBEntry.self)?.remote == "198.18.0.7", "\(deleted)")
        let again = try await exchange(request("DELETE", "/v1/networks/42/fdb/02:00:00:00:00:42"), service: service)
        #expect(again.status == 404 && again.errorMessage?.contains("no FDB entry") == true, "\(again)")
    }

    @Test func staticEntryWithAddresses() async throws {
        let service = FakeRouterService()
        let body = #"{"mac": "02:00:00:00:00:42", "remote": "198.18.0.7", "ips": ["10.0.1.2", "2001:db8::2"]}"#
        let added = try await exchange(request("POST", "/v1/networks/42/fdb", body: body), service: service)
        #expect(added.status == 201, "\(added)")
        #expect(
            try added.decode(FDBEntry.self)
                == FDBEntry(mac: "02:00:00:00:00:42", remote: "198.18.0.7", type: .static, ips: ["10.0.1.2", "2001:db8::2"]))
        #expect(service.calls.contains("set 42 02:00:00:00:00:42 198.18.0.7 ips=10.0.1.2,2001:db8::2"), "\(service.calls)")
        // An empty list is an entry without addresses.
        let none = try await exchange(
            request("POST", "/v1/networks/42/fdb", body: #"{"mac": "02:00:00:00:00:42", "remote": "198.18.0.7", "ips": []}"#),
            service: service)
        #expect(none.status == 200 && none.decoded(FDBEntry.self)?.ips == nil, "\(none)")
    }

    @Test func floodAddRemove() async throws {
        let service = FakeRouterService()
        let body = #"{"remote": "198.18.0.9"}"#
        let added = try await exchange(request("POST", "/v1/networks/43/flood", body: body), service: service)
        #expect(added.status == 201 && added.decoded(FloodList.self)?.remotes == ["198.18.0.9"], "\(added)")
        #expect(try await exchange(request("POST", "/v1/networks/43/flood", body: body), service: service).status == 200)
        let removed = try await exchange(request("DELETE", "/v1/networks/43/flood/198.18.0.9"), service: service)
        #expect(removed.status == 200 && removed.decoded(FloodList.self)?.remotes.isEmpty == true, "\(removed)")
        let gone = try await exchange(request("DELETE", "/v1/networks/43/flood/198.18.0.9"), service: service)
        #expect(gone.status == 404 && gone.errorMessage?.contains("not on the flood list") == true, "\(gone)")
    }

    @Test func flushTakesNoParameters() async throws {
        let service = FakeRouterService()
        for body in [nil, "{}", " \n"] as [String?] {
            let reply = try await exchange(request("POST", "/v1/networks/42/fdb/flush", body: body), service: service)
            #expect(reply.status == 200 && reply.decoded(FlushResult.self) == FlushResult(vni: 42, removed: 0), "\(reply)")
        }
        let refused = try await exchange(request("POST", "/v1/networks/42/fdb/flush", body: #"{"all": true}"#), service: service)
        #expect(refused.status == 400 && refused.errorMessage?.contains("no parameters") == true, "\(refused)")
    }

    /// The lab's list of bad requests, each refused with its status and words, changing nothing.
    @Test func badRequestsChangeNothing() async throws {
        let service = FakeRouterService()
        let cases: [(String, String, String?, String?, Int, String)] = [
            ("POST", "/v1/networks/42/fdb", good, nil, 401, "token"),
            ("POST", "/v1/networks/42/fdb", good, "wrong", 401, "token"),
            ("DELETE", "/v1/networks/42/flood/198.18.0.2", nil, nil, 401, "token"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "02:00:00:00:00:42", "#, "secret", 400, "not valid JSON"),
            ("POST", "/v1/networks/42/fdb", "[1, 2]", "secret", 400, "not a JSON object"),
            ("POST", "/v1/networks/42/fdb", "", "secret", 400, "the request body is empty"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "02:00:00:00:00:4g", "remote": "198.18.0.7"}"#, "secret", 400, "not a MAC address"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "01:00:5e:00:00:01", "remote": "198.18.0.7"}"#, "secret", 400, "unicast"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "00:00:00:00:00:00", "remote": "198.18.0.7"}"#, "secret", 400, "unicast"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "02:00:00:00:00:42", "remote": "2001:db8::7"}"#, "secret", 400, "is IPv6 but the underlay is IPv4"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "02:00:00:00:00:42", "remote": "not-an-ip"}"#, "secret", 400, "not an IP address"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "02:00:00:00:00:42", "remote": "224.0.0.1"}"#, "secret", 400, "not a unicast address"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "02:00:00:00:00:42"}"#, "secret", 400, "missing field \"remote\""),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "02:00:00:00:00:42", "remote": "198.18.0.7", "x": 1}"#, "secret", 400, "unknown field \"x\" (allowed: mac, remote, ips)"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "02:00:00:00:00:42", "remote": "198.18.0.7", "ips": "10.0.1.2"}"#, "secret", 400, "field \"ips\" must be a list of strings"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "02:00:00:00:00:42", "remote": "198.18.0.7", "ips": [7]}"#, "secret", 400, "field \"ips\" must be a list of strings"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "02:00:00:00:00:42", "remote": "198.18.0.7", "ips": ["10.0.1.300"]}"#, "secret", 400, "is not an IP address"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "02:00:00:00:00:42", "remote": "198.18.0.7", "ips": ["224.0.0.5"]}"#, "secret", 400, "multicast"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "02:00:00:00:00:42", "remote": "198.18.0.7", "ips": ["0.0.0.0"]}"#, "secret", 400, "unspecified"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": "02:00:00:00:00:42", "remote": "198.18.0.7", "ips": ["10.0.1.2", "10.0.1.2"]}"#, "secret", 400, "listed twice"),
            ("POST", "/v1/networks/42/fdb", #"{"mac": 42, "remote": "198.18.0.7"}"#, "secret", 400, "field \"mac\" must be a string"),
            ("POST", "/v1/networks/44/fdb", good, "secret", 404, "not served"),
            ("POST", "/v1/networks/16777216/fdb", good, "secret", 400, "not a VNI"),
            ("DELETE", "/v1/networks/42/fdb/02:00:00:00:00:43", nil, "secret", 404, "no FDB entry"),
            ("DELETE", "/v1/networks/42/fdb/banana", nil, "secret", 400, "not a MAC address"),
            ("POST", "/v1/networks/42/flood", #"{"remote": "198.18.0.1"}"#, "secret", 400, "own address"),
            ("POST", "/v1/networks/42/flood", #"{"remote": "198.18.0.1", "vni": 1}"#, "secret", 400, "unknown field"),
            ("DELETE", "/v1/networks/42/flood/198.18.0.200", nil, "secret", 404, "not on the flood list"),
            ("DELETE", "/v1/networks/42/flood/nowhere", nil, "secret", 400, "not an IP address"),
            ("POST", "/v1/networks/42/fdb/flush", #"{"all": true}"#, "secret", 400, "no parameters"),
            ("GET", "/v1/routes/that/do/not/exist", nil, nil, 404, "no such route: GET /v1/routes/that/do/not/exist"),
            ("PUT", "/v1/networks/42/fdb", good, "secret", 405, "PUT is not allowed on /v1/networks/42/fdb (allowed: GET, POST)"),
            ("DELETE", "/v1/networks/42/fdb/flush", nil, "secret", 405, "(allowed: POST)"),
            ("HEAD", "/v1/health", nil, nil, 405, ""),
            ("POST", "/v1/capture/stream", nil, "secret", 405, "(allowed: GET)"),
            ("PATCH", "/v1/capture", nil, "secret", 405, "(allowed: GET, POST, DELETE)"),
            ("POST", "/v1/capture", #"{"file": "x.pcap", "bogus": 1}"#, "secret", 400, "unknown parameter \"bogus\""),
            ("POST", "/v1/capture", #"{"file": "x.pcap", "vni": 7}"#, "secret", 400, "vni 7 is not served by this router"),
            ("POST", "/v1/capture", #"{"file": "../x.pcap"}"#, "secret", 400, "plain file name"),
            ("POST", "/v1/capture", #"{"file": "x.pcap", "count": 1.5}"#, "secret", 400, "count must be an integer"),
            ("POST", "/v1/capture", #"{"file": "x.pcap", "points": ["inner", "sideways"]}"#, "secret", 400, "not a capture point"),
            ("POST", "/v1/capture", "[]", "secret", 400, "not a JSON object"),
            ("POST", "/v1/capture", "{", "secret", 400, "not valid JSON"),
            ("DELETE", "/v1/capture", nil, "secret", 404, "no capture is running"),
            ("GET", "/v1/capture/stream?count=1", nil, nil, 401, "token"),
            ("GET", "/v1/capture/stream?file=x", nil, "secret", 400, "unknown parameter \"file\""),
            ("GET", "/v1/capture/stream?vni=99", nil, "secret", 400, "not served"),
        ]
        for (method, path, body, token, status, words) in cases {
            let reply = try await exchange(request(method, path, body: body, token: token), service: service)
            #expect(reply.status == status, "\(method) \(path) \(body ?? ""): \(reply)")
            if method != "HEAD" {
                #expect(reply.headers["content-type"] == "application/json", "\(method) \(path): \(reply)")
                #expect(reply.errorMessage?.contains(words) == true, "\(method) \(path): expected “\(words)” in \(reply.text)")
            }
            if status == 401 { #expect(reply.headers["www-authenticate"] == "Bearer") }
        }
        let changed = service.state.withLock { state in
            state.fdb.values.contains { !$0.isEmpty } || state.flood.values.contains { !$0.isEmpty } || state.capture != nil
        }
        #expect(!changed, "a refused request changed the tables: \(service.calls)")
    }

    @Test func tableFullIsAConflict() async throws {
        let service = FakeRouterService()
        service.state.withLock { $0.maxEntries = 1 }
        #expect(try await exchange(request("POST", "/v1/networks/42/fdb", body: good), service: service).status == 201)
        let other = #"{"mac": "02:00:00:00:00:43", "remote": "198.18.0.7"}"#
        let full = try await exchange(request("POST", "/v1/networks/42/fdb", body: other), service: service)
        #expect(full.status == 409 && full.errorMessage?.contains("full") == true, "\(full)")
    }

    @Test func bodyTooLarge() async throws {
        let service = FakeRouterService()
        let big = "{\"mac\": \"" + String(repeating: "a", count: ControlServer.maxBody) + "\"}"
        let reply = try await exchange(request("POST", "/v1/networks/42/fdb", body: big), service: service)
        #expect(reply.status == 413 && reply.errorMessage?.contains("larger than 65536 bytes") == true, "\(reply)")
        #expect(reply.headers["connection"] == "close")
        #expect(service.calls.isEmpty)
    }

    @Test func withoutATokenChangesNeedNone() async throws {
        let service = FakeRouterService()
        let reply = try await exchange(request("POST", "/v1/networks/42/fdb", body: good, token: nil), service: service, token: nil)
        #expect(reply.status == 201, "\(reply)")
    }

    @Test func malformedHTTPIsA400() async throws {
        let reply = try await exchange("NOT HTTP AT ALL\r\n\r\n", service: FakeRouterService())
        #expect(reply.status == 400, "\(reply)")
    }

    @Test func aStoppingRouterAnswers503AndCloses() async throws {
        let service = FakeRouterService()
        service.state.withLock { $0.stopping = true }
        let reply = try await exchange(request("GET", "/v1/stats", token: nil), service: service)
        #expect(reply.status == 503 && reply.errorMessage == "the router is stopping", "\(reply)")
        #expect(reply.headers["connection"] == "close")
    }

    // MARK: Streams

    @Test func captureFileAndStream() async throws {
        let service = FakeRouterService()
        let started = try await exchange(
            request("POST", "/v1/capture", body: #"{"file": "x.pcap", "vni": 42, "count": "5", "points": ["inner"]}"#),
            service: service)
        #expect(started.status == 201 && started.decoded(CaptureStatus.self)?.capture?.running == true, "\(started)")
        let stream = try await exchange(request("GET", "/v1/capture/stream?vni=43&points=inner,outer"), service: service)
        #expect(stream.status == 200 && stream.headers["content-type"] == "application/vnd.tcpdump.pcap", "\(stream)")
        #expect(service.state.withLock { $0.capture } == ["vni": .string("43"), "points": .string("inner,outer")])
    }

    @Test func eventsSubscribe() async throws {
        let service = FakeRouterService()
        let reply = try await exchange(request("GET", "/v1/events", token: nil), service: service)
        #expect(reply.status == 200 && reply.headers["content-type"] == "text/event-stream", "\(reply)")
        #expect(reply.text.contains(": subscribed"), "\(reply)")
    }
}
