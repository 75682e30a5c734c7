// The `control:` section: addresses, the loopback-or-token rule, defaults and errors; and the
// pieces of the endpoint that need no router (target splitting, token comparison, JSON strings).
import Testing
import VXWire

@testable import VXConfig
@testable import VXRouter
@testable import VXControl

private func parse(_ control: String) throws(ConfigError) -> RouterConfig {
    try ConfigLoader.parse(yaml: "underlay: { local: 10.0.0.1 }\nnetworks: [{ vni: 1, tap: vx1 }]\n" + control)
}

@Suite struct ControlConfigTests {
    @Test func defaultsToTheUnixSocketForRoot() throws {
        let config = try parse("")
        #expect(config.control == ControlConfig(enabled: true, listen: .unix(path: "/run/vxrouter/control.sock")))
        #expect(config.control.group == "root" && config.control.tokenFile == nil)
        #expect(config.metrics.listen == nil)
    }

    @Test func tcpNeedsATokenOnLoopbackToo() throws {
        for listen in ["127.0.0.1:4790", "[::1]:4790", "0.0.0.0:4790"] {
            let error = #expect(throws: ConfigError.self) { _ = try parse("control: { listen: \"\(listen)\" }\n") }
            #expect(error?.path == "control.listen" && error?.reason.contains("token_file") == true, "\(String(describing: error))")
            _ = try parse("control: { listen: \"\(listen)\", token_file: /etc/vx/token }\n")
        }
        let loopback = #expect(throws: ConfigError.self) { _ = try parse("control: { listen: 127.0.0.1:4790 }\n") }
        #expect(loopback?.reason.contains("loopback is not a security boundary") == true, "\(String(describing: loopback))")
    }

    @Test func controlGroup() throws {
        #expect(try parse("control: { group: vxadmin }\n").control.group == "vxadmin")
        for bad in ["\"\"", "-x", "a b", "x:y", String(repeating: "g", count: 33)] {
            let error = #expect(throws: ConfigError.self) { _ = try parse("control: { group: \(bad) }\n") }
            #expect(error?.path == "control.group", "\(bad): \(String(describing: error))")
        }
    }

    @Test func metricsListener() throws {
        #expect(try parse("metrics: { listen: 127.0.0.1:9542 }\n").metrics.listen == .tcp(IPAddress("127.0.0.1")!, port: 9542))
        let cases: [(String, String)] = [
            ("metrics: { listen: unix:/run/m.sock }\n", "is not ADDRESS:PORT"),
            ("metrics: { listen: nowhere }\n", "is not ADDRESS:PORT"),
            ("metrics: { port: 9542 }\n", "allowed: listen"),
            ("metrics: { listen: 224.0.0.1:9542 }\n", "multicast"),
            ("metrics: { listen: 127.0.0.1:4790 }\ncontrol: { listen: 127.0.0.1:4790, token_file: /t }\n", "port of its own"),
        ]
        for (yaml, reason) in cases {
            let error = #expect(throws: ConfigError.self) { _ = try parse(yaml) }
            #expect(error?.path.hasPrefix("metrics") == true && error?.reason.contains(reason) == true, "\(yaml): \(String(describing: error))")
        }
    }

    @Test func addressForms() {
        #expect(ControlAddress("127.0.0.1:4790") == .tcp(IPAddress("127.0.0.1")!, port: 4790))
        #expect(ControlAddress("127.0.0.2") == .tcp(IPAddress("127.0.0.2")!, port: 4790))
        #expect(ControlAddress("[::1]:9000") == .tcp(IPAddress("::1")!, port: 9000))
        #expect(ControlAddress("::1") == .tcp(IPAddress("::1")!, port: 4790))
        #expect(ControlAddress("unix:/run/vxrouter.sock") == .unix(path: "/run/vxrouter.sock"))
        for bad in ["", "unix:", "localhost:4790", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x", "[::1", "[::1]x",
            "unix:/" + String(repeating: "a", count: 120)]
        {
            #expect(ControlAddress(bad) == nil, "\(bad)")
        }
        #expect(ControlAddress("[::1]:4790")!.description == "[::1]:4790")
        #expect(ControlAddress("unix:/x")!.description == "unix:/x")
    }

    @Test func loopbackAndUnixAreLocal() {
        #expect(ControlAddress("127.9.9.9:1")!.isLocalOnly)
        #expect(ControlAddress("unix:/tmp/s")!.isLocalOnly)
        #expect(!ControlAddress("0.0.0.0:4790")!.isLocalOnly)
        #expect(!ControlAddress("10.0.0.1:4790")!.isLocalOnly)
        #expect(!ControlAddress("[::]:4790")!.isLocalOnly)
    }

    @Test func allKeys() throws {
        let config = try parse("control:\n  enabled: false\n  listen: unix:/run/vx.sock\n  token_file: /etc/vx/token\n")
        #expect(config.control == ControlConfig(enabled: false, listen: .unix(path: "/run/vx.sock"), tokenFile: "/etc/vx/token"))
    }

    @Test func beyondLoopbackNeedsAToken() throws {
        let error = #expect(throws: ConfigError.self) { _ = try parse("control: { listen: 0.0.0.0:4790 }\n") }
        #expect(error?.path == "control.listen" && error?.line == 3, "\(String(describing: error))")
        #expect(error?.reason.contains("token_file") == true, "\(String(describing: error))")
        _ = try parse("control: { listen: 0.0.0.0:4790, token_file: /etc/vx/token }\n")
        // Disabled, the address does not matter.
        _ = try parse("control: { listen: 0.0.0.0:4790, enabled: false }\n")
    }

    @Test func badValues() {
        let cases: [(String, String, String)] = [
            ("control: { listen: nowhere }\n", "control.listen", "is not ADDRESS:PORT"),
            ("control: { listen: 4790 }\n", "control.listen", "is not ADDRESS:PORT"),
            ("control: { enabled: yes please }\n", "control.enabled", "expected true or false"),
            ("control: { token_file: \"\" }\n", "control.token_file", "empty"),
            ("control: { port: 4790 }\n", "control.port", "allowed: enabled, listen, token_file, group"),
            ("control: [1]\n", "control", "expected a mapping"),
            ("control: { listen: 224.0.0.1:4790, token_file: /t }\n", "control.listen", "multicast"),
        ]
        for (yaml, path, reason) in cases {
            let error = #expect(throws: ConfigError.self) { _ = try parse(yaml) }
            #expect(error?.path == path && error?.reason.contains(reason) == true, "\(yaml): \(String(describing: error))")
        }
    }

    @Test func flagsPathValidatesToo() {
        var config = RouterConfig(
            underlay: UnderlayConfig(local: IPAddress("10.0.0.1")!), networks: [NetworkConfig(vni: VNI(1)!, tap: "vx1")])
        config.control.listen = ControlAddress("10.0.0.1:4790")!
        #expect(throws: ConfigError.self) { try config.validate() }
        config.control.tokenFile = "/t"
        #expect(throws: Never.self) { try config.validate() }
    }
}

@Suite struct ControlEndpointPieces {
    @Test func targetsSplitAndDecode() {
        let split = ControlHTTPHandler.splitTarget("/v1/networks/42/fdb/02%3a00%3A00:00:00:01?x=1&y")
        #expect(split?.0 == "/v1/networks/42/fdb/02:00:00:00:00:01")
        #expect(split?.1 == ["x": "1", "y": ""])
        #expect(ControlHTTPHandler.splitTarget("*") == nil)
        #expect(ControlHTTPHandler.splitTarget("/bad%zz") == nil)
        #expect(ControlHTTPHandler.splitTarget("/bad%ff") == nil)  // not UTF-8
    }

    @Test func tokensCompareWhole() {
        #expect(tokensMatch(Array("abc".utf8), Array("abc".utf8)))
        #expect(!tokensMatch(Array("abc".utf8), Array("abd".utf8)))
        #expect(!tokensMatch(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!tokensMatch([], Array("a".utf8)))
    }

    @Test func jsonStringsEscape() {
        #expect(jsonString("a\"b\\c\n\u{1}") == "\"a\\\"b\\\\c\\n\\u0001\"")
        #expect(APIResponse.error(.badRequest, "x").body == Array("{\"error\":{\"status\":400,\"message\":\"x\"}}\n".utf8))
    }

    @Test func metricsLabelsEscape() {
        #expect(MetricsWriter.escape("a\"b\\c\nd") == "a\\\"b\\\\c\\nd")
        var writer = MetricsWriter()
        writer.family("vx_total", "counter", "Help.")
        writer.sample("vx_total", [("vni", "42"), ("reason", "bad_flags")], 7)
        #expect(writer.text == "# HELP vx_total Help.\n# TYPE vx_total counter\nvx_total{vni=\"42\",reason=\"bad_flags\"} 7\n")
    }
}
