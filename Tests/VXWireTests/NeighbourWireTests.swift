import Testing

@testable import VXWire

/// Frames for neighbour tests, written out byte by byte (not with the code under test).
enum NeighbourFixtures {
    static let asker: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]
    static let owner: [UInt8] = [0x02, 0, 0, 0, 0, 0x02]
    static let ownerMAC = MACAddress(0x02, 0, 0, 0, 0, 0x02)
    static let v6Asker: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x01]
    static let v6Owner: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x02]

    /// Who has 10.0.1.2? Tell 10.0.1.1 (from 02::01), broadcast, with optional 802.1Q tag.
    static func arpRequest(
        target: [UInt8] = [10, 0, 1, 2], sender: [UInt8] = [10, 0, 1, 1], operation: UInt8 = 1, vlan: [UInt8] = [],
        hardwareLength: UInt8 = 6
    ) -> [UInt8] {
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] + asker + vlan + [0x08, 0x06]
            + [0x00, 0x01, 0x08, 0x00, hardwareLength, 0x04, 0x00, operation] + asker + sender
            + [0, 0, 0, 0, 0, 0] + target
    }

    /// The reply to `arpRequest()`, as the kernel's arp_reduce builds it.
    static func arpReply(vlan: [UInt8] = []) -> [UInt8] {
        asker + owner + vlan + [0x08, 0x06]
            + [0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02] + owner + [10, 0, 1, 2] + asker + [10, 0, 1, 1]
    }

    /// NS from 2001:db8::1 for 2001:db8::2 to its solicited-node group, with a source link-layer
    /// address option; checksum 0x1c27 computed independently (Python).
    static func solicitation(hopLimit: UInt8 = 255, checksum: [UInt8] = [0x1c, 0x27], vlan: [UInt8] = []) -> [UInt8] {
        let solicitedNode: [UInt8] = [0xff, 0x02] + [UInt8](repeating: 0, count: 9) + [0x01, 0xff, 0x00, 0x00, 0x02]
        return [0x33, 0x33, 0xff, 0x00, 0x00, 0x02] + asker + vlan + [0x86, 0xdd]
            + [0x60, 0, 0, 0, 0x00, 32, 58, hopLimit] + v6Asker + solicitedNode
            + [135, 0] + checksum + [0, 0, 0, 0] + v6Owner + [0x01, 0x01] + asker
    }

    /// The advertisement answering `solicitation()`: S and O set, target link-layer address
    /// option, checksum 0x8a71 computed independently (Python).
    static func advertisement(vlan: [UInt8] = []) -> [UInt8] {
        asker + owner + vlan + [0x86, 0xdd]
            + [0x60, 0, 0, 0, 0x00, 32, 58, 255] + v6Owner + v6Asker
            + [136, 0, 0x8a, 0x71, 0x60, 0, 0, 0] + v6Owner + [0x02, 0x01] + owner
    }
}

@Suite("ARP and NDP: views and answers")
struct NeighbourWireTests {
    typealias F = NeighbourFixtures

    func classify(_ frame: [UInt8]) -> NeighbourQuery.Classification {
        frame.withUnsafeBytes { NeighbourQuery.classify(frame: $0.baseAddress!, length: frame.count) }
    }

    /// Classifies and answers with the owner's MAC; nil when not a query.
    func answer(_ frame: [UInt8]) -> [UInt8]? {
        guard case .query(let query) = classify(frame) else { return nil }
        var out = [UInt8](repeating: 0xA5, count: NeighbourQuery.maxAnswerSize + 8)
        let n = frame.withUnsafeBytes { request in
            out.withUnsafeMutableBytes { query.answer(mac: F.ownerMAC, request: request.baseAddress!, to: $0.baseAddress!) }
        }
        #expect(out[n...].allSatisfy { $0 == 0xA5 }, "nothing written past the answer")
        return Array(out[..<n])
    }

    @Test func arpViewReadsEveryField() throws {
        let frame = F.arpRequest()
        try frame.withUnsafeBytes { raw in
            let arp = try #require(ARPPacket(raw.baseAddress! + 14, length: frame.count - 14))
            #expect(arp.operation == ARPPacket.request)
            #expect(arp.senderMAC == MACAddress(0x02, 0, 0, 0, 0, 0x01))
            #expect(arp.senderIP == IPAddress("10.0.1.1"))
            #expect(arp.targetMAC == .zero)
            #expect(arp.targetIP == IPAddress("10.0.1.2"))
            #expect(ARPPacket(raw.baseAddress! + 14, length: 27) == nil, "27 bytes is one short")
        }
    }

    @Test func arpReplyByteForByte() {
        #expect(answer(F.arpRequest()) == F.arpReply())
    }

    @Test func arpReplyKeepsTheVLANTag() {
        let tag: [UInt8] = [0x81, 0x00, 0x00, 0x64]
        #expect(answer(F.arpRequest(vlan: tag)) == F.arpReply(vlan: tag))
        let qinq: [UInt8] = [0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x64]
        #expect(answer(F.arpRequest(vlan: qinq)) == F.arpReply(vlan: qinq))
    }

    @Test func neighbourAdvertisementByteForByte() {
        #expect(answer(F.solicitation()) == F.advertisement())
    }

    @Test func neighbourAdvertisementKeepsTheVLANTag() {
        let tag: [UInt8] = [0x81, 0x00, 0x00, 0x07]
        #expect(answer(F.solicitation(vlan: tag)) == F.advertisement(vlan: tag))
    }

    @Test func advertisementChecksumVerifies() {
        let na = F.advertisement()
        na.withUnsafeBytes { raw in
            let ip = raw.baseAddress! + 14
            let pseudo = InternetChecksum.pseudoHeaderSum(addresses: ip + 8, addressSize: 16, protocol: 58, length: 32)
            #expect(InternetChecksum.fold(InternetChecksum.sum(ip + 40, count: 32, initial: pseudo)) == 0xFFFF)
        }
    }

    @Test func whatIsNotAQuestion() {
        func isOther(_ frame: [UInt8]) -> Bool {
            if case .other = classify(frame) { return true }
            return false
        }
        #expect(isOther(F.arpRequest(operation: 2)), "a reply")
        #expect(isOther(F.arpRequest(target: [10, 0, 1, 1])), "gratuitous ARP (sender == target)")
        #expect(isOther(F.arpRequest(sender: [0, 0, 0, 0])), "an ARP probe (RFC 5227)")
        var udp = F.solicitation()
        udp[14 + 6] = 17
        #expect(isOther(udp), "IPv6, not ICMPv6")
        var echo = F.solicitation()
        echo[14 + 40] = 128
        #expect(isOther(echo), "ICMPv6 echo request")
        var dad = F.solicitation()
        for k in 0..<16 { dad[14 + 8 + k] = 0 }
        dad.removeLast(8)  // DAD carries no source link-layer address option
        dad[14 + 5] = 24
        #expect(isOther(fixChecksum(dad)), "duplicate address detection (unspecified source)")
        #expect(isOther([UInt8](repeating: 0, count: 14)))
    }

    @Test func whatIsUnanswerable() {
        func isUnanswerable(_ frame: [UInt8]) -> Bool {
            if case .unanswerable = classify(frame) { return true }
            return false
        }
        #expect(isUnanswerable(Array(F.arpRequest().prefix(14 + 27))), "truncated ARP")
        #expect(isUnanswerable(F.arpRequest(hardwareLength: 8)), "not Ethernet/IPv4 ARP")
        #expect(isUnanswerable(F.arpRequest(target: [224, 0, 0, 1])), "a multicast target")
        #expect(isUnanswerable(F.solicitation(hopLimit: 64)), "hop limit not 255 (RFC 4861 §7.1.1)")
        #expect(isUnanswerable(F.solicitation(checksum: [0x1c, 0x28])), "bad checksum")
        #expect(isUnanswerable(Array(F.solicitation().dropLast(1))), "payload length beyond the frame")
        var zeroOption = F.solicitation()
        zeroOption[zeroOption.count - 7] = 0
        #expect(isUnanswerable(fixChecksum(zeroOption)), "an option of length 0")
    }

    @Test func queryFields() throws {
        guard case .query(let q) = classify(F.solicitation()) else {
            Issue.record("not a query")
            return
        }
        #expect(q.kind == .neighbourSolicitation)
        #expect(q.target == IPAddress("2001:db8::2"))
        #expect(q.requesterIP == IPAddress("2001:db8::1"))
        #expect(q.requesterMAC == MACAddress(0x02, 0, 0, 0, 0, 0x01))
        #expect(q.payload == 14)
    }

    /// Recomputes an untagged solicitation's ICMPv6 checksum after a test changed it.
    func fixChecksum(_ frame: [UInt8]) -> [UInt8] {
        var f = frame
        f.withUnsafeMutableBytes { raw in
            let ip = raw.baseAddress! + 14
            let length = Int(raw[14 + 4]) << 8 | Int(raw[14 + 5])
            ICMPv6.fillChecksum(packet: ip, icmpLength: length)
        }
        return f
    }
}

@Suite("Stable MAC")
struct StableMACTests {
    @Test func sipHashReferenceVector() {
        // Aumasson and Bernstein, SipHash paper appendix A: key 00..0f, message 00..0e.
        #expect(SipHash24.hash(Array(0..<15), key: Array(0..<16)) == 0xa129_ca61_49be_45e5)
    }

    @Test func derivedFromMachineIDAndVNI() throws {
        let id = try #require(StableMAC.machineID("0123456789abcdef0123456789abcdef\n"))
        // Expected values computed independently (Python) from the documented recipe.
        #expect(StableMAC.derive(seed: id, vni: VNI(unchecked: 42)) == MACAddress("96:08:19:f7:a6:65"))
        #expect(StableMAC.derive(seed: Array("myhost".utf8), vni: VNI(unchecked: 1)) == MACAddress("76:c2:a3:e6:71:60"))
    }

    @Test func unicastLocallyAdministeredAndDistinct() throws {
        let id = try #require(StableMAC.machineID("0123456789ABCDEF0123456789abcdef"))
        var seen = Set<MACAddress>()
        for vni in [1, 2, 42, 4096, 4098, 0xFFFFFF] as [UInt32] {
            let mac = StableMAC.derive(seed: id, vni: VNI(unchecked: vni))
            #expect(!mac.isMulticast)
            #expect(mac.rawValue & 0x0200_0000_0000 != 0, "locally administered")
            #expect(mac == StableMAC.derive(seed: id, vni: VNI(unchecked: vni)), "stable")
            seen.insert(mac)
        }
        #expect(seen.count == 6)
        let other = try #require(StableMAC.machineID("fedcba9876543210fedcba9876543210"))
        #expect(StableMAC.derive(seed: other, vni: VNI(unchecked: 42)) != StableMAC.derive(seed: id, vni: VNI(unchecked: 42)))
    }

    @Test func machineIDParsing() {
        #expect(StableMAC.machineID("") == nil)
        #expect(StableMAC.machineID("uninitialized\n") == nil)
        #expect(StableMAC.machineID(String(repeating: "0", count: 32)) == nil)
        #expect(StableMAC.machineID(String(repeating: "g", count: 32)) == nil)
        #expect(StableMAC.machineID(String(repeating: "a", count: 31)) == nil)
        #expect(StableMAC.machineID(" " + String(repeating: "a", count: 32) + "\n")?.count == 16)
    }
}
