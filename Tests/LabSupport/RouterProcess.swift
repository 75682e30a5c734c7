// The router under test: `vxrouter run` inside a lab host, its log, stats and stop.
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `vxrouter run` inside a lab host, its stdout and stderr in one log file.
package final class RouterProcess: @unchecked Sendable {
    package let host: Host
    package let child: ChildProcess
    package let taps: [String]

    package init(host: Host, child: ChildProcess, taps: [String]) {
        self.host = host
        self.child = child
        self.taps = taps
    }

    package var logPath: String { child.stdoutPath }
    package var log: String { child.stdout }

    /// CPU time (user + system, every thread) the router has used so far, from /proc/PID/stat.
    /// (`ip netns exec` execs the router, so the child's pid is the router's.)
    package func cpuSeconds() throws -> Double {
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

    package func logTail(lines: Int = 40) -> String {
        log.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    private func failure(_ what: String) -> LabFailure {
        LabFailure(
            "vxrouter in \(host.name): \(what) (\(child.exitDescription)); log \(logPath):\n\(logTail())",
            showsRouterLog: true)
    }

    /// Waits (bounded) for the `vxrouter ready` line; fails early if the router exits.
    package func waitReady(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if log.contains("vxrouter ready") { return }
            if !child.isRunning { throw failure("exited before `vxrouter ready`") }
            await nap(milliseconds: 50)
        }
        throw failure("no `vxrouter ready` within \(timeout)")
    }

    /// Sends SIGUSR1 and parses the block of `stats` lines it prints, up to `stats end`.
    package func stats(timeout: Duration = .seconds(5)) async throws -> RouterStats {
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
    package func stats(
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
    package func stop() async throws {
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
