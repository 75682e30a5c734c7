import VXWire

/// ARP/ND suppression on the encapsulation path (README "MAC/IP entries and ARP/ND suppression"),
/// what the kernel's vxlan does with `proxy` and Docker's overlay relies on: a question about a
/// neighbour that a MAC/IP entry answers never crosses the tunnel.
///
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

    @inline(__always)
    func answerNeighbourQuery(network: Int, path: NetworkPath, frame: UnsafeMutableRawPointer, length: Int)
        -> NeighbourOutcome
    {
        switch NeighbourQuery.classify(frame: frame, length: length) {
        case .other:
            return .forward
        case .unanswerable:
            counters.add(.neighUnanswerable, row: network)
            return .forward
        case .query(let query):
            guard let mac = path.neighbours.lookup(query.target) else {
                counters.add(.neighFlooded, row: network)
                return .forward
            }
            guard let slot = replies.next() else { return .noRoom }
            let answerLength = query.answer(mac: mac, request: frame, to: slot)
            replies.commit(length: answerLength, network: network)
            counters.add(.tapRxPackets, row: network)
            counters.add(.tapRxBytes, row: network, length)
            counters.add(.neighAnswered, row: network)
            return .answered
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
