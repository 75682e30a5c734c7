// What vxload's end-to-end tests add to the shared lab (Tests/LabSupport): the vxload binary,
// a kernel vxlan pair and a vxrouter pair between two hosts, vxload's JSON report.
// vxload runs in the root namespace and names each end's namespace (--tx-netns / --rx-netns).
import Foundation
import LabSupport
import Testing

/// The lab's host, not Foundation's `Host` (both are imported here).
typealias Host = LabSupport.Host

extension Trait where Self == ConditionTrait {
    /// Root and vxload (or CI=true, where either missing fails instead of skipping).
    static var loadLab: Self {
        .enabled(
            if: LabEnvironment.isCI || (LabEnvironment.isRoot && LabEnvironment.vxloadExists),
            "needs root and a vxload binary (VXLOAD_BIN); CI=true fails instead")
    }

    /// Root, vxload and vxrouter (or CI=true, where any missing fails instead of skipping).
    static var loadRouterLab: Self {
        .enabled(
            if: LabEnvironment.isCI
                || (LabEnvironment.isRoot && LabEnvironment.vxloadExists && LabEnvironment.routerBinaryExists),
            "needs root, vxload and vxrouter binaries (VXLOAD_BIN, VXROUTER_BIN); CI=true fails instead")
    }
}

/// `withLab`, after checking that vxload (and with `router`, vxrouter) is there to run.
func withLoadLab<T>(_ tag: String, router: Bool = false, _ body: (Lab) async throws -> T) async throws -> T {
    try LabEnvironment.requireRoot()
    try LabEnvironment.requireVXLoad()
    if router { try LabEnvironment.requireRouter() }
    return try await withLab(tag, body)
}

extension Lab {
    /// The kernel's vxlan device `vxk` in each host, VNI 42, flooding to the other, no address
    /// (vxload's ends send and receive frames on it, not IP).
    func kernelVXLANPair(_ a: Host, _ b: Host) async throws {
        for (host, peer) in [(a, b), (b, a)] {
            try await host.ip(
                "link", "add", "vxk", "type", "vxlan", "id", "42", "local", host.underlayAddress, "dstport", "4789",
                "dev", host.underlayDevice)
            try await host.run("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxk", "dst", peer.underlayAddress)
            try await host.ip("link", "set", "vxk", "up")
        }
    }

    /// vxrouter in each host with TAP vx42, VNI 42, each the other's remote (198.19.0.1/24 in a,
    /// .2 in b); ready when this returns.
    func routerPair(_ a: Host, _ b: Host) async throws {
        for (host, peer, address) in [(a, b, "198.19.0.1/24"), (b, a, "198.19.0.2/24")] {
            _ = try await startRouter(on: host, tap: "vx42", remotes: [peer.underlayAddress], address: address)
        }
    }

    /// `vxload ARGS` (from the root namespace; the ends name theirs), with a deadline; never
    /// throws for a non-zero exit (the tests check the status).
    func vxload(_ arguments: [String], timeout: Duration = .seconds(30)) async throws -> CommandResult {
        try await run([LabEnvironment.vxload] + arguments, timeout: timeout, check: false)
    }
}

extension CommandResult {
    /// Standard output as the JSON object vxload --json prints.
    func json() throws -> [String: Any] {
        guard let data = stdout.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw LabFailure("no JSON object on stdout of \(summary)") }
        return object
    }
}

/// A number out of vxload's JSON (integers and doubles alike).
func number(_ object: [String: Any], _ key: String) throws -> Double {
    guard let value = object[key] as? NSNumber else { throw LabFailure("no number \(key) in \(object)") }
    return value.doubleValue
}
