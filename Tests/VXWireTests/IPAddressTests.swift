import Testing

@testable import VXWire

@Suite("IPAddress")
struct IPAddressTests {
    // MARK: IPv4

    @Test(
        "parses dotted quads",
        arguments: [
            ("0.0.0.0", 0 as UInt32),
            ("1.2.3.4", 0x0102_0304),
            ("192.0.2.1", 0xC000_0201),
            ("10.0.0.255", 0x0A00_00FF),
            ("255.255.255.255", 0xFFFF_FFFF),
        ])
    func parsesV4(text: String, value: UInt32) throws {
        let address = try #require(IPAddress(text))
        #expect(address.family == .v4)
        #expect(address.isV4)
        #expect(address.v4Value == value)
        #expect(address.high == 0)
        #expect(address.description == text)
        #expect(IPAddress(address.description) == address)
    }

    @Test(
        "rejects malformed IPv4",
        arguments: [
            "", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "1.2.3.00", "256.1.1.1", "1.2.3.256", "1000.1.1.1",
            "1..3.4", ".1.2.3", "1.2.3.", "1.2.3.4.", "a.b.c.d", "1.2.3.-4", "+1.2.3.4", "1.2.3.4 ", " 1.2.3.4",
            "1.2.3.0x4", "1.2.3.٤",
        ])
    func rejectsV4(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func parsesFromSubstring() throws {
        let text = "address=192.0.2.7"
        let address = try #require(IPAddress(text.split(separator: "=")[1]))
        #expect(address == IPAddress(v4: 0xC000_0207))
    }

    // MARK: IPv6

    @Test(
        "parses IPv6 text",
        arguments: [
            ("::", 0 as UInt64, 0 as UInt64),
            ("::1", 0, 1),
            ("1::", 0x0001_0000_0000_0000, 0),
            ("2001:db8::1", 0x2001_0DB8_0000_0000, 1),
            ("2001:DB8::1", 0x2001_0DB8_0000_0000, 1),
            ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", 0x2001_0DB8_85A3_0000, 0x0000_8A2E_0370_7334),
            ("2001:db8:85a3:0:0:8a2e:370:7334", 0x2001_0DB8_85A3_0000, 0x0000_8A2E_0370_7334),
            ("::ffff:1.2.3.4", 0, 0x0000_FFFF_0102_0304),
            ("::1.2.3.4", 0, 0x0000_0000_0102_0304),
            ("64:ff9b::192.0.2.33", 0x0064_FF9B_0000_0000, 0x0000_0000_C000_0221),
            ("1:2:3:4:5:6:7:8", 0x0001_0002_0003_0004, 0x0005_0006_0007_0008),
            ("1:2:3:4:5:6:1.2.3.4", 0x0001_0002_0003_0004, 0x0005_0006_0102_0304),
            ("1:2:3:4:5:6:7::", 0x0001_0002_0003_0004, 0x0005_0006_0007_0000),
            ("::2:3:4:5:6:7:8", 0x0000_0002_0003_0004, 0x0005_0006_0007_0008),
            ("fe80::1:2", 0xFE80_0000_0000_0000, 0x0000_0000_0001_0002),
            ("ff02::1", 0xFF02_0000_0000_0000, 1),
        ])
    func parsesV6(text: String, high: UInt64, low: UInt64) throws {
        let address = try #require(IPAddress(text))
        #expect(address.family == .v6)
        #expect(!address.isV4)
        #expect(address.high == high)
        #expect(address.low == low)
        #expect(IPAddress(address.description) == address, "\(address) does not reparse")
    }

    @Test(
        "rejects malformed IPv6",
        arguments: [
            "1::2::3", "::1::", "12345::", "::12345", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::8", ":::", "1:::2", ":1::", "1::2:", ":", "1:", ":1", "::g",
            "2001:db8::1::", "g::", "::1.2.3", "::1.2.3.4.5", "::01.2.3.4", "::256.1.1.1", "1.2.3.4::",
            "::1.2.3.4:5", "::1.2.3.4:ffff", "1:2:3:4:5:6:7:1.2.3.4", "[::1]", "::1/64", "::1%eth0", " ::1",
            // `UInt16(_:radix:)` alone would take a sign.
            "+1::", "::+1", "-0::1", "2001:db8::+ff", "::ｆ",
        ])
    func rejectsV6(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test(
        "formats IPv6 per RFC 5952",
        arguments: [
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("0:0:0:0:0:0:0:1", "::1"),
            ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("2001:DB8::ABCD:EF", "2001:db8::abcd:ef"),  // lowercase
            ("2001:db8:0:0:0:0:2:1", "2001:db8::2:1"),
            ("2001:0db8:0001:0000:0000:0000:0000:0001", "2001:db8:1::1"),  // leading zeros dropped
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // a lone zero group stays
            ("1:2:3:4:5:6::7", "1:2:3:4:5:6:0:7"),
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),  // the longest run wins
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  // on a tie, the first
            ("0:0:1:0:0:0:1:0", "0:0:1::1:0"),
            ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
            ("0:0:0:0:1:0:0:0", "::1:0:0:0"),
            ("1:0:0:0:0:0:0:0", "1::"),
            ("fe80:0:0:0:0:0:0:0", "fe80::"),
            ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:db8:85a3::8a2e:370:7334"),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ])
    func formatsV6(text: String, expected: String) throws {
        let address = try #require(IPAddress(text))
        #expect(address.description == expected)
    }

    @Test func bytesRoundTrip() throws {
        let v4 = try #require(IPAddress("192.0.2.1"))
        #expect(v4.bytes == [192, 0, 2, 1])
        #expect(IPAddress(bytes: v4.bytes) == v4)
        let v6 = try #require(IPAddress("2001:db8::102:304"))
        #expect(v6.bytes == [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])
        #expect(IPAddress(bytes: v6.bytes) == v6)
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
        #expect(IPAddress(bytes: [UInt8](repeating: 0, count: 5)) == nil)
        #expect(IPAddress(bytes: []) == nil)
    }

    @Test func familyMatters() throws {
        // 0.0.0.1 and ::1 hold the same words but are different addresses.
        let v4 = try #require(IPAddress("0.0.0.1"))
        let v6 = try #require(IPAddress("::1"))
        #expect(v4 != v6)
        #expect(v4 < v6)
        #expect(Set([v4, v6]).count == 2)
    }

    @Test func multicastAndUnspecified() throws {
        #expect(try #require(IPAddress("239.1.1.1")).isMulticast)
        #expect(try #require(IPAddress("224.0.0.1")).isMulticast)
        #expect(try #require(IPAddress("223.255.255.255")).isMulticast == false)
        #expect(try #require(IPAddress("240.0.0.1")).isMulticast == false)
        #expect(try #require(IPAddress("ff02::1")).isMulticast)
        #expect(try #require(IPAddress("fe80::1")).isMulticast == false)
        #expect(try #require(IPAddress("0.0.0.0")).isUnspecified)
        #expect(try #require(IPAddress("::")).isUnspecified)
        #expect(try #require(IPAddress("::1")).isUnspecified == false)
    }
}

@Suite("IPPrefix")
struct IPPrefixTests {
    func address(_ text: String) -> IPAddress { IPAddress(text)! }

    @Test func parsesAndDescribes() throws {
        let p = try #require(IPPrefix("192.168.42.1/24"))
        #expect(p.address == address("192.168.42.1"))
        #expect(p.length == 24)
        #expect(p.description == "192.168.42.1/24")
        #expect(try #require(IPPrefix("10.0.0.1")).length == 32)
        #expect(try #require(IPPrefix("2001:db8::1")).length == 128)
        #expect(try #require(IPPrefix("2001:db8::/32")).description == "2001:db8::/32")
        #expect(try #require(IPPrefix("0.0.0.0/0")).length == 0)
        #expect(try #require(IPPrefix("::/0")).length == 0)
    }

    @Test(
        "rejects malformed prefixes",
        arguments: [
            "", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8", "10.0.0.0/x",
            "10.0.0.0/ 8", "::/129", "::/", "2001:db8::/64/1", "10.0.0/8", "01.0.0.0/8",
        ])
    func rejects(text: String) {
        #expect(IPPrefix(text) == nil)
    }

    @Test func memberwiseBounds() {
        let v4 = IPAddress(v4: 0)
        let v6 = IPAddress(v6High: 0, low: 0)
        #expect(IPPrefix(address: v4, length: 32) != nil)
        #expect(IPPrefix(address: v4, length: 33) == nil)
        #expect(IPPrefix(address: v4, length: -1) == nil)
        #expect(IPPrefix(address: v6, length: 128) != nil)
        #expect(IPPrefix(address: v6, length: 129) == nil)
    }

    @Test func containsV4() throws {
        let any = try #require(IPPrefix("0.0.0.0/0"))
        #expect(any.contains(address("0.0.0.0")))
        #expect(any.contains(address("255.255.255.255")))
        #expect(any.contains(address("::")) == false)

        let net = try #require(IPPrefix("192.168.42.7/24"))  // host bits in the prefix are ignored
        #expect(net.contains(address("192.168.42.0")))
        #expect(net.contains(address("192.168.42.255")))
        #expect(net.contains(address("192.168.43.0")) == false)
        #expect(net.contains(address("192.168.41.255")) == false)

        let host = try #require(IPPrefix("198.51.100.9/32"))
        #expect(host.contains(address("198.51.100.9")))
        #expect(host.contains(address("198.51.100.8")) == false)
        #expect(host.contains(address("198.51.100.10")) == false)

        let odd = try #require(IPPrefix("10.0.0.0/9"))
        #expect(odd.contains(address("10.127.255.255")))
        #expect(odd.contains(address("10.128.0.0")) == false)

        let one = try #require(IPPrefix("128.0.0.0/1"))
        #expect(one.contains(address("200.1.1.1")))
        #expect(one.contains(address("127.255.255.255")) == false)
    }

    @Test func containsV6() throws {
        let any = try #require(IPPrefix("::/0"))
        #expect(any.contains(address("ffff::1")))
        #expect(any.contains(address("1.2.3.4")) == false)

        let subnet = try #require(IPPrefix("2001:db8:1:2::/64"))
        #expect(subnet.contains(address("2001:db8:1:2::")))
        #expect(subnet.contains(address("2001:db8:1:2:ffff:ffff:ffff:ffff")))
        #expect(subnet.contains(address("2001:db8:1:3::")) == false)
        #expect(subnet.contains(address("2001:db8:1:1:ffff:ffff:ffff:ffff")) == false)

        let host = try #require(IPPrefix("2001:db8::1/128"))
        #expect(host.contains(address("2001:db8::1")))
        #expect(host.contains(address("2001:db8::2")) == false)
        #expect(host.contains(address("2001:db9::1")) == false)

        // Either side of the word boundary.
        let p63 = try #require(IPPrefix("2001:db8::/63"))
        #expect(p63.contains(address("2001:db8:0:1::1")))
        #expect(p63.contains(address("2001:db8:0:2::")) == false)
        let p65 = try #require(IPPrefix("2001:db8::/65"))
        #expect(p65.contains(address("2001:db8::7fff:ffff:ffff:ffff")))
        #expect(p65.contains(address("2001:db8::8000:0:0:0")) == false)
        let p32 = try #require(IPPrefix("2001:db8::/32"))
        #expect(p32.contains(address("2001:db8:ffff::")))
        #expect(p32.contains(address("2001:db9::")) == false)
    }

    @Test func familyMismatchIsNeverContained() throws {
        // ::ffff:10.0.0.1 carries an IPv4 address, but it is an IPv6 address.
        #expect(try #require(IPPrefix("10.0.0.0/8")).contains(address("::ffff:10.0.0.1")) == false)
        #expect(try #require(IPPrefix("::/96")).contains(address("0.0.0.1")) == false)
        #expect(try #require(IPPrefix("0.0.0.1/32")).contains(address("::1")) == false)
    }
}

@Suite("Endpoint")
struct EndpointTests {
    @Test func describesWithBracketsForV6() throws {
        #expect(Endpoint(address: try #require(IPAddress("192.0.2.1")), port: 4789).description == "192.0.2.1:4789")
        #expect(
            Endpoint(address: try #require(IPAddress("2001:db8::1")), port: 4789).description == "[2001:db8::1]:4789")
        #expect(Endpoint(address: try #require(IPAddress("::")), port: 0).description == "[::]:0")
    }

    @Test func equalityIncludesThePort() throws {
        let a = try #require(IPAddress("192.0.2.1"))
        #expect(Endpoint(address: a, port: 1) != Endpoint(address: a, port: 2))
        #expect(Endpoint(address: a, port: 1) == Endpoint(address: a, port: 1))
    }
}
