// Reads the kernel's path MTU toward a remote VTEP (README "PMTU"): the MTU the kernel cached for
// that destination when a router on the way answered with ICMP "fragmentation needed" / "packet
// too big", or the route's MTU when nothing was learned (or the cached one expired).
//
// How: one UDP socket of the underlay's family, bound to the local address, connected to the
// remote in turn (a UDP connect only routes: nothing is sent), then IP_MTU / IPV6_MTU, which is
// the MTU of the route the connect picked — the cached path MTU included. Chosen over the
// alternatives measured or read:
// - IP_RECVERR on the send sockets: the error queue carries the MTU (sock_extended_err.ee_info)
//   but the pool's sockets are shared by every worker and every socket gets a copy; reading it
//   would put a recvmsg(MSG_ERRQUEUE) on the hot path;
// - rtnetlink RTM_GETROUTE (what `ip route get` shows as "cache expires … mtu …"): the same
//   answer, with a message parser to keep;
// - the kernel's vxlan itself asks its route (`dst_mtu`) per packet, which userspace cannot.
// Owned by the control thread (one probe at a time).
import CVXLinux
import Glibc
import VXWire

public final class PathMTUProbe {
    private let fd: Int32
    private let family: IPAddress.Family
    private let port: UInt16

    /// A probe for remotes of `local`'s family, connecting to their VXLAN `port`.
    public init(local: IPAddress, port: UInt16) throws(SystemError) {
        let v4 = local.isV4
        let context = "open path MTU probe socket on \(local)"
        fd = try syscall("socket", context: context) {
            socket(v4 ? AF_INET : AF_INET6, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }!
        family = local.family
        self.port = port
        do {
            if !v4 { try UDPLink.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1, "IPV6_V6ONLY", context) }
            // Never reads: a drop-all filter keeps anything sent to its port from queueing.
            _ = try shimCall("SO_ATTACH_FILTER", context: context) { vx_attach_drop_all_filter(fd) }
            try UDPLink.bindSocket(fd, to: Endpoint(address: local, port: 0), context)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    deinit { Glibc.close(fd) }

    /// The kernel's path MTU toward `remote`, or a SystemError (no route: ENETUNREACH,
    /// EHOSTUNREACH; a remote of the other family: EAFNOSUPPORT).
    public func pathMTU(to remote: IPAddress) throws(SystemError) -> Int {
        let context = "read the path MTU to \(remote)"
        guard remote.family == family else { throw SystemError(call: "connect", errno: EAFNOSUPPORT, context: context) }
        var storage = sockaddr_storage()
        let length = Endpoint(address: remote, port: port).write(to: &storage)
        _ = try syscall("connect", context: context) {
            withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
            }
        }
        var mtu: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        let (level, name, call) =
            family == .v4
            ? (Int32(IPPROTO_IP), vx_IP_MTU, "getsockopt(IP_MTU)") : (Int32(IPPROTO_IPV6), vx_IPV6_MTU, "getsockopt(IPV6_MTU)")
        _ = try syscall(call, context: context) { getsockopt(fd, level, name, &mtu, &size) }
        return Int(mtu)
    }
}
