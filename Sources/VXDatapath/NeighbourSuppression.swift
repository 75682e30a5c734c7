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
extension Forwarder {
    /// The largest frame network `network` carries.
    @inline(__always)
    public func maxFrame(network: Int) -> Int { networks[network].maxFrame }

    /// Builds the ICMP error for an oversize frame into `replies`, when the frame deserves one and
    /// the rate limit allows; `.noRoom` when the replies are full (flush and call again).
    @inline(__always)
    public func signalTooBig(network: Int, path: NetworkPath, frame: UnsafeRawPointer, available: Int)
        -> NeighbourOutcome
    {
        guard let slot = replies.next() else { return .noRoom }
        guard
            let length = PacketTooBig.answer(
                frame: frame, available: available, maxFrame: path.maxFrame, mtuCeiling: path.mtu, to: slot),
            replies.takeErrorBudget()
        else { return .forward }
        replies.commit(length: length, network: network)
        counters.add(.pmtuSignalled, row: network)
        return .answered
    }

    /// For a frame the worker declines before encapsulation (a super-frame whose segments would
    /// not fit): the network's path, so the worker can call `signalTooBig`.
    @inline(__always)
    public func path(network: Int) -> NetworkPath { networks[network] }
}
