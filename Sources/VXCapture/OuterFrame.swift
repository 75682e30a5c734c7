// Outer captures as complete frames: the datapath holds the UDP header (sent) or only the UDP
// payload (received), because the kernel adds or strips the IP header. For Wireshark and tshark
// to decode VNI and inner frame, a record is written as Ethernet / IPv4 or IPv6 / UDP / VXLAN:
// the Ethernet and IP headers (and, for received packets, the UDP header) are synthesized from
// what the datapath knows — the local address and port, the remote VTEP's address and port — with
// correct lengths and a correct IPv4 header checksum. The MAC addresses are placeholders (locally
// administered, 02:76:78:…), the TTL a constant 64: the underlay's own values are not visible to a
// userspace router.
import VXDatapath
import VXWire

public enum OuterFrame {
    /// Placeholder MACs: 02:76:78 ("vx") + 00:00:01 for this router, 00:00:02 for the remote.
    public static let localMAC: [UInt8] = [0x02, 0x76, 0x78, 0x00, 0x00, 0x01]
    public static let remoteMAC: [UInt8] = [0x02, 0x76, 0x78, 0x00, 0x00, 0x02]
    public static let ttl: UInt8 = 64

    /// Bytes of headers written in front of a record of `form` over an underlay of `family`.
    public static func headerLength(form: CaptureForm, family: IPAddress.Family) -> Int {
        switch form {
        case .frame: 0
        case .udp: EthernetFrame.headerSize + (family == .v4 ? 20 : 40)
        case .vxlan: EthernetFrame.headerSize + (family == .v4 ? 20 : 40) + UDPHeader.size
        }
    }

    /// Where the inner Ethernet frame starts within a record's bytes, as copied by the datapath.
    public static func innerOffset(form: CaptureForm) -> Int {
        switch form {
        case .frame: 0
        case .udp: UDPHeader.size + VXLANHeader.size
        case .vxlan: VXLANHeader.size
        }
    }

    /// The complete frame for one record: synthesized headers + the copied bytes. `length` is the
    /// original length of the copied part (the copy may be shorter, cut at the snap length).
    /// Returns the frame's bytes as captured and its original length.
    public static func build(
        form: CaptureForm, direction: CaptureDirection, local: Endpoint, remote: Endpoint,
        bytes: UnsafeRawBufferPointer, length: Int
    ) -> (frame: [UInt8], length: Int) {
        if form == .frame { return (Array(bytes), length) }
        let family = local.address.family
        let v4 = family == .v4
        let outbound = direction == .toTunnel || direction == .fromTap
        let (source, destination) = outbound ? (local, remote) : (remote, local)
        let udpLength = form == .udp ? length : UDPHeader.size + length
        var out: [UInt8] = []
        out.reserveCapacity(headerLength(form: form, family: family) + bytes.count)
        // Ethernet.
        out += outbound ? remoteMAC : localMAC
        out += outbound ? localMAC : remoteMAC
        out += v4 ? [0x08, 0x00] : [0x86, 0xDD]
        // IP.
        if v4 {
            let total = 20 + udpLength
            let ipStart = out.count
            out += [
                0x45, 0x00, UInt8(truncatingIfNeeded: total >> 8), UInt8(truncatingIfNeeded: total),
                0x00, 0x00, 0x40, 0x00,  // identification 0, DF (the datapath never fragments)
                ttl, 17, 0x00, 0x00,  // protocol UDP, checksum below
            ]
            out += source.address.bytes
            out += destination.address.bytes
            out.withUnsafeMutableBytes { InternetChecksum.fillIPv4Header($0.baseAddress! + ipStart, headerLength: 20) }
        } else {
            out += [
                0x60, 0x00, 0x00, 0x00, UInt8(truncatingIfNeeded: udpLength >> 8), UInt8(truncatingIfNeeded: udpLength),
                17, ttl,
            ]
            out += source.address.bytes
            out += destination.address.bytes
        }
        let udpStart = out.count
        if form == .vxlan {
            out += [
                UInt8(source.port >> 8), UInt8(source.port & 0xFF), UInt8(destination.port >> 8),
                UInt8(destination.port & 0xFF), UInt8(truncatingIfNeeded: udpLength >> 8),
                UInt8(truncatingIfNeeded: udpLength), 0, 0,
            ]
        }
        out += bytes
        // IPv4: the checksum stays zero, as sent (RFC 7348 §5). IPv6 requires one: computed when
        // the whole datagram was copied, else left zero (Wireshark then just flags it).
        if !v4, form == .vxlan || bytes.count >= UDPHeader.size, out.count - udpStart == udpLength {
            out[udpStart + 6] = 0
            out[udpStart + 7] = 0
            var sum = out.withUnsafeBytes { raw in
                // The IPv6 header's source and destination are the 32 bytes just before the UDP header.
                let pseudo = InternetChecksum.pseudoHeaderSum(
                    addresses: raw.baseAddress! + udpStart - 32, addressSize: 16, protocol: 17, length: udpLength)
                return InternetChecksum.finish(InternetChecksum.sum(raw.baseAddress! + udpStart, count: udpLength, initial: pseudo))
            }
            if sum == 0 { sum = 0xFFFF }
            out[udpStart + 6] = UInt8(sum >> 8)
            out[udpStart + 7] = UInt8(sum & 0xFF)
        }
        return (out, headerLength(form: form, family: family) + length)
    }

    /// RFC 1071 ones'-complement checksum of `bytes` (`InternetChecksum`, for callers holding an array).
    public static func internetChecksum(_ bytes: some Collection<UInt8>) -> UInt16 {
        Array(bytes).withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return 0xFFFF }
            return InternetChecksum.finish(InternetChecksum.sum(base, count: raw.count))
        }
    }
}
