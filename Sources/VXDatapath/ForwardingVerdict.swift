import VXWire

// The forwarder's per-frame decisions as values, decided in one place and acted on elsewhere:
// the worker's `Forwarder` (which counts, answers, sends and learns) and `vxrouter trace`
// (`PacketTrace`, which only reports) both call these functions, so a trace can never tell a
// story the datapath does not follow. Deciding reads the tables and writes nothing — no
// counter, no learning, no age refresh — and allocates nothing.

/// What becomes of a frame read from a network's TAP (`NetworkPath.decide(deviceFrame:…)`).
public enum DeviceVerdict: BitwiseCopyable {
    /// Shorter than an Ethernet header: dropped, `truncated`.
    case truncated
    /// Longer than the network carries (`maxFrame`): dropped, `oversize`; with `pmtu_signal` its
    /// sender is told with ICMP "too big" first (`PacketTooBig`).
    case tooBig
    /// An ARP request / neighbour solicitation a MAC/IP entry answers: the reply goes back to the
    /// TAP and the question no further.
    case answered(NeighbourQuery, mac: MACAddress)
    /// Into the tunnel to the one VTEP the FDB names.
    case unicast(ForwardingTable.View.Hit, neighbour: NeighbourNote)
    /// Into the tunnel to each of the `members` flood list members copied into the scratch.
    case flood(members: Int, cause: FloodCause, neighbour: NeighbourNote)
    /// Flooded, but the flood list is empty: dropped, `no_destination`.
    case noDestination(cause: FloodCause, neighbour: NeighbourNote)

    /// The drop this verdict is counted under, if it is one.
    public var dropReason: DropReason? {
        switch self {
        case .truncated: .truncated
        case .tooBig: .oversize
        case .noDestination: .noDestination
        case .answered, .unicast, .flood: nil
        }
    }
}

/// Why a frame goes to the flood list.
public enum FloodCause: BitwiseCopyable, Equatable, Sendable {
    /// Broadcast or multicast destination (the group bit).
    case multicast
    /// A unicast destination the FDB does not know.
    case unknownUnicast
}

/// What ARP/ND suppression made of a frame it did not answer.
public enum NeighbourNote: BitwiseCopyable, Equatable, Sendable {
    /// Suppression is off, or the frame is no question it answers.
    case none
    /// ARP or a solicitation breaking its protocol's rules (counted `neigh_unanswerable`).
    case unanswerable
    /// A question about an address no MAC/IP entry holds (counted `neigh_flooded`).
    case unknownTarget(IPAddress)
}

/// Whether a network accepts a VTEP (`allow_from`), and by which rule.
public enum AllowVerdict: BitwiseCopyable, Equatable, Sendable {
    /// `allow_from` is empty: any VTEP.
    case anyone
    /// Inside this `allow_from` prefix.
    case prefix(IPPrefix)
    /// `allow_from: known`, and the network knows it (flood list, static entry, cluster member).
    case knownVTEP
    /// Outside every `allow_from` prefix.
    case outsidePrefixes
    /// `allow_from: known`, and the network does not know it.
    case unknownVTEP

    @inline(__always)
    public var isAllowed: Bool {
        switch self {
        case .anyone, .prefix, .knownVTEP: true
        case .outsidePrefixes, .unknownVTEP: false
        }
    }
}

/// What becomes of a VXLAN datagram from the underlay (`Forwarder.decide(tunnelPayload:…)`).
public enum TunnelVerdict {
    /// Declined, counted under `reason` for `network` (nil: not attributable to one).
    case drop(DropReason, network: Int?)
    /// Decapsulated for network `network`'s TAP (never back into the tunnel: split horizon).
    case deliver(TunnelDelivery)
}

/// A decapsulated frame on its way to the TAP.
public struct TunnelDelivery: BitwiseCopyable {
    public var network: Int
    /// The inner frame's length (the datagram without its VXLAN header).
    public var frameLength: Int
    /// A whole super-packet from a same-host peer: the GSO header it is written with (else none).
    public var superFrame: VirtioNetHeader
    public var learn: LearnVerdict
    /// An inner TCP/UDP checksum its sender left unfinished (`InnerChecksum`), else `.none`.
    public var partialChecksum: PartialChecksum
}

/// What learning makes of a decapsulated frame's source MAC.
public enum LearnVerdict: BitwiseCopyable, Equatable, Sendable {
    /// The network does not learn.
    case off
    /// A learned entry already places it behind the sender: its age is refreshed (FDB slot).
    case confirmed(slot: Int)
    /// A static entry places it behind the sender: nothing to do.
    case staticHere
    /// Unknown: a learn event asks the control thread to add it.
    case new
    /// Learned behind another VTEP: a learn event moves it.
    case moved(from: RemoteIndex)
}

extension NetworkPath {
    /// Decides a frame of `length` bytes read from this network's TAP; its first `contiguous`
    /// bytes are at `frame` (the rest, if any, is a segment's payload elsewhere). A flooded
    /// frame's destinations are copied into `scratch` (room for the flood list's capacity).
    @inline(__always)
    public func decide(
        deviceFrame frame: UnsafeRawPointer, length: Int, contiguous: Int, floodInto scratch: UnsafeMutablePointer<RemoteIndex>
    ) -> DeviceVerdict {
        guard length >= EthernetFrame.headerSize else { return .truncated }
        guard length <= maxFrame else { return .tooBig }
        var note = NeighbourNote.none
        if arpSuppression {  // ARP/ND suppression (NeighbourSuppression.swift)
            switch NeighbourQuery.classify(frame: frame, length: contiguous) {
            case .other: break
            case .unanswerable: note = .unanswerable
            case .query(let query):
                guard let mac = neighbours.lookup(query.target) else {
                    note = .unknownTarget(query.target)
                    break
                }
                return .answered(query, mac: mac)
            }
        }
        let destination = EthernetFrame.destination(frame)
        let cause: FloodCause
        if destination.isMulticast {
            cause = .multicast
        } else if let hit = fdb.lookup(destination) {
            return .unicast(hit, neighbour: note)
        } else {
            cause = .unknownUnicast
        }
        let members = flood.snapshot(into: scratch)
        return members == 0 ? .noDestination(cause: cause, neighbour: note) : .flood(members: members, cause: cause, neighbour: note)
    }

    /// Whether this network accepts VXLAN from `address`, and by which rule.
    @inline(__always)
    public func allowVerdict(_ address: IPAddress, remotes: RemoteTable.View) -> AllowVerdict {
        if knownOnly {
            guard let index = remotes.index(of: address), known.contains(index) else { return .unknownVTEP }
            return .knownVTEP
        }
        if allowFrom.isEmpty { return .anyone }
        for prefix in allowFrom where prefix.contains(address) { return .prefix(prefix) }
        return .outsidePrefixes
    }

    /// What learning makes of source MAC `mac` arriving from VTEP `source`.
    @inline(__always)
    public func learnVerdict(_ mac: MACAddress, from source: IPAddress, remotes: RemoteTable.View) -> LearnVerdict? {
        guard learning else { return .off }
        guard let hit = fdb.lookup(mac) else { return .new }
        if remotes[hit.remote] == source { return hit.isStatic ? .staticHere : .confirmed(slot: hit.slot) }
        // A static entry placing the MAC elsewhere wins: the frame is dropped (nil), as the kernel does.
        return hit.isStatic ? nil : .moved(from: hit.remote)
    }
}

extension Forwarder {
    /// Decides a VXLAN datagram (the UDP payload at `payload`, `length` bytes) from `source`.
    /// `fits`: the whole datagram was received (a larger one is reported one byte over);
    /// `superFrameSegment`: the GRO segment size the kernel reported for a slot holding one
    /// whole super-packet (0: none).
    @inline(__always)
    static func decide(
        tunnelPayload payload: UnsafeRawPointer, length: Int, fits: Bool, superFrameSegment: Int, source: IPAddress,
        vniTable: VNITable, networks: UnsafeMutableBufferPointer<NetworkPath>, remotes: RemoteTable.View
    ) -> TunnelVerdict {
        let vni: VNI
        // Only the first eight bytes are read, and a datagram that did not fit has more than that.
        switch VXLANHeader.decode(UnsafeRawBufferPointer(start: payload, count: length)) {
        case .success(let v): vni = v
        case .failure(.truncated): return .drop(.truncated, network: nil)
        case .failure(.flagIClear): return .drop(.badFlags, network: nil)
        }
        guard let network = vniTable.lookup(vni) else { return .drop(.unknownVNI, network: nil) }
        let path = networks[network]
        let frameLength = length - VXLANHeader.size
        guard path.allowVerdict(source, remotes: remotes).isAllowed else { return .drop(.notAllowed, network: network) }
        guard frameLength >= EthernetFrame.headerSize else { return .drop(.truncated, network: network) }
        let frame = payload + VXLANHeader.size
        // A whole super-packet from a same-host peer fits when each of its segments does (only an
        // offloading worker's buffers hold one).
        var superFrame = VirtioNetHeader()
        if fits, superFrameSegment > 0 || frameLength > path.maxFrame,
            let header = TunnelSuperFrame.virtioHeader(
                frame: frame, length: frameLength, segmentSize: superFrameSegment, maxFrame: path.maxFrame)
        {
            superFrame = header
        } else {
            guard frameLength <= path.maxFrame, fits else { return .drop(.oversize, network: network) }
        }
        let mac = EthernetFrame.source(frame)
        guard !mac.isMulticast, !mac.isZero else { return .drop(.badInnerSource, network: network) }
        guard let learn = path.learnVerdict(mac, from: source, remotes: remotes) else {
            return .drop(.staticConflict, network: network)
        }
        // A same-host sender's checksum offload may have left the inner checksum unfinished
        // (headers read only; a finished checksum is left for the host to judge, as before).
        return .deliver(
            TunnelDelivery(
                network: network, frameLength: frameLength, superFrame: superFrame, learn: learn,
                partialChecksum: InnerChecksum.partial(frame, length: frameLength)))
    }
}
