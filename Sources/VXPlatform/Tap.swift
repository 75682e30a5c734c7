// TAP devices: one multi-queue TAP per network, one queue per worker (IFF_MULTI_QUEUE), so the
// kernel spreads flows across workers and no worker touches another's queue.
import CVXLinux
import Glibc
import VXDatapath
import VXWire

/// One queue of a TAP, owned by one worker.
public struct TapQueue: FrameDevice {
    public let fd: FileDescriptor
    /// Frames carry a virtio_net_hdr (IFF_VNET_HDR, 12 bytes) both ways.
    public let virtioHeaders: Bool

    public init(fd: FileDescriptor, virtioHeaders: Bool) {
        self.fd = fd
        self.virtioHeaders = virtioHeaders
    }

    /// A TAP has no batch read: read() returns one frame, so a batch is reads until the queue is
    /// empty or the batch full. With virtio headers the header lands in the headroom just before
    /// the frame.
    @inline(__always)
    public mutating func read(into batch: inout PacketBatch) -> Int {
        let skip = virtioHeaders ? VirtioNetHeader.size : 0
        var n = 0
        while n < batch.capacity {
            let r = Glibc.read(fd.rawValue, batch.data(n) - skip, batch.dataCapacity + skip)
            if r < 0 {
                if errno == EINTR { continue }
                break  // EAGAIN: empty. Anything else shows up as POLLERR to the worker loop.
            }
            if r < skip { continue }
            batch.lengths[n] = r - skip
            n += 1
        }
        batch.count = n
        return n
    }

    @inline(__always)
    public mutating func write(pieces: UnsafeBufferPointer<FramePiece>) -> Bool {
        var total = 0
        for piece in pieces { total += piece.length }
        let vectors = UnsafeRawPointer(pieces.baseAddress!).assumingMemoryBound(to: iovec.self)
        while true {
            let r = Glibc.writev(fd.rawValue, vectors, Int32(pieces.count))
            if r == total { return true }
            if r < 0, errno == EINTR { continue }
            return false
        }
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
    /// The offloads the kernel accepted (empty without virtio headers).
    public private(set) var offloads: TapOffloads = []

    /// Opens `queueCount` queues of TAP `name`, creating the interface if it does not exist. With
    /// `offloads`, the queues carry virtio headers and the kernel is asked for checksum, TSO and
    /// USO offloads, feature by feature (`offloads` says which it took).
    public init(name: String, queueCount: Int, offloads wantOffloads: Bool = false) throws(SystemError) {
        self.name = name
        createdHere = if_nametoindex(name) == 0
        do {
            for _ in 0..<queueCount {
                let fd = try shimCall("TUNSETIFF", context: "open TAP \(name)") {
                    vx_tap_open_queue(name, wantOffloads ? 1 : 0)
                }
                queues.append(TapQueue(fd: FileDescriptor(rawValue: fd), virtioHeaders: wantOffloads))
            }
            if wantOffloads, let first = queues.first {
                _ = try shimCall("TUNSETVNETHDRSZ", context: "set virtio header size on \(name)") {
                    vx_tap_set_vnet_header_size(first.fd.rawValue, Int32(VirtioNetHeader.size))
                }
                offloads = Self.negotiate(first.fd)
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

    /// Asks for the most it can get: CSUM + TSO4/6 + USO4/6, then without USO, then without
    /// TSO6 or TSO4, then CSUM alone; whatever the kernel takes first wins (EINVAL: not offered).
    static func negotiate(_ fd: FileDescriptor) -> TapOffloads {
        let candidates: [TapOffloads] = [
            [.checksum, .tso4, .tso6, .uso4, .uso6], [.checksum, .tso4, .tso6], [.checksum, .tso4],
            [.checksum, .tso6], [.checksum],
        ]
        for candidate in candidates where vx_tap_set_offload(fd.rawValue, candidate.kernelFlags) == 0 {
            return candidate
        }
        _ = vx_tap_set_offload(fd.rawValue, 0)
        return []
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

    /// Sets the TAP's MAC (SIOCSIFHWADDR). Done before the link goes up, so the kernel never
    /// speaks for the interface with another address.
    public func setMACAddress(_ mac: MACAddress) throws(SystemError) {
        let bytes = mac.octets
        _ = try shimCall("SIOCSIFHWADDR", context: "set MAC \(mac) on \(name)") {
            bytes.withUnsafeBufferPointer { vx_if_set_hwaddr(name, $0.baseAddress) }
        }
    }

    /// Asks the kernel to announce the interface's addresses to the overlay when the link comes
    /// up or its MAC changes: gratuitous ARP (`net.ipv4.conf.<tap>.arp_notify = 1`) and unsolicited
    /// neighbour advertisements (`net.ipv6.conf.<tap>.ndisc_notify = 1`; for an IPv6 address also
    /// once duplicate address detection completes). The frames come out of the TAP like any
    /// broadcast and are flooded to the peers, whose caches are corrected at once. Returns the
    /// settings the kernel refused (IPv6 disabled leaves no `net.ipv6.conf.<tap>`).
    public func enableAnnouncements() -> [SystemError] {
        var failures: [SystemError] = []
        for path in ["/proc/sys/net/ipv4/conf/\(name)/arp_notify", "/proc/sys/net/ipv6/conf/\(name)/ndisc_notify"] {
            do throws(SystemError) {
                try writeSetting(path, "1\n")
            } catch {
                failures.append(error)
            }
        }
        return failures
    }

    /// Closes every queue; a TAP created here vanishes with the last one.
    public func close() {
        for queue in queues { queue.fd.close() }
        queues.removeAll()
    }
}

/// TUNSETOFFLOAD features: what the kernel may hand us unfinished, and so what we finish.
public struct TapOffloads: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let checksum = TapOffloads(rawValue: 1 << 0)
    public static let tso4 = TapOffloads(rawValue: 1 << 1)
    public static let tso6 = TapOffloads(rawValue: 1 << 2)
    public static let uso4 = TapOffloads(rawValue: 1 << 3)
    public static let uso6 = TapOffloads(rawValue: 1 << 4)

    var kernelFlags: UInt32 {
        var flags: UInt32 = 0
        if contains(.checksum) { flags |= vx_TUN_F_CSUM }
        if contains(.tso4) { flags |= vx_TUN_F_TSO4 }
        if contains(.tso6) { flags |= vx_TUN_F_TSO6 }
        if contains(.uso4) { flags |= vx_TUN_F_USO4 }
        if contains(.uso6) { flags |= vx_TUN_F_USO6 }
        return flags
    }

    public var description: String {
        let names: [(TapOffloads, String)] = [(.checksum, "csum"), (.tso4, "tso4"), (.tso6, "tso6"), (.uso4, "uso4"), (.uso6, "uso6")]
        let on = names.filter { contains($0.0) }.map(\.1)
        return on.isEmpty ? "none" : on.joined(separator: ",")
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

    /// The interface index of `name` in this namespace; 0 when there is no such interface.
    public static func index(_ name: String) -> UInt32 { if_nametoindex(name) }

    /// Frames the kernel dropped on their way out of `name` — for a TAP, toward the router: its
    /// queue was full (the worker did not read fast enough) or no queue was attached. nil when
    /// there is no such interface or the counter is unreadable.
    public static func transmitDrops(_ name: String) -> UInt64? {
        guard !name.contains("/"), let text = try? readSetting("/sys/class/net/\(name)/statistics/tx_dropped") else {
            return nil
        }
        return UInt64(text.trimmingSuffixNewline)
    }
}

/// The first 64 bytes of a /proc or /sys file (a number, a word).
func readSetting(_ path: String) throws(SystemError) -> String {
    let context = "read \(path)"
    guard let fd = try syscall("open", context: context, { Glibc.open(path, O_RDONLY | O_CLOEXEC) }) else {
        throw SystemError(call: "open", errno: EAGAIN, context: context)
    }
    defer { _ = Glibc.close(fd) }
    var buffer = [UInt8](repeating: 0, count: 64)
    guard let count = try syscall("read", context: context, { buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } })
    else { throw SystemError(call: "read", errno: EAGAIN, context: context) }
    return String(decoding: buffer.prefix(Int(count)), as: UTF8.self)
}

/// Writes `value` to a /proc/sys (or /sys) file.
func writeSetting(_ path: String, _ value: String) throws(SystemError) {
    let context = "write \(value.trimmingSuffixNewline) to \(path)"
    guard let fd = try syscall("open", context: context, { Glibc.open(path, O_WRONLY | O_CLOEXEC) }) else {
        throw SystemError(call: "open", errno: EAGAIN, context: context)
    }
    defer { _ = Glibc.close(fd) }
    let bytes = Array(value.utf8)
    let written = try syscall("write", context: context) { bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } }
    if written != bytes.count { throw SystemError(call: "write", errno: EIO, context: context) }
}

extension String {
    fileprivate var trimmingSuffixNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}

/// What makes this host itself, for `StableMAC`: the machine ID (systemd's /etc/machine-id, else
/// D-Bus's copy), else the host name. Read once at start-up.
public enum HostIdentity {
    public enum Source: String, Sendable { case machineID = "/etc/machine-id", dbusMachineID = "/var/lib/dbus/machine-id", hostname }

    public static func seed() -> (seed: [UInt8], source: Source) {
        for source in [Source.machineID, .dbusMachineID] {
            if let text = readSmallFile(source.rawValue), let id = StableMAC.machineID(text) { return (id, source) }
        }
        var name = [CChar](repeating: 0, count: 256)
        if gethostname(&name, name.count - 1) == 0 {
            return (Array(String(cString: name).utf8), .hostname)
        }
        return ([], .hostname)
    }

    static func readSmallFile(_ path: String) -> String? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { _ = Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : nil
    }
}
