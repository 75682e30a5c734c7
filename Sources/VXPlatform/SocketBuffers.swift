// Socket buffer sizes: the underlay link's sockets (and vxload's) ask for more than the default.
import Glibc

extension FileDescriptor {
    /// Asks for a large receive or send buffer: SO_*BUFFORCE passes the sysctl cap when root,
    /// the plain option is the fallback. Best effort: the default still works, only burstier.
    public func requestBuffer(bytes: Int32, receive: Bool) {
        var value = bytes
        let size = socklen_t(MemoryLayout<Int32>.size)
        let (force, plain) = receive ? (SO_RCVBUFFORCE, SO_RCVBUF) : (SO_SNDBUFFORCE, SO_SNDBUF)
        if setsockopt(rawValue, SOL_SOCKET, force, &value, size) != 0 {
            _ = setsockopt(rawValue, SOL_SOCKET, plain, &value, size)
        }
    }
}
