// An idle router costs nothing: its workers sleep in poll and its control thread naps until the
// next second (woken early only by work), so over seconds without traffic neither burns CPU nor
// wakes more than about once a second. Before the nap the control thread woke every 5 ms (200 a
// second, ~1.5% of a CPU on the development VM).
import Foundation
import LabSupport
import Testing

extension EndToEnd {
    @Suite("Idle router")
    struct Idle {
        @Test("idle: the control thread wakes about once a second, the workers not at all", .routerBinary, .timeLimit(.minutes(1)))
        func idleRouterSleeps() async throws {
            try await withLab("idle") { lab in
                let (a, b) = try await lab.twoHosts()
                let router = try await lab.startRouter(
                    on: a, tap: lab.interfaceName("vxi"), remotes: [b.underlayAddress], address: "198.19.0.1/24")
                try await Task.sleep(for: .seconds(2))  // the TAP's own start-up chatter (IPv6 DAD, RS) passes
                let before = try wakeUps(router.child.pid)
                try await Task.sleep(for: .seconds(5))
                let after = try wakeUps(router.child.pid)
                for (thread, count) in after {
                    let woke = count - (before[thread] ?? 0)
                    // Once a second for the control thread (ageing's tick), plus the odd stray frame.
                    #expect(woke <= 15, "\(thread) woke \(woke) times in 5 idle seconds")
                }
                #expect(after.keys.contains { $0.hasPrefix("vx-worker") }, "no worker threads in \(after)")
                try await router.stop()
            }
        }

        /// Voluntary context switches (sleeps that ended) per thread, by thread name and id.
        func wakeUps(_ pid: Int32) throws -> [String: Int] {
            var result: [String: Int] = [:]
            for tid in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") {
                let name = (try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/comm", encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
                let status = try String(contentsOfFile: "/proc/\(pid)/task/\(tid)/status", encoding: .utf8)
                let line = status.split(separator: "\n").first { $0.hasPrefix("voluntary_ctxt_switches:") }
                let count = line.flatMap { Int($0.split(separator: "\t").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "") }
                result["\(name)/\(tid)"] = count ?? 0
            }
            return result
        }
    }
}
