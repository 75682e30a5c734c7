/// IPv6 neighbour discovery (RFC 4861) as far as a VTEP answering for its neighbours needs it:
/// a checked view of a neighbour solicitation and a builder for the advertisement that answers it.
///
/// A solicitation, after the Ethernet header and its VLAN tags:
///
///     IPv6 header (40): version 6, payload length, next header 58, hop limit 255, source, destination
///     ICMPv6 (24+):     type 135 | code 0 | checksum | reserved (4) | target address (16) | options…
///     option:           type | length in units of 8 bytes (≠ 0) | … (type 1: source link-layer address)
public struct NeighbourSolicitation {
    public static let icmpType: UInt8 = 135
    public static let nextHeaderICMPv6: UInt8 = 58
    static let minimumICMPLength = 24

    /// The IPv6 header.
    public let base: UnsafeRawPointer
    /// ICMPv6 bytes (the IPv6 payload length).
    public let icmpLength: Int

    /// What the bytes at `base` (`length` of them, the frame's remainder) are, seen as a
    /// solicitation.
    public enum Check: Equatable {
        /// A valid solicitation (RFC 4861 §7.1.1).
        case valid
        /// Not ICMPv6 type 135 right after the IPv6 header: not ours to answer.
        case other
        /// Type 135, but breaking a validity rule: not answered.
        case invalid
    }

    /// Checks the packet; `view` is set only for `.valid`.
    @inline(__always)
    public static func check(_ base: UnsafeRawPointer, length: Int) -> (Check, NeighbourSolicitation?) {
        guard length >= 40 + 1, base.load(fromByteOffset: 0, as: UInt8.self) >> 4 == 6,
            base.load(fromByteOffset: 6, as: UInt8.self) == nextHeaderICMPv6,
            base.load(fromByteOffset: 40, as: UInt8.self) == icmpType
        else { return (.other, nil) }
        let payloadLength = Int(UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 4, as: UInt16.self)))
        // The frame may carry padding after the packet, never less than the packet.
        guard payloadLength >= minimumICMPLength, 40 + payloadLength <= length,
            base.load(fromByteOffset: 7, as: UInt8.self) == 255,  // hop limit: not from beyond the link
            base.load(fromByteOffset: 41, as: UInt8.self) == 0  // code
        else { return (.invalid, nil) }
        let view = NeighbourSolicitation(base: base, icmpLength: payloadLength)
        if view.target.isMulticast { return (.invalid, nil) }
        let sum = InternetChecksum.pseudoHeaderSum(
            addresses: base + 8, addressSize: 16, protocol: nextHeaderICMPv6, length: payloadLength)
        if InternetChecksum.fold(InternetChecksum.sum(base + 40, count: payloadLength, initial: sum)) != 0xFFFF {
            return (.invalid, nil)
        }
        // Options: each at least 8 bytes, none running past the end; none from an unspecified source
        // may be a source link-layer address (§7.1.1).
        var offset = 40 + minimumICMPLength
        let end = 40 + payloadLength
        while offset < end {
            guard offset + 2 <= end else { return (.invalid, nil) }
            let units = Int(base.load(fromByteOffset: offset + 1, as: UInt8.self))
            guard units > 0, offset + units * 8 <= end else { return (.invalid, nil) }
            if base.load(fromByteOffset: offset, as: UInt8.self) == 1, view.source.isUnspecified {
                return (.invalid, nil)
            }
            offset += units * 8
        }
        return (.valid, view)
    }

    public var source: IPAddress { IPAddress(v6LoadingFrom: base, at: 8) }
    public var destination: IPAddress { IPAddress(v6LoadingFrom: base, at: 24) }
    /// The address whose link-layer address is asked for.
    public var target: IPAddress { IPAddress(v6LoadingFrom: base, at: 48) }
}

/// Neighbour advertisement (RFC 4861 §4.4) answering a solicitation, with a target link-layer
/// address option:
///
///     ICMPv6 (32): type 136 | code 0 | checksum | R S O + 29 reserved bits | target (16) | 2 | 1 | MAC (6)
public enum NeighbourAdvertisement {
    public static let icmpType: UInt8 = 136
    /// IPv6 header + ICMPv6 message with the one option.
    public static let packetSize = 40 + 32
    public static let flagRouter: UInt32 = 0x8000_0000
    public static let flagSolicited: UInt32 = 0x4000_0000
    public static let flagOverride: UInt32 = 0x2000_0000

    /// Writes the IPv6 packet (`packetSize` bytes) at `out`: from `target` (the address asked for)
    /// to `destination` (the solicitation's source), hop limit 255, flags as given, the target
    /// link-layer address option carrying `mac`, and the ICMPv6 checksum.
    @inline(__always)
    public static func encode(
        target: IPAddress, mac: MACAddress, destination: IPAddress, flags: UInt32, to out: UnsafeMutableRawPointer
    ) {
        out.storeBytes(of: UInt32(0x6000_0000).bigEndian, toByteOffset: 0, as: UInt32.self)
        out.storeBytes(of: UInt16(32).bigEndian, toByteOffset: 4, as: UInt16.self)
        out.storeBytes(of: NeighbourSolicitation.nextHeaderICMPv6, toByteOffset: 6, as: UInt8.self)
        out.storeBytes(of: 255, toByteOffset: 7, as: UInt8.self)
        target.store(to: out, at: 8)
        destination.store(to: out, at: 24)
        let icmp = out + 40
        icmp.storeBytes(of: icmpType, toByteOffset: 0, as: UInt8.self)
        icmp.storeBytes(of: 0, toByteOffset: 1, as: UInt8.self)
        icmp.storeBytes(of: 0, toByteOffset: 2, as: UInt16.self)
        icmp.storeBytes(of: flags.bigEndian, toByteOffset: 4, as: UInt32.self)
        target.store(to: icmp, at: 8)
        icmp.storeBytes(of: 2, toByteOffset: 24, as: UInt8.self)  // target link-layer address
        icmp.storeBytes(of: 1, toByteOffset: 25, as: UInt8.self)  // 8 bytes
        mac.store(to: icmp, at: 26)
        ICMPv6.fillChecksum(packet: out, icmpLength: 32)
    }
}

public enum ICMPv6 {
    /// Fills the checksum of the ICMPv6 message behind the 40-byte IPv6 header at `packet`
    /// (pseudo-header: both addresses, the length, next header 58; RFC 4443 §2.3).
    @inline(__always)
    public static func fillChecksum(packet: UnsafeMutableRawPointer, icmpLength: Int) {
        let icmp = packet + 40
        icmp.storeBytes(of: 0, toByteOffset: 2, as: UInt16.self)
        let pseudo = InternetChecksum.pseudoHeaderSum(
            addresses: packet + 8, addressSize: 16, protocol: NeighbourSolicitation.nextHeaderICMPv6, length: icmpLength)
        let sum = InternetChecksum.sum(icmp, count: icmpLength, initial: pseudo)
        icmp.storeBytes(of: InternetChecksum.finish(sum).bigEndian, toByteOffset: 2, as: UInt16.self)
    }
}

/// A frame read from a TAP seen as a question about a neighbour: an ARP request or an IPv6
/// neighbour solicitation, with what an answer needs.
public struct NeighbourQuery: BitwiseCopyable {
    public enum Kind: BitwiseCopyable { case arp, neighbourSolicitation }

    public var kind: Kind
    /// The address asked about.
    public var target: IPAddress
    /// Who asked: the frame's source MAC (the answer's destination) and its IP address.
    public var requesterMAC: MACAddress
    public var requesterIP: IPAddress
    /// Where the ARP packet / IPv6 header starts (after the Ethernet header and VLAN tags).
    public var payload: Int

    public enum Classification: BitwiseCopyable {
        /// Not a question we answer (any other frame, ARP replies and announcements, duplicate
        /// address detection): forwarded as usual.
        case other
        /// ARP or a solicitation that breaks the protocol's rules: counted, forwarded as usual.
        case unanswerable
        case query(NeighbourQuery)
    }

    /// Classifies a frame of `length` bytes (≥ 14) read from a TAP.
    ///
    /// Not answered, on purpose: ARP probes (sender 0.0.0.0, RFC 5227) and solicitations from the
    /// unspecified address (duplicate address detection, RFC 4862) — they test whether an address
    /// is free, and the station that holds it should be the one to say so; gratuitous ARP
    /// (sender IP == target IP), which announces rather than asks.
    @inline(__always)
    public static func classify(frame: UnsafeRawPointer, length: Int) -> Classification {
        let (payload, etherType) = EthernetFrame.payloadOffset(frame, length: length)
        if etherType == EthernetFrame.etherTypeARP {
            guard let arp = ARPPacket(frame + payload, length: length - payload) else { return .unanswerable }
            guard arp.operation == ARPPacket.request else { return .other }
            let sender = arp.senderIP
            let target = arp.targetIP
            if sender.isUnspecified || sender == target { return .other }
            if target.isMulticast || target.isUnspecified || target.v4Value >> 24 == 127 || target.v4Value == .max {
                return .unanswerable
            }
            return .query(
                NeighbourQuery(
                    kind: .arp, target: target, requesterMAC: EthernetFrame.source(frame), requesterIP: sender,
                    payload: payload))
        }
        if etherType == EthernetFrame.etherTypeIPv6 {
            let (check, solicitation) = NeighbourSolicitation.check(frame + payload, length: length - payload)
            switch check {
            case .other: return .other
            case .invalid: return .unanswerable
            case .valid:
                guard let solicitation else { return .unanswerable }
                let source = solicitation.source
                if source.isUnspecified { return .other }
                return .query(
                    NeighbourQuery(
                        kind: .neighbourSolicitation, target: solicitation.target,
                        requesterMAC: EthernetFrame.source(frame), requesterIP: source, payload: payload))
            }
        }
        return .other
    }

    /// The most bytes `answer` writes: Ethernet, two VLAN tags, an advertisement.
    public static let maxAnswerSize = EthernetFrame.headerSize + 8 + NeighbourAdvertisement.packetSize

    /// Writes the answer to this query — an ARP reply or a solicited neighbour advertisement saying
    /// `target` is at `mac` — addressed to the requester, with the request's VLAN tags copied from
    /// `request`, at `out` (room for `maxAnswerSize` bytes). Returns its length.
    @inline(__always)
    public func answer(mac: MACAddress, request: UnsafeRawPointer, to out: UnsafeMutableRawPointer) -> Int {
        switch kind {
        case .arp:
            let at = EthernetFrame.encodeHeader(
                destination: requesterMAC, source: mac, tagsFrom: request, payload: payload,
                etherType: EthernetFrame.etherTypeARP, to: out)
            ARPPacket.encode(
                operation: ARPPacket.reply, senderMAC: mac, senderIP: target,
                // The request's sender hardware address (classify checked its 28 bytes are there).
                targetMAC: MACAddress(loadingFrom: request, at: payload + 8),
                targetIP: requesterIP, to: out + at)
            return at + ARPPacket.size
        case .neighbourSolicitation:
            let at = EthernetFrame.encodeHeader(
                destination: requesterMAC, source: mac, tagsFrom: request, payload: payload,
                etherType: EthernetFrame.etherTypeIPv6, to: out)
            NeighbourAdvertisement.encode(
                target: target, mac: mac, destination: requesterIP,
                flags: NeighbourAdvertisement.flagSolicited | NeighbourAdvertisement.flagOverride, to: out + at)
            return at + NeighbourAdvertisement.packetSize
        }
    }
}
