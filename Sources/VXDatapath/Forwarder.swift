import VXWire

/// A MAC seen where the tables do not (yet, or lately) say it is. Workers queue these to the
/// control thread, the tables' only writer, which coalesces them:
///  - `.tunnel`: behind the VTEP `address` (data-plane learning into the FDB);
///  - `.tap`: behind the network's TAP, claiming IP `address` by ARP/ND, or no IP (unspecified):
///    a station of this host, which cluster mode publishes (`StationSighting`).
public struct LearnEvent: BitwiseCopyable, Equatable, Sendable {
    public enum Side: UInt8, BitwiseCopyable, Sendable { case tunnel, tap }

    public var network: Int
    public var mac: MACAddress
    public var address: IPAddress
    public var side: Side

    /// `mac` learned behind the VTEP `remote`.
    public init(network: Int, mac: MACAddress, remote: IPAddress) {
        self.network = network
        self.mac = mac
        self.address = remote
        self.side = .tunnel
    }

    /// A station behind the TAP, claiming `ip` (nil: none).
    public static func station(network: Int, _ sighting: StationSighting) -> LearnEvent {
        var event = LearnEvent(network: network, mac: sighting.mac, remote: sighting.ip ?? IPAddress(v4: 0))
        event.side = .tap
        return event
    }
}

/// The forwarding decisions of one worker, kernel-free and allocation-free. The worker hands it a
/// batch read from a TAP or the underlay; it writes headers in place and lists where each packet
/// goes. Each frame's fate is decided by the pure functions in ForwardingVerdict.swift — the same
/// ones `vxrouter trace` asks — and acted on (counted, sent, answered, learned) here.
///
/// Encapsulation (TAP → underlay):
///  1. check the frame's length against the network's limits;
///  2. look the destination MAC up in the FDB: a hit goes to that VTEP; broadcast, multicast and
///     a miss go to every VTEP on the flood list;
///  3. write VXLAN and UDP headers into the headroom in front of the frame (source port from
///     the inner flow hash), and list one packet per destination VTEP.
///  Before 2, with ARP/ND suppression on, an ARP request or neighbour solicitation for an address
///  the network's MAC/IP entries know is answered into `replies` (for the worker to write back to
///  the TAP) and goes no further (NeighbourSuppression.swift).
///
/// Decapsulation (underlay → TAP):
///  1. validate: length, I flag, a VNI we serve, a sender the network allows;
///  2. check the inner source MAC and learn it against the sender's address (not its port): a
///     known MAC refreshes its age, a new or moved one becomes a learn event; a MAC that a static
///     entry places elsewhere is dropped, as the kernel does;
///  3. note an inner TCP/UDP checksum the sender left unfinished (`InnerChecksum`), for the
///     worker to hand on as partial or complete;
///  4. list the inner frame for that network's TAP. Nothing received from a VTEP is ever sent
///     back into the tunnel (split horizon): decapsulated frames only go to a TAP.
public struct Forwarder {
    /// By slot (`Network.index`); slots no network holds are left uninitialized and never read
    /// (the VNI table and the worker's devices only lead to served slots). Rewritten by `adopt`.
    let networks: UnsafeMutableBufferPointer<NetworkPath>
    /// Behind a pointer so that `adopt` needs no `mutating` (the worker keeps its forwarder a
    /// `let`: no exclusivity check per call). Rewritten by `adopt`.
    let vniTableStorage: UnsafeMutablePointer<VNITable>
    var vniTable: VNITable {
        @inline(__always) get { vniTableStorage.pointee }
    }
    let remotes: RemoteTable.View
    let counters: WorkerCounters.View
    /// Per remote VTEP; nil when the caller keeps none (tests).
    let remoteCounters: RemoteCounters.View?
    let unattributed: Int
    // The ring outlives the worker (the router holds it); no reference counting per push.
    unowned(unsafe) let learnRing: SPSCRing<LearnEvent>
    let port: UInt16
    let sourcePorts: SourcePortRange
    /// Whether this worker has left something for the control thread since `probesSeen` (its
    /// last look, updated here): learn events queued, or a path-MTU probe asked for. The worker
    /// loop asks after each round, so a control thread asleep can be woken (`ControlNap`).
    @inline(__always)
    public func leftForControl(probesSeen: inout UInt64) -> Bool {
        let probes = remotes.probeRequests.pointee.load(ordering: .relaxed)
        defer { probesSeen = probes }
        return learnRing.count > 0 || probes != probesSeen
    }

    /// Scratch space for one flood list snapshot.
    let floodScratch: UnsafeMutablePointer<RemoteIndex>
    let floodCapacity: Int
    /// Capture hook: copies for a running capture (nil when the caller keeps none, e.g. tests).
    public let capture: WorkerCapture?
    /// Strangers `allow_from` refused, per source (nil when the caller keeps none, e.g. tests).
    unowned(unsafe) let refusedSources: RefusedSources?
    /// Learn events queued in the current second, direct-mapped by MAC, so a busy new flow queues
    /// one event per second rather than one per packet while the control thread catches up.
    let recentLearns: UnsafeMutablePointer<(event: LearnEvent, second: UInt32)>
    static let recentLearnSlots = 256
    /// Frames answered locally (ARP/ND suppression), for the worker to write back to the TAP.
    public let replies: LocalReplies

    public init(
        networks: [Network], remotes: RemoteTable, counters: WorkerCounters, learnRing: SPSCRing<LearnEvent>,
        port: UInt16, sourcePorts: SourcePortRange, remoteCounters: RemoteCounters? = nil, capture: WorkerCapture? = nil,
        slots: Int = 0,
        refusedSources: RefusedSources? = nil
    ) {
        self.capture = capture
        self.refusedSources = refusedSources
        self.networks = .allocate(capacity: max(slots, (networks.map(\.index).max() ?? 0) + 1))
        for network in networks { (self.networks.baseAddress! + network.index).initialize(to: network.path) }
        vniTableStorage = .allocate(capacity: 1)
        vniTableStorage.initialize(to: VNITable(networks.map { ($0.vni, $0.index) }))
        self.remotes = remotes.view
        self.counters = counters.view
        self.remoteCounters = remoteCounters?.view
        unattributed = counters.unattributedRow
        self.learnRing = learnRing
        self.port = port
        self.sourcePorts = sourcePorts
        floodCapacity = networks.map(\.flood.capacity).max() ?? 1
        floodScratch = .allocate(capacity: floodCapacity)
        recentLearns = .allocate(capacity: Self.recentLearnSlots)
        replies = LocalReplies(capacity: 16)
        recentLearns.initialize(
            repeating: (LearnEvent(network: -1, mac: .zero, remote: IPAddress(v4: 0)), UInt32.max),
            count: Self.recentLearnSlots)
    }

    /// Live reload (NetworkGeneration.swift): serves `networks` from now on, each at its slot.
    /// Called by the owning worker between batches; allocates (the VNI table), never per packet.
    func adopt(_ networks: [Network]) {
        precondition(networks.allSatisfy { $0.index < self.networks.count }, "a network's slot is beyond the forwarder's")
        for network in networks { (self.networks.baseAddress! + network.index).initialize(to: network.path) }
        vniTableStorage.pointee.deallocate()
        vniTableStorage.pointee = VNITable(networks.map { ($0.vni, $0.index) })
    }

    /// Frees what `init` allocated; called once by the owning worker.
    func deallocate() {
        networks.deallocate()
        vniTableStorage.pointee.deallocate()
        vniTableStorage.deallocate()
        floodScratch.deallocate()
        recentLearns.deallocate()
        replies.deallocate()
    }

    /// How often (seconds) a station behind a TAP that keeps sending is reported again: it keeps
    /// the control thread's sighting fresh so the station does not age out while it talks.
    static let stationRefresh: UInt32 = 5

    /// Queues `event` unless this worker queued the same one less than `interval` seconds ago
    /// (1: within the current second).
    @inline(__always)
    func queueLearn(_ event: LearnEvent, now: UInt32, interval: UInt32 = 1) {
        // By MAC and address: a station's bare sightings and its ARP/ND claims take slots of their own.
        let key = event.mac.rawValue ^ event.address.low ^ (event.address.high << 17 | event.address.high >> 47)
        let slot = recentLearns + Int(truncatingIfNeeded: FlowHash.mix(key)) & (Self.recentLearnSlots - 1)
        if slot.pointee.event == event, now &- slot.pointee.second < interval { return }
        if learnRing.push(event) {
            slot.pointee = (event, now)
        } else {
            counters.add(.learnQueueFull, row: event.network)
        }
    }

    /// The most packets one frame can turn into; `encapsulate` needs this much room in `out`.
    public var maxFanOut: Int { floodCapacity }

    /// Encapsulates frames `start ..< end` (default: to the end) of `batch`, read from network
    /// `network`'s TAP, into `out`. Stops early when `out` could not take the next frame's copies;
    /// returns the index of the first frame not handled (== end when all were). A negative length
    /// marks a slot to skip (already counted).
    public func encapsulate(
        network: Int, batch: borrowing PacketBatch, from start: Int, upTo end: Int? = nil, now: UInt32 = 0,
        into out: inout PacketList
    ) -> Int {
        let path = networks[network]
        let end = end ?? batch.count
        var i = start
        while i < end {
            let frame = batch.data(i)
            let length = batch.lengths[i]
            if length < 0 {
                i += 1
                continue
            }
            let tail = batch.tails[i]
            // What happens is decided in one place (ForwardingVerdict.swift, which `trace` calls
            // too); what follows acts on it.
            let verdict = path.decide(
                deviceFrame: frame, length: length, contiguous: length - tail.length, floodInto: floodScratch)
            if case .truncated = verdict {
            } else if let sighting = StationSighting.of(frame: frame, length: length - tail.length) {
                // The station behind the TAP, for cluster mode's type-2 records: whatever becomes
                // of the frame, it was sent from there.
                queueLearn(.station(network: network, sighting), now: now, interval: Self.stationRefresh)
            }
            var unicast: RemoteIndex? = nil
            let fanOut: Int
            let note: NeighbourNote
            switch verdict {
            case .truncated:
                dropDeviceFrame(.truncated, network: network, slot: i, frame: frame, length: length)
                i += 1
                continue
            case .tooBig:
                if path.pmtuSignal,  // PMTU signalling hook
                    signalTooBig(
                        network: network, path: path, frame: frame, available: min(length - tail.length, batch.dataCapacity))
                        == .noRoom
                {
                    return i
                }
                dropDeviceFrame(.oversize, network: network, slot: i, frame: frame, length: length, tail: tail)
                i += 1
                continue
            case .answered(let query, let mac):  // ARP/ND suppression hook
                if !answerNeighbourQuery(query, mac: mac, network: network, frame: frame, length: length - tail.length) {
                    return i
                }
                i += 1
                continue
            case .unicast(let hit, let neighbour):
                unicast = hit.remote
                fanOut = 1
                note = neighbour
            case .flood(let members, _, let neighbour):
                fanOut = members
                note = neighbour
            case .noDestination(_, let neighbour):
                fanOut = 0
                note = neighbour
            }
            if let remote = unicast {  // path MTU hook (NeighbourSuppression.swift)
                switch checkPath(
                    network: network, path: path, remote: remote, slot: i, frame: frame, length: length, tail: tail,
                    available: min(length - tail.length, batch.dataCapacity))
                {
                case .fits: break
                case .declined:
                    i += 1
                    continue
                case .noRoom: return i
                }
            }
            if fanOut > out.remaining { return i }

            countNeighbourNote(note, network: network)
            counters.add(.tapRxPackets, row: network)
            counters.add(.tapRxBytes, row: network, length)
            if fanOut == 0 {
                counters.drop(.noDestination, row: network)
                captureDrop(.noDestination, .fromTap, .frame, network, nil, i, frame, length, tail: tail)
                i += 1
                continue
            }
            let header = frame - (UDPHeader.size + VXLANHeader.size)
            UDPHeader.encode(
                sourcePort: sourcePorts.port(forFrame: frame, length: length - tail.length),
                destinationPort: port, payloadLength: VXLANHeader.size + length, to: header)
            VXLANHeader.encode(vni: path.vni, to: header + UDPHeader.size)
            let packetLength = UDPHeader.size + VXLANHeader.size + length
            if let remote = unicast {
                out.append(
                    PacketRef(
                        bytes: header, length: packetLength, network: network,
                        destination: Endpoint(address: remotes[remote], port: port), remote: remote, tail: tail))
            } else {
                counters.add(.floodedFrames, row: network)
                var signalled = false
                for k in 0..<fanOut {
                    if length > remotes.frameLimit(floodScratch[k]) {  // path MTU hook
                        declineFloodCopy(
                            network: network, path: path, remote: floodScratch[k], slot: i, frame: frame, length: length,
                            tail: tail, available: min(length - tail.length, batch.dataCapacity), signalled: &signalled)
                        continue
                    }
                    out.append(
                        PacketRef(
                            bytes: header, length: packetLength, network: network,
                            destination: Endpoint(address: remotes[floodScratch[k]], port: port),
                            remote: floodScratch[k], tail: tail))
                }
            }
            i += 1
        }
        return i
    }

    /// Counts what the underlay did with `out` after a send.
    public func accountSent(_ out: borrowing PacketList) {
        for k in 0..<out.count {
            let packet = out[k]
            switch out.statuses[k] {
            case .sent:
                counters.add(.tunnelTxPackets, row: packet.network)
                counters.add(.tunnelTxBytes, row: packet.network, packet.length)
                if let remoteCounters, let remote = packet.remote {
                    remoteCounters.add(.txPackets, remote: remote)
                    remoteCounters.add(.txBytes, remote: remote, packet.length)
                }
            case .tooBig:
                counters.drop(.oversize, row: packet.network)
                countRemoteDrop(.oversize, packet.remote)
                // The kernel may have learned a smaller path MTU toward it: have it read.
                if let remote = packet.remote { remotes.requestProbe(remote) }
            case .failed:
                counters.drop(.sendError, row: packet.network)
                countRemoteDrop(.sendError, packet.remote)
            }
        }
    }

    /// Capture hook: a copy of a declined packet, when a capture runs.
    @inline(__always)
    func captureDrop(
        _ reason: DropReason, _ direction: CaptureDirection, _ form: CaptureForm, _ network: Int, _ remote: Endpoint?,
        _ slot: Int, _ bytes: UnsafeRawPointer, _ length: Int, tail: FramePiece = .empty
    ) {
        if let capture, capture.isActive {
            capture.dropped(
                reason, direction, form, network: network, remote: remote, slot: slot, bytes: bytes, length: length,
                tail: tail)
        }
    }

    /// A datagram from the tunnel declined: counted for its network (nil: not attributable to
    /// one) and its sender, and copied for a running capture.
    @inline(__always)
    func dropFromTunnel(
        _ reason: DropReason, network: Int?, _ sender: RemoteIndex?, _ endpoint: Endpoint, _ number: Int,
        _ payload: UnsafeRawPointer, _ stored: Int
    ) {
        counters.drop(reason, row: network ?? unattributed)
        countRemoteDrop(reason, sender)
        captureDrop(reason, .fromTunnel, .vxlan, network ?? -1, endpoint, number, payload, stored)
    }

    @inline(__always)
    func countRemoteDrop(_ reason: DropReason, _ remote: RemoteIndex?) {
        if let remoteCounters, let remote { remoteCounters.drop(reason, remote: remote) }
    }

    /// Validates and decapsulates the packets of `batch` (UDP payloads, sources filled in) from
    /// `start` on, learns source MACs, and lists the inner frames for their TAPs in `out`. A slot
    /// the kernel coalesced (UDP GRO, `segmentSizes[i] > 0`) is taken apart into its datagrams
    /// here, in place. Stops before a slot whose datagrams might not all fit `out`; returns the
    /// index of the first slot not handled (== batch.count when all were).
    @discardableResult
    public func decapsulate(
        batch: borrowing PacketBatch, from start: Int = 0, now: UInt32, into out: inout PacketList
    ) -> Int {
        var i = start
        while i < batch.count {
            let datagrams = batch.datagrams(inSlot: i)
            if out.remaining < datagrams.count { return i }
            let payload = batch.data(i)
            let source = batch.sources[i]
            for datagram in datagrams {
                decapsulateOne(
                    payload + datagram.offset, length: datagram.length, fits: datagram.fits, source: source,
                    number: datagram.number, stored: datagram.stored, superFrameSegment: datagram.superFrameSegment,
                    now: now, into: &out)
            }
            i += 1
        }
        return i
    }

    @inline(__always)
    func decapsulateOne(
        _ payload: UnsafeMutableRawPointer, length: Int, fits: Bool, source endpoint: Endpoint, number: Int, stored: Int,
        superFrameSegment: Int = 0, now: UInt32, into out: inout PacketList
    ) {
        let source = endpoint.address
        let sender = remoteCounters == nil ? nil : remotes.index(of: source)
        // Decided in one place (ForwardingVerdict.swift, which `trace` calls too); acted on here.
        let delivery: TunnelDelivery
        switch Self.decide(
            tunnelPayload: payload, length: length, fits: fits, superFrameSegment: superFrameSegment, source: source,
            vniTable: vniTable, networks: networks, remotes: remotes)
        {
        case .drop(let reason, let network):
            // A known VTEP is counted in its own row; a stranger has none: count it by address.
            if reason == .notAllowed, let refusedSources, remotes.index(of: source) == nil { refusedSources.count(source) }
            dropFromTunnel(reason, network: network, sender, endpoint, number, payload, stored)
            return
        case .deliver(let decided): delivery = decided
        }
        let network = delivery.network
        let frame = payload + VXLANHeader.size
        let frameLength = delivery.frameLength
        switch delivery.learn {
        case .off, .staticHere: break
        case .confirmed(let slot): networks[network].fdb.touch(slot: slot, now: now)
        case .new, .moved:
            queueLearn(LearnEvent(network: network, mac: EthernetFrame.source(frame), remote: source), now: now)
        }
        counters.add(.tunnelRxPackets, row: network)
        counters.add(.tunnelRxBytes, row: network, length)
        if let remoteCounters, let sender {
            remoteCounters.add(.rxPackets, remote: sender)
            remoteCounters.add(.rxBytes, remote: sender, length)
        }
        let partial = delivery.partialChecksum
        if partial.isPresent { counters.add(.checksumUnfinished, row: network) }
        out.append(
            PacketRef(
                bytes: frame, length: frameLength, network: network, destination: endpoint, remote: sender,
                partialChecksum: partial, superFrame: delivery.superFrame))
    }

    /// Counts a frame read from network `network`'s TAP that never became a packet (too short or
    /// too long to send, a super-frame the segmenter refused, a checksum it could not complete).
    @inline(__always)
    public func dropDeviceFrame(
        _ reason: DropReason, network: Int, slot: Int, frame: UnsafeRawPointer, length: Int, tail: FramePiece = .empty
    ) {
        counters.add(.tapRxPackets, row: network)
        counters.add(.tapRxBytes, row: network, max(length, 0))
        counters.drop(reason, row: network)
        captureDrop(reason, .fromTap, .frame, network, nil, slot, frame, length, tail: tail)
    }

    /// Counts a frame written to (or refused by) a TAP.
    @inline(__always)
    public func accountDelivered(_ packet: PacketRef, written: Bool) {
        if written {
            counters.add(.tapTxPackets, row: packet.network)
            counters.add(.tapTxBytes, row: packet.network, packet.length)
        } else {
            counters.drop(.tapWriteError, row: packet.network)
            countRemoteDrop(.tapWriteError, packet.remote)
        }
    }
}
