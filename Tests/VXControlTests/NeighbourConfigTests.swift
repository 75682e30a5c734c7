// The config keys of issue #13 (MAC/IP entries, ARP/ND suppression, the TAP's MAC, PMTU
// signalling): parsed into the model, defaults, and every rule with its key, line and reason.
import Testing
import VXWire

@testable import VXControl

@Suite struct NeighbourConfigTests {
    /// A one-network config with `lines` added to the network (first added line is line 6).
    func yaml(_ lines: String...) -> String { yamlLines(lines) }

    func yamlLines(_ lines: [String]) -> String {
        "underlay:\n  local: 10.0.0.1\nnetworks:\n  - vni: 42\n    tap: vx42\n" + lines.map { "    " + $0 + "\n" }.joined()
    }

    func error(_ text: String) -> ConfigError? {
        do {
            _ = try ConfigLoader.parse(yaml: text)
            return nil
        } catch {
            return error
        }
    }

    func expectError(
        _ text: String, path: String, line: Int, reason: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard let error = error(text) else {
            Issue.record("expected an error at \(path)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.path == path, "\(error)", sourceLocation: sourceLocation)
        #expect(error.line == line, "\(error)", sourceLocation: sourceLocation)
        #expect(error.reason.contains(reason), "\(error)", sourceLocation: sourceLocation)
    }

    @Test func defaults() throws {
        let net = try ConfigLoader.parse(yaml: yaml()).networks[0]
        #expect(net.mac == nil)
        #expect(net.arpSuppression)
        #expect(net.pmtuSignal)
    }

    @Test func everyKeyParses() throws {
        let config = try ConfigLoader.parse(
            yaml: yaml(
                "mac: \"02:11:22:33:44:55\"", "arp_suppression: false", "pmtu_signal: false", "fdb:",
                "  - { mac: \"02:00:00:00:00:02\", remote: 10.0.0.2, ips: [10.0.1.2, \"2001:db8::2\"] }",
                "  - { mac: \"02:00:00:00:00:03\", remote: 10.0.0.3 }"))
        let net = config.networks[0]
        #expect(net.mac == MACAddress("02:11:22:33:44:55"))
        #expect(!net.arpSuppression)
        #expect(!net.pmtuSignal)
        #expect(
            net.fdb == [
                StaticFDBEntry(
                    mac: MACAddress("02:00:00:00:00:02")!, remote: IPAddress("10.0.0.2")!,
                    ips: [IPAddress("10.0.1.2")!, IPAddress("2001:db8::2")!]),
                StaticFDBEntry(mac: MACAddress("02:00:00:00:00:03")!, remote: IPAddress("10.0.0.3")!),
            ])
    }

    @Test func theTapMAC() {
        expectError(yaml("mac: 02:11:22"), path: "networks[0].mac", line: 6, reason: "is not a MAC address")
        expectError(yaml("mac: \"01:00:5e:00:00:01\""), path: "networks[0].mac", line: 6, reason: "multicast")
        expectError(yaml("mac: \"ff:ff:ff:ff:ff:ff\""), path: "networks[0].mac", line: 6, reason: "broadcast")
        expectError(yaml("mac: \"00:00:00:00:00:00\""), path: "networks[0].mac", line: 6, reason: "all-zero")
        expectError(yaml("arp_suppression: yes"), path: "networks[0].arp_suppression", line: 6, reason: "true or false")
        expectError(yaml("pmtu_signal: 1"), path: "networks[0].pmtu_signal", line: 6, reason: "true or false")
    }

    @Test func entryIPs() {
        func fdb(_ entries: String...) -> String { yamlLines(["fdb:"] + entries.map { "  - " + $0 }) }
        expectError(
            fdb("{ mac: \"02:00:00:00:00:02\", remote: 10.0.0.2, ips: [10.0.1] }"), path: "networks[0].fdb[0].ips[0]",
            line: 7, reason: "\"10.0.1\" is not an IP address")
        expectError(
            fdb("{ mac: \"02:00:00:00:00:02\", remote: 10.0.0.2, ips: 10.0.1.2 }"), path: "networks[0].fdb[0].ips",
            line: 7, reason: "expected a list of IP addresses")
        expectError(
            fdb("{ mac: \"02:00:00:00:00:02\", remote: 10.0.0.2, ips: [224.0.0.1] }"),
            path: "networks[0].fdb[0].ips[0]", line: 7, reason: "multicast")
        expectError(
            fdb("{ mac: \"02:00:00:00:00:02\", remote: 10.0.0.2, ips: [\"::\"] }"), path: "networks[0].fdb[0].ips[0]",
            line: 7, reason: "unspecified")
        expectError(
            fdb("{ mac: \"02:00:00:00:00:02\", remote: 10.0.0.2, ips: [127.0.0.1] }"),
            path: "networks[0].fdb[0].ips[0]", line: 7, reason: "loopback")
        expectError(
            fdb(
                "{ mac: \"02:00:00:00:00:02\", remote: 10.0.0.2, ips: [10.0.1.2] }",
                "{ mac: \"02:00:00:00:00:03\", remote: 10.0.0.2, ips: [10.0.1.3, 10.0.1.2] }"),
            path: "networks[0].fdb[1].ips[1]", line: 8, reason: "10.0.1.2 is already listed as fdb[0].ips[0]")
        expectError(
            yaml("max_entries: 2", "fdb:", "  - { mac: \"02:00:00:00:00:02\", remote: 10.0.0.2, ips: [10.0.1.2, 10.0.1.3, 10.0.1.4] }"),
            path: "networks[0].fdb", line: 7, reason: "3 fdb ips exceed max_entries (2)")
        expectError(
            fdb("{ mac: \"02:00:00:00:00:02\", remote: 10.0.0.2, ip: [10.0.1.2] }"), path: "networks[0].fdb[0].ip",
            line: 7, reason: "allowed: mac, remote, ips")
    }

    @Test func theSameRulesWithoutLines() {
        var config = RouterConfig(
            underlay: UnderlayConfig(local: IPAddress("10.0.0.1")!),
            networks: [NetworkConfig(vni: VNI(42)!, tap: "vx42")])
        config.networks[0].mac = .broadcast
        #expect(throws: ConfigError.self) { try config.validate() }
        config.networks[0].mac = MACAddress("02:00:00:00:00:01")
        config.networks[0].fdb = [
            StaticFDBEntry(mac: MACAddress("02:00:00:00:00:02")!, remote: IPAddress("10.0.0.2")!, ips: [IPAddress("0.0.0.0")!])
        ]
        do {
            try config.validate()
            Issue.record("an unspecified entry address validated")
        } catch {
            #expect(error.path == "networks[0].fdb[0].ips[0]")
        }
    }
}
