// Threads, wake-ups and signals: the pieces the control thread and worker loops are built from.
import CVXLinux
import Glibc
import Synchronization
import VXDatapath

/// A joinable OS thread running one closure.
public final class OSThread {
    private var thread = pthread_t()
    private let body: () -> Void
    private var name = ""

    private init(body: @escaping () -> Void) { self.body = body }

    public static func start(name: String, _ body: @escaping () -> Void) throws(SystemError) -> OSThread {
        let box = OSThread(body: body)
        let arg = Unmanaged.passRetained(box).toOpaque()
        box.name = name
        let rc = pthread_create(&box.thread, nil, { raw in
            let box = Unmanaged<OSThread>.fromOpaque(raw!).takeRetainedValue()
            _ = vx_set_thread_name(box.name)
            box.body()
            return nil
        }, arg)
        guard rc == 0 else {
            Unmanaged<OSThread>.fromOpaque(arg).release()
            throw SystemError(call: "pthread_create", errno: rc, context: "start \(name)")
        }
        return box
    }

    public func join() { pthread_join(thread, nil) }

    /// Pins the calling thread to `cpu`; false if the kernel refused (e.g. a restricted cpuset).
    public static func pinCurrent(to cpu: Int) -> Bool { vx_pin_current_thread(Int32(cpu)) == 0 }
}

/// An eventfd: one thread pokes it, another's poll wakes.
public struct WakeEvent {
    public let fd: FileDescriptor

    public init() throws(SystemError) {
        fd = FileDescriptor(rawValue: try shimCall("eventfd") { vx_eventfd() })
    }

    public func signal() {
        var one: UInt64 = 1
        _ = Glibc.write(fd.rawValue, &one, 8)
    }

    public func clear() {
        var value: UInt64 = 0
        _ = Glibc.read(fd.rawValue, &value, 8)
    }
}

/// The control signals (SIGINT, SIGTERM, SIGUSR1, SIGHUP), blocked in every thread and read from a
/// signalfd by the control loop, so no handler ever runs in a worker.
public struct ControlSignals {
    public static let numbers: [Int32] = [SIGINT, SIGTERM, SIGUSR1, SIGHUP, SIGPIPE]

    /// Blocks the control signals in the calling thread; threads started afterwards inherit the
    /// mask. Call first thing in main.
    public static func block() {
        // A shell starts background jobs with SIGINT ignored; an ignored signal never reaches a
        // signalfd, so restore the default disposition first (it is blocked right after).
        for number in numbers where number != SIGPIPE { signal(number, SIG_DFL) }
        _ = numbers.withUnsafeBufferPointer { vx_block_signals($0.baseAddress, Int32($0.count)) }
    }

    public let fd: FileDescriptor

    public init() throws(SystemError) {
        assert(MemoryLayout<signalfd_siginfo_raw>.size == 128)
        let raw = try Self.numbers.withUnsafeBufferPointer { (buffer) throws(SystemError) -> Int32 in
            try shimCall("signalfd") { vx_signalfd_for(buffer.baseAddress, Int32(buffer.count)) }
        }
        fd = FileDescriptor(rawValue: raw)
    }

    /// What a signal asks of the control loop.
    public enum Request: Equatable, Sendable {
        /// SIGINT or SIGTERM, with its name.
        case stop(String)
        /// SIGUSR1: print the counters.
        case report
        /// SIGHUP (`systemctl reload`): re-read the config file and apply what changed.
        case reload
    }

    /// The requests that arrived since the last call (SIGPIPE is swallowed).
    public func pending() -> [Request] {
        var result: [Request] = []
        var info = signalfd_siginfo_raw()
        while Glibc.read(fd.rawValue, &info, MemoryLayout<signalfd_siginfo_raw>.size) == MemoryLayout<signalfd_siginfo_raw>.size {
            switch Int32(bitPattern: info.signo) {
            case SIGUSR1: result.append(.report)
            case SIGHUP: result.append(.reload)
            case SIGINT: result.append(.stop("SIGINT"))
            case SIGTERM: result.append(.stop("SIGTERM"))
            default: break
            }
        }
        return result
    }
}

/// struct signalfd_siginfo: exactly 128 bytes, the signal number first (a read returns whole
/// records only, so the size must match).
struct signalfd_siginfo_raw {
    var signo: UInt32 = 0
    var rest: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
               UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
               UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

/// The control thread's nap: with nothing to do it sleeps until the next whole second (ageing's
/// tick) rather than every 5 ms — an idle router wakes once a second, not 200 times — and a worker
/// that leaves it work meanwhile (a learn event, a path-MTU probe) wakes it, once per nap, so
/// learning is as prompt as before. The flag and the rings are checked in opposite orders on the
/// two sides with a full fence between (the store-then-load pattern), so no work is left asleep.
public final class ControlNap: @unchecked Sendable {
    private let asleep = Atomic<Bool>(false)
    private let wake: WakeEvent

    /// `wake`: the event the control thread's poll watches.
    public init(wake: WakeEvent) { self.wake = wake }

    /// Control thread, before a long sleep: raises the flag, then asks `quiet` whether every
    /// worker's work was taken. False (the flag lowered again): sleep short, there is work.
    public func settle(_ quiet: () -> Bool) -> Bool {
        asleep.store(true, ordering: .sequentiallyConsistent)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if quiet() { return true }
        asleep.store(false, ordering: .relaxed)
        return false
    }

    /// Control thread, after its poll returned.
    public func awake() { asleep.store(false, ordering: .relaxed) }

    /// Worker, after a round that left work for the control thread: wakes it if it naps.
    @inline(__always)
    public func poke() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        guard asleep.load(ordering: .relaxed) else { return }
        if asleep.exchange(false, ordering: .relaxed) { wake.signal() }
    }
}

/// Waits until `fd` is readable or `timeoutMilliseconds` pass.
public func waitReadable(_ fd: FileDescriptor, timeoutMilliseconds: Int32) {
    var p = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
    _ = poll(&p, 1, timeoutMilliseconds)
}

/// Drives one worker on its own thread: wait for any of its TAP queues or its socket to become
/// readable, service one batch from each ready one, repeat until woken to stop. Poll is
/// level-triggered, so a source with more than a batch waiting is serviced again next round,
/// which keeps the sources fair.
///
/// Busy polling (`busyPoll` microseconds, 0 = off): after a round that handled traffic the loop
/// keeps polling without sleeping until that long has passed with nothing to do, yielding the CPU
/// between polls (two routers or iperf3 may share it). A worker asleep in poll costs a wake-up per
/// packet — on the development VM ~50 µs when the wake crosses to an idle vCPU — and a reply that
/// comes back within the window skips it. An idle worker sleeps: the spin only follows traffic.
public final class WorkerLoop {
    public let worker: Worker<TapQueue, UDPLink>
    public let stop: WakeEvent
    private let cpu: Int?
    private var thread: OSThread?
    /// TAP queues that reported an error and were taken out of the poll set (written by the
    /// worker thread, read by the control thread).
    public let failedDevices = Atomic<Int>(0)

    private let busyPoll: UInt64

    /// Live reload: where this worker picks up new network generations, and which worker it is.
    private let exchange: NetworkExchange<TapQueue>?
    private let index: Int
    /// Signalled by the control thread after it published a generation, so a worker asleep in
    /// poll picks it up now rather than at its next packet.
    public let reconfigure: WakeEvent
    /// The control thread's nap, woken when this worker leaves it work (nil: it never naps).
    private let nap: ControlNap?

    public init(
        worker: Worker<TapQueue, UDPLink>, cpu: Int?, busyPollMicroseconds: Int = 0,
        exchange: NetworkExchange<TapQueue>? = nil, index: Int = 0, nap: ControlNap? = nil
    ) throws(SystemError) {
        self.worker = worker
        self.nap = nap
        self.cpu = cpu
        busyPoll = UInt64(max(0, busyPollMicroseconds))
        self.exchange = exchange
        self.index = index
        stop = try WakeEvent()
        do { reconfigure = try WakeEvent() } catch {
            stop.fd.close()
            throw error
        }
    }

    public func start(name: String) throws(SystemError) {
        thread = try OSThread.start(name: name) { [self] in run() }
    }

    public func requestStop() { stop.signal() }

    public func join() {
        thread?.join()
        thread = nil
        stop.fd.close()
        reconfigure.fd.close()
    }

    private func run() {
        if let cpu { _ = OSThread.pinCurrent(to: cpu) }
        // One poll slot per network slot (fd -1 where none is, which poll skips), then the
        // underlay, the stop event and the reconfigure event.
        let devices = worker.devices.count
        let count = devices + 3
        let fds = UnsafeMutablePointer<pollfd>.allocate(capacity: count)
        defer { fds.deallocate() }
        func pollDevices() {
            for (i, device) in worker.devices.enumerated() {
                fds[i] = pollfd(fd: device?.fd.rawValue ?? -1, events: Int16(POLLIN), revents: 0)
            }
        }
        pollDevices()
        fds[devices] = pollfd(fd: worker.link.receiveFD.rawValue, events: Int16(POLLIN), revents: 0)
        fds[devices + 1] = pollfd(fd: stop.fd.rawValue, events: Int16(POLLIN), revents: 0)
        fds[devices + 2] = pollfd(fd: reconfigure.fd.rawValue, events: Int16(POLLIN), revents: 0)
        let failure = Int16(POLLERR | POLLHUP | POLLNVAL)
        var spinUntil: UInt64 = 0
        var probesSeen: UInt64 = 0
        while true {
            var ready = busyPoll > 0 ? poll(fds, nfds_t(count), 0) : 0
            if ready == 0 {
                if busyPoll > 0, monotonicMicroseconds() < spinUntil {
                    sched_yield()
                    continue
                }
                ready = poll(fds, nfds_t(count), -1)
            }
            if ready < 0 { continue }  // EINTR
            if busyPoll > 0 { spinUntil = monotonicMicroseconds() &+ busyPoll }
            if fds[devices + 1].revents != 0 { return }
            // Between batches: a newer network generation (live reload) is taken before any
            // device is serviced, so a readiness bit never refers to a slot's previous device.
            if fds[devices + 2].revents != 0 { reconfigure.clear() }
            if let exchange, let generation = exchange.newer(than: worker.epoch) {
                worker.adopt(generation, worker: index)
                pollDevices()
                exchange.acknowledge(worker: index, epoch: generation.epoch)
                continue
            }
            let now = monotonicSeconds()
            if fds[devices].revents & Int16(POLLIN) != 0 { worker.serviceUnderlay(now: now) }
            for i in 0..<devices where fds[i].revents != 0 {
                if fds[i].revents & Int16(POLLIN) != 0 {
                    worker.serviceDevice(i, now: now)
                } else if fds[i].revents & failure != 0 {
                    // The interface went away or broke under us: stop polling it rather than spin.
                    fds[i].fd = -1
                    failedDevices.add(1, ordering: .relaxed)
                }
            }
            if let nap, worker.forwarder.leftForControl(probesSeen: &probesSeen) { nap.poke() }
        }
    }
}
