// A reusable vector of mmsghdr + iovec for sendmmsg/recvmmsg, allocated once per thread and
// pointed at the caller's buffers (swift-nio's DatagramVectorReadManager does the same): a
// batch costs one syscall and no allocation. Errors follow Syscalls.swift: EINTR retried,
// "would block" is nil, the rest thrown with the errno for the caller to judge.
import CVXLinux
import Glibc

public final class MessageVector {
    public let capacity: Int
    public let iovecsPerMessage: Int
    private let headers: UnsafeMutablePointer<vx_mmsghdr>
    private let vectors: UnsafeMutablePointer<iovec>

    public init(capacity: Int, iovecsPerMessage: Int = 1) {
        precondition(capacity > 0 && iovecsPerMessage > 0)
        self.capacity = capacity
        self.iovecsPerMessage = iovecsPerMessage
        headers = .allocate(capacity: capacity)
        vectors = .allocate(capacity: capacity * iovecsPerMessage)
        vectors.initialize(repeating: iovec(iov_base: nil, iov_len: 0), count: capacity * iovecsPerMessage)
        for i in 0..<capacity {
            headers[i] = vx_mmsghdr()
            headers[i].msg_hdr.msg_iov = vectors + i * iovecsPerMessage
            headers[i].msg_hdr.msg_iovlen = iovecsPerMessage
        }
    }

    deinit {
        headers.deallocate()
        vectors.deallocate()
    }

    /// Points piece `piece` of message `message` at `length` bytes from `base`.
    @inline(__always)
    public func setBuffer(_ message: Int, piece: Int = 0, base: UnsafeMutableRawPointer, length: Int) {
        vectors[message * iovecsPerMessage + piece] = iovec(iov_base: base, iov_len: length)
    }

    /// Bytes the last receive put in message `message`.
    @inline(__always)
    public func receivedLength(_ message: Int) -> Int { Int(headers[message].msg_len) }

    /// Whether the last receive cut message `message` short (MSG_TRUNC).
    @inline(__always)
    public func wasTruncated(_ message: Int) -> Bool { headers[message].msg_hdr.msg_flags & vx_MSG_TRUNC != 0 }

    /// Sends messages `start ..< start + count` on `fd`: how many the kernel took (at least one),
    /// nil if a non-blocking socket would block. A failure on the first message is thrown.
    @inline(__always)
    public func send(on fd: FileDescriptor, from start: Int = 0, count: Int) throws(SystemError) -> Int? {
        precondition(start >= 0 && count > 0 && start + count <= capacity)
        return try syscall("sendmmsg") { vx_sendmmsg(fd.rawValue, headers + start, UInt32(count), 0) }.map(Int.init)
    }

    /// Receives up to `count` messages without waiting: how many arrived, nil if none were queued.
    @inline(__always)
    public func receive(on fd: FileDescriptor, count: Int) throws(SystemError) -> Int? {
        precondition(count > 0 && count <= capacity)
        for i in 0..<count { headers[i].msg_hdr.msg_flags = 0 }
        return try syscall("recvmmsg") {
            vx_recvmmsg(fd.rawValue, headers, UInt32(count), Int32(MSG_DONTWAIT))
        }.map(Int.init)
    }
}
