import Glibc
import Synchronization
import Testing
import VXPlatform

/// The TAP steering program (README "CPU steering") run by the kernel over frames
/// (BPF_PROG_TEST_RUN) on chosen CPUs: the queue of the sending CPU's worker for a new flow, the
/// same queue while the flow is busy, the new CPU's after it paused, a key from the headers for
/// frames without a flow hash (all of these are: a test run's frame has none), a queue by that key
/// on a CPU without a worker. Loading BPF needs root; steering needs two CPUs.
@Suite(
    "CPU steering: the TAP's program",
    .enabled(if: geteuid() == 0, "loading BPF needs root"),
    .enabled(if: allowedCPUs().count >= 2, "needs two CPUs"))
struct CPUSteeringTests {
    let cpus = Array(allowedCPUs().prefix(2))
    /// Long, so "at once" below holds on a loaded machine; the pauses sleep past it.
    let sticky: UInt32 = 300_000_000
    let pause: Duration = .milliseconds(400)

    @Test func aBusyFlowKeepsItsQueueAndFollowsItsSenderAfterAPause() async throws {
        let program = try CPUSteering.TapProgram(workerCPUs: cpus, stickyNanoseconds: sticky)
        let flow = Self.frame(source: 0x0A00_0001, destination: 0x0A00_0002, ports: 0x1234_5678)
        #expect(try queue(program, flow, on: cpus[0]) == 0, "a new flow: its sender's CPU's worker")
        #expect(try queue(program, flow, on: cpus[1]) == 0, "busy: it keeps its queue")
        try await Task.sleep(for: pause)
        #expect(try queue(program, flow, on: cpus[1]) == 1, "after a pause it follows its sender")
        #expect(try queue(program, flow, on: cpus[0]) == 1, "and keeps that queue while busy")
        let other = Self.frame(source: 0x0A00_0003, destination: 0x0A00_0002, ports: 0x1234_5678)
        #expect(try queue(program, other, on: cpus[0]) == 0, "another flow is placed on its own")
        // The same flow with another payload is the same flow (keyed by addresses and ports).
        var samePorts = flow
        samePorts[50] ^= 0xFF
        #expect(try queue(program, samePorts, on: cpus[0]) == 1)
    }

    @Test func aCPUWithoutAWorkerPicksAQueueByTheFlowsKey() throws {
        // Worker 0 on the second CPU, worker 1 on a CPU this machine does not have: the first CPU
        // has none.
        let program = try CPUSteering.TapProgram(workerCPUs: [cpus[1], 1000], stickyNanoseconds: sticky)
        for (source, ports) in [(UInt32(0x0A00_0001), UInt32(0x1234_5678)), (0x0A00_0009, 0x1111_2223)] {
            let frame = Self.frame(source: source, destination: 0x0A00_0002, ports: ports)
            let key = source ^ 0x0A00_0002 ^ ports
            #expect(try queue(program, frame, on: cpus[0]) == key % 2)
        }
    }

    @Test func aFrameTooShortForTheKeyAlwaysGoesToQueueZero() throws {
        let program = try CPUSteering.TapProgram(workerCPUs: cpus, stickyNanoseconds: sticky)
        let short = [UInt8](repeating: 0xAB, count: 20)
        #expect(try queue(program, short, on: cpus[1]) == 0)
        #expect(try queue(program, short, on: cpus[0]) == 0)
    }

    /// The program's pick for `frame` sent from `cpu`: run on a thread of its own pinned there (a
    /// test's own thread belongs to the test pool and must not stay pinned).
    func queue(_ program: CPUSteering.TapProgram, _ frame: [UInt8], on cpu: Int) throws -> UInt32 {
        let result = Mutex<Result<UInt32, SystemError>?>(nil)
        let pinned = Atomic<Bool>(false)
        let thread = try OSThread.start(name: "steer-test") {
            pinned.store(OSThread.pinCurrent(to: cpu), ordering: .relaxed)
            let outcome = Result { () throws(SystemError) -> UInt32 in try program.queue(for: frame) }
            result.withLock { $0 = outcome }
        }
        thread.join()
        let wasPinned = pinned.load(ordering: .relaxed)
        try #require(wasPinned, "could not pin to CPU \(cpu)")
        return try #require(result.withLock { $0 }).get()
    }

    /// Ethernet + IPv4 + UDP, 64 bytes: addresses at 26 and 30, ports at 34 (the key's words).
    static func frame(source: UInt32, destination: UInt32, ports: UInt32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 64)
        bytes[0..<6] = [0x02, 0, 0, 0, 0, 0x02]
        bytes[6..<12] = [0x02, 0, 0, 0, 0, 0x01]
        bytes[12] = 0x08
        bytes[14] = 0x45
        bytes[23] = 17
        for (offset, word) in [(26, source), (30, destination), (34, ports)] {
            for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: word >> (24 - 8 * i)) }
        }
        return bytes
    }
}
