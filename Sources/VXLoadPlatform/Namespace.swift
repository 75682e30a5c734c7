// Network namespaces by name, as `ip netns add NAME` makes them (a bind mount at
// /var/run/netns/NAME). A socket belongs to the namespace it was created in for its whole life,
// so one process can hold sockets in several namespaces: enter one, open what is needed there,
// come back. setns() moves only the calling thread, so the body runs on it synchronously.
import CVXLoadLinux
import Glibc
import VXPlatform

public enum NetworkNamespace {
    /// Where `ip netns` keeps its named namespaces.
    public static let directory = "/var/run/netns"

    /// Runs `body` with the calling thread inside namespace `name` (nil: where it is), then moves
    /// the thread back. Interface names, TAPs and sockets made in `body` are that namespace's.
    public static func run<T>(in name: String?, _ body: () throws -> T) throws -> T {
        guard let name else { return try body() }
        let context = "enter network namespace \(name)"
        guard !name.isEmpty, !name.contains("/") else {
            throw SystemError(call: "open", errno: EINVAL, context: "\(context) (not a namespace name)")
        }
        let original = try openReadOnly("/proc/thread-self/ns/net", context: context)
        defer { original.close() }
        let target: FileDescriptor
        do {
            target = try openReadOnly("\(directory)/\(name)", context: context)
        } catch {
            if error.errno == ENOENT {
                throw SystemError(call: "open", errno: ENOENT, context: "\(context) (no \(directory)/\(name): see `ip netns list`)")
            }
            throw error
        }
        defer { target.close() }
        _ = try shimCall("setns", context: context) { vx_setns_net(target.rawValue) }
        defer {
            // Coming back cannot fail for a namespace we were in a moment ago; if it ever did, the
            // thread would go on opening sockets in the wrong place, which is worse than stopping.
            let rc = vx_setns_net(original.rawValue)
            precondition(rc == 0, "cannot return to the original network namespace: \(String(cString: strerror(-rc)))")
        }
        return try body()
    }

    private static func openReadOnly(_ path: String, context: String) throws(SystemError) -> FileDescriptor {
        let fd = try syscall("open(\(path))", context: context) { open(path, O_RDONLY | O_CLOEXEC) }!
        return FileDescriptor(rawValue: fd)
    }
}
