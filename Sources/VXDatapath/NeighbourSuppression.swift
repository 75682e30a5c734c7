import VXWire

/// ARP/ND suppression on the encapsulation path (README "MAC/IP entries and ARP/ND suppression"),
/// what the kernel's vxlan does with `proxy` and Docker's overlay relies on: a question about a
/// neighbour that a MAC/IP entry answers never crosses the tunnel.
///
/// Decided in `NetworkPath.decide(deviceFrame:…)` (ForwardingVerdict.swift), acted on here:
///  1. classify the frame read from the TAP (VXWire `NeighbourQuery`): an ARP request or a valid
///     neighbour solicitation, something malformed (counted `neigh_unanswerable`, forwarded), or
///     anything else (forwarded, not counted);
///  2. look the target address up in the network's `NeighbourTable`: unknown → counted
///     `neigh_flooded` and forwarded as before;
///  3. known → an ARP reply / solicited neighbour advertisement built in a `LocalReplies` slot,
///     counted `neigh_answered`; the request goes no further.
///
/// Nothing here writes the table: answers from the tunnel, gratuitous ARP and unsolicited
/// advertisements never change it (only config, the API and the cluster do).
extension Forwarder {
    public enum NeighbourOutcome { case forward, answered, noRoom }

    /// Answers `query` (decided by `NetworkPath.decide(deviceFrame:…)`: the table holds `mac` for
    /// its target) into `replies`; false when the replies are full (flush and call again).
    @inline(__always)
    func answerNeighbourQuery(_ query: NeighbourQuery, mac: MACAddress, network: Int, frame: UnsafeRawPointer, length: Int)
        -> Bool
    {
        guard let slot = replies.next() else { return false }
        let answerLength = query.answer(mac: mac, request: frame, to: slot)
        replies.commit(length: answerLength, network: network)
        counters.add(.tapRxPackets, row: network)
        counters.add(.tapRxBytes, row: network, length)
        counters.add(.neighAnswered, row: network)
        return true
    }

    /// Counts what suppression made of a question it did not answer (the frame goes on).
    @inline(__always)
    func countNeighbourNote(_ note: NeighbourNote, network: Int) {
        switch note {
        case .none: break
        case .unanswerable: counters.add(.neighUnanswerable, row: network)
        case .unknownTarget: counters.add(.neighFlooded, row: network)
        }
    }

    /// Counts a local reply written to (or refused by) its TAP.
    @inline(__always)
    public func accountReply(network: Int, length: Int, written: Bool) {
        if written {
            counters.add(.tapTxPackets, row: network)
            counters.add(.tapTxBytes, row: network, length)
        } else {
            counters.drop(.tapWriteError, row: network)
        }
    }
}

/// PMTU signalling (README "PMTU signalling"): a frame from the TAP too big for the underlay is
/// still dropped (`oversize`), and its sender told — ICMP "fragmentation needed" / "packet too
/// big" with the inner MTU that fits, through the same local-reply path — so its TCP lowers the
/// segment size instead of black-holing, as the kernel's vxlan does since Linux 5.9.
///
/// "Too big" is checked twice: against the network's limit (the configured underlay MTU, the
/// TAP's MTU) before the FDB lookup, and against the destination VTEP's learned path MTU
/// (`RemoteTable`, `PathMTU`: a router between the VTEPs with a smaller MTU) after it — for a
/// unicast frame as a whole, for a flooded one per copy (the copies that fit still go).
extension Forwarder {
    public enum PathCheck { case fits, declined, noRoom }

    /// A unicast frame to `remote`, checked against the remote's learned path MTU: `.fits`, or
    /// `.declined` (signalled when `pmtu_signal` is on, dropped as oversize for the network and
    /// the remote), or `.noRoom` when the replies are full (flush and call again).
    @inline(__always)
    func checkPath(
        network: Int, path: NetworkPath, remote: RemoteIndex, slot: Int, frame: UnsafeMutableRawPointer, length: Int,
        tail: FramePiece, available: Int
    ) -> PathCheck {
        let limit = remotes.frameLimit(remote)
        guard length > limit else { return .fits }
        if path.pmtuSignal,
            signalTooBig(network: network, path: path, frame: frame, available: available, pathLimit: limit) == .noRoom
        {
            return .noRoom
        }
        dropDeviceFrame(.oversize, network: network, slot: slot, frame: frame, length: length, tail: tail)
        countRemoteDrop(.oversize, remote)
        return .declined
    }

    /// One copy of a flooded frame too big for its remote's learned path: not sent, counted
    /// oversize, and the sender signalled once per frame (no retry when the replies are full: the
    /// copies that fit are already listed).
    @inline(__always)
    func declineFloodCopy(
        network: Int, path: NetworkPath, remote: RemoteIndex, slot: Int, frame: UnsafeMutableRawPointer, length: Int,
        tail: FramePiece, available: Int, signalled: inout Bool
    ) {
        if path.pmtuSignal, !signalled {
            signalled = true
            _ = signalTooBig(
                network: network, path: path, frame: frame, available: available, pathLimit: remotes.frameLimit(remote))
        }
        counters.drop(.oversize, row: network)
        countRemoteDrop(.oversize, remote)
        captureDrop(
            .oversize, .fromTap, .frame, network, Endpoint(address: remotes[remote], port: port), slot, frame, length,
            tail: tail)
    }

    /// The largest frame network `network` carries toward the VTEP its FDB places `frame`'s
    /// destination behind: the network's limit, lowered by that remote's learned path MTU. For the
    /// worker's check of a super-frame's segments before it cuts them.
    @inline(__always)
    public func frameLimit(network: Int, frame: UnsafeRawPointer) -> (limit: Int, learned: Bool) {
        let path = networks[network]
        let destination = EthernetFrame.destination(frame)
        guard !destination.isMulticast, let hit = path.fdb.lookup(destination) else { return (path.maxFrame, false) }
        let learned = remotes.frameLimit(hit.remote)
        return learned < path.maxFrame ? (learned, true) : (path.maxFrame, false)
    }

    /// The largest frame network `network` carries.
    @inline(__always)
    public func maxFrame(network: Int) -> Int { networks[network].maxFrame }

    /// Builds the ICMP error for an oversize frame into `replies`, when the frame deserves one and
    /// the rate limit allows; `.noRoom` when the replies are full (flush and call again). The MTU
    /// reported fits the network's limit and `pathLimit` (a remote's learned path, in frame bytes).
    @inline(__always)
    public func signalTooBig(
        network: Int, path: NetworkPath, frame: UnsafeRawPointer, available: Int, pathLimit: Int = .max
    ) -> NeighbourOutcome {
        guard let slot = replies.next() else { return .noRoom }
        let byPath = pathLimit < path.maxFrame
        guard
            let length = PacketTooBig.answer(
                frame: frame, available: available, maxFrame: byPath ? pathLimit : path.maxFrame, mtuCeiling: path.mtu,
                to: slot),
            replies.takeErrorBudget()
        else { return .forward }
        replies.commit(length: length, network: network)
        counters.add(.pmtuSignalled, row: network)
        if byPath { counters.add(.pmtuPathSignalled, row: network) }
        return .answered
    }

    /// For a frame the worker declines before encapsulation (a super-frame whose segments would
    /// not fit): the network's path, so the worker can call `signalTooBig`.
    @inline(__always)
    public func path(network: Int) -> NetworkPath { networks[network] }
}
