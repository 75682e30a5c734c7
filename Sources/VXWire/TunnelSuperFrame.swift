/// A VXLAN datagram that carries a whole GSO super-packet: what a same-host kernel peer's vxlan
/// puts into the tunnel when its underlay (a veth) takes UDP-tunnel GSO. The skb crosses to the
/// receiving namespace uncut and reaches a UDP socket as one datagram of up to 64 KB. With UDP_GRO
/// on, the kernel reports its inner segment size as the GRO size for an inner UDP super-packet
/// (SKB_GSO_UDP_L4) only; for TCP nothing says the sender's MSS, and any cut whose segments fit
/// the network serves TCP as well.
/// Its inner TCP/UDP checksum is the pseudo-header sum over the whole super-packet (unfinished,
/// see `InnerChecksum`), exactly what an offloading TAP takes in a GSO write.
///
/// Told apart from a slot of datagrams UDP GRO coalesced (each with its own VXLAN header, each
/// `segmentSize` long) by its first inner IP packet: in a GRO slot it ends with the first
/// datagram; in a super-packet it runs to the end of the slot.
public enum TunnelSuperFrame {
    /// Whether `length` bytes of UDP payload at `payload`, reported with GRO size `segmentSize`,
    /// are one VXLAN datagram carrying one inner super-packet (reads the headers only).
    @inline(__always)
    public static func isOne(payload: UnsafeRawPointer, length: Int, segmentSize: Int) -> Bool {
        guard segmentSize > 0, segmentSize < length, length > VXLANHeader.size,
            let layout = FrameLayout(ip: payload + VXLANHeader.size, length: length - VXLANHeader.size)
        else { return false }
        return layout.ipEnd == length - VXLANHeader.size
    }

    /// The virtio header that writes the inner super-frame to an offloading TAP as one GSO frame
    /// (TCPv4/TCPv6 or UDP_L4, NEEDS_CSUM), or nil when it is not a TCP/UDP super-packet with an
    /// unfinished checksum whose segments of `segmentSize` bytes of payload fit `maxFrame`.
    /// `segmentSize` 0 (none reported): TCP is cut into segments as large as `maxFrame` allows;
    /// UDP, whose segments are datagrams of the sender's choosing, is refused.
    @inline(__always)
    public static func virtioHeader(
        frame: UnsafeRawPointer, length: Int, segmentSize: Int, maxFrame: Int
    ) -> VirtioNetHeader? {
        guard segmentSize >= 0, let site = InnerChecksum.Site(frame: frame, length: length),
            site.layout.ipEnd == length, !site.layout.isFragment, site.isUnfinished(frame)
        else { return nil }
        let l4 = site.layout.l4
        let headerLength: Int
        let kind: UInt8
        if site.layout.transportProtocol == 6 {
            headerLength = l4 + Int(frame.load(fromByteOffset: l4 + 12, as: UInt8.self) >> 4) * 4
            guard headerLength >= l4 + 20, headerLength <= length else { return nil }
            kind = site.layout.isIPv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4
        } else {
            headerLength = l4 + UDPHeader.size
            kind = VirtioNetHeader.gsoUDPL4
        }
        let size = segmentSize > 0 ? segmentSize : kind == VirtioNetHeader.gsoUDPL4 ? 0 : maxFrame - headerLength
        guard size > 0, size <= Int(UInt16.max), headerLength + size <= maxFrame else { return nil }
        let partial = site.partial
        return VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum, gsoType: kind, headerLength: UInt16(headerLength),
            gsoSize: UInt16(size), checksumStart: partial.start, checksumOffset: partial.offset)
    }
}
