// The `cluster:` section: defaults, each key's errors with the key and line, and the rules the
// CLI's --cluster/--cluster-name share.
import Foundation
import Testing
import VXWire

@testable import VXConfig

private func parse(_ cluster: String) throws(ConfigError) -> RouterConfig {
    try ConfigLoader.parse(yaml: "underlay: { local: 10.0.0.1 }\nnetworks: [{ vni: 1, tap: vx1 }]\n" + cluster)
}

@Suite struct ClusterConfigTests {
    @Test func absentMeansStandalone() throws {
        #expect(try parse("").cluster == nil)
    }

    @Test func fullSectionAndDefaults() throws {
        let config = try parse("cluster:\n  endpoints: [http://10.0.0.5:2379, \"http://10.0.0.6:2379/\"]\n  name: prod\n")
        #expect(config.cluster == ClusterConfig(endpoints: ["http://10.0.0.5:2379", "http://10.0.0.6:2379/"], name: "prod", leaseTTL: 15))
        let withAll = try parse("cluster: { endpoints: [http://e:2379], name: lab-1, lease_ttl: 5, host_id: rack1.a }\n")
        #expect(withAll.cluster?.leaseTTL == 5)
        #expect(withAll.cluster?.hostID == "rack1.a")
    }

    @Test(arguments: [
        ("cluster: { name: x }\n", "cluster.endpoints", "required key is missing"),
        ("cluster: { endpoints: [], name: x }\n", "cluster.endpoints", "at least one etcd endpoint"),
        ("cluster: { endpoints: [10.0.0.5:2379], name: x }\n", "cluster.endpoints[0]", "not an http://HOST:PORT or https://HOST:PORT URL"),
        ("cluster: { endpoints: [\"ftp://e:2379\"], name: x }\n", "cluster.endpoints[0]", "not an http://HOST:PORT or https://HOST:PORT URL"),
        ("cluster: { endpoints: [\"https://e:2379\", \"http://f:2379\"], name: x }\n", "cluster.endpoints", "mix http:// and https://"),
        ("cluster: { endpoints: [\"http://e:2379\"], name: x, ca_file: /ca.pem }\n", "cluster.ca_file", "need https:// endpoints"),
        ("cluster: { endpoints: [\"https://e:2379\"], name: x, cert_file: /c.pem }\n", "cluster.cert_file", "needs key_file"),
        ("cluster: { endpoints: [\"https://e:2379\"], name: x, key_file: /c.key }\n", "cluster.key_file", "needs cert_file"),
        ("cluster: { endpoints: [\"https://e:2379\"], name: x, ca_file: \"\" }\n", "cluster.ca_file", "path is empty"),
        ("cluster: { endpoints: [\"http://e:2379/v3\"], name: x }\n", "cluster.endpoints[0]", "no path"),
        ("cluster: { endpoints: [\"http://e:99999\"], name: x }\n", "cluster.endpoints[0]", "port in 1-65535"),
        ("cluster: { endpoints: [\"http://e:2379\"] }\n", "cluster.name", "required key is missing"),
        ("cluster: { endpoints: [\"http://e:2379\"], name: a/b }\n", "cluster.name", "may only contain"),
        ("cluster: { endpoints: [\"http://e:2379\"], name: x, lease_ttl: 1 }\n", "cluster.lease_ttl", "out of range"),
        ("cluster: { endpoints: [\"http://e:2379\"], name: x, host_id: \"\" }\n", "cluster.host_id", "empty"),
        ("cluster: { endpoints: [\"http://e:2379\"], name: x, ttl: 5 }\n", "cluster.ttl", "unknown key"),
        // Credentials: both or neither, never a password inline.
        ("cluster: { endpoints: [\"http://e:2379\"], name: x, username: vx }\n", "cluster.username", "needs password_file"),
        ("cluster: { endpoints: [\"http://e:2379\"], name: x, password_file: /pw }\n", "cluster.password_file", "needs username"),
        ("cluster: { endpoints: [\"http://e:2379\"], name: x, username: \"\", password_file: /pw }\n", "cluster.username", "empty"),
        ("cluster: { endpoints: [\"http://e:2379\"], name: x, username: vx, password_file: \"\" }\n", "cluster.password_file", "path is empty"),
        ("cluster: { endpoints: [\"http://e:2379\"], name: x, password: hunter2 }\n", "cluster.password", "unknown key"),
    ])
    func errorsNameTheKey(yaml: String, path: String, reason: String) {
        do {
            _ = try parse(yaml)
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.path == path, "\(error)")
            #expect(error.reason.contains(reason), "\(error)")
            #expect(error.line == 3, "\(error)")
        }
    }

    @Test func tlsKeys() throws {
        let config = try parse(
            "cluster: { endpoints: [\"https://e:2379\", \"https://f:2379/\"], name: x, ca_file: /ca.pem, cert_file: /c.pem, key_file: /c.key }\n")
        #expect(config.cluster?.usesTLS == true)
        #expect(config.cluster?.caFile == "/ca.pem" && config.cluster?.certFile == "/c.pem" && config.cluster?.keyFile == "/c.key")
        // https with the system's roots and no client certificate is fine too.
        #expect(try parse("cluster: { endpoints: [\"https://e:2379\"], name: x }\n").cluster?.caFile == nil)
    }

    @Test func validateCatchesProgrammaticConfigs() {
        var config = RouterConfig(
            underlay: UnderlayConfig(local: IPAddress("10.0.0.1")!), networks: [NetworkConfig(vni: VNI(1)!, tap: "vx1")])
        config.cluster = ClusterConfig(endpoints: ["http://e:2379"], name: "ok")
        #expect(throws: Never.self) { try config.validate() }
        config.cluster = ClusterConfig(endpoints: ["ftp://e"], name: "ok")
        #expect(throws: ConfigError.self) { try config.validate() }
    }
}

@Suite struct ClusterCredentialsTests {
    @Test func usernameAndPasswordFile() throws {
        let config = try parse("cluster: { endpoints: [\"http://e:2379\"], name: x, username: vx, password_file: /etc/vx/pw }\n")
        #expect(config.cluster?.username == "vx")
        #expect(config.cluster?.passwordFile == "/etc/vx/pw")
    }

    @Test func validateCatchesAUserWithoutPassword() {
        var config = RouterConfig(
            underlay: UnderlayConfig(local: IPAddress("10.0.0.1")!), networks: [NetworkConfig(vni: VNI(1)!, tap: "vx1")])
        config.cluster = ClusterConfig(endpoints: ["http://e:2379"], name: "ok", username: "vx")
        #expect(throws: ConfigError.self) { try config.validate() }
        config.cluster?.passwordFile = "/pw"
        #expect(throws: Never.self) { try config.validate() }
    }

    @Test func passwordFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vxc-pw-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func write(_ name: String, _ text: String) throws -> String {
            let path = directory.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        // The first line, its ending dropped, spaces kept.
        #expect(try readPassword(path: try write("a", " two words \n")) == " two words ")
        #expect(try readPassword(path: try write("b", "crlf\r\nignored")) == "crlf")
        #expect(try readPassword(path: try write("c", "no-newline")) == "no-newline")
        let empty = #expect(throws: PasswordFileError.self) { try readPassword(path: try write("d", "\nsecond")) }
        #expect(empty?.reason.contains("empty") == true)
        let missing = #expect(throws: PasswordFileError.self) { try readPassword(path: directory.path + "/missing") }
        #expect(missing?.description.contains("cluster.password_file") == true)
        #expect(missing?.reason == "cannot read it")
        let control = #expect(throws: PasswordFileError.self) { try readPassword(path: try write("e", "a\u{1}b\n")) }
        #expect(control?.reason.contains("control characters") == true)
        // A directory is not a password file.
        #expect(throws: PasswordFileError.self) { try readPassword(path: directory.path) }
    }
}
