// The underlay side of one worker.
//
// Receive: a UDP socket bound to the local address and VXLAN port with SO_REUSEPORT, one per
// worker, so the kernel spreads senders across workers; datagrams come in batches with recvmmsg.
//
// Send: a raw IPPROTO_UDP socket bound to the local address. The outer UDP source port must follow
// the inner flow (ECMP/RSS entropy, as the kernel's vxlan does), which a bound UDP socket cannot
// do per packet; on a raw socket the datapath writes the UDP header itself and the kernel adds the
// IP header. Over IPv4 the UDP checksum stays zero (RFC 7348 §5); over IPv6 the kernel computes it
// (IPV6_CHECKSUM), because receivers drop zero-checksum UDP over IPv6 by default. DF is set and
// the path MTU cache ignored (IP_PMTUDISC_PROBE): an encapsulated packet is never fragmented, and
// one that does not fit is refused with EMSGSIZE and counted as oversize.
import CVXLinux
import Glibc
import VXDatapath
import VXWire

public final class UDPLink: Underlay {
    public let receiveFD: FileDescriptor
    public let sendFD: FileDescriptor
    private let family: IPAddress.Family
    private let capacity: Int
    private let receiveHeaders: UnsafeMutablePointer<vx_mmsghdr>
    private let receiveVectors: UnsafeMutablePointer<iovec>
    private let receiveNames: UnsafeMutablePointer<sockaddr_storage>
    private let sendHeaders: UnsafeMutablePointer<vx_mmsghdr>
    private let sendVectors: UnsafeMutablePointer<iovec>
    private let sendNames: UnsafeMutablePointer<sockaddr_storage>
    private let sendCapacity: Int

    /// Opens this worker's pair of sockets. `batchSize` bounds a receive, `sendCapacity` a send list.
    public init(local: Endpoint, batchSize: Int, sendCapacity: Int) throws(SystemError) {
        family = local.address.family
        capacity = batchSize
        self.sendCapacity = sendCapacity
        let receive = try Self.openReceiveSocket(local: local)
        let send: FileDescriptor
        do {
            send = try Self.openSendSocket(local: local.address)
        } catch {
            receive.close()
            throw error
        }
        receiveFD = receive
        sendFD = send
        receiveHeaders = .allocate(capacity: batchSize)
        receiveVectors = .allocate(capacity: batchSize)
        receiveNames = .allocate(capacity: batchSize)
        sendHeaders = .allocate(capacity: sendCapacity)
        sendVectors = .allocate(capacity: sendCapacity)
        sendNames = .allocate(capacity: sendCapacity)
        for i in 0..<batchSize {
            receiveHeaders[i] = vx_mmsghdr()
            receiveHeaders[i].msg_hdr.msg_iov = receiveVectors + i
            receiveHeaders[i].msg_hdr.msg_iovlen = 1
            receiveHeaders[i].msg_hdr.msg_name = UnsafeMutableRawPointer(receiveNames + i)
        }
        for i in 0..<sendCapacity {
            sendHeaders[i] = vx_mmsghdr()
            sendHeaders[i].msg_hdr.msg_iov = sendVectors + i
            sendHeaders[i].msg_hdr.msg_iovlen = 1
            sendHeaders[i].msg_hdr.msg_name = UnsafeMutableRawPointer(sendNames + i)
        }
    }

    deinit {
        receiveHeaders.deallocate()
        receiveVectors.deallocate()
        receiveNames.deallocate()
        sendHeaders.deallocate()
        sendVectors.deallocate()
        sendNames.deallocate()
    }

    public func close() {
        receiveFD.close()
        sendFD.close()
    }

    /// Fails with EADDRINUSE when any socket already holds `local`. The workers' sockets share the
    /// port through SO_REUSEPORT, which would just as happily let a second router (same user) join
    /// the group and take a share of our traffic; a probe bound without SO_REUSEPORT conflicts with
    /// any existing holder, so it tells the two cases apart. Call once, before opening the links.
    public static func claimPort(_ local: Endpoint) throws(SystemError) {
        let probe = try openReceiveSocket(local: local, reusePort: false)
        probe.close()
    }

    static func openReceiveSocket(local: Endpoint, reusePort: Bool = true) throws(SystemError) -> FileDescriptor {
        let domain = local.address.isV4 ? AF_INET : AF_INET6
        let context = "listen on UDP \(local)"
        let fd = try syscall("socket", context: context) {
            socket(domain, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }!
        do {
            if reusePort { try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT", context) }
            if !local.address.isV4 { try setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1, "IPV6_V6ONLY", context) }
            // Absorb bursts; SO_RCVBUFFORCE passes the sysctl cap when we are root.
            if (try? setOption(fd, SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20, "SO_RCVBUFFORCE", context)) == nil {
                try? setOption(fd, SOL_SOCKET, SO_RCVBUF, 4 << 20, "SO_RCVBUF", context)
            }
            var storage = sockaddr_storage()
            let length = local.write(to: &storage)
            _ = try syscall("bind", context: context) {
                withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
                }
            }
        } catch {
            Glibc.close(fd)
            if error.errno == EADDRINUSE {
                throw SystemError(call: error.call, errno: error.errno, context: "\(context) (port \(local.port) is in use by another program)")
            }
            if error.errno == EADDRNOTAVAIL {
                throw SystemError(call: error.call, errno: error.errno, context: "\(context) (the address is not on this host)")
            }
            throw error
        }
        return FileDescriptor(rawValue: fd)
    }

    static func openSendSocket(local: IPAddress) throws(SystemError) -> FileDescriptor {
        let domain = local.isV4 ? AF_INET : AF_INET6
        let context = "open raw UDP send socket on \(local)"
        let fd = try syscall("socket", context: context) {
            socket(domain, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_UDP))
        }!
        do {
            _ = try shimCall("SO_ATTACH_FILTER", context: context) { vx_attach_drop_all_filter(fd) }
            if local.isV4 {
                try setOption(fd, Int32(IPPROTO_IP), vx_IP_MTU_DISCOVER, vx_IP_PMTUDISC_PROBE, "IP_MTU_DISCOVER", context)
            } else {
                // Offset of the UDP checksum within what we hand the kernel.
                try setOption(fd, Int32(IPPROTO_IPV6), vx_IPV6_CHECKSUM, 6, "IPV6_CHECKSUM", context)
                try setOption(fd, Int32(IPPROTO_IPV6), vx_IPV6_MTU_DISCOVER, vx_IPV6_PMTUDISC_PROBE, "IPV6_MTU_DISCOVER", context)
            }
            try? setOption(fd, SOL_SOCKET, SO_SNDBUFFORCE, 4 << 20, "SO_SNDBUFFORCE", context)
            var storage = sockaddr_storage()
            let length = Endpoint(address: local, port: 0).write(to: &storage)
            _ = try syscall("bind", context: context) {
                withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
                }
            }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return FileDescriptor(rawValue: fd)
    }

    static func setOption(
        _ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ call: String, _ context: String
    ) throws(SystemError) {
        var v = value
        _ = try syscall("setsockopt(\(call))", context: context) {
            setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    public func receive(into batch: inout PacketBatch) -> Int {
        let n = min(capacity, batch.capacity)
        for i in 0..<n {
            receiveVectors[i] = iovec(iov_base: batch.data(i), iov_len: batch.dataCapacity)
            receiveHeaders[i].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            receiveHeaders[i].msg_hdr.msg_flags = 0
        }
        var received: Int32 = -1
        while received < 0 {
            received = vx_recvmmsg(receiveFD.rawValue, receiveHeaders, UInt32(n), Int32(MSG_DONTWAIT))
            if received < 0 && errno != EINTR { received = 0 }  // EAGAIN, or an error the next poll shows
        }
        var kept = 0
        for i in 0..<Int(received) {
            guard let source = Endpoint(receiveNames + i) else { continue }
            let truncated = receiveHeaders[i].msg_hdr.msg_flags & vx_MSG_TRUNC != 0
            // Slots are filled in order, so a skipped one is overwritten by moving the next down.
            if kept != i {
                batch.data(kept).copyMemory(from: batch.data(i), byteCount: Int(receiveHeaders[i].msg_len))
            }
            batch.lengths[kept] = truncated ? batch.dataCapacity + 1 : Int(receiveHeaders[i].msg_len)
            batch.sources[kept] = source
            kept += 1
        }
        batch.count = kept
        return kept
    }

    public func send(_ packets: inout PacketList) {
        var start = 0
        while start < packets.count {
            let end = min(packets.count, start + sendCapacity)
            for i in start..<end {
                let k = i - start
                let packet = packets[i]
                sendVectors[k] = iovec(iov_base: packet.bytes, iov_len: packet.length)
                // Raw sockets take the protocol from the socket, not the port: pass 0.
                sendHeaders[k].msg_hdr.msg_namelen = packet.destination.write(to: sendNames + k, port: 0)
            }
            var k = 0
            let count = end - start
            while k < count {
                let sent = vx_sendmmsg(sendFD.rawValue, sendHeaders + k, UInt32(count - k), 0)
                if sent > 0 {
                    k += Int(sent)
                    continue
                }
                let err = errno
                if err == EINTR { continue }
                packets.statuses[start + k] = err == EMSGSIZE ? .tooBig : .failed
                k += 1
            }
            start = end
        }
    }
}
