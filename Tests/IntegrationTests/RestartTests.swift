// Issue 13, proof 6: a clean restart of vxrouter does not strand the kernel peers talking to it.
//
// A kernel vxlan peer caches vxrouter's TAP MAC twice: in its neighbour table (IP → MAC) and in its
// learned FDB (MAC → VTEP). With a new MAC on every start, the peer kept sending to the old one
// until its neighbour entry expired (measured: 25 s). With a MAC that stays the same across
// restarts (derived from the machine id and the VNI when `mac:` is absent) and an announcement
// when the network comes up, the peer's very next packet is answered.
import Foundation
import LabSupport
import Testing

extension EndToEnd {
    @Suite("Restart")
    struct Restart {
        @Test(
            "SIGTERM + start: same TAP MAC, and the kernel peer reaches vxrouter within 1 s of `vxrouter ready`",
            .routerBinary, .timeLimit(.minutes(3)))
        func kernelPeerReachesRestartedRouter() async throws {
            try await withLab("restart") { lab in
                let (a, b) = try await lab.twoHosts()
                let tap = lab.interfaceName("rsa")
                let kernel = lab.interfaceName("rsk")
                try await b.addKernelVXLAN(name: kernel, peers: [a.underlayAddress], address: "198.19.0.2/24")
                let arguments = [
                    "--vni", "42", "--tap", tap, "--local", a.underlayAddress, "--remote", b.underlayAddress,
                    "--address", "198.19.0.1/24",
                ]
                let first = try await lab.startRouter(on: a, arguments: arguments, taps: [tap])
                let mac = try await a.macAddress(of: tap)
                // The peer talks to vxrouter: its neighbour table and FDB now hold `mac`.
                try await b.ping("198.19.0.1")
                let cached = try await b.ip("neigh", "show", "198.19.0.1", "dev", kernel).stdout.lowercased()
                #expect(cached.contains("lladdr \(mac)"), "\(cached)")
                try await first.stop()

                let second = try await lab.startRouter(on: a, arguments: arguments, taps: [tap])
                // startRouter returned as soon as it saw `vxrouter ready`. The peer's next packets
                // (every 0.2 s) must be answered before 1 s is out; its caches are left as they were.
                let reached = try await b.run(
                    "ping", "-n", "-c", "1", "-i", "0.2", "-w", "1", "198.19.0.1", timeout: .seconds(10), check: false)
                #expect(reached.succeeded, "no echo reply within 1 s of the new `vxrouter ready`: \(reached.summary)")
                #expect(try await a.macAddress(of: tap) == mac, "the TAP MAC changed across the restart")
                try await b.ping("198.19.0.1")
                try await second.stop()
            }
        }
    }
}
