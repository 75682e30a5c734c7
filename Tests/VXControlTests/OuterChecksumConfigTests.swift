// `underlay.udp_checksum` and `underlay.trust_udp_checksum`: auto by default, true/false when
// given, anything else refused with its key and line, and `udp_checksum: false` refused over IPv6.
import Testing
import VXWire

@testable import VXConfig

@Suite struct OuterChecksumConfigTests {
    func underlay(_ local: String = "10.0.0.1", _ lines: String...) throws -> UnderlayConfig {
        let text =
            "underlay:\n  local: \"\(local)\"\n" + lines.map { "  " + $0 + "\n" }.joined()
            + "networks:\n  - vni: 42\n    tap: vx42\n"
        return try ConfigLoader.parse(yaml: text).underlay
    }

    @Test func defaultsAreAuto() throws {
        let config = try underlay()
        #expect(config.udpChecksum == .auto)
        #expect(config.trustUDPChecksum == .auto)
    }

    @Test func explicitValues() throws {
        let on = try underlay("10.0.0.1", "udp_checksum: true", "trust_udp_checksum: true")
        #expect(on.udpChecksum == .on && on.trustUDPChecksum == .on)
        let off = try underlay("10.0.0.1", "udp_checksum: false", "trust_udp_checksum: false")
        #expect(off.udpChecksum == .off && off.trustUDPChecksum == .off)
        let auto = try underlay("2001:db8::1", "udp_checksum: auto", "trust_udp_checksum: auto")
        #expect(auto.udpChecksum == .auto && auto.trustUDPChecksum == .auto)
        #expect(try underlay("2001:db8::1", "udp_checksum: true").udpChecksum == .on)
    }

    @Test func otherWordsAreRefusedWithKeyAndLine() {
        for key in ["udp_checksum", "trust_udp_checksum"] {
            #expect {
                _ = try underlay("10.0.0.1", "\(key): sometimes")
            } throws: { error in
                let error = error as? ConfigError
                return error?.path == "underlay.\(key)" && error?.line == 3
                    && error?.reason.contains("auto, true or false") == true
            }
        }
    }

    @Test func noZeroChecksumsOverIPv6() {
        #expect {
            _ = try underlay("2001:db8::1", "udp_checksum: false")
        } throws: { error in
            let error = error as? ConfigError
            return error?.path == "underlay.udp_checksum" && error?.line == 3
                && error?.reason.contains("IPv4 underlays only") == true
        }
    }

    /// Both are start-only keys: a reload that changes one is refused, naming it.
    @Test func changesNeedARestart() throws {
        let base = RouterConfig(
            underlay: UnderlayConfig(local: IPAddress("10.0.0.1")!),
            networks: [NetworkConfig(vni: VNI(unchecked: 42), tap: "vx42")])
        var changed = base
        changed.underlay.trustUDPChecksum = .on
        #expect(ConfigDiff.restartOnly.filter { $0.differs(base, changed) }.map(\.key) == ["underlay.trust_udp_checksum"])
        changed = base
        changed.underlay.udpChecksum = .off
        #expect(ConfigDiff.restartOnly.filter { $0.differs(base, changed) }.map(\.key) == ["underlay.udp_checksum"])
    }
}
