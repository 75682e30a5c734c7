// The end-to-end lab: hosts are network namespaces joined by veth pairs, the router runs
// inside them as a real process, the Linux kernel's vxlan device is the reference peer.
//
// 1. `withLab` makes a Lab with a unique id; everything it creates carries that id
//    (namespaces `vxt-<pid>-<tag>-<id>-<host>`, interfaces `<stem><id>`, ≤ 15 characters).
// 2. Every command runs through `Lab.run` with a deadline; a command that outlives it is killed.
// 3. On the way out, failure or not, the lab stops its processes first, then deletes its
//    namespaces (which takes their veths, bridges and TAPs with them).
//
// The owner pid in namespace names lets Tools/test.sh tell a stale namespace (its test process
// is gone) from one a concurrent run is still using.
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Environment

/// Where the lab finds its binaries and scripts, and whether it may run at all.
enum LabEnvironment {
    /// The package root, three levels above this file (Tests/IntegrationTests/Lab.swift).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let isRoot = geteuid() == 0
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    /// `VXROUTER_BIN`, else `<package root>/.build/release/vxrouter`.
    static let routerBinary: String = {
        if let path = ProcessInfo.processInfo.environment["VXROUTER_BIN"], !path.isEmpty { return path }
        return packageRoot.appendingPathComponent(".build/release/vxrouter").path
    }()

    static var routerBinaryExists: Bool { FileManager.default.isExecutableFile(atPath: routerBinary) }

    /// Lab hosts need root (namespaces, veths, TAPs). Without root the tests skip, except in CI,
    /// where they run and fail loudly in `requireRoot`.
    static var labHostAvailable: Bool { isRoot || isCI }

    /// Router scenarios also need the binary; outside CI a missing one skips them.
    static var routerAvailable: Bool { isCI || (isRoot && routerBinaryExists) }

    static func requireRoot() throws {
        guard isRoot else {
            throw LabFailure(
                "integration tests need root (network namespaces, veth pairs, TAP devices); "
                    + "CI=true makes this a failure, not a skip"
            )
        }
    }

    static func requireRouter() throws {
        guard routerBinaryExists else {
            throw LabFailure(
                "no vxrouter binary at \(routerBinary): "
                    + "run `swift build -c release --product vxrouter` or set VXROUTER_BIN"
            )
        }
        warnIfRouterIsStale()
    }

    /// A tool by name, from PATH or the sbin directories a root shell would have.
    static func tool(_ name: String) -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for directory in directories {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return name
    }

    /// The system python (stdlib only is needed), preferred over version-manager shims.
    static let python: String = {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : tool("python3")
    }()

    static let ip = tool("ip")

    static func script(_ name: String) -> String {
        packageRoot.appendingPathComponent("Tools/lab/\(name)").path
    }

    /// Tests run whatever binary they find: say so when Sources/ changed after it was built.
    private static let staleCheck: Void = {
        let fm = FileManager.default
        guard let built = (try? fm.attributesOfItem(atPath: routerBinary))?[.modificationDate] as? Date,
            let files = fm.enumerator(atPath: packageRoot.appendingPathComponent("Sources").path)
        else { return }
        for case let file as String in files {
            let path = packageRoot.appendingPathComponent("Sources/\(file)").path
            if let changed = (try? fm.attributesOfItem(atPath: path))?[.modificationDate] as? Date, changed > built {
                print(
                    "warning: \(routerBinary) is older than Sources/\(file); "
                        + "rebuild (swift build -c release --product vxrouter) to test the current code"
                )
                return
            }
        }
    }()

    static func warnIfRouterIsStale() { _ = staleCheck }
}

extension Trait where Self == ConditionTrait {
    /// Root (or CI=true, where a missing root fails instead of skipping).
    static var labHost: Self {
        .enabled(
            if: LabEnvironment.labHostAvailable,
            "needs root for network namespaces (CI=true turns the skip into a failure)")
    }

    /// Root and a vxrouter binary (or CI=true, where either missing fails instead of skipping).
    static var routerBinary: Self {
        .enabled(
            if: LabEnvironment.routerAvailable,
            "needs root and a vxrouter binary (VXROUTER_BIN or .build/release/vxrouter); CI=true fails instead"
        )
    }
}

/// A lab step that did not go as planned, with what the lab saw.
struct LabFailure: Error, CustomStringConvertible {
    let description: String
    /// Already carries a router's log tail (withLab need not add the logs again).
    var showsRouterLog = false
    init(_ description: String, showsRouterLog: Bool = false) {
        self.description = description
        self.showsRouterLog = showsRouterLog
    }
}

// MARK: - Processes

/// Sleeps briefly without throwing. Once the task is cancelled (a time limit hit), `Task.sleep`
/// returns at once, so fall back to a real sleep: cleanup still waits for processes to die.
func nap(milliseconds: Int = 20) async {
    if Task.isCancelled {
        usleep(UInt32(milliseconds) * 1000)
    } else {
        try? await Task.sleep(for: .milliseconds(milliseconds))
    }
}

extension Duration {
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}

/// What a finished (or killed) command left behind.
struct CommandResult: Sendable {
    let commandLine: String
    /// Exit status, or nil when it died of a signal.
    let status: Int32?
    let timedOut: Bool
    let stdout: String
    let stderr: String

    var succeeded: Bool { !timedOut && status == 0 }

    var summary: String {
        let outcome = timedOut ? "timed out" : status.map { "exit \($0)" } ?? "killed by a signal"
        var text = "`\(commandLine)`: \(outcome)"
        let out = stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let err = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        if !out.isEmpty { text += "\n  stdout: \(out.suffix(2000))" }
        if !err.isEmpty { text += "\n  stderr: \(err.suffix(2000))" }
        return text
    }
}

/// A process the lab started, with its output going to files (never a pipe that could fill up).
final class ChildProcess: @unchecked Sendable {
    let commandLine: String
    let stdoutPath: String
    let stderrPath: String
    private let process: Process

    init(_ arguments: [String], stdoutPath: String, stderrPath: String) throws {
        precondition(!arguments.isEmpty)
        commandLine = arguments.joined(separator: " ")
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
        process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        var err = out
        if stderrPath != stdoutPath {
            _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
            err = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        defer {
            try? out.close()
            if stderrPath != stdoutPath { try? err.close() }
        }
        do {
            // posix_spawn hands the calling thread's signal mask to the child, and test threads
            // (libdispatch workers) block nearly every signal: a router started that way would
            // never see SIGTERM or SIGUSR1 unless it reads them through a signalfd. Start every
            // child the way a shell would, with nothing blocked.
            var nothing = sigset_t()
            var previous = sigset_t()
            sigemptyset(&nothing)
            pthread_sigmask(SIG_SETMASK, &nothing, &previous)
            defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
            try process.run()
        } catch {
            throw LabFailure("cannot start `\(commandLine)`: \(error)")
        }
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Exit status once exited normally; nil while running or after death by a signal.
    var exitStatus: Int32? {
        guard !process.isRunning, process.terminationReason == .exit else { return nil }
        return process.terminationStatus
    }

    var exitDescription: String {
        if process.isRunning { return "still running" }
        return process.terminationReason == .exit
            ? "exit \(process.terminationStatus)" : "killed by signal \(process.terminationStatus)"
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String {
        stderrPath == stdoutPath ? "" : (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    }

    func signal(_ number: Int32) {
        if process.isRunning { kill(pid, number) }
    }

    /// Waits until the process exits or the timeout passes; true if it exited.
    @discardableResult
    func wait(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { return false }
            await nap()
        }
        return true
    }

    /// SIGTERM, a grace period, then SIGKILL; returns once the process is gone (bounded).
    func terminate(grace: Duration = .seconds(2)) async {
        guard process.isRunning else { return }
        signal(SIGTERM)
        if await wait(timeout: grace) { return }
        signal(SIGKILL)
        await wait(timeout: .seconds(5))
    }

    /// Waits until `text` shows up in stdout (or the process exits, or the timeout passes).
    func waitForOutput(_ text: String, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if stdout.contains(text) { return true }
            if !process.isRunning { return stdout.contains(text) }
            await nap(milliseconds: 50)
        }
        return false
    }

    func result(timedOut: Bool) -> CommandResult {
        CommandResult(commandLine: commandLine, status: exitStatus, timedOut: timedOut, stdout: stdout, stderr: stderr)
    }
}

// MARK: - The lab

/// Runs `body` in a fresh lab and tears the lab down afterwards, whether `body` returned, threw,
/// or recorded failures.
func withLab<T>(_ tag: String, _ body: (Lab) async throws -> T) async throws -> T {
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
final class Lab: @unchecked Sendable {
    let tag: String
    /// Five random characters shared by every name this lab makes.
    let id: String
    let logDirectory: URL

    private var namespaces: [String] = []
    private var children: [ChildProcess] = []
    private var routers: [RouterProcess] = []
    private var commandCount = 0
    private var linkCount = 0

    fileprivate init(tag: String) throws {
        precondition(tag.count <= 12 && tag.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" })
        self.tag = tag
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        id = String((0..<5).map { _ in alphabet.randomElement()! })
        logDirectory = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("vxt-logs/\(getpid())-\(tag)-\(id)")
        try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
    }

    /// An interface name unique to this lab: `stem` + id, at most 15 characters (IFNAMSIZ - 1).
    func interfaceName(_ stem: String) -> String {
        let name = stem + id
        precondition(name.utf8.count <= 15, "interface name \(name) is longer than 15 characters")
        return name
    }

    func logPath(_ name: String) -> String { logDirectory.appendingPathComponent(name).path }

    private func nextLogName(_ hint: String) -> String {
        commandCount += 1
        let clean = String(hint.map { $0.isLetter || $0.isNumber ? $0 : "-" }.prefix(24))
        return String(format: "%03d-", commandCount) + clean
    }

    // MARK: Commands

    /// Starts a process and keeps track of it, so cleanup can stop it.
    /// `combinedLog` sends stdout and stderr to one file (what the router wants).
    func spawn(_ arguments: [String], name: String? = nil, combinedLog: Bool = false) throws -> ChildProcess {
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
    func run(_ arguments: [String], timeout: Duration = .seconds(10), check: Bool = true) async throws -> CommandResult
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
    func ip(_ arguments: String..., check: Bool = true) async throws -> CommandResult {
        try await run([LabEnvironment.ip] + arguments, check: check)
    }

    // MARK: Hosts and links

    /// A new network namespace with loopback up. With `ipv6: false`, IPv6 is disabled for every
    /// interface it will ever have, so no router solicitation or MLD report pollutes a count.
    func addHost(_ name: String, ipv6: Bool = false) async throws -> Host {
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
    func link(_ a: Host, _ b: Host, mtu: Int? = nil) async throws -> (String, String) {
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
    func twoHosts(ipv6Underlay: Bool = false, underlayMTU: Int? = nil) async throws -> (Host, Host) {
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
    func hostsOnSwitch(count: Int) async throws -> [Host] {
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

    // MARK: Routers

    /// Starts `vxrouter run ARGS` in `host`, logging to a file, and waits for `vxrouter ready`.
    /// `taps` are the TAPs it is expected to create (checked to be gone by `stop()`).
    func startRouter(on host: Host, arguments: [String], taps: [String]) async throws -> RouterProcess {
        try LabEnvironment.requireRouter()
        let child = try spawn(
            [LabEnvironment.ip, "netns", "exec", host.namespace, LabEnvironment.routerBinary, "run"] + arguments,
            name: "vxrouter-\(host.name)", combinedLog: true)
        let router = RouterProcess(host: host, child: child, taps: taps)
        routers.append(router)
        try await router.waitReady(timeout: .seconds(15))
        return router
    }

    /// The ad-hoc form: one network, `--local` is the host's underlay address.
    func startRouter(
        on host: Host, vni: Int = 42, tap: String, remotes: [String], address: String, extra: [String] = []
    ) async throws -> RouterProcess {
        var arguments = ["--vni", String(vni), "--tap", tap, "--local", host.underlayAddress]
        for remote in remotes { arguments += ["--remote", remote] }
        arguments += ["--address", address] + extra
        return try await startRouter(on: host, arguments: arguments, taps: [tap])
    }

    /// A router on each of two hosts, one network (VNI 42) between them: TAP `vxa` at
    /// 198.19.0.1/24 on `a`, `vxb` at 198.19.0.2/24 on `b`, each flooding to the other.
    func startRouterPair(
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
    func startRouter(on host: Host, config yaml: String, taps: [String]) async throws -> RouterProcess {
        let path = logPath("vxrouter-\(host.name).yaml")
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try await startRouter(on: host, arguments: ["--config", path], taps: taps)
    }

    // MARK: Traffic

    /// A checked TCP transfer (Tools/lab/tcp_check.py): a server in `server` listening on
    /// `address`, a client in `client` sending `bytes` pseudo-random bytes; passes only when the
    /// server saw every byte intact. Returns the server's verdict line.
    @discardableResult
    func tcpTransfer(
        from client: Host, to server: Host, address: String, bytes: Int, port: Int = 5201, seed: Int = 1,
        timeout: Duration = .seconds(150)
    ) async throws -> String {
        let script = LabEnvironment.script("tcp_check.py")
        let seconds = String(Int(timeout.seconds))
        let common = ["--port", String(port), "--bytes", String(bytes), "--seed", String(seed), "--timeout", seconds]
        let serverProcess = try spawn(
            server.command([LabEnvironment.python, script, "serve", "--listen", address] + common),
            name: "tcp-serve-\(server.name)")
        defer { serverProcess.signal(SIGKILL) }
        guard await serverProcess.waitForOutput("listening", timeout: .seconds(10)) else {
            throw LabFailure("TCP server did not start: \(serverProcess.result(timedOut: false).summary)")
        }
        let sent = try await run(
            client.command([LabEnvironment.python, script, "send", "--connect", address] + common),
            timeout: timeout + .seconds(10), check: false)
        let serverExited = await serverProcess.wait(timeout: .seconds(15))
        let received = serverProcess.result(timedOut: !serverExited)
        guard sent.succeeded, received.succeeded else {
            throw LabFailure(
                "TCP transfer of \(bytes) bytes \(client.name) → \(server.name) (\(address)) failed\n"
                    + "client: \(sent.summary)\nserver: \(received.summary)")
        }
        return received.stdout.split(separator: "\n").last.map(String.init) ?? ""
    }

    /// Datagrams from one broadcast send as seen by each receiver (Tools/lab/udp_broadcast.py).
    struct BroadcastCount: Sendable {
        let host: String
        /// Different datagrams received.
        let distinct: Int
        /// All copies received (more than `distinct` means duplicates).
        let total: Int
    }

    /// Starts a listener on every receiver, sends `count` datagrams to `address` from `sender`,
    /// and returns what each listener counted over its window.
    func broadcast(
        from sender: Host, to address: String, receivers: [Host], count: Int = 5, port: Int = 5300
    ) async throws -> [BroadcastCount] {
        let script = LabEnvironment.script("udp_broadcast.py")
        let token = "vxt-\(id)-\(Int.random(in: 0..<1_000_000))"
        let window = 4
        var listeners: [(Host, ChildProcess)] = []
        defer { for (_, listener) in listeners { listener.signal(SIGKILL) } }
        for receiver in receivers {
            let listener = try spawn(
                receiver.command([
                    LabEnvironment.python, script, "listen", "--port", String(port), "--token", token,
                    "--window", String(window),
                ]), name: "udp-listen-\(receiver.name)")
            listeners.append((receiver, listener))
            guard await listener.waitForOutput("listening", timeout: .seconds(10)) else {
                throw LabFailure("UDP listener did not start: \(listener.result(timedOut: false).summary)")
            }
        }
        try await run(
            sender.command([
                LabEnvironment.python, script, "send", "--to", address, "--port", String(port), "--token", token,
                "--count", String(count),
            ]), timeout: .seconds(15))
        var counts: [BroadcastCount] = []
        for (receiver, listener) in listeners {
            let exited = await listener.wait(timeout: .seconds(window + 10))
            let result = listener.result(timedOut: !exited)
            guard result.succeeded,
                let line = result.stdout.split(separator: "\n").last(where: { $0.hasPrefix("distinct=") })
            else { throw LabFailure("UDP listener in \(receiver.name) failed: \(result.summary)") }
            let values = parseKeyValues(line)
            counts.append(
                BroadcastCount(host: receiver.name, distinct: values["distinct"] ?? -1, total: values["total"] ?? -1))
        }
        return counts
    }

    /// Sends malformed (or valid) VXLAN packets from `host` (Tools/lab/vxlan_malformed.py).
    func sendVXLAN(from host: Host, to address: String, kind: String, count: Int, extra: [String] = []) async throws {
        try await run(
            host.command(
                [
                    LabEnvironment.python, LabEnvironment.script("vxlan_malformed.py"), "--to", address, "--kind", kind,
                    "--count", String(count),
                ] + extra), timeout: .seconds(20))
    }

    /// The last lines each router logged, for failure messages.
    func routerLogTails(lines: Int = 25) -> String {
        routers.map { router in
            "--- vxrouter in \(router.host.name) (\(router.child.exitDescription)), \(router.logPath):\n"
                + router.logTail(lines: lines)
        }.joined(separator: "\n")
    }

    // MARK: Cleanup

    /// Stops every process (SIGTERM, then SIGKILL), then deletes the namespaces. Never throws:
    /// a half-built lab must still come down. Also kills any process still inside one of this
    /// lab's namespaces (it can only have been started by this lab), so `ip netns del` frees them.
    func cleanup() async {
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

// MARK: - Hosts

/// One lab host: a network namespace, and the underlay address it was given.
final class Host: @unchecked Sendable {
    unowned let lab: Lab
    /// Short name inside the lab ("a", "b", "sw").
    let name: String
    let namespace: String
    private(set) var underlayDevice = ""
    private(set) var underlayAddress = ""

    init(lab: Lab, name: String, namespace: String) {
        self.lab = lab
        self.name = name
        self.namespace = namespace
    }

    /// `arguments` prefixed with `ip netns exec NAMESPACE`.
    func command(_ arguments: [String]) -> [String] {
        [LabEnvironment.ip, "netns", "exec", namespace] + arguments
    }

    /// Runs a command inside this host.
    @discardableResult
    func run(_ arguments: String..., timeout: Duration = .seconds(10), check: Bool = true) async throws -> CommandResult
    {
        let resolved = [LabEnvironment.tool(arguments[0])] + arguments.dropFirst()
        return try await lab.run(command(resolved), timeout: timeout, check: check)
    }

    /// `ip ARGS` aimed at this host's namespace.
    @discardableResult
    func ip(_ arguments: String..., check: Bool = true) async throws -> CommandResult {
        try await lab.run([LabEnvironment.ip, "-n", namespace] + arguments, check: check)
    }

    func disableIPv6(existingInterfacesToo: Bool) async throws {
        var settings = ["net.ipv6.conf.default.disable_ipv6=1"]
        if existingInterfacesToo { settings.append("net.ipv6.conf.all.disable_ipv6=1") }
        try await lab.run(command([LabEnvironment.tool("sysctl"), "-q", "-w"] + settings))
    }

    /// Gives `device` its underlay address (IPv6 ones `nodad`, usable at once) and brings it up.
    func setUnderlay(device: String, address: String, prefixLength: Int) async throws {
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
    func ping(_ address: String, count: Int = 3, deadline: Int = 10, size: Int? = nil) async throws {
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
    func flushNeighbours(_ device: String) async throws {
        try await ip("neigh", "flush", "dev", device)
    }

    /// A sysfs file of this namespace (e.g. `class/net/vx42/statistics/rx_packets`), trimmed.
    func sysfs(_ path: String) async throws -> String {
        try await run("cat", "/sys/" + path).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func interfaceCounter(_ device: String, _ counter: String) async throws -> Int {
        let text = try await sysfs("class/net/\(device)/statistics/\(counter)")
        guard let value = Int(text) else { throw LabFailure("\(name): \(device) \(counter) is not a number: \(text)") }
        return value
    }

    func macAddress(of device: String) async throws -> String {
        try await sysfs("class/net/\(device)/address").lowercased()
    }

    func mtu(of device: String) async throws -> Int {
        let text = try await sysfs("class/net/\(device)/mtu")
        guard let value = Int(text) else { throw LabFailure("\(name): \(device) mtu is not a number: \(text)") }
        return value
    }

    /// Whether the device exists and is administratively up (IFF_UP).
    func isUp(_ device: String) async throws -> Bool {
        let result = try await run("cat", "/sys/class/net/\(device)/flags", check: false)
        guard result.succeeded,
            let flags = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(2), radix: 16)
        else { return false }
        return flags & 0x1 != 0
    }

    func deviceExists(_ device: String) async throws -> Bool {
        try await ip("link", "show", "dev", device, check: false).succeeded
    }

    /// The `inet ADDR/LEN brd B` lines of `device`.
    func ipv4Addresses(of device: String) async throws -> String {
        try await ip("-4", "-o", "addr", "show", "dev", device).stdout
    }

    /// The kernel's own VXLAN device as a VTEP: learning on, flooding to `peers` through the
    /// all-zeros FDB entry, `address` on it, up. Its MTU is the kernel's default (underlay - 50/70).
    ///
    /// The underlay veth gets tx checksum offload turned off first. A veth hands packets over
    /// with checksums still to be filled in, and nothing fills them in: the kernel's vxlan would
    /// put TCP segments on the "wire" with the inner TCP checksum unfinished. A kernel receiver
    /// copes (it knows); a userspace VTEP reading a UDP socket cannot know, and its host drops the
    /// segments (TcpInCsumErrors). A NIC computes them; with the offload off, so does the kernel.
    func addKernelVXLAN(
        name device: String, vni: Int = 42, peers: [String], address: String, port: Int = 4789
    ) async throws {
        try await lab.run(
            command([LabEnvironment.python, LabEnvironment.script("tx_checksum.py"), underlayDevice, "off"]))
        try await ip(
            "link", "add", device, "type", "vxlan", "id", String(vni), "local", underlayAddress,
            "dstport", String(port), "dev", underlayDevice)
        for peer in peers {
            try await run("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", device, "dst", peer)
        }
        try await ip("addr", "add", address, "dev", device)
        try await ip("link", "set", device, "up")
    }

    /// `bridge fdb show dev DEVICE` in this host.
    func bridgeFDB(_ device: String) async throws -> String {
        try await run("bridge", "fdb", "show", "dev", device).stdout
    }
}

// MARK: - The router under test

/// `vxrouter run` inside a lab host, its stdout and stderr in one log file.
final class RouterProcess: @unchecked Sendable {
    let host: Host
    let child: ChildProcess
    let taps: [String]

    init(host: Host, child: ChildProcess, taps: [String]) {
        self.host = host
        self.child = child
        self.taps = taps
    }

    var logPath: String { child.stdoutPath }
    var log: String { child.stdout }

    /// CPU time (user + system, every thread) the router has used so far, from /proc/PID/stat.
    /// (`ip netns exec` execs the router, so the child's pid is the router's.)
    func cpuSeconds() throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(child.pid)/stat", encoding: .utf8)
        // Fields after the command name, which is in parentheses and may hold spaces.
        guard let close = stat.lastIndex(of: ")") else { throw failure("unreadable /proc stat") }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3); utime and stime are fields 14 and 15.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else {
            throw failure("unreadable /proc stat")
        }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    func logTail(lines: Int = 40) -> String {
        log.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    private func failure(_ what: String) -> LabFailure {
        LabFailure(
            "vxrouter in \(host.name): \(what) (\(child.exitDescription)); log \(logPath):\n\(logTail())",
            showsRouterLog: true)
    }

    /// Waits (bounded) for the `vxrouter ready` line; fails early if the router exits.
    func waitReady(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if log.contains("vxrouter ready") { return }
            if !child.isRunning { throw failure("exited before `vxrouter ready`") }
            await nap(milliseconds: 50)
        }
        throw failure("no `vxrouter ready` within \(timeout)")
    }

    /// Sends SIGUSR1 and parses the block of `stats` lines it prints, up to `stats end`.
    func stats(timeout: Duration = .seconds(5)) async throws -> RouterStats {
        guard child.isRunning else { throw failure("not running, cannot ask for stats") }
        let start = log.utf8.count
        child.signal(SIGUSR1)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let fresh = String(decoding: log.utf8.dropFirst(start), as: UTF8.self)
            if fresh.contains("stats end") {
                return try RouterStats(parsing: fresh)
            }
            if !child.isRunning { throw failure("exited after SIGUSR1") }
            await nap(milliseconds: 50)
        }
        throw failure("no `stats end` within \(timeout) of SIGUSR1")
    }

    /// Polls `stats()` until `condition` holds or the timeout passes; returns the last stats.
    /// Counters lag traffic a little (workers sum on demand); this absorbs the lag.
    func stats(
        until condition: (RouterStats) -> Bool, timeout: Duration = .seconds(3)
    ) async throws -> RouterStats {
        let deadline = ContinuousClock.now + timeout
        var last = try await stats()
        while !condition(last) && ContinuousClock.now < deadline {
            await nap(milliseconds: 200)
            last = try await stats()
        }
        return last
    }

    /// SIGTERM; the router must exit 0 within a few seconds and its TAPs must be gone.
    func stop() async throws {
        guard child.isRunning else { throw failure("had already exited before stop()") }
        child.signal(SIGTERM)
        guard await child.wait(timeout: .seconds(5)) else {
            await child.terminate(grace: .milliseconds(100))
            throw failure("still running 5 s after SIGTERM")
        }
        guard child.exitStatus == 0 else { throw failure("did not exit 0 on SIGTERM") }
        for tap in taps {
            var gone = false
            for _ in 0..<25 {
                if try await !host.deviceExists(tap) {
                    gone = true
                    break
                }
                await nap(milliseconds: 40)
            }
            guard gone else { throw failure("TAP \(tap) still exists after exit") }
        }
    }
}

/// One SIGUSR1 report: counters per served VNI, plus the `vni=-` line (drops that cannot be
/// attributed to a served VNI). Unknown keys are kept; values that aren't integers go to `labels`.
struct RouterStats: Sendable, CustomStringConvertible {
    var networks: [Int: [String: Int]] = [:]
    var unattributed: [String: Int] = [:]
    /// Non-numeric values per VNI, e.g. ["tap": "vx42"].
    var labels: [Int: [String: String]] = [:]
    let text: String

    init(parsing block: String) throws {
        var lines: [Substring] = []
        for line in block.split(separator: "\n") {
            if line.contains("stats end") { break }
            if line.contains("stats vni=") { lines.append(line) }
        }
        text = lines.joined(separator: "\n")
        for line in lines {
            // The logger may prefix a timestamp and level: parse from `stats vni=` on.
            guard let range = line.range(of: "stats vni=") else { continue }
            let tokens = line[range.lowerBound...].split(separator: " ").dropFirst()
            var numbers: [String: Int] = [:]
            var strings: [String: String] = [:]
            var vni: Int?
            var isUnattributed = false
            for token in tokens {
                guard let equals = token.firstIndex(of: "=") else { continue }
                let key = String(token[..<equals])
                let value = String(token[token.index(after: equals)...])
                if key == "vni" {
                    if value == "-" { isUnattributed = true } else { vni = Int(value) }
                } else if let number = Int(value) {
                    numbers[key] = number
                } else {
                    strings[key] = value
                }
            }
            if isUnattributed {
                unattributed.merge(numbers) { $0 + $1 }
            } else if let vni {
                networks[vni, default: [:]].merge(numbers) { $0 + $1 }
                labels[vni, default: [:]].merge(strings) { $1 }
            } else {
                throw LabFailure("stats line without a usable vni: \(line)")
            }
        }
    }

    /// A counter of one VNI; throws if the router didn't report it (a contract break).
    func counter(_ key: String, vni: Int) throws -> Int {
        guard let network = networks[vni] else { throw LabFailure("no stats line for vni=\(vni) in:\n\(text)") }
        guard let value = network[key] else { throw LabFailure("vni=\(vni) has no \(key) in:\n\(text)") }
        return value
    }

    /// A counter summed over every VNI line and the `vni=-` line (missing counts as 0).
    func total(_ key: String) -> Int {
        networks.values.reduce(unattributed[key] ?? 0) { $0 + ($1[key] ?? 0) }
    }

    /// Every `drop_*` counter, summed over all lines.
    var totalDrops: Int {
        let keys = Set(networks.values.flatMap(\.keys) + unattributed.keys).filter { $0.hasPrefix("drop_") }
        return keys.reduce(0) { $0 + total($1) }
    }

    var description: String { text }
}

/// `key=value` pairs with integer values from a line; other tokens are ignored.
func parseKeyValues<S: StringProtocol>(_ line: S) -> [String: Int] {
    var values: [String: Int] = [:]
    for token in line.split(separator: " ") {
        let parts = token.split(separator: "=", maxSplits: 1)
        if parts.count == 2, let number = Int(parts[1]) { values[String(parts[0])] = number }
    }
    return values
}

/// The one serialized suite every end-to-end scenario nests in (extensions in the other files):
/// on two cores, heavy scenarios side by side would be flaky, and the lab is the bottleneck anyway.
@Suite("End to end across network namespaces", .serialized, .labHost)
struct EndToEnd {}
