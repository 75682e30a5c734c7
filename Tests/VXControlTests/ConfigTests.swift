// The config loader and validator: the example files, the exact model the documented YAML makes,
// defaults, and for every rule a config that breaks it, with the key, line and reason reported.
import Foundation
import Testing
import VXWire

@testable import VXConfig
@testable import VXRouter

// MARK: - Helpers

/// The package root, from this file's path: <root>/Tests/VXControlTests/ConfigTests.swift.
private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

private func exampleFile(_ name: String) -> String { packageRoot.appendingPathComponent("Config/\(name)").path }

private func ip(_ text: String) -> IPAddress { IPAddress(text)! }
private func prefix(_ text: String) -> IPPrefix { IPPrefix(text)! }
private func mac(_ text: String) -> MACAddress { MACAddress(text)! }

/// The error `yaml` is refused with, or nil when it parses.
private func parseError(_ yaml: String) -> ConfigError? {
    do {
        _ = try ConfigLoader.parse(yaml: yaml)
        return nil
    } catch {
        return error
    }
}

private func expectError(
    _ yaml: String, path: String, line: Int? = nil, reason: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    guard let error = parseError(yaml) else {
        Issue.record("expected an error at \(path), but the config parsed", sourceLocation: sourceLocation)
        return
    }
    #expect(error.path == path, "\(error)", sourceLocation: sourceLocation)
    if let line { #expect(error.line == line, "\(error)", sourceLocation: sourceLocation) }
    #expect(error.reason.contains(reason), "\(error)", sourceLocation: sourceLocation)
}

private func expectError(
    _ config: RouterConfig, path: String, reason: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    do {
        try config.validate()
        Issue.record("expected an error at \(path), but the config validated", sourceLocation: sourceLocation)
    } catch {
        #expect(error.path == path, "\(error)", sourceLocation: sourceLocation)
        #expect(error.line == nil, "\(error)", sourceLocation: sourceLocation)
        #expect(error.reason.contains(reason), "\(error)", sourceLocation: sourceLocation)
    }
}

/// A valid one-network config, IPv4 underlay, with `lines` appended to the network (indented for
/// it). Lines 1-5 are fixed, so the first added line is line 6.
private func network(_ lines: String..., local: String = "10.0.0.1") -> String {
    """
    underlay:
      local: \(local)
    networks:
      - vni: 42
        tap: vx42

    """ + lines.map { "    " + $0 + "\n" }.joined()
}

/// A valid config with `lines` appended to the underlay mapping (first added line is line 3).
private func underlay(_ lines: String..., local: String = "10.0.0.1") -> String {
    "underlay:\n  local: \(local)\n" + lines.map { "  " + $0 + "\n" }.joined()
        + "networks:\n  - { vni: 1, tap: vx1 }\n"
}

private let documentedExample = """
    underlay:
      local: 10.0.0.1
      port: 4789
      source_ports: 49152-65535
      mtu: auto
    workers: auto
    networks:
      - vni: 42
        tap: vx42
        mtu: auto
        address: 192.168.42.1/24
        learning: true
        ageing: 300
        max_entries: 16384
        flood: [10.0.0.2, 10.0.0.3]
        allow_from: [10.0.0.0/8]
        fdb:
          - { mac: "02:00:00:00:00:02", remote: 10.0.0.2 }
    """

private let documentedConfig = RouterConfig(
    underlay: UnderlayConfig(local: ip("10.0.0.1"), port: 4789, sourcePorts: 49152...65535, mtu: nil),
    workers: nil,
    networks: [
        NetworkConfig(
            vni: VNI(42)!, tap: "vx42", mtu: nil, address: prefix("192.168.42.1/24"), learning: true, ageing: 300,
            maxEntries: 16384, flood: [ip("10.0.0.2"), ip("10.0.0.3")],
            fdb: [StaticFDBEntry(mac: mac("02:00:00:00:00:02"), remote: ip("10.0.0.2"))],
            allowFrom: [prefix("10.0.0.0/8")])
    ])

// MARK: - Valid configs

@Suite struct ValidConfigTests {
    @Test func documentedExampleParsesToTheExactModel() throws {
        #expect(try ConfigLoader.parse(yaml: documentedExample) == documentedConfig)
    }

    @Test func exampleFileLoads() throws {
        let config = try ConfigLoader.load(path: exampleFile("vxrouter.yaml"))
        #expect(config == documentedConfig)
        try config.validate()
    }

    @Test func twoVNIExampleLoads() throws {
        let config = try ConfigLoader.load(path: exampleFile("two-vnis.yaml"))
        try config.validate()
        #expect(config.underlay == UnderlayConfig(local: ip("2001:db8::1")))
        #expect(config.workers == 2)
        #expect(
            config.networks == [
                NetworkConfig(
                    vni: VNI(100)!, tap: "vx-office", address: prefix("192.168.100.1/24"),
                    flood: [ip("2001:db8::2"), ip("2001:db8::3")]),
                NetworkConfig(
                    vni: VNI(200)!, tap: "vx-storage", mtu: 1400, address: prefix("fd00:200::1/64"), learning: false,
                    ageing: 0, maxEntries: 64,
                    fdb: [
                        StaticFDBEntry(mac: mac("02:00:00:00:02:01"), remote: ip("2001:db8::2")),
                        StaticFDBEntry(mac: mac("02:00:00:00:02:02"), remote: ip("2001:db8::3")),
                    ],
                    allowFrom: [prefix("2001:db8::/64")]),
            ])
    }

    @Test func defaultsApplyWhenKeysAreOmitted() throws {
        let config = try ConfigLoader.parse(yaml: network())
        #expect(config.workers == nil)
        #expect(config.underlay.port == 4789)
        #expect(config.underlay.sourcePorts == 49152...65535)
        #expect(config.underlay.mtu == nil)
        let net = try #require(config.networks.first)
        #expect(net == NetworkConfig(vni: VNI(42)!, tap: "vx42"))
        #expect(net.mtu == nil && net.address == nil)
        #expect(net.learning == true && net.ageing == 300 && net.maxEntries == 16384)
        #expect(net.flood.isEmpty && net.fdb.isEmpty && net.allowFrom.isEmpty)
    }

    @Test func autoIsNilAndNumbersAreKept() throws {
        let auto = try ConfigLoader.parse(
            yaml: "underlay: { local: 10.0.0.1, mtu: auto }\nworkers: auto\nnetworks: [{ vni: 1, tap: a, mtu: auto }]")
        #expect(auto.underlay.mtu == nil && auto.workers == nil && auto.networks[0].mtu == nil)
        let set = try ConfigLoader.parse(
            yaml: "underlay: { local: 10.0.0.1, mtu: 9000 }\nworkers: 4\nnetworks: [{ vni: 1, tap: a, mtu: 8950 }]")
        #expect(set.underlay.mtu == 9000 && set.workers == 4 && set.networks[0].mtu == 8950)
    }

    @Test func explicitValuesOverrideDefaults() throws {
        let config = try ConfigLoader.parse(
            yaml: underlay("port: 8472", "source_ports: 1000 - 2000").replacingOccurrences(
                of: "networks:\n  - { vni: 1, tap: vx1 }\n",
                with: "networks:\n  - { vni: 0, tap: a.b_c-1, learning: false, ageing: 0, max_entries: 1 }\n"))
        #expect(config.underlay.port == 8472)
        #expect(config.underlay.sourcePorts == 1000...2000)
        #expect(
            config.networks[0] == NetworkConfig(vni: VNI(0)!, tap: "a.b_c-1", learning: false, ageing: 0, maxEntries: 1)
        )
    }

    @Test func singleSourcePortMeansARangeOfOne() throws {
        #expect(try ConfigLoader.parse(yaml: underlay("source_ports: 5000")).underlay.sourcePorts == 5000...5000)
        #expect(try ConfigLoader.parse(yaml: underlay("source_ports: \"6000\"")).underlay.sourcePorts == 6000...6000)
    }

    @Test func ipv6UnderlayAndBareAllowFromAddress() throws {
        let config = try ConfigLoader.parse(
            yaml: network(
                "flood: [\"2001:db8::2\"]", "allow_from: [\"2001:db8::9\", 2001:db8:1::/48]",
                local: "\"2001:db8::1\""))
        #expect(config.underlay.local == ip("2001:db8::1"))
        #expect(config.networks[0].flood == [ip("2001:db8::2")])
        #expect(config.networks[0].allowFrom == [prefix("2001:db8::9/128"), prefix("2001:db8:1::/48")])
    }

    @Test func macMayBeUnquotedOrDashed() throws {
        let config = try ConfigLoader.parse(
            yaml: network(
                "fdb:", "  - { mac: 02:00:00:00:00:0a, remote: 10.0.0.2 }", "  - mac: 02-00-00-00-00-0B",
                "    remote: 10.0.0.3"))
        #expect(config.networks[0].fdb.map(\.mac) == [mac("02:00:00:00:00:0a"), mac("02:00:00:00:00:0b")])
    }

    @Test func maximumValuesAreAccepted() throws {
        let config = try ConfigLoader.parse(
            yaml: network("mtu: 65535", "ageing: 1000000", "max_entries: 4194304")
                .replacingOccurrences(of: "vni: 42", with: "vni: 16777215"))
        #expect(config.networks[0].vni == VNI(16_777_215)!)
        #expect(config.networks[0].maxEntries == 4_194_304)
    }

    @Test func descriptionNamesKeyLineAndReason() {
        #expect(
            ConfigError(path: "networks[1].vni", line: 12, reason: "16777216 is out of range (0-16777215)").description
                == "config: networks[1].vni (line 12): 16777216 is out of range (0-16777215)")
        #expect(ConfigError(path: "workers", reason: "r").description == "config: workers: r")
        #expect(ConfigError(path: "", line: 3, reason: "r").description == "config: line 3: r")
        #expect(ConfigError(path: "", reason: "r").description == "config: r")
    }
}

// MARK: - Structure: syntax, shape, keys, types

@Suite struct StructureErrorTests {
    @Test func yamlSyntaxErrorHasALine() {
        let error = parseError("underlay:\n  local: 10.0.0.1\nnetworks:\n  - vni: 42\n   tap: [vx42\n")
        #expect(error?.line != nil, "\(String(describing: error))")
        #expect(error?.reason.contains("YAML syntax error") == true, "\(String(describing: error))")
        let tabs = parseError("underlay:\n\tlocal: 10.0.0.1\n")
        #expect(tabs?.line == 2, "\(String(describing: tabs))")
    }

    @Test func duplicateKeyIsAnError() {
        expectError(
            "underlay:\n  local: 10.0.0.1\n  local: 10.0.0.2\nnetworks: []\n", path: "", reason: "duplicate key")
    }

    @Test func emptyFile() {
        expectError("", path: "", reason: "empty")
        expectError("# only a comment\n", path: "", reason: "empty")
    }

    @Test func topLevelMustBeAMapping() {
        expectError("- a\n- b\n", path: "", line: 1, reason: "top level must be a mapping")
        expectError("just a string", path: "", reason: "top level must be a mapping")
        expectError("---\n", path: "", reason: "top level must be a mapping")
    }

    @Test func unknownKeysAreNamedWithTheAllowedOnes() {
        expectError(
            "underlay: { local: 10.0.0.1 }\nnetwork: []\n", path: "network", line: 2,
            reason: "unknown key (allowed: underlay, workers, networks, control, offloads, busy_poll, steering, capture, metrics, cluster)")
        expectError(
            underlay("prot: 4789"), path: "underlay.prot", line: 3, reason: "allowed: local, port, source_ports, mtu")
        expectError(
            network("floood: [10.0.0.2]"), path: "networks[0].floood", line: 6,
            reason: "allowed: vni, tap, mtu, address, learning, ageing, max_entries, flood, fdb, allow_from")
        expectError(
            network("fdb: [{ mac: \"02:00:00:00:00:02\", remote: 10.0.0.2, vlan: 3 }]"),
            path: "networks[0].fdb[0].vlan", line: 6, reason: "allowed: mac, remote")
    }

    @Test func missingRequiredKeys() {
        expectError("networks: [{ vni: 1, tap: a }]\n", path: "underlay", line: 1, reason: "required key is missing")
        expectError(
            "underlay: { port: 4789 }\nnetworks: [{ vni: 1, tap: a }]\n", path: "underlay.local", line: 1,
            reason: "required key is missing")
        expectError("underlay: { local: 10.0.0.1 }\n", path: "networks", reason: "required key is missing")
        expectError(
            "underlay: { local: 10.0.0.1 }\nnetworks:\n  - tap: a\n", path: "networks[0].vni", line: 3,
            reason: "required key is missing")
        expectError(
            "underlay: { local: 10.0.0.1 }\nnetworks:\n  - vni: 1\n", path: "networks[0].tap", line: 3,
            reason: "required key is missing")
        expectError(
            network("fdb: [{ mac: \"02:00:00:00:00:02\" }]"), path: "networks[0].fdb[0].remote",
            reason: "required key is missing")
        expectError(
            network("fdb: [{ remote: 10.0.0.2 }]"), path: "networks[0].fdb[0].mac",
            reason: "required key is missing")
    }

    @Test func wrongTypes() {
        expectError(underlay("port: http"), path: "underlay.port", line: 3, reason: "expected an integer, got \"http\"")
        expectError(underlay("port: \"4789\""), path: "underlay.port", reason: "got the quoted string \"4789\"")
        expectError(underlay("port: 4789.5"), path: "underlay.port", reason: "expected an integer")
        expectError(underlay("port: [4789]"), path: "underlay.port", reason: "expected an integer, got a list")
        expectError(underlay("port:"), path: "underlay.port", reason: "expected an integer, got nothing (null)")
        expectError(underlay("mtu: big"), path: "underlay.mtu", reason: "expected auto or an integer")
        expectError("underlay: 10.0.0.1\nnetworks: []\n", path: "underlay", line: 1, reason: "expected a mapping")
        expectError(
            "underlay: { local: 10.0.0.1 }\nworkers: many\nnetworks: [{ vni: 1, tap: a }]\n",
            path: "workers", line: 2, reason: "expected auto or an integer")
        expectError(
            "underlay: { local: 10.0.0.1 }\nnetworks: { vni: 1, tap: a }\n", path: "networks", line: 2,
            reason: "expected a list")
        expectError(
            "underlay: { local: 10.0.0.1 }\nnetworks: [42]\n", path: "networks[0]", reason: "expected a mapping")
        expectError(network("learning: yes"), path: "networks[0].learning", line: 6, reason: "expected true or false")
        expectError(network("learning: \"true\""), path: "networks[0].learning", reason: "expected true or false")
        expectError(network("ageing: 5m"), path: "networks[0].ageing", reason: "expected an integer")
        expectError(network("max_entries: ~"), path: "networks[0].max_entries", reason: "got nothing (null)")
        expectError(network("flood: 10.0.0.2"), path: "networks[0].flood", reason: "expected a list")
        expectError(network("flood: [[10.0.0.2]]"), path: "networks[0].flood[0]", reason: "expected an IP address")
        expectError(network("fdb: [abc]"), path: "networks[0].fdb[0]", reason: "expected a mapping")
        expectError(network("allow_from: 10.0.0.0/8"), path: "networks[0].allow_from", reason: "expected a list")
        expectError(network("address: { ip: 10.1.1.1 }"), path: "networks[0].address", reason: "got a mapping")
        expectError(
            "underlay: { local: 10.0.0.1 }\nnetworks:\n  - vni: 1\n    tap: { name: a }\n", path: "networks[0].tap",
            line: 4, reason: "expected a string, got a mapping")
        expectError(
            "underlay: { local: 10.0.0.1 }\nnetworks:\n  - vni: forty-two\n    tap: a\n",
            path: "networks[0].vni", line: 3, reason: "expected an integer")
    }

    @Test func nonStringKey() {
        expectError(
            "underlay: { local: 10.0.0.1 }\n? [a]\n: b\nnetworks: [{ vni: 1, tap: a }]\n", path: "?",
            reason: "keys must be names")
    }
}

// MARK: - Values

@Suite struct UnderlayErrorTests {
    @Test func local() {
        expectError(
            underlay(local: "10.0.0.256"), path: "underlay.local", line: 2,
            reason: "\"10.0.0.256\" is not an IP address")
        expectError(underlay(local: "host.example"), path: "underlay.local", reason: "is not an IP address")
        expectError(underlay(local: "0.0.0.0"), path: "underlay.local", line: 2, reason: "unspecified")
        expectError(underlay(local: "\"::\""), path: "underlay.local", reason: "unspecified")
        expectError(underlay(local: "239.1.1.1"), path: "underlay.local", line: 2, reason: "multicast")
        expectError(underlay(local: "\"ff02::1\""), path: "underlay.local", reason: "multicast")
    }

    @Test func port() {
        expectError(underlay("port: 0"), path: "underlay.port", line: 3, reason: "0 is out of range (1-65535)")
        expectError(underlay("port: 65536"), path: "underlay.port", reason: "65536 is out of range (1-65535)")
        expectError(underlay("port: -1"), path: "underlay.port", reason: "-1 is out of range (1-65535)")
    }

    @Test func sourcePorts() {
        expectError(
            underlay("source_ports: 0-100"), path: "underlay.source_ports", line: 3,
            reason: "0 is out of range (1-65535)")
        expectError(
            underlay("source_ports: 1000-70000"), path: "underlay.source_ports",
            reason: "70000 is out of range (1-65535)")
        expectError(
            underlay("source_ports: 2000-1000"), path: "underlay.source_ports",
            reason: "2000-1000: the first port is greater than the last")
        expectError(underlay("source_ports: 1000-2000-3000"), path: "underlay.source_ports", reason: "not a port range")
        expectError(underlay("source_ports: 1000-"), path: "underlay.source_ports", reason: "not a port range")
        expectError(underlay("source_ports: high"), path: "underlay.source_ports", reason: "not a port range")
        expectError(underlay("source_ports: [1000, 2000]"), path: "underlay.source_ports", reason: "got a list")
    }

    @Test func mtu() {
        expectError(
            underlay("mtu: 575"), path: "underlay.mtu", line: 3,
            reason: "575 is out of range for an IPv4 underlay (576-65535)")
        expectError(underlay("mtu: 65536"), path: "underlay.mtu", reason: "out of range")
        expectError(
            underlay("mtu: 1279", local: "\"2001:db8::1\""), path: "underlay.mtu",
            reason: "1279 is out of range for an IPv6 underlay (1280-65535)")
        #expect(parseError(underlay("mtu: 576")) == nil)
        #expect(parseError(underlay("mtu: 1280", local: "\"2001:db8::1\"")) == nil)
    }

    @Test func workers() {
        let head = "underlay: { local: 10.0.0.1 }\nnetworks: [{ vni: 1, tap: a }]\n"
        expectError(head + "workers: 0\n", path: "workers", line: 3, reason: "0 is out of range (1-256)")
        expectError(head + "workers: 257\n", path: "workers", reason: "257 is out of range (1-256)")
        #expect(parseError(head + "workers: 256\n") == nil)
        #expect(parseError(head + "workers: 1\n") == nil)
    }

    @Test func busyPoll() throws {
        let head = "underlay: { local: 10.0.0.1 }\nnetworks: [{ vni: 1, tap: a }]\n"
        #expect(try ConfigLoader.parse(yaml: head).busyPoll == 0, "off unless asked for")
        #expect(try ConfigLoader.parse(yaml: head + "busy_poll: 200\n").busyPoll == 200)
        #expect(try ConfigLoader.parse(yaml: head + "busy_poll: 10000\n").busyPoll == 10000)
        expectError(head + "busy_poll: 10001\n", path: "busy_poll", line: 3, reason: "10001 is out of range (0-10000)")
        expectError(head + "busy_poll: -1\n", path: "busy_poll", reason: "-1 is out of range (0-10000)")
        expectError(head + "busy_poll: 200us\n", path: "busy_poll", reason: "expected an integer")
        expectError(head + "busy_poll: true\n", path: "busy_poll", reason: "expected an integer")
    }

    @Test func steering() throws {
        let head = "underlay: { local: 10.0.0.1 }\nnetworks: [{ vni: 1, tap: a }]\n"
        #expect(try ConfigLoader.parse(yaml: head).steering == .auto, "cpu where it can be had")
        #expect(try ConfigLoader.parse(yaml: head + "steering: cpu\n").steering == .cpu)
        #expect(try ConfigLoader.parse(yaml: head + "steering: flow\n").steering == .flow)
        #expect(try ConfigLoader.parse(yaml: head + "steering: auto\n").steering == .auto)
        expectError(head + "steering: rss\n", path: "steering", line: 3, reason: "expected auto, cpu or flow, got \"rss\"")
        #expect(try ConfigLoader.parse(yaml: head + "steering: \"cpu\"\n").steering == .cpu)
        expectError(head + "steering: [cpu]\n", path: "steering", reason: "expected auto, cpu or flow")
    }
}

@Suite struct NetworkErrorTests {
    @Test func networksMustNotBeEmpty() {
        expectError(
            "underlay: { local: 10.0.0.1 }\nnetworks: []\n", path: "networks", line: 2,
            reason: "at least one network is required")
    }

    @Test func vniRange() {
        expectError(
            "underlay: { local: 10.0.0.1 }\nnetworks:\n  - { vni: 1, tap: a }\n  - vni: 16777216\n    tap: b\n",
            path: "networks[1].vni", line: 4, reason: "16777216 is out of range (0-16777215)")
        expectError(
            "underlay: { local: 10.0.0.1 }\nnetworks: [{ vni: -1, tap: a }]\n", path: "networks[0].vni",
            reason: "-1 is out of range (0-16777215)")
    }

    @Test func duplicateVNINamesBothIndexes() {
        expectError(
            "underlay: { local: 10.0.0.1 }\nnetworks:\n"
                + "  - { vni: 7, tap: a }\n  - { vni: 8, tap: b }\n  - { vni: 7, tap: c }\n",
            path: "networks[2].vni", line: 5, reason: "7 is already used by networks[0]")
    }

    @Test func tapNames() {
        func tap(_ name: String) -> String {
            "underlay: { local: 10.0.0.1 }\nnetworks:\n  - vni: 1\n    tap: \(name)\n"
        }
        expectError(tap("\"\""), path: "networks[0].tap", line: 4, reason: "empty")
        expectError(
            tap("abcdefghijklmnop"), path: "networks[0].tap", reason: "16 bytes long; interface names are 1-15 bytes")
        expectError(tap("\"vx 42\""), path: "networks[0].tap", reason: "may only contain letters, digits")
        expectError(tap("vx/42"), path: "networks[0].tap", reason: "may only contain")
        expectError(tap("vx:42"), path: "networks[0].tap", reason: "may only contain")
        expectError(tap("\"vxé\""), path: "networks[0].tap", reason: "may only contain")
        expectError(tap("."), path: "networks[0].tap", reason: "not a valid interface name")
        expectError(tap(".."), path: "networks[0].tap", reason: "not a valid interface name")
        #expect(parseError(tap("abcdefghijklmno")) == nil)
    }

    @Test func duplicateTap() {
        expectError(
            "underlay: { local: 10.0.0.1 }\nnetworks:\n  - { vni: 1, tap: vx }\n  - { vni: 2, tap: vx }\n",
            path: "networks[1].tap", line: 4, reason: "\"vx\" is already used by networks[0]")
    }

    @Test func networkMTU() {
        expectError(network("mtu: 67"), path: "networks[0].mtu", line: 6, reason: "67 is out of range (68-65535)")
        expectError(network("mtu: 65536"), path: "networks[0].mtu", reason: "65536 is out of range (68-65535)")
        #expect(parseError(network("mtu: 68")) == nil)
    }

    @Test func address() {
        expectError(
            network("address: 192.168.42.1"), path: "networks[0].address", line: 6,
            reason: "\"192.168.42.1\" has no prefix length")
        expectError(network("address: \"fd00::1\""), path: "networks[0].address", reason: "has no prefix length")
        expectError(
            network("address: 192.168.42.1/33"), path: "networks[0].address",
            reason: "is not an address with a prefix length")
        expectError(network("address: 192.168.42/24"), path: "networks[0].address", reason: "is not an address")
        expectError(network("address: 0.0.0.0/0"), path: "networks[0].address", line: 6, reason: "unspecified")
        expectError(network("address: 224.0.0.1/4"), path: "networks[0].address", reason: "multicast")
    }

    @Test func ageingAndMaxEntries() {
        expectError(
            network("ageing: -1"), path: "networks[0].ageing", line: 6, reason: "-1 is out of range (0-1000000)")
        expectError(network("ageing: 1000001"), path: "networks[0].ageing", reason: "out of range (0-1000000)")
        expectError(
            network("max_entries: 0"), path: "networks[0].max_entries", line: 6,
            reason: "0 is out of range (1-4194304)")
        expectError(
            network("max_entries: 4194305"), path: "networks[0].max_entries", reason: "out of range (1-4194304)")
    }

    @Test func flood() {
        expectError(
            network("flood: [10.0.0.2, 10.0.0.300]"), path: "networks[0].flood[1]", line: 6,
            reason: "\"10.0.0.300\" is not an IP address")
        expectError(
            network("flood: [10.0.0.2, \"2001:db8::2\"]"), path: "networks[0].flood[1]",
            reason: "2001:db8::2 is IPv6 but underlay.local is IPv4")
        expectError(
            network("flood:", "  - 10.0.0.2", "  - 10.0.0.1"), path: "networks[0].flood[1]", line: 8,
            reason: "10.0.0.1 is underlay.local itself")
        expectError(
            network("flood: [10.0.0.2, 10.0.0.3, 10.0.0.2]"), path: "networks[0].flood[2]",
            reason: "10.0.0.2 is already listed as flood[0]")
        expectError(network("flood: [239.0.0.1]"), path: "networks[0].flood[0]", reason: "multicast")
        expectError(network("flood: [0.0.0.0]"), path: "networks[0].flood[0]", reason: "unspecified")
        expectError(
            network("flood: [10.0.0.2]", local: "\"2001:db8::1\""), path: "networks[0].flood[0]",
            reason: "10.0.0.2 is IPv4 but underlay.local is IPv6")
    }

    @Test func staticFDB() {
        func fdb(_ entries: String...) -> String { networkLines(["fdb:"] + entries.map { "  - " + $0 }) }
        expectError(
            fdb("{ mac: \"02:00:00:00:00\", remote: 10.0.0.2 }"), path: "networks[0].fdb[0].mac", line: 7,
            reason: "\"02:00:00:00:00\" is not a MAC address")
        expectError(
            fdb("{ mac: \"01:00:5e:00:00:01\", remote: 10.0.0.2 }"), path: "networks[0].fdb[0].mac",
            reason: "01:00:5e:00:00:01 is a multicast MAC")
        expectError(
            fdb("{ mac: \"ff:ff:ff:ff:ff:ff\", remote: 10.0.0.2 }"), path: "networks[0].fdb[0].mac",
            reason: "broadcast")
        expectError(
            fdb("{ mac: \"00:00:00:00:00:00\", remote: 10.0.0.2 }"), path: "networks[0].fdb[0].mac",
            reason: "all-zero")
        expectError(
            fdb("{ mac: \"02:00:00:00:00:02\", remote: 10.0.0.2 }", "{ mac: \"02:00:00:00:00:02\", remote: 10.0.0.3 }"),
            path: "networks[0].fdb[1].mac", line: 8, reason: "02:00:00:00:00:02 already has a static entry, fdb[0]")
        expectError(
            fdb("{ mac: \"02:00:00:00:00:02\", remote: \"2001:db8::2\" }"), path: "networks[0].fdb[0].remote",
            reason: "2001:db8::2 is IPv6 but underlay.local is IPv4")
        expectError(
            fdb("{ mac: \"02:00:00:00:00:02\", remote: 10.0.0.1 }"), path: "networks[0].fdb[0].remote",
            reason: "underlay.local itself")
        expectError(
            fdb("{ mac: \"02:00:00:00:00:02\", remote: nowhere }"), path: "networks[0].fdb[0].remote",
            reason: "\"nowhere\" is not an IP address")
        expectError(
            network(
                "max_entries: 1", "fdb:", "  - { mac: \"02:00:00:00:00:02\", remote: 10.0.0.2 }",
                "  - { mac: \"02:00:00:00:00:03\", remote: 10.0.0.2 }"),
            path: "networks[0].fdb", line: 7, reason: "2 static entries exceed max_entries (1)")
        // The same MAC in two networks is fine.
        #expect(
            parseError(
                "underlay: { local: 10.0.0.1 }\nnetworks:\n"
                    + "  - { vni: 1, tap: a, fdb: [{ mac: \"02:00:00:00:00:02\", remote: 10.0.0.2 }] }\n"
                    + "  - { vni: 2, tap: b, fdb: [{ mac: \"02:00:00:00:00:02\", remote: 10.0.0.3 }] }\n") == nil)
    }

    @Test func allowFrom() throws {
        expectError(
            network("allow_from: [10.0.0.0/8, \"2001:db8::/32\"]"), path: "networks[0].allow_from[1]", line: 6,
            reason: "2001:db8::/32 is IPv6 but underlay.local is IPv4")
        expectError(
            network("allow_from: [10.0.0.0/40]"), path: "networks[0].allow_from[0]",
            reason: "\"10.0.0.0/40\" is not an address or prefix")
        #expect(
            try ConfigLoader.parse(yaml: network("allow_from: [10.0.0.2]")).networks[0].allowFrom == [
                prefix("10.0.0.2/32")
            ])
    }
}

private func networkLines(_ lines: [String]) -> String {
    "underlay:\n  local: 10.0.0.1\nnetworks:\n  - vni: 42\n    tap: vx42\n" + lines.map { "    " + $0 + "\n" }.joined()
}

// MARK: - The command-line path: validate() on a model built in code

@Suite struct ModelValidationTests {
    let base = RouterConfig(
        underlay: UnderlayConfig(local: IPAddress("10.0.0.1")!),
        networks: [NetworkConfig(vni: VNI(42)!, tap: "vx42", flood: [IPAddress("10.0.0.2")!])])

    @Test func baseIsValid() throws { try base.validate() }

    @Test func rulesApplyWithoutLines() {
        var c = base
        c.workers = 0
        expectError(c, path: "workers", reason: "0 is out of range (1-256)")
        c = base
        c.underlay.port = 0
        expectError(c, path: "underlay.port", reason: "0 is out of range (1-65535)")
        c = base
        c.underlay.sourcePorts = 0...10
        expectError(c, path: "underlay.source_ports", reason: "0-10 is out of range (1-65535)")
        c = base
        c.underlay.mtu = 100
        expectError(c, path: "underlay.mtu", reason: "100 is out of range for an IPv4 underlay (576-65535)")
        c = base
        c.networks = []
        expectError(c, path: "networks", reason: "at least one network is required")
        c = base
        c.networks[0].tap = "a-very-long-tap-name"
        expectError(c, path: "networks[0].tap", reason: "interface names are 1-15 bytes")
        c = base
        c.networks[0].mtu = 20
        expectError(c, path: "networks[0].mtu", reason: "20 is out of range (68-65535)")
        c = base
        c.networks[0].address = IPPrefix("239.1.1.1/24")
        expectError(c, path: "networks[0].address", reason: "multicast")
        c = base
        c.networks[0].flood = [IPAddress("2001:db8::2")!]
        expectError(c, path: "networks[0].flood[0]", reason: "2001:db8::2 is IPv6 but underlay.local is IPv4")
        c = base
        c.networks.append(NetworkConfig(vni: VNI(42)!, tap: "vx43"))
        expectError(c, path: "networks[1].vni", reason: "42 is already used by networks[0]")
        c = base
        c.networks[0].fdb = [StaticFDBEntry(mac: .broadcast, remote: IPAddress("10.0.0.2")!)]
        expectError(c, path: "networks[0].fdb[0].mac", reason: "broadcast")
        c = base
        c.networks[0].allowFrom = [IPPrefix("2001:db8::/32")!]
        expectError(c, path: "networks[0].allow_from[0]", reason: "is IPv6 but underlay.local is IPv4")
    }
}

// MARK: - Hostile input never traps

@Suite struct HostileInputTests {
    @Test func hugeIntegersAreOutOfRangeNotTraps() {
        let huge = "99999999999999999999999999999999"
        expectError(underlay("port: \(huge)"), path: "underlay.port", reason: "\(huge) is out of range (1-65535)")
        expectError(underlay("source_ports: \(huge)-1"), path: "underlay.source_ports", reason: "is out of range")
        expectError(underlay("mtu: \(huge)"), path: "underlay.mtu", reason: "is out of range")
        expectError(network("ageing: \(huge)"), path: "networks[0].ageing", reason: "is out of range")
        expectError(network("max_entries: -\(huge)"), path: "networks[0].max_entries", reason: "is out of range")
        expectError(network("mtu: \(huge)"), path: "networks[0].mtu", reason: "is out of range")
        expectError(
            "underlay: { local: 10.0.0.1 }\nworkers: \(huge)\nnetworks: [{ vni: 1, tap: a }]\n",
            path: "workers", reason: "is out of range")
        expectError(
            "underlay: { local: 10.0.0.1 }\nnetworks: [{ vni: \(huge), tap: a }]\n", path: "networks[0].vni",
            reason: "is out of range (0-16777215)")
        let long = String(repeating: "9", count: 5000)
        let error = parseError(underlay("port: \(long)"))
        #expect(error?.reason.contains("out of range") == true)
        #expect((error?.reason.count ?? .max) < 200, "the value is cut in the message")
    }

    @Test func nestedCollectionsWhereScalarsBelong() {
        expectError(underlay(local: "{ a: { b: c } }"), path: "underlay.local", reason: "got a mapping")
        expectError(network("vni2: [[[]]]"), path: "networks[0].vni2", reason: "unknown key")
        expectError(network("ageing: { seconds: 300 }"), path: "networks[0].ageing", reason: "got a mapping")
        expectError(network("learning: []"), path: "networks[0].learning", reason: "got a list")
        expectError(
            network("fdb: [{ mac: [1, 2], remote: 10.0.0.2 }]"), path: "networks[0].fdb[0].mac",
            reason: "got a list")
    }

    @Test func deepNestingIsAnErrorNotAStackOverflow() {
        let deep = "underlay: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(parseError(deep) != nil)
    }

    @Test func aliasesAreFollowedOnlyAsFarAsTheShape() {
        // A "billion laughs" shape under an unknown key is refused at the key, not expanded.
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1..<12 {
            yaml += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        expectError(yaml + "underlay: { local: 10.0.0.1 }\nnetworks: [*a11]\n", path: "a0", reason: "unknown key")
        // Aliases in the expected shape work.
        let config = try? ConfigLoader.parse(
            yaml: "underlay: { local: &me 10.0.0.1 }\nnetworks:\n  - { vni: 1, tap: a, flood: &peers [10.0.0.2] }\n"
                + "  - { vni: 2, tap: b, flood: *peers }\n")
        #expect(config?.networks[1].flood == [ip("10.0.0.2")])
    }

    @Test func binaryJunkIsRefused() {
        var generator = SplitMix(seed: 0x5EED)
        for _ in 0..<200 {
            let length = Int(generator.next() % 512)
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            _ = parseError(String(decoding: bytes, as: UTF8.self))  // any outcome but a trap
        }
        expectError("underlay:\u{0}\u{1}\u{2}", path: "", reason: "not YAML text")
        expectError("underlay:\n  local: 10.0.0.1\u{7}\n", path: "", line: 2, reason: "not YAML text")
    }

    @Test func junkMutationsOfAValidConfig() {
        // Every single-character deletion of the documented example: errors or parses, never traps.
        let text = Array(documentedExample)
        for i in text.indices {
            var mutated = text
            mutated.remove(at: i)
            _ = parseError(String(mutated))
        }
    }

    @Test func multipleDocumentsAreRefused() {
        expectError(network() + "---\nunderlay: {}\n", path: "", reason: "YAML syntax error")
    }
}

/// A tiny deterministic generator, so the junk is the same on every run.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - Files

@Suite struct ConfigFileTests {
    private func temporaryFile(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vxrouter-config-\(UUID()).yaml").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func missingFileNamesThePath() {
        let path = "/nonexistent/vxrouter.yaml"
        let error = #expect(throws: ConfigError.self) { _ = try ConfigLoader.load(path: path) }
        #expect(error?.path == "")
        #expect(error?.reason == "cannot open \(path): No such file or directory", "\(String(describing: error))")
    }

    @Test func directoryIsUnreadable() {
        let path = packageRoot.appendingPathComponent("Config").path
        let error = #expect(throws: ConfigError.self) { _ = try ConfigLoader.load(path: path) }
        #expect(error?.reason.contains("cannot read \(path)") == true, "\(String(describing: error))")
    }

    @Test func invalidUTF8NamesTheLine() throws {
        let path = try temporaryFile(Array("underlay:\n  local: 10.0.0.1\n  # caf".utf8) + [0xE9, 0xFF, 0x0A])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = #expect(throws: ConfigError.self) { _ = try ConfigLoader.load(path: path) }
        #expect(error == ConfigError(path: "", line: 3, reason: "not UTF-8 text"))
    }

    @Test func emptyFile() throws {
        let path = try temporaryFile([])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = #expect(throws: ConfigError.self) { _ = try ConfigLoader.load(path: path) }
        #expect(error?.reason.contains("empty") == true)
    }

    @Test func validFileLoads() throws {
        let path = try temporaryFile(Array(documentedExample.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try ConfigLoader.load(path: path) == documentedConfig)
    }
}
