import Testing

@testable import VXWire

@Suite("MACAddress")
struct MACAddressTests {
    @Test(
        "parses colon and dash forms in either case, formats lowercase with colons",
        arguments: [
            ("aa:bb:cc:dd:ee:ff", 0xAABB_CCDD_EEFF as UInt64),
            ("AA:BB:CC:DD:EE:FF", 0xAABB_CCDD_EEFF),
            ("aA:Bb:cC:Dd:eE:Ff", 0xAABB_CCDD_EEFF),
            ("aa-bb-cc-dd-ee-ff", 0xAABB_CCDD_EEFF),
            ("00:00:00:00:00:00", 0),
            ("02:00:5e:10:00:01", 0x0200_5E10_0001),
            ("ff:ff:ff:ff:ff:ff", 0xFFFF_FFFF_FFFF),
        ])
    func parses(text: String, raw: UInt64) throws {
        let mac = try #require(MACAddress(text))
        #expect(mac.rawValue == raw)
        #expect(mac.description == String(text.lowercased().map { $0 == "-" ? ":" : $0 }))
        #expect(MACAddress(mac.description) == mac)
    }

    @Test(
        "rejects malformed text",
        arguments: [
            "",
            "aa:bb:cc:dd:ee",  // five octets
            "aa:bb:cc:dd:ee:ff:00",  // seven octets
            "aa:bb:cc:dd:ee:fff",  // three hex digits
            "aa:bb:cc:dd:ee:f",  // one hex digit
            "aa:bb:cc:dd:ee:gg",  // not hex
            "aa:bb:cc:dd:ee:ff:",  // trailing separator
            ":aa:bb:cc:dd:ee",
            "aa:bb:cc:dd::ff",
            "aa-bb:cc:dd:ee:ff",  // mixed separators
            "aa.bb.cc.dd.ee.ff",
            "aabbccddeeff",
            " aa:bb:cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:ff ",
            // `UInt8(_:radix:)` alone would take a sign: "+a" is 10, "-0" is 0.
            "+a:bb:cc:dd:ee:ff", "-0:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:+f", "aa-bb-cc-dd-ee-+f",
            "ａa:bb:cc:dd:ee:ff",  // fullwidth hex digit
        ])
    func rejects(text: String) {
        #expect(MACAddress(text) == nil)
    }

    @Test func rawValueIsLimitedTo48Bits() {
        #expect(MACAddress(rawValue: 0xFFFF_FFFF_FFFF) == .broadcast)
        #expect(MACAddress(rawValue: 0x1_0000_0000_0000) == nil)
        #expect(MACAddress(unchecked: 0xABCD_0011_2233_4455).rawValue == 0x0011_2233_4455)
    }

    @Test func octetInitialiserAndOctets() {
        let mac = MACAddress(0x02, 0x42, 0xac, 0x11, 0x00, 0x02)
        #expect(mac.rawValue == 0x0242_AC11_0002)
        #expect(mac.octets == [0x02, 0x42, 0xac, 0x11, 0x00, 0x02])
        #expect(mac.description == "02:42:ac:11:00:02")
    }

    @Test func multicastBroadcastZero() throws {
        #expect(MACAddress.broadcast.isMulticast)
        #expect(MACAddress.broadcast.description == "ff:ff:ff:ff:ff:ff")
        #expect(try #require(MACAddress("01:00:5e:00:00:fb")).isMulticast)  // IPv4 multicast
        #expect(try #require(MACAddress("33:33:00:00:00:01")).isMulticast)  // IPv6 multicast
        #expect(try #require(MACAddress("03:00:00:00:00:00")).isMulticast)  // group + local bits
        #expect(try #require(MACAddress("02:00:00:00:00:01")).isMulticast == false)  // local unicast
        #expect(try #require(MACAddress("00:00:5e:00:01:01")).isMulticast == false)
        #expect(try #require(MACAddress("fe:ff:ff:ff:ff:ff")).isMulticast == false)
        #expect(MACAddress.zero.isZero)
        #expect(MACAddress.zero.isMulticast == false)
        #expect(MACAddress.broadcast.isZero == false)
    }

    @Test func loadsAndStoresAtUnalignedOffsets() {
        let mac = MACAddress(0xde, 0xad, 0xbe, 0xef, 0x01, 0x23)
        for offset in 0..<8 {
            var bytes = [UInt8](repeating: 0x55, count: 20)
            bytes.withUnsafeMutableBytes { mac.store(to: $0.baseAddress!, at: offset) }
            var expected = [UInt8](repeating: 0x55, count: 20)
            expected.replaceSubrange(offset..<offset + 6, with: [0xde, 0xad, 0xbe, 0xef, 0x01, 0x23])
            #expect(bytes == expected, "offset \(offset)")
            let loaded = bytes.withUnsafeBytes { MACAddress(loadingFrom: $0.baseAddress!, at: offset) }
            #expect(loaded == mac, "offset \(offset)")
        }
    }

    @Test func ethernetAccessorsReadInNetworkOrder() {
        let frame: [UInt8] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x02, 0x00, 0x00, 0x00, 0x00, 0x07,
            0x08, 0x06,
        ]
        frame.withUnsafeBytes { raw in
            #expect(EthernetFrame.destination(raw.baseAddress!) == .broadcast)
            #expect(EthernetFrame.source(raw.baseAddress!) == MACAddress(0x02, 0, 0, 0, 0, 0x07))
            #expect(EthernetFrame.etherType(raw.baseAddress!) == EthernetFrame.etherTypeARP)
        }
    }

    @Test func ordersByValue() throws {
        let a = try #require(MACAddress("00:00:00:00:00:01"))
        let b = try #require(MACAddress("00:00:00:00:01:00"))
        #expect(a < b)
        #expect([b, MACAddress.broadcast, a].sorted() == [a, b, .broadcast])
    }
}

@Suite("VNI")
struct VNITests {
    @Test func acceptsTheWhole24BitRange() throws {
        #expect(try #require(VNI(0 as UInt32)).rawValue == 0)
        #expect(try #require(VNI(16_777_215 as UInt32)).rawValue == 0xFF_FFFF)
        #expect(try #require(VNI(0 as Int)).rawValue == 0)
        #expect(try #require(VNI(16_777_215 as Int)).rawValue == 16_777_215)
        #expect(VNI.max == 16_777_215)
    }

    @Test func rejectsOutOfRange() {
        #expect(VNI(16_777_216 as UInt32) == nil)
        #expect(VNI(UInt32.max) == nil)
        #expect(VNI(16_777_216 as Int) == nil)
        #expect(VNI(-1 as Int) == nil)
        #expect(VNI(Int.min) == nil)
        #expect(VNI(Int.max) == nil)
    }

    @Test func uncheckedMasksTo24Bits() {
        #expect(VNI(unchecked: 0x1234_5678).rawValue == 0x34_5678)
        #expect(VNI(unchecked: 42).rawValue == 42)
    }

    @Test func describesAndOrders() throws {
        #expect(try #require(VNI(42 as Int)).description == "42")
        #expect(try #require(VNI(1 as Int)) < (try #require(VNI(2 as Int))))
    }
}
