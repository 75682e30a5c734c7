/// What a frame read from a TAP says about the station behind the TAP that sent it: its MAC, and,
/// when the frame is ARP or neighbour discovery, an IP address the station claims for that MAC.
/// Cluster mode publishes these as the MACs behind this host with their IPs (EVPN type-2), which
/// the other hosts program as entries and answer ARP/ND from.
///
/// Addresses come from ARP and ND only, as the kernel's neighbour table and EVPN speakers (FRR's
/// zebra) take them: an IP packet's source address may have been routed from anywhere behind the
/// station, so it says nothing about which MAC holds it. Taken:
///  - ARP requests and replies whose sender hardware address is the frame's source MAC: the sender
///    IP, unless unspecified (an RFC 5227 probe tests an address, it does not hold it), multicast,
///    broadcast or loopback;
///  - a valid neighbour solicitation (`NeighbourSolicitation.check`) from a specified source: the
///    source address;
///  - a neighbour advertisement (hop limit 255, code 0, checksum right, unicast target): the target.
/// Any other unicast-sourced frame is a sighting of the MAC alone; a frame from a multicast or zero
/// source MAC is none.
public struct StationSighting: BitwiseCopyable, Equatable, Sendable {
    public var mac: MACAddress
    /// The address the frame claims for `mac`; nil when it claims none.
    public var ip: IPAddress?

    public init(mac: MACAddress, ip: IPAddress? = nil) {
        self.mac = mac
        self.ip = ip
    }

    /// The sighting in a frame of `length` contiguous bytes read from a TAP, or nil.
    @inline(__always)
    public static func of(frame: UnsafeRawPointer, length: Int) -> StationSighting? {
        guard length >= EthernetFrame.headerSize else { return nil }
        let mac = EthernetFrame.source(frame)
        if mac.isMulticast || mac.isZero { return nil }
        let (payload, etherType) = EthernetFrame.payloadOffset(frame, length: length)
        if etherType == EthernetFrame.etherTypeARP {
            guard let arp = ARPPacket(frame + payload, length: length - payload),
                arp.operation == ARPPacket.request || arp.operation == ARPPacket.reply, arp.senderMAC == mac
            else { return StationSighting(mac: mac) }
            let ip = arp.senderIP
            let v4 = ip.v4Value
            if ip.isUnspecified || ip.isMulticast || v4 == .max || v4 >> 24 == 127 { return StationSighting(mac: mac) }
            return StationSighting(mac: mac, ip: ip)
        }
        if etherType == EthernetFrame.etherTypeIPv6 {
            return StationSighting(mac: mac, ip: neighbourDiscoveryAddress(frame + payload, length: length - payload))
        }
        return StationSighting(mac: mac)
    }

    /// The address an NS (its source) or NA (its target) at `base` claims, or nil.
    @inline(__always)
    static func neighbourDiscoveryAddress(_ base: UnsafeRawPointer, length: Int) -> IPAddress? {
        guard length >= 40 + 24, base.load(fromByteOffset: 0, as: UInt8.self) >> 4 == 6,
            base.load(fromByteOffset: 6, as: UInt8.self) == NeighbourSolicitation.nextHeaderICMPv6
        else { return nil }
        switch base.load(fromByteOffset: 40, as: UInt8.self) {
        case NeighbourSolicitation.icmpType:
            guard case (.valid, let solicitation?) = NeighbourSolicitation.check(base, length: length) else { return nil }
            let source = solicitation.source
            return source.isUnspecified || source.isMulticast ? nil : source
        case NeighbourAdvertisement.icmpType:
            let payloadLength = Int(UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 4, as: UInt16.self)))
            guard payloadLength >= 24, 40 + payloadLength <= length,
                base.load(fromByteOffset: 7, as: UInt8.self) == 255, base.load(fromByteOffset: 41, as: UInt8.self) == 0
            else { return nil }
            let sum = InternetChecksum.pseudoHeaderSum(
                addresses: base + 8, addressSize: 16, protocol: NeighbourSolicitation.nextHeaderICMPv6, length: payloadLength)
            guard InternetChecksum.fold(InternetChecksum.sum(base + 40, count: payloadLength, initial: sum)) == 0xFFFF
            else { return nil }
            let target = IPAddress(v6LoadingFrom: base, at: 48)
            return target.isUnspecified || target.isMulticast ? nil : target
        default:
            return nil
        }
    }
}
