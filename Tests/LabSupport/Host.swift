// One lab host: a network namespace, the commands run inside it, and what they read back.
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One lab host: a network namespace, and the underlay address it was given.
package final class Host: @unchecked Sendable {
    package unowned let lab: Lab
    /// Short name inside the lab ("a", "b", "sw").
    package let name: String
    package let namespace: String
    package private(set) var underlayDevice = ""
    package private(set) var underlayAddress = ""

    package init(lab: Lab, name: String, namespace: String) {
        self.lab = lab
        self.name = name
        self.namespace = namespace
    }

    /// `arguments` prefixed with `ip netns exec NAMESPACE`.
    package func command(_ arguments: [String]) -> [String] {
        [LabEnvironment.ip, "netns", "exec", namespace] + arguments
    }

    /// Runs a command inside this host.
    @discardableResult
    package func run(_ arguments: String..., timeout: Duration = .seconds(10), check: Bool = true) async throws -> CommandResult
    {
        let resolved = [LabEnvironment.tool(arguments[0])] + arguments.dropFirst()
        return try await lab.run(command(resolved), timeout: timeout, check: check)
    }

    /// `ip ARGS` aimed at this host's namespace.
    @discardableResult
    package func ip(_ arguments: String..., check: Bool = true) async throws -> CommandResult {
        try await lab.run([LabEnvironment.ip, "-n", namespace] + arguments, check: check)
    }

    package func disableIPv6(existingInterfacesToo: Bool) async throws {
        var settings = ["net.ipv6.conf.default.disable_ipv6=1"]
        if existingInterfacesToo { settings.append("net.ipv6.conf.all.disable_ipv6=1") }
        try await lab.run(command([LabEnvironment.tool("sysctl"), "-q", "-w"] + settings))
    }

    /// Gives `device` its underlay address (IPv6 ones `nodad`, usable at once) and brings it up.
    package func setUnderlay(device: String, address: String, prefixLength: Int) async throws {
        if address.contains(":") {
            try await ip("-6", "addr", "add", "\(address)/\(prefixLength)", "dev", device, "nodad")
        } else {
            try await ip("addr", "add", "\(address)/\(prefixLength)", "dev", device)
        }
        try await ip("link", "set", device, "up")
        underlayDevice = device
        underlayAddress = address
    }

    /// `count` echo replies from `address` within `deadline` seconds, or a LabFailure.
    /// The first one may wait for ARP resolution through the overlay.
    package func ping(_ address: String, count: Int = 3, deadline: Int = 10, size: Int? = nil) async throws {
        var arguments = ["ping", "-n", "-c", String(count), "-i", "0.2", "-w", String(deadline)]
        if let size { arguments += ["-s", String(size)] }
        if address.contains(":") { arguments.insert("-6", at: 1) }
        let result = try await lab.run(
            command([LabEnvironment.tool("ping")] + arguments.dropFirst() + [address]),
            timeout: .seconds(deadline + 5), check: false)
        guard result.succeeded else {
            throw LabFailure("ping \(name) → \(address) failed: \(result.summary)")
        }
    }

    /// Forgets every neighbour (ARP) entry on `device`, so the next packet resolves afresh
    /// (through the overlay's flooding).
    package func flushNeighbours(_ device: String) async throws {
        try await ip("neigh", "flush", "dev", device)
    }

    /// A sysfs file of this namespace (e.g. `class/net/vx42/statistics/rx_packets`), trimmed.
    package func sysfs(_ path: String) async throws -> String {
        try await run("cat", "/sys/" + path).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    package func interfaceCounter(_ device: String, _ counter: String) async throws -> Int {
        let text = try await sysfs("class/net/\(device)/statistics/\(counter)")
        guard let value = Int(text) else { throw LabFailure("\(name): \(device) \(counter) is not a number: \(text)") }
        return value
    }

    package func macAddress(of device: String) async throws -> String {
        try await sysfs("class/net/\(device)/address").lowercased()
    }

    package func mtu(of device: String) async throws -> Int {
        let text = try await sysfs("class/net/\(device)/mtu")
        guard let value = Int(text) else { throw LabFailure("\(name): \(device) mtu is not a number: \(text)") }
        return value
    }

    /// Whether the device exists and is administratively up (IFF_UP).
    package func isUp(_ device: String) async throws -> Bool {
        let result = try await run("cat", "/sys/class/net/\(device)/flags", check: false)
        guard result.succeeded,
            let flags = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(2), radix: 16)
        else { return false }
        return flags & 0x1 != 0
    }

    package func deviceExists(_ device: String) async throws -> Bool {
        try await ip("link", "show", "dev", device, check: false).succeeded
    }

    /// The `inet ADDR/LEN brd B` lines of `device`.
    package func ipv4Addresses(of device: String) async throws -> String {
        try await ip("-4", "-o", "addr", "show", "dev", device).stdout
    }

    /// The kernel's own VXLAN device as a VTEP, up: flooding to `peers` through the all-zeros FDB
    /// entry (none when empty), `address` on it if given, learning unless `learning` is false,
    /// `proxy` (answer ARP/ND from the neighbour table, as Docker's overlay has it) if asked,
    /// enslaved to the bridge `master` if given. Its MTU is the kernel's default (underlay - 50/70)
    /// unless `mtu` is given.
    ///
    /// The underlay keeps its checksum offload on, as users have it. A veth hands packets over
    /// with checksums still to be filled in and nothing fills them in, so this peer sends inner
    /// TCP/UDP segments whose checksum holds only the pseudo-header sum; a userspace VTEP must
    /// accept them as the kernel does (issue 13; the router counts them as `checksum_unfinished`).
    package func addKernelVXLAN(
        name device: String, vni: Int = 42, peers: [String], address: String?, port: Int = 4789,
        learning: Bool = true, proxy: Bool = false, mtu: Int? = nil, master: String? = nil
    ) async throws {
        var arguments = ["link", "add", device]
        if let mtu { arguments += ["mtu", String(mtu)] }
        arguments += [
            "type", "vxlan", "id", String(vni), "local", underlayAddress, "dstport", String(port), "dev", underlayDevice,
        ]
        if !learning { arguments.append("nolearning") }
        if proxy { arguments.append("proxy") }
        try await lab.run([LabEnvironment.ip, "-n", namespace] + arguments)
        for peer in peers {
            try await run("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", device, "dst", peer)
        }
        if let address { try await ip("addr", "add", address, "dev", device) }
        if let master { try await ip("link", "set", device, "master", master) }
        try await ip("link", "set", device, "up")
    }

    /// `bridge fdb show dev DEVICE` in this host.
    package func bridgeFDB(_ device: String) async throws -> String {
        try await run("bridge", "fdb", "show", "dev", device).stdout
    }
}
