// The lab vxload's end-to-end tests run in: network namespaces joined by a veth, the kernel's
// vxlan or vxrouter on top, vxload driving both ends from outside (--tx-netns / --rx-netns).
// Modeled on Tests/IntegrationTests/Lab.swift, kept separate so each target stands alone.
//
// 1. `withLoadLab` makes a lab with a unique id; namespaces are `vxt-<pid>-<tag>-<id>-<host>`
//    (Tools/test.sh sweeps stale ones by the pid), interfaces carry the id.
// 2. Every command runs with a deadline and is killed past it.
// 3. On the way out, failure or not: stop the processes, then delete the namespaces.
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

enum LoadEnvironment {
    /// Three levels above this file (Tests/VXLoadTests/LoadLab.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let isRoot = geteuid() == 0
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    /// `VXLOAD_BIN`, else `.build/release/vxload`, else `.build/debug/vxload`, else the one built
    /// next to this test binary (a `--scratch-path` build).
    static let vxload: String = {
        let env = ProcessInfo.processInfo.environment
        if let path = env["VXLOAD_BIN"], !path.isEmpty { return path }
        let candidates = [
            packageRoot.appendingPathComponent(".build/release/vxload").path,
            packageRoot.appendingPathComponent(".build/debug/vxload").path,
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vxload").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }()

    /// `VXROUTER_BIN`, else `.build/release/vxrouter`.
    static let vxrouter: String = {
        if let path = ProcessInfo.processInfo.environment["VXROUTER_BIN"], !path.isEmpty { return path }
        return packageRoot.appendingPathComponent(".build/release/vxrouter").path
    }()

    static func exists(_ path: String) -> Bool { FileManager.default.isExecutableFile(atPath: path) }

    /// Root, or CI (where a missing root or binary fails rather than skips).
    static var labAvailable: Bool { isCI || (isRoot && exists(vxload)) }
    static var routerLabAvailable: Bool { isCI || (isRoot && exists(vxload) && exists(vxrouter)) }

    static func require(router: Bool = false) throws {
        guard isRoot else {
            throw LoadFailure("vxload's lab tests need root (network namespaces, packet sockets); CI=true fails instead of skipping")
        }
        guard exists(vxload) else {
            throw LoadFailure("no vxload binary at \(vxload): run `swift build -c release --product vxload` or set VXLOAD_BIN")
        }
        if router, !exists(vxrouter) {
            throw LoadFailure("no vxrouter binary at \(vxrouter): run `swift build -c release --product vxrouter` or set VXROUTER_BIN")
        }
    }

    static func tool(_ name: String) -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            if exists(directory + "/" + name) { return directory + "/" + name }
        }
        return name
    }

    static let ip = tool("ip")
}

extension Trait where Self == ConditionTrait {
    static var loadLab: Self {
        .enabled(if: LoadEnvironment.labAvailable, "needs root and a vxload binary (VXLOAD_BIN); CI=true fails instead")
    }

    static var loadRouterLab: Self {
        .enabled(
            if: LoadEnvironment.routerLabAvailable,
            "needs root, vxload and vxrouter binaries (VXLOAD_BIN, VXROUTER_BIN); CI=true fails instead")
    }
}

struct LoadFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What a finished (or killed) command left.
struct Outcome: Sendable {
    let command: String
    /// Exit status; nil when killed by a signal or the deadline.
    let status: Int32?
    let timedOut: Bool
    let stdout: String
    let stderr: String

    var summary: String {
        "`\(command)`: \(timedOut ? "timed out" : status.map { "exit \($0)" } ?? "killed")"
            + "\n  stdout: \(stdout.suffix(3000))\n  stderr: \(stderr.suffix(2000))"
    }

    /// Standard output as the JSON object vxload --json prints.
    func json() throws -> [String: Any] {
        guard let data = stdout.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw LoadFailure("no JSON object on stdout of \(summary)") }
        return object
    }
}

/// A started process, its output in files (never a pipe that could fill).
final class Child: @unchecked Sendable {
    let command: String
    private let process = Process()
    private let outPath: String
    private let errPath: String

    init(_ arguments: [String], logDirectory: URL, name: String) throws {
        command = arguments.joined(separator: " ")
        outPath = logDirectory.appendingPathComponent(name + ".out").path
        errPath = logDirectory.appendingPathComponent(name + ".err").path
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        defer {
            try? out.close()
            try? err.close()
        }
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        // Test threads block most signals and posix_spawn passes the mask on: start children
        // the way a shell would, with nothing blocked.
        var nothing = sigset_t(), previous = sigset_t()
        sigemptyset(&nothing)
        pthread_sigmask(SIG_SETMASK, &nothing, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        do { try process.run() } catch { throw LoadFailure("cannot start `\(command)`: \(error)") }
    }

    var isRunning: Bool { process.isRunning }
    var stdout: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) { if process.isRunning { kill(process.processIdentifier, number) } }

    @discardableResult
    func wait(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { return false }
            await pause(milliseconds: 20)
        }
        return true
    }

    func terminate() async {
        guard process.isRunning else { return }
        signal(SIGTERM)
        if await wait(timeout: .seconds(2)) { return }
        signal(SIGKILL)
        await wait(timeout: .seconds(5))
    }

    func outcome(timedOut: Bool) -> Outcome {
        let status: Int32? = !process.isRunning && process.terminationReason == .exit ? process.terminationStatus : nil
        return Outcome(command: command, status: timedOut ? nil : status, timedOut: timedOut, stdout: stdout, stderr: stderr)
    }
}

/// A sleep that still sleeps once the test was cancelled (cleanup must wait for processes).
func pause(milliseconds: Int) async {
    if Task.isCancelled { usleep(UInt32(milliseconds) * 1000) } else { try? await Task.sleep(for: .milliseconds(milliseconds)) }
}

func withLoadLab<T>(_ tag: String, router: Bool = false, _ body: (LoadLab) async throws -> T) async throws -> T {
    try LoadEnvironment.require(router: router)
    let lab = try LoadLab(tag: tag)
    do {
        let result = try await body(lab)
        await lab.cleanup()
        return result
    } catch {
        let logs = lab.routerLogs()
        await lab.cleanup()
        throw logs.isEmpty ? error : LoadFailure("\(error)\n\(logs)")
    }
}

final class LoadLab: @unchecked Sendable {
    let tag: String
    let id: String
    let logDirectory: URL
    private(set) var namespaces: [String] = []
    private var children: [Child] = []
    private var routers: [(String, Child)] = []
    private var count = 0

    fileprivate init(tag: String) throws {
        self.tag = tag
        id = String((0..<5).map { _ in Array("abcdefghijkmnpqrstuvwxyz23456789").randomElement()! })
        logDirectory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("vxt-logs/\(getpid())-load-\(tag)-\(id)")
        try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
    }

    func spawn(_ arguments: [String], name: String) throws -> Child {
        count += 1
        let child = try Child(arguments, logDirectory: logDirectory, name: String(format: "%02d-", count) + name)
        children.append(child)
        return child
    }

    /// Runs to completion within `timeout`; with `check`, anything but exit 0 throws.
    @discardableResult
    func run(_ arguments: [String], timeout: Duration = .seconds(15), check: Bool = true) async throws -> Outcome {
        let name = URL(fileURLWithPath: arguments[0]).lastPathComponent
        let child = try spawn(arguments, name: name)
        let exited = await child.wait(timeout: timeout)
        if !exited { await child.terminate() }
        let outcome = child.outcome(timedOut: !exited)
        if check && outcome.status != 0 { throw LoadFailure(outcome.summary) }
        return outcome
    }

    func ip(_ arguments: String...) async throws {
        try await run([LoadEnvironment.ip] + arguments)
    }

    func inside(_ namespace: String, _ arguments: [String]) -> [String] {
        [LoadEnvironment.ip, "netns", "exec", namespace] + arguments
    }

    /// Two hosts joined by a veth: a at 198.18.0.1/24, b at 198.18.0.2/24, IPv6 off (no stray
    /// solicitations), the underlay reachable before this returns. Returns the namespaces.
    func twoHosts() async throws -> (a: String, b: String) {
        var made: [String] = []
        for host in ["a", "b"] {
            let namespace = "vxt-\(getpid())-\(tag)-\(id)-\(host)"
            try await ip("netns", "add", namespace)
            namespaces.append(namespace)
            made.append(namespace)
            try await run(inside(namespace, [
                LoadEnvironment.tool("sysctl"), "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]))
            try await ip("-n", namespace, "link", "set", "lo", "up")
        }
        let (a, b) = (made[0], made[1])
        try await ip("link", "add", "ua\(id)", "netns", a, "type", "veth", "peer", "name", "ub\(id)", "netns", b)
        try await ip("-n", a, "addr", "add", "198.18.0.1/24", "dev", "ua\(id)")
        try await ip("-n", b, "addr", "add", "198.18.0.2/24", "dev", "ub\(id)")
        try await ip("-n", a, "link", "set", "ua\(id)", "up")
        try await ip("-n", b, "link", "set", "ub\(id)", "up")
        try await run(inside(a, [LoadEnvironment.tool("ping"), "-n", "-c", "1", "-w", "5", "198.18.0.2"]))
        return (a, b)
    }

    /// The kernel's vxlan device `vxk` in each host, VNI 42, flooding to the other.
    func kernelVXLANPair(a: String, b: String) async throws {
        for (namespace, local, peer, device) in [(a, "198.18.0.1", "198.18.0.2", "ua\(id)"), (b, "198.18.0.2", "198.18.0.1", "ub\(id)")] {
            try await ip("-n", namespace, "link", "add", "vxk", "type", "vxlan", "id", "42", "local", local, "dstport", "4789", "dev", device)
            try await run(inside(namespace, [LoadEnvironment.tool("bridge"), "fdb", "append", "00:00:00:00:00:00", "dev", "vxk", "dst", peer]))
            try await ip("-n", namespace, "link", "set", "vxk", "up")
        }
    }

    /// vxrouter in each host with TAP vx42, VNI 42, each the other's remote; ready when this returns.
    func routerPair(a: String, b: String) async throws {
        for (namespace, local, peer, address) in [(a, "198.18.0.1", "198.18.0.2", "198.19.0.1/24"), (b, "198.18.0.2", "198.18.0.1", "198.19.0.2/24")] {
            let child = try spawn(
                inside(namespace, [LoadEnvironment.vxrouter, "run", "--vni", "42", "--tap", "vx42", "--local", local, "--remote", peer, "--address", address]),
                name: "vxrouter")
            routers.append((namespace, child))
            let deadline = ContinuousClock.now + .seconds(15)
            while !(child.stderr + child.stdout).contains("vxrouter ready") {
                guard child.isRunning else { throw LoadFailure("vxrouter in \(namespace) exited before it was ready: \(child.stderr)") }
                guard ContinuousClock.now < deadline else { throw LoadFailure("vxrouter in \(namespace): no `vxrouter ready` in 15 s") }
                await pause(milliseconds: 50)
            }
        }
    }

    /// `vxload ARGS` (from the root namespace; the ends name theirs), with a deadline.
    func vxload(_ arguments: [String], timeout: Duration = .seconds(30)) async throws -> Outcome {
        try await run([LoadEnvironment.vxload] + arguments, timeout: timeout, check: false)
    }

    func routerLogs() -> String {
        routers.map { "--- vxrouter in \($0.0):\n\($0.1.stderr.suffix(2000))" }.joined(separator: "\n")
    }

    func cleanup() async {
        for child in children.reversed() { await child.terminate() }
        for namespace in namespaces.reversed() {
            if let pids = try? await run([LoadEnvironment.ip, "netns", "pids", namespace], timeout: .seconds(5), check: false) {
                for pid in pids.stdout.split(whereSeparator: \.isWhitespace).compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
            }
            _ = try? await run([LoadEnvironment.ip, "netns", "del", namespace], timeout: .seconds(10), check: false)
        }
        namespaces.removeAll()
    }
}

/// A number out of vxload's JSON (integers and doubles alike).
func number(_ object: [String: Any], _ key: String) throws -> Double {
    guard let value = object[key] as? NSNumber else { throw LoadFailure("no number \(key) in \(object)") }
    return value.doubleValue
}
