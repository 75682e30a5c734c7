/// A frame built from a few fields, for `vxrouter trace --dst-mac … --src-mac … [--vlan] [--ipv4 …]
/// [--arp …] [--size N]`: what a station would put on the wire, with valid IPv4, TCP and UDP
/// checksums (DF set, as TCP stacks send), padded with zeros to `size`.
public struct TraceFrame: Sendable, Equatable {
    public struct IPv4Flow: Sendable, Equatable {
        public var source: IPAddress
        public var destination: IPAddress
        /// 6 TCP, 17 UDP, 1 ICMP, any other number as is.
        public var proto: UInt8
        public var sourcePort: UInt16
        public var destinationPort: UInt16

        public init(source: IPAddress, destination: IPAddress, proto: UInt8, sourcePort: UInt16 = 0, destinationPort: UInt16 = 0) {
            self.source = source
            self.destination = destination
            self.proto = proto
            self.sourcePort = sourcePort
            self.destinationPort = destinationPort
        }

        /// `SRC,DST[,PROTO[,SPORT,DPORT]]`, PROTO tcp, udp, icmp or a number (default udp).
        public init?(_ text: String) {
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 || parts.count == 3 || parts.count == 5,
                let source = IPAddress(parts[0]), source.isV4, let destination = IPAddress(parts[1]), destination.isV4
            else { return nil }
            var proto: UInt8 = 17
            if parts.count >= 3 {
                switch parts[2].lowercased() {
                case "tcp": proto = 6
                case "udp": proto = 17
                case "icmp": proto = 1
                case "sctp": proto = 132
                default:
                    guard let number = UInt8(parts[2]) else { return nil }
                    proto = number
                }
            }
            var ports: (UInt16, UInt16) = (0, 0)
            if parts.count == 5 {
                guard let s = UInt16(parts[3]), let d = UInt16(parts[4]) else { return nil }
                ports = (s, d)
            }
            self.init(source: source, destination: destination, proto: proto, sourcePort: ports.0, destinationPort: ports.1)
        }
    }

    public var destination: MACAddress
    public var source: MACAddress
    /// An 802.1Q tag's VLAN id (0-4094), if any.
    public var vlan: UInt16?
    public var ipv4: IPv4Flow?
    /// An ARP request: who has `target`, tell `sender`.
    public var arp: (sender: IPAddress, target: IPAddress)?
    /// The whole frame's length (without FCS); smaller than the headers means just the headers.
    public var size: Int?

    public init(
        destination: MACAddress, source: MACAddress, vlan: UInt16? = nil, ipv4: IPv4Flow? = nil,
        arp: (sender: IPAddress, target: IPAddress)? = nil, size: Int? = nil
    ) {
        self.destination = destination
        self.source = source
        self.vlan = vlan
        self.ipv4 = ipv4
        self.arp = arp
        self.size = size
    }

    public static func == (a: TraceFrame, b: TraceFrame) -> Bool {
        a.destination == b.destination && a.source == b.source && a.vlan == b.vlan && a.ipv4 == b.ipv4
            && a.arp?.sender == b.arp?.sender && a.arp?.target == b.arp?.target && a.size == b.size
    }

    /// The frame's bytes.
    public var bytes: [UInt8] {
        var header: [UInt8] = []
        header += Self.bigEndian(destination.rawValue, 6)
        header += Self.bigEndian(source.rawValue, 6)
        if let vlan { header += [0x81, 0x00] + Self.bigEndian(UInt64(vlan & 0x0FFF), 2) }
        var payload: [UInt8]
        let etherType: UInt16
        let l3Size: Int
        if let arp {
            etherType = EthernetFrame.etherTypeARP
            payload = [UInt8](repeating: 0, count: 28)
            payload.withUnsafeMutableBytes {
                ARPPacket.encode(
                    operation: ARPPacket.request, senderMAC: source, senderIP: arp.sender, targetMAC: .zero,
                    targetIP: arp.target, to: $0.baseAddress!)
            }
            l3Size = 28
        } else if let ipv4 {
            etherType = EthernetFrame.etherTypeIPv4
            let l4Header = ipv4.proto == 6 ? 20 : (ipv4.proto == 17 || ipv4.proto == 1 || ipv4.proto == 132 ? 8 : 0)
            let minimum = 14 + (vlan == nil ? 0 : 4) + 20 + l4Header
            l3Size = max(size ?? 0, minimum) - 14 - (vlan == nil ? 0 : 4)
            payload = [UInt8](repeating: 0, count: l3Size)
            payload.withUnsafeMutableBytes { Self.writeIPv4(ipv4, l4Header: l4Header, to: $0) }
        } else {
            etherType = 0x88B5  // IEEE 802 local experimental: a frame that is no protocol in particular
            l3Size = 0
            payload = []
        }
        _ = l3Size
        var frame = header + Self.bigEndian(UInt64(etherType), 2) + payload
        if let size, frame.count < size { frame += [UInt8](repeating: 0, count: size - frame.count) }
        return frame
    }

    static func bigEndian(_ value: UInt64, _ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64(count - 1 - $0))) }
    }

    static func writeIPv4(_ flow: IPv4Flow, l4Header: Int, to buffer: UnsafeMutableRawBufferPointer) {
        let ip = buffer.baseAddress!
        let total = buffer.count
        ip.storeBytes(of: 0x45, toByteOffset: 0, as: UInt8.self)
        ip.storeBytes(of: UInt16(total).bigEndian, toByteOffset: 2, as: UInt16.self)
        ip.storeBytes(of: UInt16(0x4000).bigEndian, toByteOffset: 6, as: UInt16.self)  // DF
        ip.storeBytes(of: 64, toByteOffset: 8, as: UInt8.self)
        ip.storeBytes(of: flow.proto, toByteOffset: 9, as: UInt8.self)
        ip.storeBytes(of: flow.source.v4Value.bigEndian, toByteOffset: 12, as: UInt32.self)
        ip.storeBytes(of: flow.destination.v4Value.bigEndian, toByteOffset: 16, as: UInt32.self)
        InternetChecksum.fillIPv4Header(ip, headerLength: 20)
        let l4 = ip + 20
        let l4Length = total - 20
        switch flow.proto {
        case 6, 17, 132:
            l4.storeBytes(of: flow.sourcePort.bigEndian, toByteOffset: 0, as: UInt16.self)
            l4.storeBytes(of: flow.destinationPort.bigEndian, toByteOffset: 2, as: UInt16.self)
            if flow.proto == 6 {
                l4.storeBytes(of: 0x50, toByteOffset: 12, as: UInt8.self)  // data offset 5
                l4.storeBytes(of: 0x10, toByteOffset: 13, as: UInt8.self)  // ACK
                l4.storeBytes(of: UInt16(65535).bigEndian, toByteOffset: 14, as: UInt16.self)
            } else if flow.proto == 17 {
                l4.storeBytes(of: UInt16(l4Length).bigEndian, toByteOffset: 4, as: UInt16.self)
            }
            if flow.proto != 132 {
                let field = flow.proto == 6 ? 16 : 6
                let pseudo = InternetChecksum.pseudoHeaderSum(
                    addresses: ip + 12, addressSize: 4, protocol: flow.proto, length: l4Length)
                let value = InternetChecksum.finish(InternetChecksum.sum(l4, count: l4Length, initial: pseudo))
                l4.storeBytes(
                    of: (flow.proto == 17 && value == 0 ? 0xFFFF : value).bigEndian, toByteOffset: field, as: UInt16.self)
            }
        case 1:
            l4.storeBytes(of: 8, toByteOffset: 0, as: UInt8.self)  // echo request
            l4.storeBytes(of: InternetChecksum.finish(InternetChecksum.sum(l4, count: l4Length)).bigEndian, toByteOffset: 2, as: UInt16.self)
        default:
            break
        }
    }
}

extension TraceFrame {
    public enum PcapError: Error, Equatable, CustomStringConvertible {
        case notPcap
        case linkType(UInt32)
        case noRecord(index: Int, count: Int)
        case truncated(index: Int)

        public var description: String {
            switch self {
            case .notPcap: "not a pcap file (pcapng is not read; convert with editcap -F pcap)"
            case .linkType(let type): "link type \(type) is not Ethernet (1)"
            case .noRecord(let index, let count): "no record \(index): the file holds \(count) (numbered from 1)"
            case .truncated(let index): "record \(index) is cut short (snaplen or a truncated file)"
            }
        }
    }

    /// Record `index` (from 1, as Wireshark numbers them) of a classic pcap file with Ethernet
    /// frames, either byte order, micro- or nanosecond timestamps.
    public static func pcapRecord(_ file: [UInt8], index: Int) throws(PcapError) -> [UInt8] {
        guard file.count >= 24 else { throw .notPcap }
        func word(_ at: Int, swapped: Bool) -> UInt32 {
            let value = UInt32(file[at]) | UInt32(file[at + 1]) << 8 | UInt32(file[at + 2]) << 16 | UInt32(file[at + 3]) << 24
            return swapped ? value.byteSwapped : value
        }
        let magic = word(0, swapped: false)
        let swapped: Bool
        switch magic {
        case 0xA1B2_C3D4, 0xA1B2_3C4D: swapped = false
        case 0xD4C3_B2A1, 0x4D3C_B2A1: swapped = true
        default: throw .notPcap
        }
        let linkType = word(20, swapped: swapped) & 0x0FFF_FFFF
        guard linkType == 1 else { throw .linkType(linkType) }
        var offset = 24
        var number = 0
        while offset + 16 <= file.count {
            number += 1
            let captured = Int(word(offset + 8, swapped: swapped))
            let original = Int(word(offset + 12, swapped: swapped))
            let start = offset + 16
            guard start + captured <= file.count else { throw .truncated(index: number) }
            if number == index {
                guard captured >= original else { throw .truncated(index: number) }
                return Array(file[start..<(start + captured)])
            }
            offset = start + captured
        }
        throw .noRecord(index: index, count: number)
    }

    /// When `frame` is an outer Ethernet/IPv4-or-IPv6/UDP packet to `port` (a tunnel-side capture
    /// record): its sender and UDP payload (VXLAN header and inner frame). Nil otherwise.
    public static func vxlanDatagram(_ frame: [UInt8], port: UInt16) -> (source: IPAddress, payload: [UInt8])? {
        frame.withUnsafeBytes { bytes -> (IPAddress, [UInt8])? in
            guard frame.count >= EthernetFrame.headerSize, let base = bytes.baseAddress else { return nil }
            let (l3, etherType) = EthernetFrame.payloadOffset(base, length: frame.count)
            let source: IPAddress
            let udp: Int
            if etherType == EthernetFrame.etherTypeIPv4, l3 + 20 <= frame.count,
                base.load(fromByteOffset: l3 + 9, as: UInt8.self) == 17
            {
                source = IPAddress(v4: UInt32(bigEndian: base.loadUnaligned(fromByteOffset: l3 + 12, as: UInt32.self)))
                udp = l3 + Int(base.load(fromByteOffset: l3, as: UInt8.self) & 0x0F) * 4
            } else if etherType == EthernetFrame.etherTypeIPv6, l3 + 40 <= frame.count,
                base.load(fromByteOffset: l3 + 6, as: UInt8.self) == 17
            {
                source = IPAddress(v6LoadingFrom: base, at: l3 + 8)
                udp = l3 + 40
            } else {
                return nil
            }
            guard udp + 8 <= frame.count,
                UInt16(bigEndian: base.loadUnaligned(fromByteOffset: udp + 2, as: UInt16.self)) == port
            else { return nil }
            let end = min(frame.count, udp + Int(UInt16(bigEndian: base.loadUnaligned(fromByteOffset: udp + 4, as: UInt16.self))))
            guard end >= udp + 8 else { return nil }
            return (source, Array(frame[(udp + 8)..<end]))
        }
    }
}
