import VXWire

/// `vxrouter trace` (Open vSwitch's `ofproto/trace`, VPP's packet trace): what the datapath
/// would do with one frame, and why, from the live tables — without sending, answering,
/// learning, refreshing an age or counting anything.
///
///  1. ask the same decision functions the workers run (ForwardingVerdict.swift) for the verdict;
///  2. explain it step by step, reading the tables the verdict was made from (the FDB entry and
///     its age, the flood list, the `allow_from` rule, the MAC/IP entry), and add what the worker
///     computes on the way out: the outer source port the flow hash picks, the ICMP "too big" a
///     PMTU signal would send, the inner checksum's state.
///
/// Runs on the control thread (the tables' only writer), so what it reads stands still; it
/// allocates freely — it is not on the per-packet path.
public struct PacketTracer {
    public let networks: [Network]
    public let remotes: RemoteTable
    /// The VXLAN port (destination of every encapsulated packet).
    public let port: UInt16
    public let sourcePorts: SourcePortRange
    /// Per network, its TAP's name (for the steps; may be empty).
    public let taps: [String]
    /// With a UDP send pool (offloads): the source port a packet whose header says `port` really
    /// leaves from; nil when the header's port is the one on the wire.
    public let wirePort: (@Sendable (UInt16) -> UInt16)?

    public init(
        networks: [Network], remotes: RemoteTable, port: UInt16, sourcePorts: SourcePortRange, taps: [String] = [],
        wirePort: (@Sendable (UInt16) -> UInt16)? = nil
    ) {
        self.networks = networks
        self.remotes = remotes
        self.port = port
        self.sourcePorts = sourcePorts
        self.taps = taps
        self.wirePort = wirePort
    }

    func tapName(_ network: Int) -> String {
        network < taps.count && !taps[network].isEmpty ? "TAP \(taps[network])" : "the network's TAP"
    }

    // MARK: From a TAP

    /// Traces `frame` as read from network `network`'s TAP; `now` is the monotonic second the
    /// FDB's ages count from.
    public func traceFromTap(network: Int, frame: [UInt8], now: UInt32) -> TraceResult {
        // `network` is a slot (Network.index), as the forwarder's; after a live reload the served
        // networks need not fill the slots in order.
        guard let path = networks.first(where: { $0.index == network })?.path else {
            preconditionFailure("trace: no network at slot \(network)")
        }
        var result = TraceResult(action: .drop, network: network, vni: path.vni)
        let length = frame.count
        result.step("input", "\(length)-byte frame from \(tapName(network)), vni \(path.vni)\(summary(frame))")
        let scratch = UnsafeMutablePointer<RemoteIndex>.allocate(capacity: max(path.flood.capacity, 1))
        defer { scratch.deallocate() }
        // A frame read from a TAP sits behind headroom for the outer headers; the verdict reads the frame only.
        let verdict = frame.withUnsafeBytes { bytes in
            path.decide(
                deviceFrame: bytes.baseAddress ?? UnsafeRawPointer(scratch), length: length, contiguous: length,
                floodInto: scratch)
        }
        if case .truncated = verdict {
            result.step("length", "\(length) bytes is shorter than an Ethernet header (14)")
            return result.dropped(.truncated)
        }
        if case .tooBig = verdict {
            result.step(
                "mtu", "\(length) bytes > max_frame \(path.maxFrame) (network MTU \(path.mtu), underlay without fragmenting)")
            result.icmpTooBig = false
            if !path.pmtuSignal {
                result.step("pmtu_signal", "off: the sender is not told")
            } else {
                let reply = [UInt8](unsafeUninitializedCapacity: PacketTooBig.maxFrameSize) { buffer, count in
                    count =
                        frame.withUnsafeBytes { bytes in
                            PacketTooBig.answer(
                                frame: bytes.baseAddress!, available: length, maxFrame: path.maxFrame,
                                mtuCeiling: path.mtu, to: UnsafeMutableRawPointer(buffer.baseAddress!))
                        } ?? 0
                }
                if reply.isEmpty {
                    result.step("pmtu_signal", "no ICMP error: the frame does not qualify (no DF, not unicast IP, or an ICMP error itself)")
                } else {
                    result.icmpTooBig = true
                    result.step(
                        "pmtu_signal",
                        "ICMP \"too big\" (\(reply.count) bytes) back to the sender through the TAP, at most \(LocalReplies.errorsPerSecond)/s per worker")
                }
            }
            return result.dropped(.oversize)
        }
        result.step("mtu", "\(length) bytes ≤ max_frame \(path.maxFrame): fits")
        switch verdict {
        case .truncated, .tooBig: break  // returned above
        case .answered(let query, let mac):
            result.step("arp_suppression", "\(queryText(query)): the MAC/IP table holds \(query.target) at \(mac)")
            result.answer = mac
            result.action = .answer
            result.step("verdict", "answered locally: \(answerText(query)) \(query.target) is at \(mac), written back to \(tapName(network)); nothing enters the tunnel")
            return result
        case .unicast(let hit, let note):
            noteSuppression(note, path: path, into: &result)
            let destination = frame.withUnsafeBytes { EthernetFrame.destination($0.baseAddress!) }
            let entry = fdbEntry(mac: destination, hit: hit, path: path, now: now)
            result.fdb = entry
            result.step("fdb", "hit: \(destination) → \(entry.remote) (\(entry.kindText))")
            result.remotes = [entry.remote]
            result.action = .unicast
        case .flood(_, let cause, let note), .noDestination(let cause, let note):
            noteSuppression(note, path: path, into: &result)
            let destination = frame.withUnsafeBytes { EthernetFrame.destination($0.baseAddress!) }
            switch cause {
            case .multicast:
                let kind = destination == MACAddress.broadcast ? "broadcast" : "multicast"
                result.step("fdb", "\(destination) is \(kind): flooded")
            case .unknownUnicast:
                result.step("fdb", "miss: \(destination) is not in the FDB of vni \(path.vni): flooded (unknown unicast)")
            }
            let count: Int
            if case .flood(let n, _, _) = verdict { count = n } else { count = 0 }
            result.flood = (0..<count).map { remotes.address(scratch[$0]) }
            if count == 0 {
                result.step("flood", "the flood list of vni \(path.vni) is empty: nowhere to send")
                return result.dropped(.noDestination)
            }
            result.step(
                "flood",
                "head-end replication to \(count) remote VTEP\(count == 1 ? "" : "s"): \(result.flood.map(\.description).joined(separator: ", "))")
            result.remotes = result.flood
            result.action = .flood
        }
        // The outer headers, as the worker writes them.
        let hashed = frame.withUnsafeBytes { sourcePorts.port(forFrame: $0.baseAddress!, length: length) }
        let wire = wirePort?(hashed) ?? hashed
        result.outerSourcePort = wire
        let range = "\(sourcePorts.lowerBound)-\(Int(sourcePorts.lowerBound) + Int(sourcePorts.span) - 1)"
        result.step(
            "flow_hash",
            "inner flow (\(flowText(frame))) → outer UDP source port \(hashed) of \(range)"
                + (wire == hashed ? "" : "; leaves from send-pool port \(wire)"))
        let outer = UDPHeader.size + VXLANHeader.size + length
        result.step(
            "encapsulate",
            "VXLAN vni \(path.vni), UDP \(wire) → \(port), \(outer)-byte UDP packet per copy")
        let copies = result.remotes.map { "\($0):\(port)" }.joined(separator: ", ")
        result.step(
            "verdict", result.action == .unicast ? "unicast to \(copies)" : "flooded: \(result.remotes.count) copies to \(copies)")
        return result
    }

    // MARK: From the tunnel

    /// Traces a VXLAN datagram (UDP payload: VXLAN header and inner frame) received from `source`.
    public func traceFromTunnel(payload: [UInt8], source: IPAddress, now: UInt32) -> TraceResult {
        var result = TraceResult(action: .drop)
        result.step("input", "\(payload.count)-byte VXLAN datagram from \(source)")
        // Laid out by slot, as the forwarder's (Network.index; slots may have gaps after a reload).
        let vniTable = VNITable(networks.map { ($0.vni, $0.index) })
        defer { vniTable.deallocate() }
        let paths = UnsafeMutableBufferPointer<NetworkPath>.allocate(capacity: (networks.map(\.index).max() ?? 0) + 1)
        for network in networks { (paths.baseAddress! + network.index).initialize(to: network.path) }
        defer {
            for network in networks { (paths.baseAddress! + network.index).deinitialize(count: 1) }
            paths.deallocate()
        }
        let view = remotes.view
        // The datapath reads at most what it received; a datagram beyond its buffers never fits.
        let fits = payload.count <= VXLANHeader.size + 65535 + EthernetFrame.headerSize + 4 * FrameLayout.maxTags
        let verdict = payload.withUnsafeBytes { bytes in
            Forwarder.decide(
                tunnelPayload: bytes.baseAddress ?? UnsafeRawPointer(paths.baseAddress!), length: payload.count,
                fits: fits, superFrameSegment: 0, source: source, vniTable: vniTable, networks: paths, remotes: view)
        }
        // The steps the verdict passed, then the one that decided.
        let reason: DropReason?
        let network: Int?
        switch verdict {
        case .drop(let r, let n): (reason, network) = (r, n)
        case .deliver(let delivery): (reason, network) = (nil, delivery.network)
        }
        if reason == .truncated, network == nil {
            result.step("vxlan", "shorter than a VXLAN header (8 bytes)")
            return result.dropped(.truncated)
        }
        if reason == .badFlags {
            result.step("vxlan", "the I flag is clear (RFC 7348 §5: dropped)")
            return result.dropped(.badFlags)
        }
        let vni = payload.withUnsafeBytes { (try? VXLANHeader.decode($0).get()).map(\.description) ?? "?" }
        guard let network else {
            result.step("vni", "vni \(vni) is not served here (serving \(networks.map(\.vni.description).joined(separator: ", ")))")
            return result.dropped(.unknownVNI)
        }
        let path = paths[network]
        result.network = network
        result.vni = path.vni
        result.step("vni", "vni \(path.vni) → \(tapName(network))")
        let allow = path.allowVerdict(source, remotes: view)
        result.step("allow_from", allowText(allow, source: source))
        if reason == .notAllowed { return result.dropped(.notAllowed) }
        let frameLength = payload.count - VXLANHeader.size
        if reason == .truncated {
            result.step("length", "inner frame of \(frameLength) bytes is shorter than an Ethernet header (14)")
            return result.dropped(.truncated)
        }
        if reason == .oversize {
            result.step("mtu", "inner frame of \(frameLength) bytes > max_frame \(path.maxFrame) (network MTU \(path.mtu))")
            return result.dropped(.oversize)
        }
        let inner = Array(payload[VXLANHeader.size...])
        let mac = inner.withUnsafeBytes { EthernetFrame.source($0.baseAddress!) }
        if case .deliver(let delivery) = verdict, delivery.superFrame.gsoType != VirtioNetHeader.gsoNone {
            result.step("mtu", "inner super-packet of \(frameLength) bytes from a same-host peer: segments of \(delivery.superFrame.gsoSize) fit max_frame \(path.maxFrame)")
        } else {
            result.step("mtu", "inner frame of \(frameLength) bytes ≤ max_frame \(path.maxFrame): fits")
        }
        result.step("inner", "\(summary(inner).dropFirst(2))")
        if reason == .badInnerSource {
            result.step("source_mac", "\(mac) is not a station address (multicast, broadcast or zero)")
            return result.dropped(.badInnerSource)
        }
        if reason == .staticConflict {
            if let hit = path.fdb.lookup(mac) { result.fdb = fdbEntry(mac: mac, hit: hit, path: path, now: now) }
            result.step(
                "learning",
                "\(mac) has a static entry behind \(result.fdb.map(\.remote.description) ?? "another VTEP"), not \(source): dropped, as the kernel does")
            return result.dropped(.staticConflict)
        }
        guard case .deliver(let delivery) = verdict else { return result.dropped(reason ?? .truncated) }
        if let hit = path.fdb.lookup(mac) { result.fdb = fdbEntry(mac: mac, hit: hit, path: path, now: now) }
        switch delivery.learn {
        case .off: result.step("learning", "off on vni \(path.vni)")
        case .confirmed:
            result.step("learning", "\(mac) is learned behind \(source) (age \(result.fdb?.ageSeconds ?? 0)s): its age is refreshed")
        case .staticHere: result.step("learning", "\(mac) has a static entry behind \(source): nothing to learn")
        case .new: result.step("learning", "\(mac) is new: it would be learned behind \(source)")
        case .moved(let from):
            result.step("learning", "\(mac) is learned behind \(remotes.address(from)): it would move to \(source)")
        }
        result.learn = delivery.learn
        let state = inner.withUnsafeBytes { InnerChecksum.classify($0.baseAddress!, length: inner.count) }
        result.checksum = state
        switch state {
        case .notApplicable: result.step("checksum", "no TCP/UDP checksum to judge")
        case .finishedValid: result.step("checksum", "inner TCP/UDP checksum complete and valid")
        case .finishedInvalid:
            result.step("checksum", "inner TCP/UDP checksum complete but wrong: delivered as is, for the host to judge")
        case .unfinished:
            result.step(
                "checksum",
                "unfinished (the sender's checksum offload left the pseudo-header sum): handed to an offloading TAP as NEEDS_CSUM, else completed before the write (counted checksum_unfinished)")
        }
        result.action = .deliver
        result.step(
            "verdict",
            "decapsulated to \(tapName(network)) (\(delivery.frameLength) bytes); never sent back into the tunnel (split horizon)")
        return result
    }

    // MARK: Explaining

    func fdbEntry(mac: MACAddress, hit: ForwardingTable.View.Hit, path: NetworkPath, now: UInt32) -> TraceResult.FDBHit {
        let age = hit.isStatic ? nil : now &- path.fdb.lastSeen[hit.slot].load(ordering: .relaxed)
        return TraceResult.FDBHit(mac: mac, remote: remotes.address(hit.remote), isStatic: hit.isStatic, ageSeconds: age)
    }

    func noteSuppression(_ note: NeighbourNote, path: NetworkPath, into result: inout TraceResult) {
        guard path.arpSuppression else { return }
        switch note {
        case .none: break
        case .unanswerable: result.step("arp_suppression", "a malformed ARP/ND question: forwarded as is (neigh_unanswerable)")
        case .unknownTarget(let target):
            result.step("arp_suppression", "no MAC/IP entry for \(target): the question is forwarded (neigh_flooded)")
        }
    }

    func queryText(_ query: NeighbourQuery) -> String {
        switch query.kind {
        case .arp: "ARP request who-has \(query.target) tell \(query.requesterIP)"
        case .neighbourSolicitation: "neighbour solicitation for \(query.target) from \(query.requesterIP)"
        }
    }

    func answerText(_ query: NeighbourQuery) -> String {
        query.kind == .arp ? "ARP reply" : "neighbour advertisement"
    }

    func allowText(_ verdict: AllowVerdict, source: IPAddress) -> String {
        switch verdict {
        case .anyone: "allow_from is empty: any VTEP may send"
        case .prefix(let prefix): "\(source) is inside \(prefix): accepted"
        case .knownVTEP: "allow_from known: \(source) is a known VTEP (flood list, static entry or cluster): accepted"
        case .outsidePrefixes: "\(source) is outside every allow_from prefix: refused"
        case .unknownVTEP: "allow_from known: \(source) is not a VTEP this network knows: refused"
        }
    }

    /// ", dst …, src …, <L3 summary>" for a frame (empty when too short).
    func summary(_ frame: [UInt8]) -> String {
        guard frame.count >= EthernetFrame.headerSize else { return "" }
        return frame.withUnsafeBytes { bytes in
            let base = bytes.baseAddress!
            return ", dst \(EthernetFrame.destination(base)), src \(EthernetFrame.source(base)), \(flowText(frame))"
        }
    }

    /// The inner flow as the hash sees it: IP addresses, protocol and ports, else the EtherType.
    func flowText(_ frame: [UInt8]) -> String {
        frame.withUnsafeBytes { bytes -> String in
            let base = bytes.baseAddress!
            let length = frame.count
            let (l3, etherType) = FrameLayout.link(base, length: length) ?? (length, EthernetFrame.etherType(base))
            let tags = (l3 - EthernetFrame.headerSize) / 4
            let vlan =
                tags > 0
                ? "vlan \(UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 14, as: UInt16.self)) & 0x0FFF), " : ""
            if etherType == EthernetFrame.etherTypeIPv4, l3 + 20 <= length {
                let source = IPAddress(v4: UInt32(bigEndian: base.loadUnaligned(fromByteOffset: l3 + 12, as: UInt32.self)))
                let destination = IPAddress(v4: UInt32(bigEndian: base.loadUnaligned(fromByteOffset: l3 + 16, as: UInt32.self)))
                let proto = base.load(fromByteOffset: l3 + 9, as: UInt8.self)
                let headerLength = Int(base.load(fromByteOffset: l3, as: UInt8.self) & 0x0F) * 4
                return vlan + "IPv4 \(source) → \(destination) " + l4Text(proto, base, at: l3 + headerLength, length: length)
            }
            if etherType == EthernetFrame.etherTypeIPv6, l3 + 40 <= length {
                let source = IPAddress(v6LoadingFrom: base, at: l3 + 8)
                let destination = IPAddress(v6LoadingFrom: base, at: l3 + 24)
                let next = base.load(fromByteOffset: l3 + 6, as: UInt8.self)
                return vlan + "IPv6 \(source) → \(destination) " + l4Text(next, base, at: l3 + 40, length: length)
            }
            if etherType == EthernetFrame.etherTypeARP { return vlan + "ARP" }
            return vlan + "ethertype 0x" + String(etherType, radix: 16)
        }
    }

    func l4Text(_ proto: UInt8, _ base: UnsafeRawPointer, at offset: Int, length: Int) -> String {
        let name: String =
            switch proto {
            case 6: "TCP"
            case 17: "UDP"
            case 132: "SCTP"
            case 1: "ICMP"
            case 58: "ICMPv6"
            default: "proto \(proto)"
            }
        guard proto == 6 || proto == 17 || proto == 132, offset + 4 <= length else { return name }
        let sport = UInt16(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
        let dport = UInt16(bigEndian: base.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self))
        return "\(name) \(sport) → \(dport)"
    }
}

/// A trace's answer: the steps (like `ofproto/trace`'s), and the outcome as values.
public struct TraceResult: Sendable {
    public enum Action: String, Sendable {
        case unicast, flood, answer, deliver, drop
    }

    public struct Step: Sendable, Equatable {
        public var stage: String
        public var result: String
    }

    /// The FDB entry a lookup found.
    public struct FDBHit: Sendable, Equatable {
        public var mac: MACAddress
        public var remote: IPAddress
        public var isStatic: Bool
        /// Seconds since traffic last confirmed a learned entry (nil: static).
        public var ageSeconds: UInt32?

        var kindText: String { isStatic ? "static" : "learned, age \(ageSeconds ?? 0)s" }
    }

    public var action: Action
    public var dropReason: DropReason?
    /// The network's index and VNI, once known.
    public var network: Int?
    public var vni: VNI?
    public var steps: [Step] = []
    /// The VTEPs the encapsulated copies go to.
    public var remotes: [IPAddress] = []
    /// The flood list as read (flooded frames).
    public var flood: [IPAddress] = []
    public var outerSourcePort: UInt16?
    public var fdb: FDBHit?
    /// ARP/ND suppression's answer.
    public var answer: MACAddress?
    /// Oversize: whether an ICMP "too big" would be sent (nil: not oversize).
    public var icmpTooBig: Bool?
    public var learn: LearnVerdict?
    public var checksum: InnerChecksum.State?

    init(action: Action, network: Int? = nil, vni: VNI? = nil) {
        self.action = action
        self.network = network
        self.vni = vni
    }

    mutating func step(_ stage: String, _ result: String) { steps.append(Step(stage: stage, result: result)) }

    func dropped(_ reason: DropReason) -> TraceResult {
        var copy = self
        copy.action = .drop
        copy.dropReason = reason
        copy.step("verdict", "dropped: \(reason.name)")
        return copy
    }
}
