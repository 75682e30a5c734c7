// What vxload puts on the wire: an ordinary Ethernet / IPv4 / UDP frame, so the kernel, vxrouter
// and Open vSwitch forward it like any other, whose UDP payload starts with a probe:
//
//          0                   1                   2                   3
//          0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//       0 |       magic 0x7678 ("vx")     |            run id             |
//         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//       4 |            flow id            |                               |
//         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//       8 |                sequence number within the flow                |
//         +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//      12 |                               |                               |
//         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//      16 |          send time, ns since boot (CLOCK_MONOTONIC)           |
//         +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//      20 |                               |
//         +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// 22 bytes, all big-endian, right behind the 42 bytes of headers: the smallest frame is 64 bytes
// (without the FCS, as TAPs, packet sockets and tcpdump count). The rest of a larger frame is
// zeros. The run id keeps two runs (or a stray sender) apart; the sequence gives loss, reordering
// and duplicates per flow; the send time gives one-way latency when sender and sink share a clock
// (one host). Flow id 0xFFFF is the end marker: its sequence field holds the packets the whole
// run sent, its time field the number of flows, so a sink in another process knows what to expect.
import VXWire

struct Probe: Equatable, Sendable {
    static let magic: UInt16 = 0x7678
    static let size = 22
    /// Ethernet (14) + IPv4 (20) + UDP (8) + probe.
    static let headersSize = EthernetFrame.headerSize + 20 + UDPHeader.size
    static let minimumFrame = headersSize + size
    /// The flow id of end markers; real flows are 0 ..< 0xFFFF.
    static let endFlow: UInt16 = 0xFFFF
    static let maximumFlows = Int(endFlow)

    var runID: UInt16
    var flow: UInt16
    var sequence: UInt64
    var timestamp: UInt64

    var isEndMarker: Bool { flow == Probe.endFlow }

    /// Writes the probe's 22 bytes at `base`.
    @inline(__always)
    func write(to base: UnsafeMutableRawPointer) {
        base.storeBytes(of: Probe.magic.bigEndian, toByteOffset: 0, as: UInt16.self)
        base.storeBytes(of: runID.bigEndian, toByteOffset: 2, as: UInt16.self)
        base.storeBytes(of: flow.bigEndian, toByteOffset: 4, as: UInt16.self)
        base.storeBytes(of: sequence.bigEndian, toByteOffset: 6, as: UInt64.self)
        base.storeBytes(of: timestamp.bigEndian, toByteOffset: 14, as: UInt64.self)
    }

    /// Reads a probe at `base` (22 bytes available, checked by the caller); nil without the magic.
    @inline(__always)
    static func read(from base: UnsafeRawPointer) -> Probe? {
        guard UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 0, as: UInt16.self)) == magic else { return nil }
        return Probe(
            runID: UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 2, as: UInt16.self)),
            flow: UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 4, as: UInt16.self)),
            sequence: UInt64(bigEndian: base.loadUnaligned(fromByteOffset: 6, as: UInt64.self)),
            timestamp: UInt64(bigEndian: base.loadUnaligned(fromByteOffset: 14, as: UInt64.self)))
    }

    /// The probe inside a received frame, if the frame is IPv4/UDP carrying one. Untrusted bytes:
    /// every offset is checked against `length` before it is read.
    @inline(__always)
    static func find(inFrame base: UnsafeRawPointer, length: Int) -> Probe? {
        guard length >= minimumFrame, EthernetFrame.etherType(base) == EthernetFrame.etherTypeIPv4 else { return nil }
        let versionIHL = base.load(fromByteOffset: 14, as: UInt8.self)
        guard versionIHL >> 4 == 4 else { return nil }
        let ipHeader = Int(versionIHL & 0x0F) * 4
        guard ipHeader >= 20, base.load(fromByteOffset: 14 + 9, as: UInt8.self) == 17 else { return nil }
        // Only an unfragmented datagram (or a first fragment) starts with the UDP header.
        let fragment = UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 14 + 6, as: UInt16.self))
        guard fragment & 0x1FFF == 0 else { return nil }
        let payload = 14 + ipHeader + UDPHeader.size
        guard payload + size <= length else { return nil }
        return read(from: base + payload)
    }
}

/// Where one flow's frames go: addresses and ports fixed per flow, so every hop that hashes a
/// flow (the vxlan source port, RSS, SO_REUSEPORT, fanout) keeps it on one path.
struct FlowAddress: Equatable, Sendable {
    var id: UInt16
    var source: MACAddress
    var destination: MACAddress
    var sourceIP: UInt32
    var destinationIP: UInt32
    var sourcePort: UInt16
    var destinationPort: UInt16
    /// Only the vxlan: end uses it.
    var vni: VNI
}

/// Builds probe frames in place. The 42 header bytes of a flow are fixed but for the lengths and
/// the IPv4 checksum, which depend on the frame size.
enum ProbeFrame {
    /// Writes a `length`-byte frame for `flow` carrying `probe` at `base`. Bytes past the probe are
    /// not touched: a buffer zeroed once stays zero there.
    @inline(__always)
    static func write(
        to base: UnsafeMutableRawPointer, length: Int, flow: FlowAddress, probe: Probe, ipID: UInt16
    ) {
        flow.destination.store(to: base, at: 0)
        flow.source.store(to: base, at: 6)
        base.storeBytes(of: EthernetFrame.etherTypeIPv4.bigEndian, toByteOffset: 12, as: UInt16.self)
        let ip = base + 14
        let ipLength = UInt16(truncatingIfNeeded: length - 14)
        ip.storeBytes(of: UInt16(0x4500).bigEndian, toByteOffset: 0, as: UInt16.self)
        ip.storeBytes(of: ipLength.bigEndian, toByteOffset: 2, as: UInt16.self)
        ip.storeBytes(of: ipID.bigEndian, toByteOffset: 4, as: UInt16.self)
        ip.storeBytes(of: UInt16(0x4000).bigEndian, toByteOffset: 6, as: UInt16.self)  // DF
        ip.storeBytes(of: UInt16(0x4011).bigEndian, toByteOffset: 8, as: UInt16.self)  // TTL 64, UDP
        ip.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
        ip.storeBytes(of: flow.sourceIP.bigEndian, toByteOffset: 12, as: UInt32.self)
        ip.storeBytes(of: flow.destinationIP.bigEndian, toByteOffset: 16, as: UInt32.self)
        ip.storeBytes(of: ipv4Checksum(ip).bigEndian, toByteOffset: 10, as: UInt16.self)
        // UDP checksum zero: allowed over IPv4, and the payload changes every packet.
        UDPHeader.encode(
            sourcePort: flow.sourcePort, destinationPort: flow.destinationPort,
            payloadLength: length - Probe.headersSize, to: base + 34)
        probe.write(to: base + Probe.headersSize)
    }

    /// The RFC 1071 checksum of the 20-byte IPv4 header at `header` (its checksum field zero).
    @inline(__always)
    static func ipv4Checksum(_ header: UnsafeRawPointer) -> UInt16 {
        var sum: UInt32 = 0
        for i in 0..<10 {
            sum &+= UInt32(UInt16(bigEndian: header.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
        sum = (sum & 0xFFFF) &+ (sum >> 16)
        sum = (sum & 0xFFFF) &+ (sum >> 16)
        return ~UInt16(truncatingIfNeeded: sum)
    }
}
