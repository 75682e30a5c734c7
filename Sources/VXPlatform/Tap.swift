// TAP devices: one multi-queue TAP per network, one queue per worker (IFF_MULTI_QUEUE), so the
// kernel spreads flows across workers and no worker touches another's queue.
import CVXLinux
import Glibc
import VXDatapath
import VXWire

/// One queue of a TAP, owned by one worker.
public struct TapQueue: FrameDevice {
    public let fd: FileDescriptor

    /// A TAP has no batch read: read() returns one frame, so a batch is reads until the queue is
    /// empty or the batch full.
    @inline(__always)
    public mutating func read(into batch: inout PacketBatch) -> Int {
        var n = 0
        while n < batch.capacity {
            let r = Glibc.read(fd.rawValue, batch.data(n), batch.dataCapacity)
            if r < 0 {
                if errno == EINTR { continue }
                break  // EAGAIN: empty. Anything else shows up as POLLERR to the worker loop.
            }
            batch.lengths[n] = r
            n += 1
        }
        batch.count = n
        return n
    }

    @inline(__always)
    public mutating func write(_ frame: UnsafeRawPointer, length: Int) -> Bool {
        while true {
            let r = Glibc.write(fd.rawValue, frame, length)
            if r == length { return true }
            if r < 0, errno == EINTR { continue }
            return false
        }
    }
}

/// A TAP interface: its queues, and whether this process created it (and so removes it: a
/// non-persistent TAP disappears with its last queue).
public final class TapInterface {
    public let name: String
    public let createdHere: Bool
    public private(set) var queues: [TapQueue] = []

    /// Opens `queueCount` queues of TAP `name`, creating the interface if it does not exist.
    public init(name: String, queueCount: Int) throws(SystemError) {
        self.name = name
        createdHere = if_nametoindex(name) == 0
        do {
            for _ in 0..<queueCount {
                let fd = try shimCall("TUNSETIFF", context: "open TAP \(name)") { vx_tap_open_queue(name, 0) }
                queues.append(TapQueue(fd: FileDescriptor(rawValue: fd)))
            }
        } catch {
            close()
            if error.errno == EINVAL || error.errno == EBUSY {
                throw SystemError(
                    call: error.call, errno: error.errno,
                    context: "open TAP \(name) (an interface of that name exists and is not a multi-queue TAP)")
            }
            throw error
        }
    }

    public func setMTU(_ mtu: Int) throws(SystemError) {
        _ = try shimCall("SIOCSIFMTU", context: "set MTU \(mtu) on \(name)") { vx_if_set_mtu(name, Int32(mtu)) }
    }

    public func setUp() throws(SystemError) {
        _ = try shimCall("SIOCSIFFLAGS", context: "bring \(name) up") { vx_if_set_up(name) }
    }

    public func assign(_ prefix: IPPrefix) throws(SystemError) {
        let context = "assign \(prefix) to \(name)"
        switch prefix.address.family {
        case .v4:
            let mask: UInt32 = prefix.length == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefix.length)
            _ = try shimCall("SIOCSIFADDR", context: context) {
                vx_if_set_ipv4(name, prefix.address.v4Value.bigEndian, mask.bigEndian)
            }
        case .v6:
            let bytes = prefix.address.bytes
            _ = try shimCall("SIOCSIFADDR", context: context) {
                bytes.withUnsafeBufferPointer { vx_if_add_ipv6(name, $0.baseAddress, Int32(prefix.length)) }
            }
        }
    }

    public func macAddress() throws(SystemError) -> MACAddress {
        var mac = [UInt8](repeating: 0, count: 6)
        _ = try shimCall("SIOCGIFHWADDR", context: "read MAC of \(name)") {
            mac.withUnsafeMutableBufferPointer { vx_if_get_hwaddr(name, $0.baseAddress) }
        }
        return MACAddress(mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
    }

    /// Closes every queue; a TAP created here vanishes with the last one.
    public func close() {
        for queue in queues { queue.fd.close() }
        queues.removeAll()
    }
}

public enum Interfaces {
    /// The name and MTU of the interface that holds `address`, or nil when no interface does.
    public static func holding(_ address: IPAddress) throws(SystemError) -> (name: String, mtu: Int)? {
        var list: UnsafeMutablePointer<ifaddrs>? = nil
        guard getifaddrs(&list) == 0 else { throw SystemError(call: "getifaddrs", errno: errno) }
        defer { freeifaddrs(list) }
        var cursor = list
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let sa = entry.pointee.ifa_addr else { continue }
            let family = Int32(sa.pointee.sa_family)
            guard family == AF_INET || family == AF_INET6 else { continue }
            let found = sa.withMemoryRebound(to: sockaddr_storage.self, capacity: 1) { Endpoint($0) }
            guard let found, found.address == address else { continue }
            let name = String(cString: entry.pointee.ifa_name)
            var mtu: Int32 = 0
            _ = try shimCall("SIOCGIFMTU", context: "read MTU of \(name)") { vx_if_get_mtu(name, &mtu) }
            return (name, Int(mtu))
        }
        return nil
    }

    public static func exists(_ name: String) -> Bool { if_nametoindex(name) != 0 }
}
