// VXLAN decode through the Forwarder (VXDatapath/Forwarder.swift `decapsulate`), the way a worker
// runs it on what the underlay socket received. Input: byte 0 picks the sending VTEP, byte 1 a UDP
// GRO segment size (0: one datagram), the rest is the UDP payload. Every datagram in it must be
// either forwarded (tunnel_rx_packets +1, one frame listed for a served network, inside the
// datagram, within the network's frame limits) or counted under exactly one drop reason.
import VXDatapath
import VXFuzzSupport
import VXWire

/// Two networks as a router would build them: VNI 42 learning with a static entry (for
/// static_conflict), VNI 43 with a small MTU and allow_from (for oversize and not_allowed).
final class Datapath {
    let networks = [
        Network(
            index: 0, vni: VNI(unchecked: 42), mtu: 1500, underlayMaxFrame: 9000, learning: true, maxEntries: 64,
            allowFrom: [], floodCapacity: 4),
        Network(
            index: 1, vni: VNI(unchecked: 43), mtu: 200, underlayMaxFrame: 9000, learning: false, maxEntries: 64,
            allowFrom: [IPPrefix("192.0.2.0/24")!], floodCapacity: 4),
    ]
    let remotes = RemoteTable(capacity: 64)
    let counters: WorkerCounters
    let ring = SPSCRing<LearnEvent>(capacity: 16)
    /// Held here: the forwarder keeps only views of the tables and counters, as a worker does.
    let remoteCounters = RemoteCounters(capacity: 64)
    let forwarder: Forwarder
    /// One slot, smaller than the largest input, so "did not fit" reads (dataCapacity + 1) happen too.
    var batch = PacketBatch(capacity: 1, dataCapacity: 2048)
    var out = PacketList(capacity: 256)
    static let senders = ["192.0.2.10", "192.0.2.99", "198.51.100.7", "2001:db8::10"].map { IPAddress($0)! }

    init() {
        counters = WorkerCounters(networks: networks.count)
        let staticMAC = MACAddress(0x02, 0, 0, 0, 0, 0x21)
        _ = networks[0].fdb.setStatic(staticMAC, remote: remotes.intern(Self.senders[1])!)
        forwarder = Forwarder(
            networks: networks, remotes: remotes, counters: counters, learnRing: ring, port: 4789,
            sourcePorts: SourcePortRange(49152...65535), remoteCounters: remoteCounters)
    }
}

nonisolated(unsafe) let datapath = Datapath()

func decapsulateOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = fuzzInput(start, count)
    guard input.count >= 2 else { return 0 }
    let d = datapath
    let payload = UnsafeBufferPointer(rebasing: input[2...])
    let slot = d.batch.data(0)
    let stored = min(payload.count, d.batch.dataCapacity)
    if stored > 0 { slot.copyMemory(from: payload.baseAddress!, byteCount: stored) }
    // As the underlay reports it: more than fits reads as one byte over.
    let length = payload.count > d.batch.dataCapacity ? d.batch.dataCapacity + 1 : payload.count
    d.batch.lengths[0] = length
    d.batch.sources[0] = Endpoint(address: Datapath.senders[Int(input[0]) % Datapath.senders.count], port: 54321)
    d.batch.segmentSizes[0] = Int(input[1])
    d.batch.count = 1
    // The datagrams the slot holds, by the one walk the forwarder and capture share: a GRO slot is
    // split every segment size, unless it is one datagram carrying a whole inner super-packet.
    let datagrams = d.batch.datagrams(inSlot: 0).count

    let before = d.counters.snapshot()
    d.out.removeAll()
    let handled = d.forwarder.decapsulate(batch: d.batch, now: UInt32(input[0]), into: &d.out)
    let after = d.counters.snapshot()
    while d.ring.pop() != nil {}

    // A GRO slot whose datagrams might not all fit `out` waits for the next call, untouched.
    guard datagrams <= d.out.capacity else {
        fuzzCheck(handled == 0 && d.out.count == 0 && after == before, "a slot that cannot fit was (partly) handled")
        return 0
    }
    fuzzCheck(handled == 1, "the slot was not handled (returned \(handled))")
    var forwarded: UInt64 = 0
    var dropped: UInt64 = 0
    for row in 0..<after.rows {
        forwarded += after[row, .tunnelRxPackets] - before[row, .tunnelRxPackets]
        dropped += after.dropTotal(row: row) - before.dropTotal(row: row)
        for counter in [TrafficCounter.tapTxPackets, .tapRxPackets, .tunnelTxPackets] {
            fuzzCheck(after[row, counter] == before[row, counter], "\(counter.name) moved on a decapsulation")
        }
    }
    fuzzCheck(
        forwarded + dropped == UInt64(datagrams),
        "\(datagrams) datagrams but \(forwarded) forwarded + \(dropped) dropped")
    fuzzCheck(d.out.count == Int(forwarded), "\(d.out.count) frames listed, \(forwarded) counted as tunnel_rx")
    let end = slot + stored
    for k in 0..<d.out.count {
        let packet = d.out[k]
        fuzzCheck(packet.network >= 0 && packet.network < d.networks.count, "frame for network \(packet.network)")
        let network = d.networks[packet.network]
        fuzzCheck(
            packet.length >= EthernetFrame.headerSize && packet.length <= network.maxFrame,
            "frame of \(packet.length) bytes for a network carrying 14...\(network.maxFrame)")
        fuzzCheck(
            packet.bytes >= slot + VXLANHeader.size && packet.bytes + packet.length <= end,
            "frame outside the received datagram")
        let source = EthernetFrame.source(packet.bytes)
        fuzzCheck(!source.isMulticast && !source.isZero, "frame with source \(source) forwarded")
        fuzzCheck(
            network.allowFrom.isEmpty || network.allowFrom.contains { $0.contains(packet.destination.address) },
            "frame from \(packet.destination.address) forwarded outside allow_from")
    }
    return 0
}

fuzzMain(decapsulateOne)
