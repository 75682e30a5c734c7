// Who is on the other end of a Unix socket, and which groups the control socket belongs to: the
// pieces of the control endpoint's privilege check that ask the kernel (SO_PEERCRED's answer,
// /proc/<pid>/status, the group database) or change a file's owner and mode.
import CVXLinux
import Glibc

/// The caller of a Unix-socket connection as the kernel saw it at connect() (SO_PEERCRED), and
/// its supplementary groups (nil when they could not be read: then only uid and gid count).
public struct PeerCredentials: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    public var supplementaryGroups: [UInt32]?

    public init(pid: Int32, uid: UInt32, gid: UInt32, supplementaryGroups: [UInt32]?) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
        self.supplementaryGroups = supplementaryGroups
    }

    /// From SO_PEERCRED's `ucred`, reading the process's groups from /proc (read once, at accept:
    /// the connection keeps the rights its process had then, as SO_PEERCRED does).
    public init(_ credentials: vx_ucred) {
        self.init(
            pid: credentials.pid, uid: credentials.uid, gid: credentials.gid,
            supplementaryGroups: credentials.pid > 0 ? readSupplementaryGroups(pid: credentials.pid) : nil)
    }
}

/// The `Groups:` line of a /proc/<pid>/status text: the process's supplementary group ids
/// (empty when it has none); nil when the line is missing or malformed.
public func supplementaryGroups(procStatus text: String) -> [UInt32]? {
    for line in text.split(separator: "\n") where line.hasPrefix("Groups:") {
        var groups: [UInt32] = []
        for field in line.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }) {
            guard let gid = UInt32(field) else { return nil }
            groups.append(gid)
        }
        return groups
    }
    return nil
}

/// The supplementary groups of process `pid`, or nil when its status cannot be read (it left,
/// or lives in a PID namespace we cannot see).
public func readSupplementaryGroups(pid: Int32) -> [UInt32]? {
    guard let text = try? readSmallFile("/proc/\(pid)/status") else { return nil }
    return supplementaryGroups(procStatus: text)
}

/// A small text file read whole (at most 64 KiB).
func readSmallFile(_ path: String) throws(SystemError) -> String {
    guard let fd = try syscall("open", context: "read \(path)", { open(path, O_RDONLY | O_CLOEXEC) }) else {
        throw SystemError(call: "open", errno: EAGAIN, context: "read \(path)")
    }
    defer { _ = close(fd) }
    var bytes: [UInt8] = []
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 1)
    defer { chunk.deallocate() }
    while bytes.count < 65536 {
        let count = try syscall("read", context: "read \(path)") { read(fd, chunk.baseAddress, chunk.count) } ?? 0
        if count <= 0 { break }
        bytes += chunk[..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The id of group `name`, or nil when the group database has no such group.
public func groupID(named name: String) throws(SystemError) -> UInt32? {
    var size = 1024
    while true {
        var group = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: size)
        do {
            try errnoReturningCall("getgrnam_r", context: "look up group \(name)") {
                getgrnam_r(name, &group, &buffer, buffer.count, &result)
            }
        } catch where error.errno == ERANGE && size < 1 << 20 {
            size *= 4
            continue
        }
        return result == nil ? nil : group.gr_gid
    }
}

/// Creates `path` as a directory with `mode` unless it exists.
public func makeDirectoryIfMissing(_ path: String, mode: mode_t) throws(SystemError) {
    do {
        _ = try syscall("mkdir", context: "create \(path)") { mkdir(path, mode) }
    } catch where error.errno == EEXIST {
        return
    }
    // mkdir's mode is masked by the umask; the directory's mode is what was asked for.
    _ = try syscall("chmod", context: "set the mode of \(path)") { chmod(path, mode) }
}

/// Gives `path` owner `uid`, group `gid` and `mode` (the control socket's permissions).
public func setOwnerAndMode(_ path: String, uid: UInt32, gid: UInt32, mode: mode_t) throws(SystemError) {
    _ = try syscall("chown", context: "give \(path) to \(uid):\(gid)") { chown(path, uid, gid) }
    _ = try syscall("chmod", context: "set the mode of \(path)") { chmod(path, mode) }
}

/// Moves `from` to `to` atomically (replacing `to`).
public func renamePath(_ from: String, to: String) throws(SystemError) {
    _ = try syscall("rename", context: "rename \(from) to \(to)") { rename(from, to) }
}

/// SO_PEERCRED's value type and option name, for reading it through a socket-option API.
public typealias PeerCredentialsOption = vx_ucred
public let peerCredentialsOptionName: Int32 = SO_PEERCRED

/// Whether a process accepts connections on the Unix socket at `path` (a live router's control
/// socket, not a stale file left by one that was killed).
public func unixSocketAnswers(_ path: String) -> Bool {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
    withUnsafeMutableBytes(of: &address.sun_path) { buffer in
        for (i, byte) in bytes.enumerated() { buffer[i] = byte }
    }
    guard let fd = try? syscall("socket", { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) })
    else { return false }
    defer { _ = close(fd) }
    let connected = try? withUnsafePointer(to: &address) { pointer throws(SystemError) in
        try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer throws(SystemError) in
            try syscall("connect") { connect(fd, sockaddrPointer, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
    return connected != nil
}
