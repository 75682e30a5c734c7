// Waiting on more than one descriptor, for the control loop (signals and its command queue).
import Glibc

/// Waits until any of `fds` is readable or `timeoutMilliseconds` pass.
public func waitReadable(_ fds: [FileDescriptor], timeoutMilliseconds: Int32) {
    var polls = fds.map { pollfd(fd: $0.rawValue, events: Int16(POLLIN), revents: 0) }
    _ = poll(&polls, nfds_t(polls.count), timeoutMilliseconds)
}

// An eventfd is safe to signal from any thread.
extension WakeEvent: @unchecked Sendable {}
