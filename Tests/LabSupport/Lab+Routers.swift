// Starting vxrouter inside lab hosts: ad hoc, from a config file, or as a pair.
import Foundation

extension Lab {
    /// Starts `vxrouter run ARGS` in `host`, logging to a file, and waits for `vxrouter ready`.
    /// `taps` are the TAPs it is expected to create (checked to be gone by `stop()`).
    package func startRouter(on host: Host, arguments: [String], taps: [String]) async throws -> RouterProcess {
        try LabEnvironment.requireRouter()
        // Unless the test chose the control endpoint itself: the lab's (LabEnvironment.controlArguments).
        let chosen = arguments.contains { ["--control", "--no-control", "--config"].contains($0) }
        let control = chosen ? [] : LabEnvironment.controlArguments
        let child = try spawn(
            [LabEnvironment.ip, "netns", "exec", host.namespace, LabEnvironment.routerBinary, "run"] + arguments
                + control,
            name: "vxrouter-\(host.name)", combinedLog: true)
        let router = RouterProcess(host: host, child: child, taps: taps)
        routers.append(router)
        try await router.waitReady(timeout: .seconds(15))
        return router
    }

    /// The ad-hoc form: one network, `--local` is the host's underlay address.
    package func startRouter(
        on host: Host, vni: Int = 42, tap: String, remotes: [String], address: String, extra: [String] = []
    ) async throws -> RouterProcess {
        var arguments = ["--vni", String(vni), "--tap", tap, "--local", host.underlayAddress]
        for remote in remotes { arguments += ["--remote", remote] }
        arguments += ["--address", address] + extra
        return try await startRouter(on: host, arguments: arguments, taps: [tap])
    }

    /// A router on each of two hosts, one network (VNI 42) between them: TAP `vxa` at
    /// 198.19.0.1/24 on `a`, `vxb` at 198.19.0.2/24 on `b`, each flooding to the other.
    package func startRouterPair(
        _ a: Host, _ b: Host, extraA: [String] = [], extraB: [String] = []
    ) async throws -> (a: RouterProcess, b: RouterProcess, tapA: String, tapB: String) {
        let tapA = interfaceName("vxa")
        let tapB = interfaceName("vxb")
        let routerA = try await startRouter(
            on: a, tap: tapA, remotes: [b.underlayAddress], address: "198.19.0.1/24", extra: extraA)
        let routerB = try await startRouter(
            on: b, tap: tapB, remotes: [a.underlayAddress], address: "198.19.0.2/24", extra: extraB)
        return (routerA, routerB, tapA, tapB)
    }

    /// The config-file form: writes `yaml` next to the logs and runs `vxrouter run --config`.
    package func startRouter(on host: Host, config yaml: String, taps: [String]) async throws -> RouterProcess {
        let path = logPath("vxrouter-\(host.name).yaml")
        // A config that does not choose its control endpoint gets the lab's.
        let hasControl = yaml.split(separator: "\n").contains { $0.hasPrefix("control:") }
        let text = hasControl ? yaml : yaml + (yaml.hasSuffix("\n") ? "" : "\n") + LabEnvironment.controlYAML
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try await startRouter(on: host, arguments: ["--config", path], taps: taps)
    }
}
