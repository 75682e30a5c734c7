// Frame and datagram builders for datapath tests and vxbench: byte by byte, so a test states the
// bytes it means and the code under test is not used to make its own input.
import VXWire

public enum Bytes {
    public static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    public static func be32(_ v: UInt32) -> [UInt8] { be16(UInt16(v >> 16)) + be16(UInt16(v & 0xFFFF)) }

    public static func mac(_ last: UInt8, first: UInt8 = 0x02) -> MACAddress { MACAddress(first, 0, 0, 0, 0, last) }

    /// An Ethernet frame of exactly `length` bytes (≥ 14): header, then a recognisable payload.
    public static func frame(to dst: MACAddress, from src: MACAddress, length: Int = 100, etherType: UInt16 = 0x88B5)
        -> [UInt8]
    {
        precondition(length >= 14)
        return dst.octets + src.octets + be16(etherType)
            + (0..<(length - 14)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
    }

    /// An IPv4/UDP frame of `length` bytes (≥ 46), for flows that should hash apart: payload
    /// 1, 2, 3, 4 and then 0xA5 up to the length; UDP checksum 0 (none).
    public static func udpFrame(
        to dst: MACAddress, from src: MACAddress, sourcePort: UInt16, destinationPort: UInt16 = 53,
        length: Int = 46, source: UInt32 = 0x0A00_0001, destination: UInt32 = 0x0A00_0002
    ) -> [UInt8] {
        precondition(length >= 46)
        let ipLength = UInt16(length - 14)
        var ip: [UInt8] = [0x45, 0] + be16(ipLength) + [0, 1, 0x40, 0, 64, 17, 0, 0]
        ip += be32(source) + be32(destination)
        return dst.octets + src.octets + be16(0x0800) + ip + be16(sourcePort) + be16(destinationPort)
            + be16(ipLength - 20) + [0, 0] + [1, 2, 3, 4] + [UInt8](repeating: 0xA5, count: length - 46)
    }

    /// An IPv4 TCP frame (ACK, 12 bytes of timestamp options, 198.19.0.1:40000 → 198.19.0.2:5201)
    /// with its checksum complete, or holding only the pseudo-header sum as a NEEDS_CSUM
    /// super-frame does.
    public static func tcpFrame(
        to dst: MACAddress, from src: MACAddress, payload: Int, seq: UInt32 = 1, pseudoOnly: Bool = false
    ) -> [UInt8] {
        func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        let l4Length = 32 + payload
        var bytes = dst.octets + src.octets + [0x08, 0x00]
        bytes += [0x45, 0] + be16(20 + l4Length) + [0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 198, 19, 0, 1, 198, 19, 0, 2]
        bytes += be16(40000) + be16(5201) + be16(Int(seq >> 16)) + be16(Int(seq & 0xFFFF)) + [0, 0, 0x1E, 0x61]
        bytes += [0x80, 0x10] + be16(502) + [0, 0, 0, 0] + [1, 1, 8, 10, 0, 0, 3, 0xE8, 0, 0, 7, 0xD0]
        bytes += (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 3) }
        bytes.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            InternetChecksum.fillIPv4Header(base + 14, headerLength: 20)
            let pseudo = InternetChecksum.pseudoHeaderSum(addresses: base + 26, addressSize: 4, protocol: 6, length: l4Length)
            let value =
                pseudoOnly
                ? InternetChecksum.fold(pseudo)
                : InternetChecksum.finish(InternetChecksum.sum(base + 34, count: l4Length, initial: pseudo))
            base.storeBytes(of: value.bigEndian, toByteOffset: 50, as: UInt16.self)
        }
        return bytes
    }

    /// The virtio header of a TSO4 super-frame built by `tcpFrame` (66 bytes of headers, NEEDS_CSUM
    /// from byte 34), as an offloading TAP hands it over.
    public static func tso4Header(gsoSize: Int) -> VirtioNetHeader {
        VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum, gsoType: VirtioNetHeader.gsoTCPv4, headerLength: 66,
            gsoSize: UInt16(gsoSize), checksumStart: 34, checksumOffset: 16)
    }

    /// A TSO4 super-frame of `segments` segments of `gsoSize` bytes behind its virtio header: what
    /// a FakeTap with virtio headers reads.
    public static func tso4SuperFrame(
        to dst: MACAddress = SteadyDatapath.remoteMAC, from src: MACAddress = SteadyDatapath.localMAC, segments: Int,
        gsoSize: Int
    ) -> [UInt8] {
        var virtio = [UInt8](repeating: 0, count: VirtioNetHeader.size)
        virtio.withUnsafeMutableBytes { tso4Header(gsoSize: gsoSize).encode(to: $0.baseAddress!) }
        return virtio + tcpFrame(to: dst, from: src, payload: segments * gsoSize, pseudoOnly: true)
    }

    public static func vxlanHeader(vni: UInt32, flags: UInt8 = 0x08) -> [UInt8] {
        [flags, 0, 0, 0, UInt8(vni >> 16 & 0xFF), UInt8(vni >> 8 & 0xFF), UInt8(vni & 0xFF), 0]
    }

    public static func datagram(vni: UInt32, _ frame: [UInt8], flags: UInt8 = 0x08) -> [UInt8] {
        vxlanHeader(vni: vni, flags: flags) + frame
    }
}

/// An encapsulated packet as the link saw it (UDP header onwards), taken apart.
public struct Encapsulated {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var udpLength: UInt16
    public var checksum: UInt16
    public var vxlan: [UInt8]
    public var inner: [UInt8]

    public init(_ bytes: [UInt8]) {
        func u16(_ i: Int) -> UInt16 { UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]) }
        sourcePort = u16(0)
        destinationPort = u16(2)
        udpLength = u16(4)
        checksum = u16(6)
        vxlan = Array(bytes[8..<16])
        inner = Array(bytes[16...])
    }
}
