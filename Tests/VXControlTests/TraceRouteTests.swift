// POST /v1/trace through the real HTTP pipeline with the fake service: what a good request hands
// the service, every bad one refused with 400/404 before it reaches the service, and the route's
// privilege (a read: open on the socket and over TCP without the token, like GET fdb). Then the
// router's mapping of a datapath trace into the API's response.
import Foundation
import Testing
import VXControlAPI
import VXDatapath
import VXPlatform
import VXWire

@testable import VXControl
@testable import VXRouter

extension FakeRouterService {
    func trace(_ input: TraceInput) async throws -> TraceResponse {
        state.withLock { $0.calls.append("trace \(input)") }
        let from: String
        switch input {
        case .tap: from = "tap"
        case .tunnel: from = "tunnel"
        }
        return TraceResponse(
            from: from, vni: 42, tap: "vx42", action: .unicast, dropReason: nil,
            steps: [TraceStep(stage: "fdb", result: "hit")], remotes: ["198.18.0.2"], outerSourcePort: 50000,
            fdbEntry: FDBEntry(mac: "02:00:00:00:00:02", remote: "198.18.0.2", type: .learned, ageSeconds: 3),
            answer: nil, icmpTooBig: nil, learn: nil, checksum: nil)
    }
}

@Suite struct TraceRouteTests {
    let frame = "02:00:00:00:00:02 02:00:00:00:00:01 88b5 0102"
    var frameBytes: [UInt8] { [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5, 1, 2] }

    func post(_ body: String, _ service: FakeRouterService = FakeRouterService()) async throws -> HTTPReply {
        try await exchange(request("POST", APIPath.trace, body: body, token: nil), service: service)
    }

    @Test func fromTapHandsTheFrameToTheService() async throws {
        let service = FakeRouterService()
        let reply = try await post(#"{"from": "tap", "vni": 42, "frame": "\#(frame)"}"#, service)
        #expect(reply.status == 200, "\(reply)")
        let answer = try reply.decode(TraceResponse.self)
        #expect(answer.action == .unicast && answer.outerSourcePort == 50000 && answer.fdbEntry?.ageSeconds == 3)
        #expect(service.calls == ["trace \(TraceInput.tap(vni: VNI(42)!, frame: frameBytes))"])
    }

    @Test func fromTunnelWithAFrameGetsAVXLANHeaderInFront() async throws {
        let service = FakeRouterService()
        let reply = try await post(#"{"from": "tunnel", "vni": 4098, "remote": "198.18.0.2", "frame": "\#(frame)"}"#, service)
        #expect(reply.status == 200, "\(reply)")
        let header: [UInt8] = [0x08, 0, 0, 0, 0, 0x10, 0x02, 0]
        #expect(service.calls == ["trace \(TraceInput.tunnel(remote: IPAddress("198.18.0.2")!, payload: header + frameBytes))"])
    }

    @Test func fromTunnelWithAPayloadTakesItAsIs() async throws {
        let service = FakeRouterService()
        // A VNI this router does not serve is for the trace to report (unknown_vni), not a 404.
        let reply = try await post(#"{"from": "tunnel", "remote": "2001:db8::2", "payload": "0000000000002a00"}"#, service)
        #expect(reply.status == 200, "\(reply)")
        #expect(service.calls == ["trace \(TraceInput.tunnel(remote: IPAddress("2001:db8::2")!, payload: [0, 0, 0, 0, 0, 0, 0x2a, 0]))"])
    }

    @Test func badRequestsNeverReachTheService() async throws {
        let cases: [(String, Int, String)] = [
            ("", 400, "empty"),
            ("[1]", 400, "not a JSON object"),
            (#"{"vni": 42, "frame": "00"}"#, 400, "does not match"),
            (#"{"from": "wire", "vni": 42, "frame": "00"}"#, 400, "not tap or tunnel"),
            (#"{"from": "tap", "frame": "\#(frame)"}"#, 400, "needs vni"),
            (#"{"from": "tap", "vni": 44, "frame": "\#(frame)"}"#, 404, "not served"),
            (#"{"from": "tap", "vni": 16777216, "frame": "\#(frame)"}"#, 400, "not a VNI"),
            (#"{"from": "tap", "vni": 42}"#, 400, "missing field \"frame\""),
            (#"{"from": "tap", "vni": 42, "frame": "0g"}"#, 400, "not hex"),
            (#"{"from": "tap", "vni": 42, "frame": "012"}"#, 400, "odd number"),
            (#"{"from": "tap", "vni": 42, "frame": " "}"#, 400, "empty"),
            (#"{"from": "tap", "vni": 42, "remote": "198.18.0.2", "frame": "00"}"#, 400, "vni and frame only"),
            (#"{"from": "tap", "vni": "42", "frame": "00"}"#, 400, "does not match"),
            (#"{"from": "tap", "vni": 42, "frame": "00", "size": 9}"#, 400, "unknown field \"size\""),
            (#"{"from": "tunnel", "vni": 42, "frame": "00"}"#, 400, "needs remote"),
            (#"{"from": "tunnel", "vni": 42, "remote": "vtep-2", "frame": "00"}"#, 400, "not an IP address"),
            (#"{"from": "tunnel", "remote": "198.18.0.2", "frame": "00"}"#, 400, "needs vni"),
            (#"{"from": "tunnel", "remote": "198.18.0.2"}"#, 400, "exactly one of frame"),
            (#"{"from": "tunnel", "vni": 42, "remote": "198.18.0.2", "frame": "00", "payload": "00"}"#, 400, "exactly one"),
            (#"{"from": "tunnel", "vni": 42, "remote": "198.18.0.2", "payload": "00"}"#, 400, "carries its own VNI"),
        ]
        for (body, status, words) in cases {
            let service = FakeRouterService()
            let reply = try await post(body, service)
            #expect(reply.status == status, "\(body): \(reply)")
            #expect(reply.errorMessage?.contains(words) == true, "\(body): \(reply)")
            #expect(service.calls.isEmpty, "\(body) reached the service: \(service.calls)")
        }
    }

    /// A read, though a POST: no control group on the socket, no token over TCP.
    @Test func traceIsARead() async throws {
        let body = #"{"from": "tap", "vni": 42, "frame": "\#(frame)"}"#
        let outsider = PeerCredentials(pid: 4242, uid: 65534, gid: 65534, supplementaryGroups: [])
        let socket = try await exchange(
            request("POST", APIPath.trace, body: body, token: nil), service: FakeRouterService(), token: nil,
            controlGroup: ControlGroup(name: "vxadmin", gid: 990), caller: outsider)
        #expect(socket.status == 200, "\(socket)")
        let tcp = try await exchange(request("POST", APIPath.trace, body: body, token: nil), service: FakeRouterService())
        #expect(tcp.status == 200, "\(tcp)")
        #expect(RouteTable.control.requestKind(.POST, APIPath.trace) == .read)
        #expect(RouteTable.control.requestKind(.POST, "/v1/networks/42/fdb") == .change)
    }

    /// The router's answer from a real datapath trace: values, not only words.
    @Test func routerMapsADatapathTrace() throws {
        let network = Network(
            index: 0, vni: VNI(42)!, mtu: 1500, underlayMaxFrame: 9000, learning: true, maxEntries: 8, allowFrom: [])
        let remotes = RemoteTable(capacity: 8)
        let mac = MACAddress("02:00:00:00:00:02")!
        #expect(network.fdb.learn(mac, behind: remotes.intern(IPAddress("198.18.0.2")!)!, now: 10) == .added)
        network.neighbours.setIPs([IPAddress("198.19.0.2")!], of: mac)
        let tracer = PacketTracer(
            networks: [network], remotes: remotes, port: 4789, sourcePorts: SourcePortRange(49152...65535), taps: ["vx42"])
        let frame = TraceFrame(
            destination: mac, source: MACAddress("02:00:00:00:00:01")!,
            ipv4: .init(source: IPAddress("198.19.0.1")!, destination: IPAddress("198.19.0.2")!, proto: 17, sourcePort: 1, destinationPort: 2)
        ).bytes
        let result = tracer.traceFromTap(network: 0, frame: frame, now: 12)
        let answer = Router.traceResponse(result, from: "tap", taps: ["vx42"]) { _, mac in [IPAddress("198.19.0.2")!] }
        #expect(answer.action == .unicast)
        #expect(answer.tap == "vx42" && answer.vni == 42)
        #expect(answer.remotes == ["198.18.0.2"])
        #expect(answer.fdbEntry == FDBEntry(mac: mac.description, remote: "198.18.0.2", type: .learned, ageSeconds: 2, ips: ["198.19.0.2"]))
        #expect(answer.outerSourcePort == SourcePortRange(49152...65535).port(forFrame: frame, length: frame.count))
        let drop = Router.traceResponse(
            tracer.traceFromTunnel(payload: [0, 0, 0, 0, 0, 0, 42, 0] + frame, source: IPAddress("198.18.0.2")!, now: 12),
            from: "tunnel", taps: ["vx42"])
        #expect(drop.action == .drop && drop.dropReason == "bad_flags" && drop.steps.last?.stage == "verdict")
        // Through JSON as the CLI reads it.
        let decoded = try JSONDecoder().decode(TraceResponse.self, from: JSONEncoder().encode(answer))
        #expect(decoded == answer)
    }
}
