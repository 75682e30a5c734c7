// Plain UDP sockets for tools that play a remote VTEP (vxload): a connected sender, and the
// receiving side shared with the router's own links (UDPLink.openReceiveSocket).
import CVXLinux
import Glibc
import VXWire

public enum DatagramSocket {
    /// A UDP socket bound to `local` (SO_REUSEPORT when `sharedPort`, so several receiving
    /// threads split one port), non-blocking. EADDRINUSE says which port is taken.
    public static func openReceiver(local: Endpoint, sharedPort: Bool) throws(SystemError) -> FileDescriptor {
        try UDPLink.openReceiveSocket(local: local, reusePort: sharedPort)
    }

    /// Fails with EADDRINUSE when another socket already holds `local` (see UDPLink.claimPort).
    public static func claim(_ local: Endpoint) throws(SystemError) {
        try UDPLink.claimPort(local)
    }

    /// A blocking UDP socket connected to `remote`, from an ephemeral port (a different one per
    /// socket: SO_REUSEPORT receivers and RSS see each socket as its own flow).
    public static func openConnected(to remote: Endpoint) throws(SystemError) -> FileDescriptor {
        let domain = remote.address.isV4 ? AF_INET : AF_INET6
        let context = "open UDP socket to \(remote)"
        let fd = try syscall("socket", context: context) {
            socket(domain, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }!
        var storage = sockaddr_storage()
        let length = remote.write(to: &storage)
        do {
            _ = try syscall("connect", context: context) {
                withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
                }
            }
        } catch {
            Glibc.close(fd)
            if error.errno == ENETUNREACH || error.errno == EHOSTUNREACH {
                throw SystemError(call: error.call, errno: error.errno, context: "\(context) (no route to it from here)")
            }
            throw error
        }
        return FileDescriptor(rawValue: fd)
    }

    /// The path MTU the kernel holds for a connected socket (IP_MTU), or nil.
    public static func pathMTU(_ fd: FileDescriptor) -> Int? {
        var mtu: Int32 = 0
        return vx_socket_path_mtu(fd.rawValue, &mtu) == 0 && mtu > 0 ? Int(mtu) : nil
    }
}

extension DatagramSocket {
    /// Queues the socket's ICMP errors (IP_RECVERR) so `takeQueuedError` can see every one.
    public static func enableErrorQueue(_ fd: FileDescriptor, ipv6: Bool) throws(SystemError) {
        _ = try shimCall("setsockopt(IP_RECVERR)") { vx_enable_error_queue(fd.rawValue, ipv6 ? 1 : 0) }
    }

    /// The errno of the oldest queued ICMP error (ECONNREFUSED: port unreachable), or nil.
    public static func takeQueuedError(_ fd: FileDescriptor) -> Int32? {
        let err = vx_take_queued_error(fd.rawValue)
        return err == 0 ? nil : err
    }
}
