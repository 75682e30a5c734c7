// The frame-layout parser (VXWire/FrameLayout.swift). Input: one Ethernet frame. Whatever
// FrameLayout reports must lie inside the buffer and agree with the headers it claims to have
// walked, and it must agree with a second, deliberately plain walk written here from the same
// rules (byte by byte over an array): the same link offset and EtherType, the same IP end,
// transport offset, protocol and fragment flag — or both say "not an IP frame I can walk".
import VXFuzzSupport
import VXWire

/// The plain walk: what FrameLayout must report, from the rules in its documentation.
struct Expected: Equatable {
    var l3: Int, etherType: UInt16, isIPv6: Bool, ipEnd: Int, l4: Int, transportProtocol: UInt8, isFragment: Bool
}

func u16(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) << 8 | Int(b[at + 1]) }

func expectedLink(_ b: [UInt8]) -> (l3: Int, etherType: UInt16)? {
    guard b.count >= 14 else { return nil }
    var offset = 12
    var tags = 0
    // 0x8100 (802.1Q) and 0x88a8 (802.1ad) are tags; at most two are stepped over.
    while tags < 2, u16(b, offset) == 0x8100 || u16(b, offset) == 0x88A8 {
        guard b.count >= offset + 2 + 4 else { return nil }
        offset += 4
        tags += 1
    }
    return (offset + 2, UInt16(u16(b, offset)))
}

func expectedLayout(_ b: [UInt8]) -> Expected? {
    guard let (l3, etherType) = expectedLink(b) else { return nil }
    if etherType == 0x0800 {
        guard b.count >= l3 + 20, b[l3] >> 4 == 4 else { return nil }
        let ihl = Int(b[l3] & 15) * 4
        let total = u16(b, l3 + 2)
        guard ihl >= 20, total >= ihl, l3 + total <= b.count else { return nil }
        let fragment = (b[l3 + 6] & 0x3F) != 0 || b[l3 + 7] != 0  // MF or an offset; DF and the reserved bit do not count
        let end = l3 + total
        return Expected(
            l3: l3, etherType: etherType, isIPv6: false, ipEnd: end, l4: fragment || l3 + ihl >= end ? 0 : l3 + ihl,
            transportProtocol: b[l3 + 9], isFragment: fragment)
    }
    guard etherType == 0x86DD, b.count >= l3 + 40, b[l3] >> 4 == 6 else { return nil }
    let end = l3 + 40 + u16(b, l3 + 4)
    guard end <= b.count else { return nil }
    var next = b[l3 + 6]
    var at = l3 + 40
    var stepped = 0
    while next == 0 || next == 60 {  // hop-by-hop, destination options
        if stepped == 4 || at + 8 > end {
            next = 59
            break
        }
        next = b[at]
        at += (Int(b[at + 1]) + 1) * 8
        stepped += 1
    }
    let noTransport = next == 43 || next == 44 || next == 59 || at >= end
    return Expected(
        l3: l3, etherType: etherType, isIPv6: true, ipEnd: end, l4: noTransport ? 0 : at, transportProtocol: next,
        isFragment: next == 44)
}

func layoutOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = fuzzInput(start, count)
    let bytes = Array(input)
    // libFuzzer's buffer is exactly the input: AddressSanitizer reports any read past its end.
    let link = input.baseAddress.flatMap { FrameLayout.link(UnsafeRawPointer($0), length: count) }
    let wantLink = expectedLink(bytes)
    fuzzCheck(link?.l3 == wantLink?.l3 && link?.etherType == wantLink?.etherType, "link walk \(String(describing: link)), expected \(String(describing: wantLink))")
    if let link {
        fuzzCheck(link.l3 >= 14 && link.l3 <= 14 + 4 * FrameLayout.maxTags && link.l3 <= count, "l3 \(link.l3) of \(count) bytes")
        fuzzCheck(u16(bytes, link.l3 - 2) == Int(link.etherType), "the EtherType is the two bytes before l3")
    }
    let layout = input.baseAddress.flatMap { FrameLayout(ip: UnsafeRawPointer($0), length: count) }
    let want = expectedLayout(bytes)
    guard let layout else {
        fuzzCheck(want == nil, "FrameLayout refused a frame the plain walk reads: \(String(describing: want))")
        return 0
    }
    let got = Expected(
        l3: layout.l3, etherType: layout.etherType, isIPv6: layout.isIPv6, ipEnd: layout.ipEnd, l4: layout.l4,
        transportProtocol: layout.transportProtocol, isFragment: layout.isFragment)
    fuzzCheck(got == want, "layout \(got), expected \(String(describing: want))")
    // Within the buffer and consistent with the headers it claims.
    fuzzCheck(layout.l3 == link?.l3 && layout.etherType == link?.etherType, "the layout's link walk is link()'s")
    let minimumHeader = layout.isIPv6 ? 40 : 20
    fuzzCheck(layout.l3 + minimumHeader <= layout.ipEnd && layout.ipEnd <= count, "IP header and end inside the buffer")
    fuzzCheck(Int(bytes[layout.l3] >> 4) == (layout.isIPv6 ? 6 : 4), "the IP version at l3 is the family claimed")
    fuzzCheck(layout.etherType == (layout.isIPv6 ? 0x86DD : 0x0800), "the EtherType is the family claimed")
    fuzzCheck(layout.addresses + 2 * layout.addressSize <= layout.l3 + minimumHeader, "addresses inside the fixed IP header")
    if layout.isIPv6 {
        fuzzCheck(layout.ipEnd == layout.l3 + 40 + u16(bytes, layout.l3 + 4), "IPv6 end from its payload length")
    } else {
        fuzzCheck(layout.ipEnd == layout.l3 + u16(bytes, layout.l3 + 2), "IPv4 end from its total length")
    }
    if layout.l4 != 0 {
        fuzzCheck(!layout.isFragment, "no transport header read from a fragment")
        fuzzCheck(layout.l4 >= layout.l3 + minimumHeader && layout.l4 < layout.ipEnd, "l4 \(layout.l4) inside the IP packet")
        fuzzCheck(layout.transportLength == layout.ipEnd - layout.l4 && layout.transportLength > 0, "transport length")
        if layout.isIPv6 {
            fuzzCheck((layout.l4 - layout.l3 - 40) % 8 == 0, "IPv6 extension headers come in 8-byte units")
        } else {
            fuzzCheck(layout.l4 == layout.l3 + Int(bytes[layout.l3] & 15) * 4, "IPv4 l4 after the IHL's header")
            fuzzCheck(layout.transportProtocol == bytes[layout.l3 + 9], "IPv4 protocol field")
        }
    } else {
        fuzzCheck(layout.transportLength == 0, "no transport header, no transport length")
    }
    return 0
}

fuzzMain(layoutOne)
