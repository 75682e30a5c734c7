/// Outer UDP checksums on the underlay: whether this router's own carry one, and the one rule that
/// says when a received one vouches for the inner frame, so that the TCP coalescer may merge its
/// segments without summing their bytes again (`TCPCoalescer.add(vouched:)`).
///
/// Why a checksum received can vouch: a UDP socket never delivers a datagram whose non-zero
/// checksum failed (the kernel drops it and counts it as Udp InCsumErrors), and the outer checksum
/// covers the VXLAN header and every byte of the inner frame. A datagram that carried one has had
/// every inner byte checked between the peer's kernel and ours. A zero checksum checks nothing:
///  - IPv4 UDP may carry zero (RFC 768; the kernel's vxlan sends zero unless `udpcsum`), and a
///    UDP socket does not say, per datagram, which it got: only configuration can say that the
///    peers always send one (`trust: on`);
///  - IPv6 UDP must carry one (RFC 8200 §8.1) and the kernel drops a zero one unless the socket
///    allows it (UDP_NO_CHECK6_RX, for peers with the kernel's `udp6zerocsumtx`): with zero
///    checksums refused, everything an IPv6 socket delivers was verified (`trust: auto`).
///
/// What it cannot vouch for: bytes that were already wrong when the peer's kernel computed the
/// outer checksum (a broken inner sender; memory on the sending host). Those keep their own inner
/// checksum when written alone, but lose it when merged: the one thing `trust` trades for the pass
/// it saves, which is why it can be turned off.
public enum OuterChecksum {
    /// A setting of `underlay.udp_checksum` or `underlay.trust_udp_checksum`.
    public enum Choice: String, Sendable, Equatable, CaseIterable {
        case auto
        case on = "true"
        case off = "false"
    }

    /// Where received datagrams come from: the underlay's family and whether its sockets accept
    /// IPv6 UDP with a zero checksum (UDP_NO_CHECK6_RX; vxrouter never sets it today).
    public struct ReceivePath: Sendable, Equatable {
        public var family: IPAddress.Family
        public var zeroChecksumsAccepted: Bool

        public init(family: IPAddress.Family, zeroChecksumsAccepted: Bool = false) {
            self.family = family
            self.zeroChecksumsAccepted = zeroChecksumsAccepted
        }
    }

    /// The rule, in this one place: whether a datagram received over `path` had its outer checksum
    /// verified by the kernel, so its inner frame's TCP checksum need not be verified again.
    ///  - `off`: never (every merged segment is summed, as before);
    ///  - `on`: always — the operator says every peer sends outer checksums (IPv4: the kernel's
    ///    vxlan with `udpcsum`, Open vSwitch with `options:csum=true`, vxrouter with offloads or
    ///    `udp_checksum: true`); a peer that sends zero anyway has its frames merged unchecked;
    ///  - `auto`: IPv6 where zero checksums are refused on receive; IPv4 never.
    @inline(__always)
    public static func vouchesForInner(_ path: ReceivePath, trust: Choice) -> Bool {
        switch trust {
        case .off: false
        case .on: true
        case .auto: path.family == .v6 && !path.zeroChecksumsAccepted
        }
    }

    /// Whether this router's encapsulated packets carry a computed outer UDP checksum (else zero).
    /// `udpSockets`: the sends go through ordinary UDP sockets (the offloads' send pool), where the
    /// kernel computes the checksum unless told not to (SO_NO_CHECK, which rules out UDP GSO);
    /// else through the raw socket, where vxrouter writes the UDP header (and, over IPv4, the
    /// checksum is zero unless asked for). `auto` is what vxrouter has always done: IPv6 always
    /// (receivers drop zero by default), IPv4 where the sockets compute it. `off` is IPv4 only
    /// (`problem`).
    @inline(__always)
    public static func sends(family: IPAddress.Family, choice: Choice, udpSockets: Bool) -> Bool {
        switch choice {
        case .on: true
        case .off: family == .v6
        case .auto: family == .v6 || udpSockets
        }
    }

    /// The UDP checksum of an IPv4 datagram sent from `source` to `destination`: its UDP header
    /// (checksum field zero) and payload as `head`, then `tail` when the payload lies elsewhere.
    /// For the raw send socket, which sends the checksum it is given (`udp_checksum: true` without
    /// the offloads' UDP sockets). A zero result is sent as 0xFFFF (zero means "none").
    @inline(__always)
    public static func ipv4UDP(
        source: UInt32, destination: UInt32, head: UnsafeRawPointer, headLength: Int, tail: FramePiece
    ) -> UInt16 {
        let length = headLength + tail.length
        var sum =
            UInt64(source >> 16) &+ UInt64(source & 0xFFFF) &+ UInt64(destination >> 16)
            &+ UInt64(destination & 0xFFFF) &+ 17 &+ UInt64(length)
        sum = InternetChecksum.sum(head, count: headLength, initial: sum)
        if let base = tail.base, tail.length > 0 {
            // After an odd head the tail's bytes sit one place over: its folded sum byte-swapped
            // (RFC 1071 §2(B)).
            let folded = InternetChecksum.fold(InternetChecksum.sum(base, count: tail.length))
            sum &+= UInt64(headLength & 1 == 0 ? folded : folded.byteSwapped)
        }
        let value = InternetChecksum.finish(sum)
        return value == 0 ? 0xFFFF : value
    }

    /// Why `udp_checksum: choice` cannot be used over `family`, or nil.
    public static func problem(family: IPAddress.Family, sending choice: Choice) -> String? {
        guard family == .v6, choice == .off else { return nil }
        return "false is for IPv4 underlays only: IPv6 UDP must carry a checksum (RFC 8200), and receivers drop zero by default"
    }
}
