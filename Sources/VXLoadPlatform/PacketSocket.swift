// AF_PACKET sockets: the host side of any interface (a TAP, a kernel vxlan device, a veth).
// Sending on one is the kernel transmitting a frame on the interface — into a TAP's reader, into
// the vxlan driver's encapsulation, onto a veth's peer; receiving on one sees every frame the
// interface receives. recvmmsg/sendmmsg work on them as on UDP sockets (MessageVector).
import CVXLoadLinux
import Glibc
import VXPlatform

public enum PacketSocket {
    /// The interface index of `name` in the calling thread's namespace; ENODEV when there is none.
    public static func interfaceIndex(_ name: String, context: String) throws(SystemError) -> Int32 {
        let index = if_nametoindex(name)
        guard index != 0 else {
            throw SystemError(call: "if_nametoindex", errno: ENODEV, context: "\(context) (no interface \(name) here)")
        }
        return Int32(bitPattern: index)
    }

    /// A packet socket bound to interface `name`. With `receive`, it queues every frame the
    /// interface receives (not the ones sent on it); without, nothing: a send-only socket.
    /// Blocking unless `nonblocking`, so a full device queue slows the sender down.
    public static func open(interface name: String, receive: Bool, nonblocking: Bool) throws(SystemError) -> FileDescriptor {
        let context = "open packet socket on \(name)"
        let index = try interfaceIndex(name, context: context)
        let fd = try shimCall("socket(AF_PACKET)", context: context) {
            vx_packet_socket_open(index, receive ? 1 : 0, nonblocking ? 1 : 0)
        }
        return FileDescriptor(rawValue: fd)
    }

    /// Joins PACKET_FANOUT group `group` (hash mode): the group's sockets share frames by flow.
    public static func joinFanout(_ fd: FileDescriptor, group: UInt16) throws(SystemError) {
        _ = try shimCall("setsockopt(PACKET_FANOUT)") { vx_packet_join_fanout(fd.rawValue, Int32(group)) }
    }

    /// Frames the kernel dropped because this socket's receive queue was full, since the last call.
    public static func drops(_ fd: FileDescriptor) -> UInt64 {
        var drops: UInt32 = 0
        return vx_packet_drops(fd.rawValue, &drops) == 0 ? UInt64(drops) : 0
    }
}
