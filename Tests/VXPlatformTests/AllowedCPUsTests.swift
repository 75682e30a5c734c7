// The router sizes and pins its workers by the CPUs it may use (its affinity mask), so a router
// started under `taskset` or systemd's CPUAffinity= stays on the CPUs it was given.
import Glibc
import Testing
import VXPlatform

@Suite("Allowed CPUs")
struct AllowedCPUsTests {
    @Test("the affinity mask, lowest first, a subset of the CPUs online")
    func listsTheMask() {
        let cpus = allowedCPUs()
        #expect(!cpus.isEmpty)
        #expect(cpus == cpus.sorted())
        #expect(Set(cpus).count == cpus.count)
        #expect(cpus.allSatisfy { $0 >= 0 && $0 < onlineCPUCount() })
    }

    @Test("a thread pinned to one CPU is allowed that CPU only")
    func followsAPinnedThread() throws {
        // On a thread of its own, so no thread of the test runner's pool is pinned.
        let last = try #require(allowedCPUs().last)
        final class Seen { var cpus: [Int]? }  // written by the thread, read after join
        let seen = Seen()
        let thread = try OSThread.start(name: "vxt-affinity") {
            guard OSThread.pinCurrent(to: last) else { return }
            seen.cpus = allowedCPUs()
        }
        thread.join()
        #expect(seen.cpus == [last])
    }
}
