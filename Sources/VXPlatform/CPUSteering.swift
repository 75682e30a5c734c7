// CPU steering (README "CPU steering"): each packet goes to the worker pinned to the CPU it is on,
// so the wake-up that hands it to userspace stays on that CPU instead of crossing to another one
// (~50 µs on a VM whose other vCPU is halted). The BPF programs are in CVXLinux/steering.c.
import CVXLinux

public enum CPUSteering {
    /// How long a flow must have been idle before its frames follow its sender to another CPU's
    /// queue: while it is busy it keeps the queue (and the worker) it has, so two workers never
    /// hold parts of it at once and it is not reordered — unless a frame waits in a TAP queue for
    /// longer than this. 2 ms was not enough on a starved 2-vCPU machine (a sender moved between
    /// CPUs every millisecond, both CPUs busy: 219 of 240,000 frames reordered); 20 ms gave none.
    /// A new flow (a new connection, a new ping) starts on its sender's CPU at once.
    public static let stickyNanoseconds: UInt32 = 20_000_000

    /// The TAP's queue for a frame the host sends is the one of the worker pinned to the sending
    /// CPU (`workerCPUs[w]` is worker w's CPU, and queue w is worker w's): one program per TAP,
    /// set through any of its queues. Loading it needs CAP_BPF (or root).
    public static func steer(_ tap: TapInterface, workerCPUs: [Int]) throws(SystemError) {
        guard let queue = tap.queues.first else { return }
        let program = try TapProgram(workerCPUs: workerCPUs)
        try program.attach(to: queue.fd, name: tap.name)
    }

    /// The kernel's own flow steering again: a persistent TAP keeps a program across restarts.
    public static func steerByFlow(_ tap: TapInterface) throws(SystemError) {
        guard let queue = tap.queues.first else { return }
        _ = try shimCall("TUNSETSTEERINGEBPF", context: "steer \(tap.name) by flow") {
            vx_tap_set_steering(queue.fd.rawValue, -1)
        }
    }

    /// A datagram goes to the receive socket of the worker pinned to the CPU that received it;
    /// `receiveGroup` is any socket of the SO_REUSEPORT group, whose sockets joined it in worker
    /// order. A CPU without a worker leaves the choice to the kernel's hash.
    public static func steer(receiveGroup socket: FileDescriptor, workerCPUs: [Int]) throws(SystemError) {
        _ = try cpuListCall(workerCPUs, "SO_ATTACH_REUSEPORT_CBPF", context: "steer the receive sockets by CPU") {
            vx_reuseport_steer_by_cpu(socket.rawValue, $0, $1)
        }
    }

    /// A shim call given the workers' CPUs as the C array it takes (pointer, count).
    private static func cpuListCall(
        _ workerCPUs: [Int], _ call: String, context: String, _ body: (UnsafePointer<Int32>?, Int32) -> Int32
    ) throws(SystemError) -> Int32 {
        let cpus = workerCPUs.map(Int32.init)
        return try cpus.withUnsafeBufferPointer { (buffer) throws(SystemError) -> Int32 in
            try shimCall(call, context: context) { body(buffer.baseAddress, Int32(buffer.count)) }
        }
    }

    /// The TAP's program, loaded: set on a TAP, or run over frames on the calling thread's CPU
    /// (BPF_PROG_TEST_RUN) to see what it would choose without one (the tests).
    public final class TapProgram {
        private let fd: FileDescriptor

        public init(workerCPUs: [Int], stickyNanoseconds: UInt32 = CPUSteering.stickyNanoseconds) throws(SystemError) {
            let raw = try CPUSteering.cpuListCall(
                workerCPUs, "BPF_PROG_LOAD", context: "the TAP steering program (needs CAP_BPF)"
            ) { vx_tap_steering_program($0, $1, stickyNanoseconds) }
            fd = FileDescriptor(rawValue: raw)
        }

        deinit { fd.close() }

        /// Sets the program on the TAP whose queue `fd` is (the TAP holds it from then on).
        func attach(to queue: FileDescriptor, name: String) throws(SystemError) {
            _ = try shimCall("TUNSETSTEERINGEBPF", context: "steer \(name) by CPU") {
                vx_tap_set_steering(queue.rawValue, fd.rawValue)
            }
        }

        /// The queue the program picks for `frame` (before the kernel takes it modulo the queues),
        /// sent from the CPU this thread runs on.
        public func queue(for frame: [UInt8]) throws(SystemError) -> UInt32 {
            // A test run strips an Ethernet header before the program sees the data (a socket
            // filter's view), where a TAP shows it the whole frame: 14 bytes in front stand for
            // the header that is stripped.
            let input = [UInt8](repeating: 0, count: 14) + frame
            var result: UInt32 = 0
            _ = try shimCall("BPF_PROG_TEST_RUN", context: "the TAP steering program") {
                input.withUnsafeBytes { vx_bpf_test_run(fd.rawValue, $0.baseAddress, UInt32($0.count), &result) }
            }
            return result
        }
    }
}
