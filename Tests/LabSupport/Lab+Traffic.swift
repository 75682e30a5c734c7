// Traffic the lab drives through the overlay and checks: TCP transfers, broadcasts, raw VXLAN.
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension Lab {
    /// A checked TCP transfer (Tools/lab/tcp_check.py): a server in `server` listening on
    /// `address`, a client in `client` sending `bytes` pseudo-random bytes; passes only when the
    /// server saw every byte intact. Returns the server's verdict line.
    @discardableResult
    package func tcpTransfer(
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
    package struct BroadcastCount: Sendable {
        package let host: String
        /// Different datagrams received.
        package let distinct: Int
        /// All copies received (more than `distinct` means duplicates).
        package let total: Int
    }

    /// Starts a listener on every receiver, sends `count` datagrams to `address` from `sender`,
    /// and returns what each listener counted over its window.
    package func broadcast(
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
    package func sendVXLAN(from host: Host, to address: String, kind: String, count: Int, extra: [String] = []) async throws {
        try await run(
            host.command(
                [
                    LabEnvironment.python, LabEnvironment.script("vxlan_malformed.py"), "--to", address, "--kind", kind,
                    "--count", String(count),
                ] + extra), timeout: .seconds(20))
    }
}
