// A real etcd (Debian's etcd-server) for a test: its own data directory and loopback ports,
// killed and removed by `stop()`, which every test calls in a `defer` (failure included).
import Foundation
import Glibc
import VXCluster

final class EtcdProcess: @unchecked Sendable {
    let clientURL: String
    private let process = Process()
    private let dataDirectory: URL

    /// Starts etcd (with `arguments` added to its own) and waits until it answers (up to 30 s,
    /// then throws).
    init(arguments: [String] = []) async throws {
        let clientPort = try Self.freePort()
        let peerPort = try Self.freePort()
        clientURL = "http://127.0.0.1:\(clientPort)"
        let peerURL = "http://127.0.0.1:\(peerPort)"
        dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("vxc-etcd-\(getpid())-\(clientPort)")
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: try Self.etcdPath())
        process.arguments = [
            "--name", "t", "--data-dir", dataDirectory.path,
            "--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
            "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
            "--initial-cluster", "t=\(peerURL)",
        ] + arguments
        let log = FileHandle(forWritingAtPath: "/dev/null")
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let client = EtcdClient(endpoints: [clientURL], callTimeout: .seconds(1))
        defer { Task { await client.shutdown() } }
        for _ in 0..<300 {
            if (try? await client.range("/probe", prefix: false)) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        stop()
        throw EtcdError.unreachable("test etcd did not start at \(clientURL)")
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: dataDirectory)
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) the server without losing its state.
    func pause(_ paused: Bool) {
        kill(process.processIdentifier, paused ? SIGSTOP : SIGCONT)
    }

    static func etcdPath() throws -> String {
        for path in ["/usr/bin/etcd", "/usr/local/bin/etcd"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw EtcdError.unreachable("etcd not installed (Debian: etcd-server)")
    }

    /// A loopback TCP port nobody holds right now (bind to 0, read it back, close).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw EtcdError.unreachable("socket: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                bind(fd, sockaddrPointer, length) == 0 && getsockname(fd, sockaddrPointer, &length) == 0
            }
        }
        guard bound else { throw EtcdError.unreachable("bind: \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Polls `condition` every 50 ms until it holds or `limit` passes (a bound for a hung test,
/// not a timing claim).
func eventually(_ limit: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
