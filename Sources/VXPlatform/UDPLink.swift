// The underlay side of one worker.
//
// Receive: a UDP socket bound to the local address and VXLAN port with SO_REUSEPORT, one per
// worker, so the kernel spreads senders across workers; datagrams come in batches with recvmmsg.
//
// Send: a raw IPPROTO_UDP socket bound to the local address. The outer UDP source port must follow
// the inner flow (ECMP/RSS entropy, as the kernel's vxlan does), which a bound UDP socket cannot
// do per packet; on a raw socket the datapath writes the UDP header itself and the kernel adds the
// IP header. Over IPv4 the UDP checksum stays zero (RFC 7348 §5); over IPv6 the kernel computes it
// (IPV6_CHECKSUM), because receivers drop zero-checksum UDP over IPv6 by default.
//
// Path MTU: DF is set and the kernel's path MTU cache obeyed (IP_PMTUDISC_DO; IPV6_PMTUDISC_DO and
// IPV6_DONTFRAG): an encapsulated packet is never fragmented, and one larger than what the kernel
// last learned for its destination (an ICMP "fragmentation needed" / "packet too big" from a
// router on the way, which the kernel matches to these sockets and caches for ~10 minutes) is
// refused with EMSGSIZE — a UDP GSO send whose segment size is too big as well. Such a packet is
// counted oversize and its remote marked for a probe (`RemoteTable.requestProbe`); the control
// thread then reads the path MTU (`PathMTUProbe`) and the forwarder signals the inner sender
// against it. (PMTUDISC_PROBE, the earlier choice, ignored the cache and kept sending packets a
// router on the way dropped.)
//
// With offloads (UDPSendPool, UDP GRO):
// - Send goes through a pool of ordinary UDP sockets, shared by every worker, each bound to the
//   local address and its own source port from `source_ports`. The flow hash the forwarder wrote
//   into the UDP header's source port picks the pool socket (so one flow keeps one port and ECMP
//   still sees up to 64 ports); the kernel writes the UDP header itself, so the packet leaves from
//   the byte after it. Runs of consecutive packets to one destination through one socket, all of
//   one size but the last, leave as one UDP GSO send (UDP_SEGMENT, up to 64 segments). The UDP
//   checksum is kept over IPv4 too (the kernel refuses GSO with SO_NO_CHECK; veth and NICs
//   compute it for free), filled in by the kernel over IPv6. A socket whose GSO send fails with
//   EIO (no checksum offload on the way out) falls back to one datagram per packet.
//   `udp_checksum: false` (IPv4) sets SO_NO_CHECK on the pool, which costs UDP GSO: one datagram
//   per send. `udp_checksum: true` without a pool: the raw socket's IPv4 UDP checksum is computed
//   here (`OuterChecksum.ipv4UDP`), a pass over every byte sent.
// - Receive asks for UDP_GRO: one slot may hold many datagrams of one flow, all `gso_size` long
//   but the last, with the size in a control message.
import CVXLinux
import Glibc
import Synchronization
import VXDatapath
import VXWire

/// Send sockets shared by every worker (UDP sendmsg without MSG_MORE takes no socket lock, so
/// workers do not contend). They never read: a drop-all filter keeps anything sent to their ports
/// from queueing.
public final class UDPSendPool: @unchecked Sendable {
    public let sockets: [FileDescriptor]
    public let ports: [UInt16]
    /// Whether the kernel took UDP_SEGMENT on these sockets.
    public let gsoSupported: Bool
    let fds: UnsafeMutablePointer<Int32>
    let lowerBound: UInt16
    let span: UInt32

    /// Opens up to `size` sockets on ports spread evenly over `sourcePorts`, skipping ports that
    /// fail to bind (held by someone else) and `listenPort` (the receive sockets' `SO_REUSEPORT`
    /// group binds it after the pool; a pool socket there would shut them out). Nil when none binds.
    /// `zeroChecksums`: IPv4 datagrams leave with a zero UDP checksum (SO_NO_CHECK; no UDP GSO then).
    public init?(
        local: IPAddress, sourcePorts: ClosedRange<UInt16>, listenPort: UInt16, size: Int = 64,
        zeroChecksums: Bool = false
    ) {
        let span = UInt32(sourcePorts.upperBound) - UInt32(sourcePorts.lowerBound) + 1
        let wanted = min(size, Int(span))
        var sockets: [FileDescriptor] = []
        var ports: [UInt16] = []
        for k in 0..<wanted {
            let port = UInt16(UInt32(sourcePorts.lowerBound) + UInt32(k) * span / UInt32(wanted))
            if port == listenPort { continue }
            if let fd = try? Self.openSocket(local: Endpoint(address: local, port: port), zeroChecksums: zeroChecksums) {
                sockets.append(fd)
                ports.append(port)
            }
        }
        guard let first = sockets.first else { return nil }
        self.sockets = sockets
        self.ports = ports
        lowerBound = sourcePorts.lowerBound
        self.span = span
        fds = .allocate(capacity: sockets.count)
        for (i, fd) in sockets.enumerated() { fds[i] = fd.rawValue }
        // Sockets start with no default segment size (each GSO send gives its own); setting that
        // same 0 tells whether the kernel knows UDP_SEGMENT at all.
        // The kernel refuses a GSO send on a socket with SO_NO_CHECK (EINVAL).
        gsoSupported =
            !zeroChecksums
            && (try? UDPLink.setOption(first.rawValue, vx_SOL_UDP, vx_UDP_SEGMENT, 0, "UDP_SEGMENT", "probe UDP GSO")) != nil
    }

    deinit { fds.deallocate() }

    public var count: Int { sockets.count }

    public func close() { for fd in sockets { fd.close() } }

    /// The pool socket for a flow's hashed source port: the same port always gives the same socket.
    @inline(__always)
    func slot(forPort port: UInt16) -> Int {
        Int((UInt32(port &- lowerBound) % span) * UInt32(sockets.count) / span)
    }

    /// The source port a packet whose UDP header says `port` leaves from (`vxrouter trace`).
    public func sourcePort(forHashedPort port: UInt16) -> UInt16 { ports[slot(forPort: port)] }

    static func openSocket(local: Endpoint, zeroChecksums: Bool) throws(SystemError) -> FileDescriptor {
        let v4 = local.address.isV4
        let context = "open UDP send socket on \(local)"
        let fd = try syscall("socket", context: context) {
            socket(v4 ? AF_INET : AF_INET6, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }!
        do {
            _ = try shimCall("SO_ATTACH_FILTER", context: context) { vx_attach_drop_all_filter(fd) }
            if !v4 { try UDPLink.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1, "IPV6_V6ONLY", context) }
            if v4 && zeroChecksums { try UDPLink.setOption(fd, SOL_SOCKET, SO_NO_CHECK, 1, "SO_NO_CHECK", context) }
            try UDPLink.obeyPathMTU(fd, v4: v4, context)
            FileDescriptor(rawValue: fd).requestBuffer(bytes: 4 << 20, receive: false)
            try? UDPLink.setOption(fd, SOL_SOCKET, SO_RCVBUF, 4096, "SO_RCVBUF", context)
            try UDPLink.bindSocket(fd, to: local, context)
        } catch {
            Glibc.close(fd)
            throw error
        }
        return FileDescriptor(rawValue: fd)
    }
}

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
    // The offloaded paths (see the top of the file).
    private let pool: UDPSendPool?
    /// Per pool socket: GSO sends allowed (cleared after EIO). Owned by this worker.
    private let gsoAllowed: UnsafeMutablePointer<Bool>
    private let receiveControl: UnsafeMutableRawPointer
    private let sendControl: UnsafeMutableRawPointer
    private let controlSpace: Int
    private let messageFirst: UnsafeMutablePointer<Int>
    private let messageCount: UnsafeMutablePointer<Int>
    private let messageSlot: UnsafeMutablePointer<Int>
    /// Receives ask for UDP_GRO.
    public let gro: Bool
    /// The raw socket's IPv4 sends carry a computed UDP checksum (`udp_checksum: true`); set only
    /// without a pool. Holds `local` as its 32-bit value for the pseudo-header.
    private let rawChecksumSource: UInt32?
    /// Pool sockets this worker stopped using GSO on (EIO); read by the control thread to log.
    public let gsoFallbacks = Atomic<Int>(0)
    static let maxSegments = 64
    /// A GSO send's payload stays under 64 KB with room for the IP and UDP headers.
    static let maxGSOBytes = 65535 - 40 - 8

    /// Opens this worker's receive socket (and, without a pool, its raw send socket). `batchSize`
    /// bounds a receive, `sendCapacity` a send list. With `pool`, sends go through the pool's UDP
    /// sockets (GSO when it is supported); with `gro`, the receive socket asks for UDP_GRO (and
    /// `gro` says whether the kernel took it).
    /// `rawChecksums`: without a pool, IPv4 sends from the raw socket get their UDP checksum
    /// computed (else zero; IPv6 always has it from the kernel).
    public init(
        local: Endpoint, batchSize: Int, sendCapacity: Int, pool: UDPSendPool? = nil, gro wantGRO: Bool = false,
        rawChecksums: Bool = false
    ) throws(SystemError) {
        family = local.address.family
        rawChecksumSource = pool == nil && rawChecksums && local.address.isV4 ? local.address.v4Value : nil
        capacity = batchSize
        self.sendCapacity = sendCapacity
        self.pool = pool
        let receive = try Self.openReceiveSocket(local: local)
        let send: FileDescriptor
        do {
            // A pool does the sending; the raw socket stays as the fallback when none could open.
            send = pool == nil ? try Self.openSendSocket(local: local.address) : FileDescriptor(rawValue: -1)
        } catch {
            receive.close()
            throw error
        }
        gro = wantGRO && (try? Self.setOption(receive.rawValue, vx_SOL_UDP, vx_UDP_GRO, 1, "UDP_GRO", "ask for UDP GRO")) != nil
        gsoAllowed = .allocate(capacity: max(pool?.count ?? 0, 1))
        gsoAllowed.initialize(repeating: pool?.gsoSupported ?? false, count: max(pool?.count ?? 0, 1))
        controlSpace = Int(vx_udp_control_space())
        receiveControl = .allocate(byteCount: controlSpace * batchSize, alignment: 8)
        sendControl = .allocate(byteCount: controlSpace * sendCapacity, alignment: 8)
        messageFirst = .allocate(capacity: sendCapacity)
        messageCount = .allocate(capacity: sendCapacity)
        messageSlot = .allocate(capacity: sendCapacity)
        receiveFD = receive
        sendFD = send
        receiveHeaders = .allocate(capacity: batchSize)
        receiveVectors = .allocate(capacity: batchSize)
        receiveNames = .allocate(capacity: batchSize)
        sendHeaders = .allocate(capacity: sendCapacity)
        // Two pieces per packet: its head and, for a TSO segment, its payload in the super-frame.
        sendVectors = .allocate(capacity: 2 * sendCapacity)
        sendNames = .allocate(capacity: sendCapacity)
        for i in 0..<batchSize {
            receiveHeaders[i] = vx_mmsghdr()
            receiveHeaders[i].msg_hdr.msg_iov = receiveVectors + i
            receiveHeaders[i].msg_hdr.msg_iovlen = 1
            receiveHeaders[i].msg_hdr.msg_name = UnsafeMutableRawPointer(receiveNames + i)
        }
        for i in 0..<sendCapacity {
            sendHeaders[i] = vx_mmsghdr()
            sendHeaders[i].msg_hdr.msg_iov = sendVectors + 2 * i
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
        gsoAllowed.deallocate()
        receiveControl.deallocate()
        sendControl.deallocate()
        messageFirst.deallocate()
        messageCount.deallocate()
        messageSlot.deallocate()
    }

    /// Closes this worker's sockets (not the shared pool: its owner closes that).
    public func close() {
        receiveFD.close()
        if sendFD.rawValue >= 0 { sendFD.close() }
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
            FileDescriptor(rawValue: fd).requestBuffer(bytes: 4 << 20, receive: true)
            try bindSocket(fd, to: local, context)
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
            if !local.isV4 {
                // Offset of the UDP checksum within what we hand the kernel.
                try setOption(fd, Int32(IPPROTO_IPV6), vx_IPV6_CHECKSUM, 6, "IPV6_CHECKSUM", context)
            }
            try obeyPathMTU(fd, v4: local.isV4, context)
            try? setOption(fd, SOL_SOCKET, SO_SNDBUFFORCE, 4 << 20, "SO_SNDBUFFORCE", context)
            try bindSocket(fd, to: Endpoint(address: local, port: 0), context)
        } catch {
            Glibc.close(fd)
            throw error
        }
        return FileDescriptor(rawValue: fd)
    }

    /// DF on every packet, and sends above the kernel's cached path MTU refused with EMSGSIZE (see
    /// the top of the file): the one place the send sockets' PMTU behaviour is chosen.
    static func obeyPathMTU(_ fd: Int32, v4: Bool, _ context: String) throws(SystemError) {
        if v4 {
            try setOption(fd, Int32(IPPROTO_IP), vx_IP_MTU_DISCOVER, vx_IP_PMTUDISC_DO, "IP_MTU_DISCOVER", context)
        } else {
            try setOption(fd, Int32(IPPROTO_IPV6), vx_IPV6_MTU_DISCOVER, vx_IPV6_PMTUDISC_DO, "IPV6_MTU_DISCOVER", context)
            try setOption(fd, Int32(IPPROTO_IPV6), vx_IPV6_DONTFRAG, 1, "IPV6_DONTFRAG", context)
        }
    }

    /// Binds `fd` to `local` (errors carry `context`, e.g. "listen on UDP 10.0.0.1:4789").
    static func bindSocket(_ fd: Int32, to local: Endpoint, _ context: String) throws(SystemError) {
        var storage = sockaddr_storage()
        let length = local.write(to: &storage)
        _ = try syscall("bind", context: context) {
            withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
        }
    }

    /// Datagrams the kernel dropped at this worker's receive socket before the worker could read
    /// them (receive buffer full, bad UDP checksum): SO_MEMINFO's drop count. nil if unreadable.
    /// Control thread: a getsockopt, never on the per-packet path.
    public func kernelDrops() -> UInt64? {
        var drops: UInt64 = 0
        let fd = receiveFD.rawValue
        guard (try? shimCall("getsockopt(SO_MEMINFO)") { vx_socket_drops(fd, &drops) }) != nil else { return nil }
        return drops
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
            if gro {
                receiveHeaders[i].msg_hdr.msg_control = receiveControl + i * controlSpace
                receiveHeaders[i].msg_hdr.msg_controllen = controlSpace
            }
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
            batch.segmentSizes[kept] = gro ? Int(vx_udp_gro_size(&receiveHeaders[i].msg_hdr)) : 0
            kept += 1
        }
        batch.count = kept
        return kept
    }

    public func send(_ packets: inout PacketList) {
        if let pool {
            var start = 0
            while start < packets.count { start = sendPooled(&packets, from: start, pool) }
            return
        }
        var start = 0
        while start < packets.count {
            var end = min(packets.count, start + sendCapacity)
            for i in start..<end {
                let k = i - start
                let packet = packets[i]
                // Flood copies share their bytes; a checksum covers the destination, so each copy
                // leaves in a send of its own.
                if rawChecksumSource != nil, i > start, packet.bytes == packets[i - 1].bytes {
                    end = i
                    break
                }
                if let source = rawChecksumSource {
                    let value = OuterChecksum.ipv4UDP(
                        source: source, destination: packet.destination.address.v4Value, head: packet.bytes,
                        headLength: packet.headLength, tail: packet.tail)
                    packet.bytes.storeBytes(of: value.bigEndian, toByteOffset: 6, as: UInt16.self)
                }
                sendHeaders[k].msg_hdr.msg_iovlen = pieces(of: packet, skipping: 0, into: sendVectors + 2 * k)
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

    /// Points `vectors` at `packet`'s bytes after its first `skip` (the UDP header, which a UDP
    /// socket writes itself): its head, then its tail when it has one. Returns the vectors used.
    @inline(__always)
    private func pieces(of packet: PacketRef, skipping skip: Int, into vectors: UnsafeMutablePointer<iovec>) -> Int {
        vectors[0] = iovec(iov_base: packet.bytes + skip, iov_len: packet.headLength - skip)
        guard let tail = packet.tail.base else { return 1 }
        vectors[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: tail), iov_len: packet.tail.length)
        return 2
    }

    /// Sends packets `start...` through the pool, as many as one set of message headers holds;
    /// returns the index of the first packet not handled.
    private func sendPooled(_ packets: inout PacketList, from start: Int, _ pool: UDPSendPool) -> Int {
        let count = packets.count
        var m = 0
        var i = start
        while i < count, m < sendCapacity, i - start < sendCapacity {
            let packet = packets[i]
            let port = UInt16(bigEndian: packet.bytes.loadUnaligned(as: UInt16.self))
            let slot = pool.slot(forPort: port)
            let size = packet.length - UDPHeader.size
            var j = i + 1
            if gsoAllowed[slot] {
                var total = size
                var last = size
                while j < count, j - i < Self.maxSegments, j - start < sendCapacity, last == size {
                    let next = packets[j]
                    let nextSize = next.length - UDPHeader.size
                    guard nextSize <= size, total + nextSize <= Self.maxGSOBytes, next.destination == packet.destination,
                        pool.slot(forPort: UInt16(bigEndian: next.bytes.loadUnaligned(as: UInt16.self))) == slot
                    else { break }
                    total += nextSize
                    last = nextSize
                    j += 1
                }
            }
            // Packets i..<j use at most 2 (j - i) vectors from 2 (i - start): no overlap with the next message's.
            let vectors = sendVectors + 2 * (i - start)
            var v = 0
            for k in i..<j { v += pieces(of: packets[k], skipping: UDPHeader.size, into: vectors + v) }
            sendHeaders[m].msg_hdr.msg_iov = vectors
            sendHeaders[m].msg_hdr.msg_iovlen = v
            sendHeaders[m].msg_hdr.msg_namelen = packet.destination.write(to: sendNames + m)
            vx_set_udp_segment(&sendHeaders[m].msg_hdr, sendControl + m * controlSpace, j - i > 1 ? UInt16(size) : 0)
            messageFirst[m] = i
            messageCount[m] = j - i
            messageSlot[m] = slot
            m += 1
            i = j
        }
        // One sendmmsg per run of messages through the same socket.
        var k = 0
        while k < m {
            let slot = messageSlot[k]
            var end = k + 1
            while end < m, messageSlot[end] == slot { end += 1 }
            while k < end {
                let sent = vx_sendmmsg(pool.fds[slot], sendHeaders + k, UInt32(end - k), 0)
                if sent > 0 {
                    k += Int(sent)
                    continue
                }
                let err = errno
                if err == EINTR { continue }
                if err == EIO, messageCount[k] > 1 {
                    // No checksum offload on the way out: this socket sends one datagram at a time
                    // from now on, starting again with this message.
                    gsoAllowed[slot] = false
                    gsoFallbacks.add(1, ordering: .relaxed)
                    return messageFirst[k]
                }
                let status: SendStatus = err == EMSGSIZE || (err == EINVAL && messageCount[k] > 1) ? .tooBig : .failed
                for p in messageFirst[k]..<(messageFirst[k] + messageCount[k]) { packets.statuses[p] = status }
                k += 1
            }
        }
        return i
    }
}
