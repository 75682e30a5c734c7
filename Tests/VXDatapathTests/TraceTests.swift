// `vxrouter trace` against the datapath: for every decision kind, the trace's answer — and then
// what the worker really does with the same frame through the fakes — must agree, and tracing
// itself must change nothing (no counter, no learn event, no age refresh, nothing sent).
import Testing
import VXTestSupport
import VXWire

@testable import VXDatapath

extension Harness {
    var tracer: PacketTracer {
        PacketTracer(
            networks: networks, remotes: remotes, port: Self.port, sourcePorts: SourcePortRange(Self.sourcePorts),
            taps: networks.map { "vx\($0.vni)" })
    }

    /// Every counter of every row, to prove a trace touched none.
    var allCounters: [UInt64] {
        let s = snapshot
        return (0..<s.rows).flatMap { row in
            TrafficCounter.allCases.map { s[row, $0] } + DropReason.allCases.map { s[row, drop: $0] }
        }
    }

    /// What the link sent, as (destination, outer source port).
    var sentTo: [(IPAddress, UInt16)] { link.sent.map { ($0.destination.address, Encapsulated($0.bytes).sourcePort) } }
}

private let a = Bytes.mac(0x0a)
private let b = Bytes.mac(0x0b)

private func ipv4(_ size: Int = 200, sport: UInt16 = 40000, vlan: UInt16? = nil, src: MACAddress = a, dst: MACAddress = b)
    -> [UInt8]
{
    TraceFrame(
        destination: dst, source: src, vlan: vlan,
        ipv4: TraceFrame.IPv4Flow(
            source: IPAddress("198.19.0.1")!, destination: IPAddress("198.19.0.2")!, proto: 6, sourcePort: sport,
            destinationPort: 5201),
        size: size
    ).bytes
}

@Suite struct TraceFromTapTests {
    @Test func learnedEntryIsUnicastWithItsAgeAndTheSourcePortTheWorkerWrites() throws {
        let h = Harness()
        #expect(h.networks[0].fdb.learn(b, behind: h.remote("198.18.0.2"), now: 5) == .added)
        for sport in [40000, 40001, 40002] as [UInt16] {
            let frame = ipv4(sport: sport)
            let before = h.allCounters
            let trace = h.tracer.traceFromTap(network: 0, frame: frame, now: 8)
            #expect(h.allCounters == before)
            #expect(trace.action == .unicast)
            #expect(trace.remotes == [IPAddress("198.18.0.2")!])
            #expect(trace.fdb == TraceResult.FDBHit(mac: b, remote: IPAddress("198.18.0.2")!, isStatic: false, ageSeconds: 3))
            #expect(trace.steps.contains { $0.stage == "fdb" && $0.result.contains("learned, age 3s") })
            h.transmit([frame])
            let sent = try #require(h.sentTo.last)
            #expect(sent.0 == IPAddress("198.18.0.2")!)
            #expect(trace.outerSourcePort == sent.1)
        }
        #expect(Set(h.sentTo.map(\.1)).count > 1, "three flows, one port: the hash is not looked at")
    }

    @Test func staticEntryHasNoAge() {
        let h = Harness()
        h.setStatic(0, b, behind: "198.18.0.3")
        let trace = h.tracer.traceFromTap(network: 0, frame: ipv4(), now: 100)
        #expect(trace.action == .unicast)
        #expect(trace.fdb?.isStatic == true)
        #expect(trace.fdb?.ageSeconds == nil)
        h.transmit([ipv4()])
        #expect(h.sentTo.map(\.0) == [IPAddress("198.18.0.3")!])
    }

    @Test func broadcastAndUnknownUnicastFloodTheWholeList() {
        let h = Harness()
        h.setFlood(0, ["198.18.0.2", "198.18.0.3", "198.18.0.4"])
        for (frame, cause) in [(ipv4(dst: .broadcast), "broadcast"), (ipv4(), "miss")] {
            let trace = h.tracer.traceFromTap(network: 0, frame: frame, now: 1)
            #expect(trace.action == .flood)
            #expect(trace.remotes.map(\.description) == ["198.18.0.2", "198.18.0.3", "198.18.0.4"])
            #expect(trace.steps.contains { $0.stage == "fdb" && $0.result.contains(cause) })
            let sentBefore = h.link.sent.count
            h.transmit([frame])
            let copies = h.sentTo[sentBefore...]
            #expect(copies.map(\.0.description) == ["198.18.0.2", "198.18.0.3", "198.18.0.4"])
            #expect(copies.allSatisfy { $0.1 == trace.outerSourcePort })
        }
    }

    @Test func anEmptyFloodListIsNoDestination() {
        let h = Harness()
        let trace = h.tracer.traceFromTap(network: 0, frame: ipv4(), now: 1)
        #expect(trace.action == .drop)
        #expect(trace.dropReason == .noDestination)
        h.transmit([ipv4()])
        #expect(h.drops == ["0:no_destination=1"])
    }

    @Test func aRuntIsTruncated() {
        let h = Harness()
        let runt = [UInt8](repeating: 1, count: 10)
        #expect(h.tracer.traceFromTap(network: 0, frame: runt, now: 1).dropReason == .truncated)
        h.transmit([runt])
        #expect(h.drops == ["0:truncated=1"])
    }

    @Test(arguments: [true, false]) func tooBigIsOversizeAndSaysWhetherTheSenderIsTold(signal: Bool) {
        let h = Harness([Harness.NetworkSpec(vni: 42, mtu: 1400, pmtuSignal: signal)])
        h.setFlood(0, ["198.18.0.2"])
        let frame = ipv4(1500)
        let trace = h.tracer.traceFromTap(network: 0, frame: frame, now: 1)
        #expect(trace.action == .drop)
        #expect(trace.dropReason == .oversize)
        #expect(trace.icmpTooBig == signal)
        h.transmit([frame])
        #expect(h.drops == ["0:oversize=1"])
        #expect(h.snapshot[0, .pmtuSignalled] == (signal ? 1 : 0))
        #expect(h.taps[0].written.count == (signal ? 1 : 0))
        // A frame that fits says so.
        #expect(h.tracer.traceFromTap(network: 0, frame: ipv4(1418), now: 1).action == .flood)
    }

    @Test func aKnownARPTargetIsAnsweredLocally() {
        let h = Harness()
        h.setFlood(0, ["198.18.0.2"])
        h.networks[0].neighbours.setIPs([IPAddress("198.19.0.2")!], of: b)
        let request = TraceFrame(
            destination: .broadcast, source: a, arp: (IPAddress("198.19.0.1")!, IPAddress("198.19.0.2")!)
        ).bytes
        let trace = h.tracer.traceFromTap(network: 0, frame: request, now: 1)
        #expect(trace.action == .answer)
        #expect(trace.answer == b)
        #expect(trace.remotes.isEmpty)
        h.transmit([request])
        #expect(h.link.sent.isEmpty)
        #expect(h.taps[0].written.count == 1)
        #expect(h.snapshot[0, .neighAnswered] == 1)
    }

    @Test func anUnknownARPTargetIsFloodedAndSaysSo() {
        let h = Harness()
        h.setFlood(0, ["198.18.0.2"])
        let request = TraceFrame(
            destination: .broadcast, source: a, arp: (IPAddress("198.19.0.1")!, IPAddress("198.19.0.9")!)
        ).bytes
        let trace = h.tracer.traceFromTap(network: 0, frame: request, now: 1)
        #expect(trace.action == .flood)
        #expect(trace.steps.contains { $0.stage == "arp_suppression" && $0.result.contains("198.19.0.9") })
        h.transmit([request])
        #expect(h.snapshot[0, .neighFlooded] == 1)
        #expect(h.link.sent.count == 1)
    }

    @Test func aTaggedFrameHashesAsTheWorkerHashesIt() throws {
        let h = Harness()
        h.setStatic(0, b, behind: "198.18.0.2")
        let frame = ipv4(vlan: 7)
        let trace = h.tracer.traceFromTap(network: 0, frame: frame, now: 1)
        #expect(trace.steps.contains { $0.result.contains("vlan 7") })
        h.transmit([frame])
        #expect(trace.outerSourcePort == h.sentTo.first?.1)
    }
}

@Suite struct TraceFromTunnelTests {
    static let peer = "198.18.0.2"

    /// Traces the datagram, checks the trace changed nothing, then has the worker receive it.
    func traceThenReceive(_ h: Harness, _ payload: [UInt8], from source: String = peer, now: UInt32 = 10) -> TraceResult {
        _ = h.learnEvents()
        let before = h.allCounters
        let ages = h.networks.map { $0.fdb.entries().map(\.lastSeen) }
        let trace = h.tracer.traceFromTunnel(payload: payload, source: IPAddress(source)!, now: now)
        #expect(h.allCounters == before)
        #expect(h.networks.map { $0.fdb.entries().map(\.lastSeen) } == ages)
        #expect(h.learnEvents().isEmpty)
        h.receive(payload, from: source, now: now)
        return trace
    }

    @Test func aNewMACIsDeliveredAndWouldBeLearned() {
        let h = Harness()
        let trace = traceThenReceive(h, Bytes.datagram(vni: 42, ipv4(src: b, dst: a)))
        #expect(trace.action == .deliver)
        #expect(trace.learn == .new)
        #expect(trace.vni == VNI(42))
        #expect(trace.steps.last?.result.contains("split horizon") == true)
        #expect(h.taps[0].written.count == 1)
        #expect(h.learnEvents() == [LearnEvent(network: 0, mac: b, remote: IPAddress(Self.peer)!)])
    }

    @Test func aKnownMACIsConfirmedAndItsAgeRefreshedOnlyByTheWorker() {
        let h = Harness()
        #expect(h.networks[0].fdb.learn(b, behind: h.remote(Self.peer), now: 4) == .added)
        let trace = traceThenReceive(h, Bytes.datagram(vni: 42, ipv4(src: b, dst: a)), now: 10)
        #expect(trace.learn == .confirmed(slot: h.networks[0].fdb.view.lookup(b)!.slot))
        #expect(trace.fdb?.ageSeconds == 6)
        #expect(h.networks[0].fdb.entries().first?.lastSeen == 10)
    }

    @Test func aMACBehindAnotherVTEPMoves() {
        let h = Harness()
        let old = h.remote("198.18.0.7")
        #expect(h.networks[0].fdb.learn(b, behind: old, now: 4) == .added)
        let trace = traceThenReceive(h, Bytes.datagram(vni: 42, ipv4(src: b, dst: a)))
        #expect(trace.learn == .moved(from: old))
        #expect(h.learnEvents().count == 1)
    }

    @Test func staticEntriesAreKeptOrWin() {
        let h = Harness()
        h.setStatic(0, b, behind: Self.peer)
        h.setStatic(0, a, behind: "198.18.0.7")
        #expect(traceThenReceive(h, Bytes.datagram(vni: 42, ipv4(src: b, dst: a))).learn == .staticHere)
        let conflict = traceThenReceive(h, Bytes.datagram(vni: 42, ipv4(src: a, dst: b)))
        #expect(conflict.dropReason == .staticConflict)
        #expect(conflict.fdb?.remote == IPAddress("198.18.0.7")!)
        #expect(h.drops == ["0:static_conflict=1"])
    }

    @Test func learningOff() {
        let h = Harness([Harness.NetworkSpec(vni: 42, learning: false)])
        #expect(traceThenReceive(h, Bytes.datagram(vni: 42, ipv4(src: b, dst: a))).learn == .off)
        #expect(h.learnEvents().isEmpty)
    }

    @Test func headerAndNetworkDrops() {
        let h = Harness()
        let cases: [([UInt8], DropReason, String)] = [
            ([0x08, 0, 0], .truncated, "-:truncated=1"),
            (Bytes.datagram(vni: 42, ipv4(), flags: 0), .badFlags, "-:bad_flags=1"),
            (Bytes.datagram(vni: 77, ipv4()), .unknownVNI, "-:unknown_vni=1"),
            (Bytes.datagram(vni: 42, [1, 2, 3]), .truncated, "0:truncated=1"),
            (Bytes.datagram(vni: 42, ipv4(src: .broadcast)), .badInnerSource, "0:bad_inner_source=1"),
            (Bytes.datagram(vni: 42, ipv4(9100)), .oversize, "0:oversize=1"),
        ]
        for (payload, reason, counted) in cases {
            let trace = traceThenReceive(h, payload)
            #expect(trace.dropReason == reason, "\(counted)")
            #expect(h.drops.contains(counted), "\(h.drops) lacks \(counted)")
        }
        #expect(h.taps[0].written.isEmpty)
    }

    @Test func allowFromSaysWhichRule() {
        let h = Harness([Harness.NetworkSpec(vni: 42, allowFrom: ["198.18.0.0/24"])])
        let inside = traceThenReceive(h, Bytes.datagram(vni: 42, ipv4(src: b, dst: a)))
        #expect(inside.action == .deliver)
        #expect(inside.steps.contains { $0.stage == "allow_from" && $0.result.contains("198.18.0.0/24") })
        let outside = traceThenReceive(h, Bytes.datagram(vni: 42, ipv4(src: b, dst: a)), from: "198.18.1.2")
        #expect(outside.dropReason == .notAllowed)
        #expect(h.drops == ["0:not_allowed=1"])
    }

    @Test func allowFromKnown() {
        let h = Harness([Harness.NetworkSpec(vni: 42, knownOnly: true)])
        let known = h.remote(Self.peer)
        h.networks[0].known.set([known])
        #expect(traceThenReceive(h, Bytes.datagram(vni: 42, ipv4(src: b, dst: a))).action == .deliver)
        let stranger = traceThenReceive(h, Bytes.datagram(vni: 42, ipv4(src: b, dst: a)), from: "198.18.0.9")
        #expect(stranger.dropReason == .notAllowed)
        #expect(stranger.steps.contains { $0.stage == "allow_from" && $0.result.contains("not a VTEP this network knows") })
    }

    @Test func anUnfinishedInnerChecksumIsClassified() {
        let h = Harness()
        var frame = ipv4(300)
        // The UDP/TCP checksum field as a same-host sender's offload leaves it: the pseudo-header sum.
        let l4 = 14 + 20
        let pseudo = frame.withUnsafeBytes {
            InternetChecksum.pseudoHeaderSum(addresses: $0.baseAddress! + 14 + 12, addressSize: 4, protocol: 6, length: frame.count - l4)
        }
        let field = InternetChecksum.fold(pseudo)
        frame[l4 + 16] = UInt8(field >> 8)
        frame[l4 + 17] = UInt8(field & 0xFF)
        let unfinished = traceThenReceive(h, Bytes.datagram(vni: 42, frame))
        #expect(unfinished.checksum == .unfinished)
        #expect(h.snapshot[0, .checksumUnfinished] == 1)
        #expect(traceThenReceive(h, Bytes.datagram(vni: 42, ipv4(300))).checksum == .finishedValid)
        #expect(h.snapshot[0, .checksumUnfinished] == 1)
    }
}
