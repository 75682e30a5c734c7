// CPU steering end to end (`steering: cpu`, README "CPU steering"):
//  (a) pings sent from one CPU are handled by the worker pinned to that CPU — on the sending
//      router (the TAP's steering program), on the receiving one (the receive sockets' program),
//      and for the replies on the way back — and by the other worker once the sender moves;
//  (b) a sender moved between CPUs every millisecond under load (16 flows, 40 kpps) has no flow
//      reordered: a busy flow keeps its worker until it pauses (vxload counts reordering per flow,
//      RFC 4737). Without that rule, measured by hand, the same run reorders (see README);
//  (c) where it cannot be had (one worker; more workers than CPUs), `cpu` refuses to start with
//      the reason and `auto` runs steered by flow and says why.
// Both need two CPUs to steer between; on a machine with one they are skipped.
import Foundation
import LabSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension EndToEnd {
    @Suite("CPU steering", .enabled(if: ProcessInfo.processInfo.activeProcessorCount >= 2, "needs two CPUs"))
    struct Steering {
        @Test("pings from one CPU stay with that CPU's worker, on both routers and both ways", .routerBinary, .timeLimit(.minutes(3)))
        func pingsStayOnTheirCPU() async throws {
            try await withLab("steer") { lab in
                let (a, b) = try await lab.twoHosts()
                let flags = ["--steering", "cpu", "--workers", "2"]
                let (routerA, routerB, _, _) = try await lab.startRouterPair(a, b, extraA: flags, extraB: flags)
                let cpus = try workerCPUs(routerA)
                #expect(try workerCPUs(routerB) == cpus)
                try await a.ping("198.19.0.2")  // neighbours resolved before counting
                let pings = 30
                for (worker, cpu) in cpus.enumerated() {
                    await nap(milliseconds: 50)  // past the flow's pause: it may follow its sender
                    let before = try await (perWorker(a), perWorker(b))
                    try await a.run(
                        "taskset", "-c", String(cpu), "ping", "-n", "-q", "-c", String(pings), "-i", "0.01", "-w", "10",
                        "198.19.0.2", timeout: .seconds(15))
                    let after = try await (perWorker(a), perWorker(b))
                    for (side, was, now) in [("a", before.0, after.0), ("b", before.1, after.1)] {
                        for counter in ["tap_rx_packets", "tunnel_rx_packets"] {
                            let grown = (0..<cpus.count).map { now[$0][counter]! - was[$0][counter]! }
                            // Other frames (the kernel's IPv6 timers) may go anywhere: a little slack.
                            #expect(
                                grown[worker] >= pings && grown.enumerated().allSatisfy { $0.offset == worker || $0.element < 5 },
                                "router \(side), pings from CPU \(cpu): \(counter) grew \(grown) per worker (\(cpus) pinned)")
                        }
                    }
                }
                try await routerA.stop()
                try await routerB.stop()
            }
        }

        @Test("a sender moving between CPUs under load: no flow reordered", .routerBinary, .timeLimit(.minutes(3)))
        func noReorderingWhenTheSenderMoves() async throws {
            try LabEnvironment.requireVXLoad()
            try await withLab("steero") { lab in
                let (a, b) = try await lab.twoHosts()
                let flags = ["--steering", "cpu", "--workers", "2"]
                let (routerA, routerB, tapA, tapB) = try await lab.startRouterPair(a, b, extraA: flags, extraB: flags)
                let cpus = try workerCPUs(routerA)
                let load = try lab.spawn([
                    LabEnvironment.vxload, "run", "--tx", "iface:\(tapA)", "--tx-netns", a.namespace, "--rx", "iface:\(tapB)",
                    "--rx-netns", b.namespace, "--size", "64", "--flows", "16", "--rate", "40000", "--duration", "6",
                    "--json", "--quiet",
                ])
                // Every thread of vxload (its sender among them) to the next CPU, every millisecond.
                let hopper = try await lab.run(
                    [
                        LabEnvironment.python, LabEnvironment.script("cpu_hopper.py"), "--pid", String(load.pid), "--cpus",
                        cpus.map(String.init).joined(separator: ","), "--interval-ms", "1", "--seconds", "8",
                    ], timeout: .seconds(15))
                let moves = Int(hopper.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                #expect(await load.wait(timeout: .seconds(20)), "vxload did not finish")
                let result = load.result(timedOut: false)
                let report = try #require(
                    (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any],
                    "vxload printed no JSON: \(result.summary)")
                let delivered = (report["delivered"] as? NSNumber)?.intValue ?? 0
                let reordered = (report["reordered"] as? NSNumber)?.intValue ?? -1
                #expect(moves > 500, "the sender was moved only \(moves) times")
                #expect(delivered > 100_000, "too little traffic to tell: \(result.stdout)")
                #expect(reordered == 0, "\(reordered) frames reordered of \(delivered) (\(moves) moves)")
                try await routerA.stop()
                try await routerB.stop()
            }
        }

        @Test("cpu steering that cannot be had: refused with the reason; auto says why it steers by flow", .routerBinary, .timeLimit(.minutes(2)))
        func unavailable() async throws {
            try await withLab("steeru") { lab in
                let (a, b) = try await lab.twoHosts()
                let tap = lab.interfaceName("vxs")
                let common = ["--vni", "42", "--tap", tap, "--local", a.underlayAddress, "--remote", b.underlayAddress, "--no-control"]
                let refused = try await lab.run(
                    a.command([LabEnvironment.routerBinary, "run", "--steering", "cpu", "--workers", "1"] + common),
                    timeout: .seconds(15), check: false)
                #expect(refused.status != nil && refused.status != 0, "\(refused.summary)")
                #expect((refused.stdout + refused.stderr).contains("steering: cpu is not available (one worker)"), "\(refused.summary)")
                #expect(try await !a.deviceExists(tap), "the refused router left its TAP behind")

                let workers = ProcessInfo.processInfo.activeProcessorCount + 1
                let router = try await lab.startRouter(
                    on: a, tap: tap, remotes: [b.underlayAddress], address: "198.19.0.1/24",
                    extra: ["--workers", String(workers)])
                #expect(
                    router.log.replacingOccurrences(of: "\"", with: "").contains(
                        "steering=flow (cpu steering: the workers are not pinned"),
                    "\(router.logTail())")
                try await router.stop()
            }
        }

        /// The CPUs the workers were pinned to, in worker order, from the start-up log
        /// (`steering=cpu (0,1)`).
        func workerCPUs(_ router: RouterProcess) throws -> [Int] {
            let line = try #require(
                router.log.split(separator: "\n").first { $0.contains("steering=") }, "no steering in:\n\(router.logTail())")
            let match = try #require(line.firstMatch(of: /steering="?cpu \(([0-9,]+)\)/), "not steered by CPU: \(line)")
            return match.1.split(separator: ",").compactMap { Int($0) }
        }

        /// Each worker's traffic counters, from `vxrouter stats --json`.
        func perWorker(_ host: LabSupport.Host) async throws -> [[String: Int]] {
            let stats = try await host.vxrouterJSON(["stats"])
            let workers = try #require(stats["workers"] as? [[String: Any]], "no workers in \(stats)")
            return workers.map { worker in
                let traffic = worker["traffic"] as? [String: Any] ?? [:]
                return traffic.compactMapValues { ($0 as? NSNumber)?.intValue }
            }
        }
    }
}
