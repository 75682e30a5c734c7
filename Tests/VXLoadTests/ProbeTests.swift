// The probe and the frames that carry it, both ways, with byte fixtures.
import Testing
import VXWire

@testable import vxload

@Suite("Probe frames")
struct ProbeTests {
    @Test("a probe encodes to its 22 documented bytes and back")
    func probeBytes() {
        let probe = Probe(runID: 0x1234, flow: 7, sequence: 0x0102_0304_0506_0708, timestamp: 0x1122_3344_5566_7788)
        var bytes = [UInt8](repeating: 0, count: Probe.size)
        bytes.withUnsafeMutableBytes { probe.write(to: $0.baseAddress!) }
        #expect(
            bytes == [
                0x76, 0x78, 0x12, 0x34, 0x00, 0x07, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
            ])
        let back = bytes.withUnsafeBytes { Probe.read(from: $0.baseAddress!) }
        #expect(back == probe)
    }

    @Test("bytes without the magic are not a probe")
    func noMagic() {
        var bytes = [UInt8](repeating: 0, count: Probe.size)
        bytes[0] = 0x76
        bytes[1] = 0x79
        #expect(bytes.withUnsafeBytes { Probe.read(from: $0.baseAddress!) } == nil)
    }

    static let flow = FlowAddress(
        id: 3, source: MACAddress(0x02, 0x76, 0x78, 0x01, 0x00, 0x03),
        destination: MACAddress(0x02, 0x76, 0x78, 0x02, 0x00, 0x00), sourceIP: 0xC613_C801,
        destinationIP: 0xC613_C802, sourcePort: 1027, destinationPort: 9, vni: VNI(unchecked: 42))

    static let probe = Probe(runID: 0xBEEF, flow: 3, sequence: 5, timestamp: 1_000_000_007)

    /// The 64-byte frame for `flow` and `probe`, byte by byte.
    static let fixture: [UInt8] = [
        // Ethernet: destination, source, IPv4
        0x02, 0x76, 0x78, 0x02, 0x00, 0x00, 0x02, 0x76, 0x78, 0x01, 0x00, 0x03, 0x08, 0x00,
        // IPv4: 45 00, length 50, id 5, DF, TTL 64 UDP, checksum, 198.19.200.1 → 198.19.200.2
        0x45, 0x00, 0x00, 0x32, 0x00, 0x05, 0x40, 0x00, 0x40, 0x11, 0x1E, 0x8B,
        0xC6, 0x13, 0xC8, 0x01, 0xC6, 0x13, 0xC8, 0x02,
        // UDP: 1027 → 9, length 30, checksum 0
        0x04, 0x03, 0x00, 0x09, 0x00, 0x1E, 0x00, 0x00,
        // probe
        0x76, 0x78, 0xBE, 0xEF, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 0x05,
        0, 0, 0, 0, 0x3B, 0x9A, 0xCA, 0x07,
    ]

    @Test("a probe frame is Ethernet/IPv4/UDP/probe, byte for byte")
    func frameFixture() {
        var frame = [UInt8](repeating: 0, count: 64)
        frame.withUnsafeMutableBytes {
            ProbeFrame.write(to: $0.baseAddress!, length: 64, flow: Self.flow, probe: Self.probe, ipID: 5)
        }
        #expect(frame == Self.fixture)
        // The IPv4 header checksums to zero with its checksum in place (RFC 1071).
        var sum: UInt32 = 0
        for i in stride(from: 14, to: 34, by: 2) { sum += UInt32(frame[i]) << 8 | UInt32(frame[i + 1]) }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        #expect(sum == 0xFFFF)
    }

    @Test("the probe is found again in the frame, and larger frames carry the lengths")
    func findInFrame() {
        let found = Self.fixture.withUnsafeBytes { Probe.find(inFrame: $0.baseAddress!, length: $0.count) }
        #expect(found == Self.probe)

        var big = [UInt8](repeating: 0, count: 1000)
        big.withUnsafeMutableBytes {
            ProbeFrame.write(to: $0.baseAddress!, length: 1000, flow: Self.flow, probe: Self.probe, ipID: 5)
        }
        #expect(Int(big[16]) << 8 | Int(big[17]) == 986)  // IPv4 total length
        #expect(Int(big[38]) << 8 | Int(big[39]) == 966)  // UDP length
        #expect(big.withUnsafeBytes { Probe.find(inFrame: $0.baseAddress!, length: $0.count) } == Self.probe)
    }

    @Test("frames that are not IPv4/UDP probes, or are cut short, are ignored", arguments: [
        (12, 0x86, "IPv6 ethertype"),
        (14, 0x46, "IPv4 options longer than the frame holds the probe"),
        (23, 6, "TCP"),
        (21, 0x01, "a later fragment"),
        (42, 0x00, "no magic"),
    ])
    func notProbes(offset: Int, value: UInt8, _ what: String) {
        var frame = Self.fixture
        frame[offset] = value
        if offset == 14 { frame += [UInt8](repeating: 0, count: 2) }  // IHL 6: 4 more bytes, only 2 there
        #expect(frame.withUnsafeBytes { Probe.find(inFrame: $0.baseAddress!, length: $0.count) } == nil, "\(what)")
        let short = Array(Self.fixture.prefix(63))
        #expect(short.withUnsafeBytes { Probe.find(inFrame: $0.baseAddress!, length: $0.count) } == nil)
    }

    @Test("flows get their own source port and MACs in turn")
    func flowPlan() throws {
        var plan = FlowPlan()
        plan.flows = 70_000 - 5_000
        plan.sourceMACs = 2
        plan.destinationMACs = 3
        plan.vnis = 4
        plan.baseVNI = 100
        try plan.validate()
        let f5 = plan.address(of: 5)
        #expect(f5.sourcePort == 1029)
        #expect(f5.source == MACAddress(0x02, 0x76, 0x78, 0x01, 0x00, 0x01))
        #expect(f5.destination == MACAddress(0x02, 0x76, 0x78, 0x02, 0x00, 0x02))
        #expect(f5.vni.rawValue == 101)
        // Past the last source port, the source address moves on instead.
        let far = plan.address(of: FlowPlan.sourcePorts + 1)
        #expect(far.sourcePort == 1025)
        #expect(far.sourceIP == plan.sourceIP + 1)

        plan.flows = 65_536  // flow id 0xFFFF is the end marker
        #expect(throws: LoadError.self) { try plan.validate() }
        plan.flows = 1
        plan.baseVNI = 0xFF_FFFF
        plan.vnis = 2
        #expect(throws: LoadError.self) { try plan.validate() }
    }
}
