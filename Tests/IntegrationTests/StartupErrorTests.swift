// Start-up failures a user will meet: a port another program holds, a bad config, an address this
// host does not have, an interface name taken by something that is not a TAP. Each must be a
// clear error, a non-zero exit, and leave nothing behind.
import Foundation
import LabSupport
import Testing

extension EndToEnd {
    @Suite("Start-up errors")
    struct StartupErrors {
        /// Runs `vxrouter run ARGS` in `host`, expecting it to give up by itself.
        private func failedStart(_ lab: Lab, on host: Host, _ arguments: [String]) async throws -> CommandResult {
            try LabEnvironment.requireRouter()
            let result = try await lab.run(
                host.command([LabEnvironment.routerBinary, "run"] + arguments), timeout: .seconds(15), check: false)
            #expect(!result.timedOut, "vxrouter should have refused to start: \(result.summary)")
            #expect(result.status != nil && result.status != 0, "expected a non-zero exit: \(result.summary)")
            return result
        }

        @Test("port in use: clear error, its TAP removed, the running router unharmed", .routerBinary, .timeLimit(.minutes(2)))
        func portInUse() async throws {
            try await withLab("portuse") { lab in
                let (a, b) = try await lab.twoHosts()
                let first = lab.interfaceName("vxa")
                let second = lab.interfaceName("vxc")
                let router = try await lab.startRouter(
                    on: a, tap: first, remotes: [b.underlayAddress], address: "198.19.0.1/24")
                let result = try await failedStart(
                    lab, on: a,
                    ["--vni", "43", "--tap", second, "--local", a.underlayAddress, "--remote", b.underlayAddress])
                let output = result.stdout + result.stderr
                #expect(output.contains("4789") && output.contains("in use"), "\(result.summary)")
                #expect(try await !a.deviceExists(second), "the refused router left TAP \(second) behind")
                #expect(try await a.deviceExists(first))
                _ = try await router.stats()
                try await router.stop()
            }
        }

        @Test("bad config: the key and reason named, nothing created", .routerBinary, .timeLimit(.minutes(1)))
        func badConfig() async throws {
            try await withLab("badcfg") { lab in
                let a = try await lab.addHost("a")
                let tap = lab.interfaceName("vxa")
                let path = lab.logPath("bad.yaml")
                try """
                underlay: { local: 198.18.0.1 }
                networks:
                  - vni: 16777216
                    tap: \(tap)
                """.write(toFile: path, atomically: true, encoding: .utf8)
                let result = try await failedStart(lab, on: a, ["--config", path])
                let output = result.stdout + result.stderr
                #expect(output.contains("networks[0].vni") && output.contains("out of range"), "\(result.summary)")
                #expect(try await !a.deviceExists(tap))
            }
        }

        @Test("local address not on this host, and a TAP name taken by a veth", .routerBinary, .timeLimit(.minutes(1)))
        func unusableLocalAddressAndName() async throws {
            try await withLab("badhost") { lab in
                let (a, b) = try await lab.twoHosts()
                let tap = lab.interfaceName("vxa")
                var result = try await failedStart(
                    lab, on: a, ["--vni", "42", "--tap", tap, "--local", "198.18.250.250", "--remote", b.underlayAddress])
                #expect((result.stdout + result.stderr).contains("not an address of any interface"), "\(result.summary)")
                #expect(try await !a.deviceExists(tap))

                // The underlay veth's own name: exists, and is not a TAP.
                result = try await failedStart(
                    lab, on: a,
                    ["--vni", "42", "--tap", a.underlayDevice, "--local", a.underlayAddress, "--remote", b.underlayAddress])
                #expect((result.stdout + result.stderr).contains("is not a multi-queue TAP"), "\(result.summary)")
                #expect(try await a.deviceExists(a.underlayDevice), "the router must not remove an interface it did not create")
            }
        }
    }
}
