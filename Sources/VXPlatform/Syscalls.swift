// The one place VXPlatform's errno policy lives (after swift-system's Syscalls.swift and NIOPosix's
// System.swift): EINTR is retried here, "would block" comes back as nil, and every other failure
// becomes a SystemError carrying the name of the call, the errno, and what we were doing.
import CVXLinux
import Glibc

public struct SystemError: Error, CustomStringConvertible, Equatable {
    public let call: String
    public let errno: Int32
    /// What the router was trying to do, in the user's terms ("open TAP vx42").
    public let context: String

    public init(call: String, errno: Int32, context: String = "") {
        self.call = call
        self.errno = errno
        self.context = context
    }

    public var message: String { String(cString: strerror(errno)) }

    public var description: String {
        context.isEmpty ? "\(call): \(message)" : "\(context): \(call): \(message)"
    }
}

/// Runs a call that returns -1 and sets errno on failure. Retries EINTR; returns nil for
/// EAGAIN/EWOULDBLOCK; throws anything else. `package`: the tools' own platform targets
/// (VXLoadPlatform) keep this one policy rather than writing their own.
@inline(__always)
package func syscall<T: FixedWidthInteger>(
    _ call: String, context: @autoclosure () -> String = "", _ body: () -> T
) throws(SystemError) -> T? {
    while true {
        let result = body()
        if result != -1 { return result }
        let err = Glibc.errno
        if err == EINTR { continue }
        if err == EAGAIN || err == EWOULDBLOCK { return nil }
        throw SystemError(call: call, errno: err, context: context())
    }
}

/// For the shim's calls that return -errno instead of setting errno.
@inline(__always)
package func shimCall(_ call: String, context: @autoclosure () -> String = "", _ body: () -> Int32) throws(SystemError)
    -> Int32
{
    while true {
        let result = body()
        if result >= 0 { return result }
        if -result == EINTR { continue }
        throw SystemError(call: call, errno: -result, context: context())
    }
}

/// A file descriptor this process owns; closed exactly once by its owner.
public struct FileDescriptor: Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public func close() { _ = Glibc.close(rawValue) }
}

/// Monotonic seconds, coarse (a tick is cheap to read): the FDB's notion of time.
@inline(__always)
public func monotonicSeconds() -> UInt32 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
    return UInt32(truncatingIfNeeded: ts.tv_sec)
}

/// Milliseconds on the monotonic clock, for the control thread's timers.
public func monotonicMilliseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
}

/// Microseconds on the monotonic clock (vDSO, no syscall): the worker loop's busy-poll deadline.
@inline(__always)
public func monotonicMicroseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
}

public func onlineCPUCount() -> Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

/// The CPUs this process may run on, lowest first: its affinity mask as `taskset`, systemd's
/// `CPUAffinity=` or a cpuset left it (sched_getaffinity), not every CPU online — so a router
/// confined to some CPUs starts one worker per CPU it has and pins them there, never on a CPU it
/// was kept off. All online CPUs if the mask cannot be read.
public func allowedCPUs() -> [Int] {
    let capacity = 4096
    let cpus = [Int32](unsafeUninitializedCapacity: capacity) { buffer, count in
        count = max(0, Int(vx_allowed_cpus(buffer.baseAddress, Int32(capacity))))
    }
    return cpus.isEmpty ? Array(0..<onlineCPUCount()) : cpus.map(Int.init)
}

public func isRoot() -> Bool { geteuid() == 0 }

/// For calls that return the error number itself (0 on success) instead of setting errno, like
/// getgrnam_r: the same policy (EINTR retried, the rest thrown with the call's name).
@inline(__always)
func errnoReturningCall(_ call: String, context: @autoclosure () -> String = "", _ body: () -> Int32)
    throws(SystemError)
{
    while true {
        let result = body()
        if result == 0 { return }
        if result == EINTR { continue }
        throw SystemError(call: call, errno: result, context: context())
    }
}
