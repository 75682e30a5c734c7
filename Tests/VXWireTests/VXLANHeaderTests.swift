import Testing

@testable import VXWire

@Suite("VXLANHeader and UDPHeader")
struct VXLANHeaderTests {
    /// RFC 7348 §5 with VNI 42: I flag set, every reserved bit zero.
    static let vni42: [UInt8] = [0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, 0x00]

    func decode(_ bytes: [UInt8]) -> Result<VNI, VXLANHeader.DecodeError> {
        bytes.withUnsafeBytes { VXLANHeader.decode($0) }
    }

    /// Encodes into the middle of a buffer of sentinels, so stray writes show.
    func encode(_ vni: VNI) -> (header: [UInt8], around: [UInt8]) {
        var buffer = [UInt8](repeating: 0xA5, count: 24)
        buffer.withUnsafeMutableBytes { VXLANHeader.encode(vni: vni, to: $0.baseAddress! + 8) }
        return (Array(buffer[8..<16]), Array(buffer[0..<8] + buffer[16...]))
    }

    @Test func encodesTheFixture() throws {
        let (header, around) = encode(try #require(VNI(42 as UInt32)))
        #expect(header == Self.vni42)
        #expect(around.allSatisfy { $0 == 0xA5 })
        #expect(VXLANHeader.size == 8)
    }

    @Test func decodesTheFixture() {
        #expect(decode(Self.vni42) == .success(VNI(unchecked: 42)))
        // Trailing bytes (the inner frame) are not the header's business.
        #expect(decode(Self.vni42 + [0xff, 0xff, 0xff]) == .success(VNI(unchecked: 42)))
    }

    @Test func truncated() {
        #expect(decode(Array(Self.vni42.prefix(7))) == .failure(.truncated))
        #expect(decode([0x08]) == .failure(.truncated))
        #expect(decode([]) == .failure(.truncated))
        #expect(VXLANHeader.decode(UnsafeRawBufferPointer(start: nil, count: 0)) == .failure(.truncated))
    }

    @Test func iFlagClearIsRejected() {
        var bytes = Self.vni42
        bytes[0] = 0x00
        #expect(decode(bytes) == .failure(.flagIClear))
        bytes[0] = 0xF7  // every flag but I
        #expect(decode(bytes) == .failure(.flagIClear))
    }

    @Test func reservedBitsAreIgnored() {
        // Every reserved bit set (flags 0xFF, the three reserved bytes, the trailing byte).
        let noisy: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x2a, 0xFF]
        #expect(decode(noisy) == .success(VNI(unchecked: 42)))
        let gpeStyle: [UInt8] = [0x0C, 0x00, 0x00, 0x03, 0x12, 0x34, 0x56, 0x01]
        #expect(decode(gpeStyle) == .success(VNI(unchecked: 0x12_3456)))
    }

    @Test("round trips", arguments: [0 as UInt32, 1, 42, 0x80, 0xFF, 0x100, 0x1_0000, 0x80_0000, 0xAB_CDEF, 0xFF_FFFF])
    func roundTrips(value: UInt32) throws {
        let vni = try #require(VNI(value))
        let (header, _) = encode(vni)
        #expect(header[0] == 0x08)
        #expect(header[1...3].allSatisfy { $0 == 0 })
        #expect(header[7] == 0)
        #expect(header[4...6].elementsEqual([UInt8(value >> 16), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]))
        #expect(decode(header) == .success(vni))
    }

    @Test func maxVNI() throws {
        let (header, _) = encode(try #require(VNI(0xFF_FFFF as UInt32)))
        #expect(header == [0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0x00])
        #expect(decode(header) == .success(VNI(unchecked: 0xFF_FFFF)))
    }

    @Test func overheadPerFamily() {
        #expect(VXLANHeader.overhead(for: .v4) == 36)
        #expect(VXLANHeader.overhead(for: .v6) == 56)
    }

    @Test func udpHeaderFixture() {
        var buffer = [UInt8](repeating: 0xEE, count: 12)  // garbage where the checksum goes
        buffer.withUnsafeMutableBytes {
            UDPHeader.encode(sourcePort: 49152, destinationPort: 4789, payloadLength: 100, to: $0.baseAddress! + 2)
        }
        #expect(buffer == [0xEE, 0xEE, 0xc0, 0x00, 0x12, 0xb5, 0x00, 0x6c, 0x00, 0x00, 0xEE, 0xEE])
        #expect(UDPHeader.size == 8)
    }

    @Test func udpLengthCoversHeaderAndPayload() {
        var buffer = [UInt8](repeating: 0, count: 8)
        buffer.withUnsafeMutableBytes {
            UDPHeader.encode(sourcePort: 0xFFFF, destinationPort: 1, payloadLength: 8 + 1514, to: $0.baseAddress!)
        }
        #expect(buffer == [0xff, 0xff, 0x00, 0x01, 0x05, 0xfa, 0x00, 0x00])  // 8 + 8 + 1514 = 1530
    }
}
