// The end-to-end lab shared by the integration and load tests: hosts are network namespaces
// joined by veth pairs, the router (or vxload) runs inside them as a real process, the Linux
// kernel's vxlan device is the reference peer.
//
// 1. `withLab` makes a Lab with a unique id; everything it creates carries that id
//    (namespaces `vxt-<pid>-<tag>-<id>-<host>`, interfaces `<stem><id>`, ≤ 15 characters).
// 2. Every command runs through `Lab.run` with a deadline; a command that outlives it is killed.
// 3. On the way out, failure or not, the lab stops its processes first, then deletes its
//    namespaces (which takes their veths, bridges and TAPs with them).
//
// The owner pid in namespace names lets Tools/test.sh tell a stale namespace (its test process
// is gone) from one a concurrent run is still using.
//
// Files: Lab (this: commands, hosts, links, cleanup), Lab+Routers, Lab+Traffic, Host,
// RouterProcess, RouterStats, ChildProcess, CommandResult, LabEnvironment, LabFailure.
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs `body` in a fresh lab and tears the lab down afterwards, whether `body` returned, threw,
/// or recorded failures.
package func withLab<T>(_ tag: String, _ body: (Lab) async throws -> T) async throws -> T {
    try LabEnvironment.requireRoot()
    let lab = try Lab(tag: tag)
    do {
        let result = try await body(lab)
        await lab.cleanup()
        return result
    } catch {
        // The failing step rarely says why the router misbehaved: add what each router logged.
        let logs = lab.routerLogTails()
        await lab.cleanup()
        let shown = (error as? LabFailure)?.showsRouterLog ?? false
        throw logs.isEmpty || shown ? error : LabFailure("\(error)\n\(logs)")
    }
}

/// One test's hosts, processes and logs. Used from one test task at a time.
package final class Lab: @unchecked Sendable {
    package let tag: String
    /// Five random characters shared by every name this lab makes.
    package let id: String
    package let logDirectory: URL

    var namespaces: [String] = []
    var children: [ChildProcess] = []
    var routers: [RouterProcess] = []
    var commandCount = 0
    var linkCount = 0

    init(tag: String) throws {
        precondition(tag.count <= 12 && tag.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" })
        self.tag = tag
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        id = String((0..<5).map { _ in alphabet.randomElement()! })
        logDirectory = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("vxt-logs/\(getpid())-\(tag)-\(id)")
        try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
    }

    /// An interface name unique to this lab: `stem` + id, at most 15 characters (IFNAMSIZ - 1).
    package func interfaceName(_ stem: String) -> String {
        let name = stem + id
        precondition(name.utf8.count <= 15, "interface name \(name) is longer than 15 characters")
        return name
    }

    package func logPath(_ name: String) -> String { logDirectory.appendingPathComponent(name).path }

    private func nextLogName(_ hint: String) -> String {
        commandCount += 1
        let clean = String(hint.map { $0.isLetter || $0.isNumber ? $0 : "-" }.prefix(24))
        return String(format: "%03d-", commandCount) + clean
    }

    // MARK: Commands

    /// Starts a process and keeps track of it, so cleanup can stop it.
    /// `combinedLog` sends stdout and stderr to one file (what the router wants).
    package func spawn(_ arguments: [String], name: String? = nil, combinedLog: Bool = false) throws -> ChildProcess {
        let base = nextLogName(name ?? URL(fileURLWithPath: arguments.last ?? "cmd").lastPathComponent)
        let out = logPath(base + (combinedLog ? ".log" : ".out"))
        let err = combinedLog ? out : logPath(base + ".err")
        let child = try ChildProcess(arguments, stdoutPath: out, stderrPath: err)
        children.append(child)
        return child
    }

    /// Runs a command to completion, killing it at the deadline. Throws unless it exits 0,
    /// when `check` is set; otherwise returns whatever happened.
    @discardableResult
    package func run(_ arguments: [String], timeout: Duration = .seconds(10), check: Bool = true) async throws -> CommandResult
    {
        let child = try spawn(arguments, name: Lab.logHint(arguments))
        let exited = await child.wait(timeout: timeout)
        if !exited { await child.terminate(grace: .milliseconds(500)) }
        let result = child.result(timedOut: !exited)
        if check && !result.succeeded { throw LabFailure(result.summary) }
        // The result carries the output now; the log directory keeps what tells a story
        // (routers, servers, listeners, commands that failed a check).
        try? FileManager.default.removeItem(atPath: child.stdoutPath)
        try? FileManager.default.removeItem(atPath: child.stderrPath)
        return result
    }

    /// A readable log file stem for a command: without `ip netns exec NS` / `-n NS` and paths.
    private static func logHint(_ arguments: [String]) -> String {
        var words = arguments.map { URL(fileURLWithPath: $0).lastPathComponent }
        if words.count > 4, words[0] == "ip", words[1] == "netns", words[2] == "exec" { words.removeFirst(4) }
        if words.count > 3, words[0] == "ip", words[1] == "-n" { words.remove(at: 2) }
        if words.first?.hasPrefix("python") == true { words.removeFirst() }
        return words.prefix(4).joined(separator: "-")
    }

    /// Runs `ip ARGS...` (in the root namespace; use `-n NS` to aim at a host).
    @discardableResult
    package func ip(_ arguments: String..., check: Bool = true) async throws -> CommandResult {
        try await run([LabEnvironment.ip] + arguments, check: check)
    }

    // MARK: Hosts and links

    /// A new network namespace with loopback up. With `ipv6: false`, IPv6 is disabled for every
    /// interface it will ever have, so no router solicitation or MLD report pollutes a count.
    package func addHost(_ name: String, ipv6: Bool = false) async throws -> Host {
        let namespace = "vxt-\(getpid())-\(tag)-\(id)-\(name)"
        try await ip("netns", "add", namespace)
        namespaces.append(namespace)
        let host = Host(lab: self, name: name, namespace: namespace)
        if !ipv6 { try await host.disableIPv6(existingInterfacesToo: true) }
        try await ip("-n", namespace, "link", "set", "lo", "up")
        return host
    }

    /// A veth pair between two hosts, both ends up (no addresses). Returns the two ends' names.
    @discardableResult
    package func link(_ a: Host, _ b: Host, mtu: Int? = nil) async throws -> (String, String) {
        linkCount += 1
        let endA = interfaceName("v\(linkCount)a")
        let endB = interfaceName("v\(linkCount)b")
        try await ip(
            "link", "add", endA, "netns", a.namespace, "type", "veth", "peer", "name", endB, "netns", b.namespace)
        for (host, end) in [(a, endA), (b, endB)] {
            if let mtu { try await ip("-n", host.namespace, "link", "set", end, "mtu", String(mtu)) }
            try await ip("-n", host.namespace, "link", "set", end, "up")
        }
        return (endA, endB)
    }

    /// Two hosts `a` and `b` joined by one veth: 198.18.0.1/24 ↔ 198.18.0.2/24, or
    /// 2001:db8::1/64 ↔ 2001:db8::2/64 (nodad) with `ipv6Underlay`. The underlay is reachable
    /// (one ping) before this returns.
    package func twoHosts(ipv6Underlay: Bool = false, underlayMTU: Int? = nil) async throws -> (Host, Host) {
        let a = try await addHost("a", ipv6: ipv6Underlay)
        let b = try await addHost("b", ipv6: ipv6Underlay)
        let (endA, endB) = try await link(a, b, mtu: underlayMTU)
        if ipv6Underlay {
            try await a.setUnderlay(device: endA, address: "2001:db8::1", prefixLength: 64)
            try await b.setUnderlay(device: endB, address: "2001:db8::2", prefixLength: 64)
            // Only the veth keeps IPv6: TAPs and vxlan devices made from now on have none.
            for host in [a, b] { try await host.disableIPv6(existingInterfacesToo: false) }
        } else {
            try await a.setUnderlay(device: endA, address: "198.18.0.1", prefixLength: 24)
            try await b.setUnderlay(device: endB, address: "198.18.0.2", prefixLength: 24)
        }
        try await a.ping(b.underlayAddress, count: 1)
        return (a, b)
    }

    /// `count` hosts on one L2 underlay: a bridge in a switch namespace, a veth from each host to
    /// it, host i at 198.18.0.i/24. Hosts are named a, b, c, ...
    package func hostsOnSwitch(count: Int) async throws -> [Host] {
        let sw = try await addHost("sw")
        let bridge = interfaceName("br")
        try await ip("-n", sw.namespace, "link", "add", bridge, "type", "bridge")
        try await ip("-n", sw.namespace, "link", "set", bridge, "up")
        var hosts: [Host] = []
        for i in 0..<count {
            let name = String(UnicodeScalar(UInt8(ascii: "a") + UInt8(i)))
            let host = try await addHost(name)
            let (hostEnd, switchEnd) = try await link(host, sw)
            try await ip("-n", sw.namespace, "link", "set", switchEnd, "master", bridge)
            try await host.setUnderlay(device: hostEnd, address: "198.18.0.\(i + 1)", prefixLength: 24)
            hosts.append(host)
        }
        for host in hosts.dropFirst() { try await hosts[0].ping(host.underlayAddress, count: 1) }
        return hosts
    }

    /// The last lines each router logged, for failure messages.
    package func routerLogTails(lines: Int = 25) -> String {
        routers.map { router in
            "--- vxrouter in \(router.host.name) (\(router.child.exitDescription)), \(router.logPath):\n"
                + router.logTail(lines: lines)
        }.joined(separator: "\n")
    }

    // MARK: Cleanup

    /// Stops every process (SIGTERM, then SIGKILL), then deletes the namespaces. Never throws:
    /// a half-built lab must still come down. Also kills any process still inside one of this
    /// lab's namespaces (it can only have been started by this lab), so `ip netns del` frees them.
    package func cleanup() async {
        for child in children.reversed() where child.isRunning {
            await child.terminate()
        }
        for namespace in namespaces.reversed() {
            if let pids = try? await run(
                [LabEnvironment.ip, "netns", "pids", namespace], timeout: .seconds(5), check: false)
            {
                for pid in pids.stdout.split(whereSeparator: \.isWhitespace).compactMap({ Int32($0) }) {
                    kill(pid, SIGKILL)
                }
            }
            let deleted = try? await run(
                [LabEnvironment.ip, "netns", "del", namespace], timeout: .seconds(10), check: false)
            if deleted?.succeeded != true {
                print("lab \(id): could not delete namespace \(namespace): \(deleted?.summary ?? "?")")
            }
        }
        namespaces.removeAll()
        print("lab \(tag)-\(id): logs in \(logDirectory.path)")
    }
}
