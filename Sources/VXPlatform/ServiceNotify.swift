// systemd's readiness protocol (sd_notify(3)), written out rather than linked from libsystemd: one
// datagram of `KEY=VALUE` lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an abstract
// name written with a leading '@'). Without $NOTIFY_SOCKET (not started by systemd) it does nothing.
import CVXLinux
import Glibc

public enum ServiceNotify {
    /// `READY=1`: forwarding has started (the unit's `Type=notify` waits for this).
    public static func ready(status: String) throws(SystemError) {
        try send("READY=1\nSTATUS=\(status)\nMAINPID=\(getpid())")
    }

    /// `RELOADING=1` … `READY=1` brackets a reload (`Type=notify` units, `systemctl reload`).
    public static func reloading() throws(SystemError) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        try send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)")
    }

    /// `STOPPING=1`: a clean stop has begun.
    public static func stopping() throws(SystemError) {
        try send("STOPPING=1")
    }

    /// Sends `message` to $NOTIFY_SOCKET; a no-op when it is unset or empty.
    public static func send(_ message: String, environment: [String: String]? = nil) throws(SystemError) {
        let target = environment.map { $0["NOTIFY_SOCKET"] } ?? getenv("NOTIFY_SOCKET").map { String(cString: $0) }
        guard let target, !target.isEmpty else { return }
        guard let address = notifyAddress(target) else {
            throw SystemError(call: "sendto", errno: EINVAL, context: "notify systemd at NOTIFY_SOCKET=\(target)")
        }
        guard let socket = try syscall("socket", context: "notify systemd", { Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }) else {
            return
        }
        let fd = FileDescriptor(rawValue: socket)
        defer { fd.close() }
        var storage = address.storage
        let length = address.length
        let bytes = Array(message.utf8)
        _ = try syscall("sendto", context: "notify systemd at \(target)") {
            bytes.withUnsafeBytes { payload in
                withUnsafePointer(to: &storage) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                        Glibc.sendto(socket, payload.baseAddress, payload.count, Int32(MSG_NOSIGNAL), generic, length)
                    }
                }
            }
        }
    }

    /// The sockaddr_un for a $NOTIFY_SOCKET value: a filesystem path (starts with '/') or an abstract
    /// name ('@' stands for the leading NUL). Nil for anything else, or a name too long for sun_path.
    static func notifyAddress(_ target: String) -> (storage: sockaddr_un, length: socklen_t)? {
        var bytes = Array(target.utf8)
        guard let first = bytes.first, first == UInt8(ascii: "/") || first == UInt8(ascii: "@") else { return nil }
        if first == UInt8(ascii: "@") { bytes[0] = 0 }
        var address = sockaddr_un()
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        // A path needs room for its NUL; an abstract name is exactly its bytes.
        guard bytes.count <= (first == UInt8(ascii: "/") ? capacity - 1 : capacity) else { return nil }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            path.copyBytes(from: bytes)
        }
        let length = MemoryLayout<sa_family_t>.size + bytes.count + (first == UInt8(ascii: "/") ? 1 : 0)
        return (address, socklen_t(length))
    }
}
