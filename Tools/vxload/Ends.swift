// The ends a run drives, one object per thread (each with its own socket or TAP queue):
//
//   iface:NAME  AF_PACKET socket bound to NAME; sendmmsg / recvmmsg of whole frames.
//   tap:NAME    a queue of TAP NAME; read() / write() per frame (a TAP has no batch call).
//   vxlan:H:P   UDP; sendmmsg of VXLAN header + frame to H:P / recvmmsg on H:P, header checked.
//
// Frames live in a FrameBatch, allocated once per thread with 8 bytes of headroom per slot, so
// the VXLAN header is written (or received) right in front of the frame and nothing is copied.
import CVXLinux
import Glibc
import VXLoadPlatform
import VXPlatform
import VXWire

/// One thread's frame buffers: `capacity` slots of `frameCapacity` bytes behind
/// `VXLANHeader.size` bytes of headroom, zeroed once. Owned by one thread.
final class FrameBatch {
    static let headroom = VXLANHeader.size
    let capacity: Int
    let frameCapacity: Int
    let stride: Int
    private let storage: UnsafeMutableRawPointer
    /// Bytes of frame in each slot; 0 marks a slot to skip (not ours, malformed).
    let lengths: UnsafeMutablePointer<Int>
    /// The VNI each frame is sent with (vxlan: ends), or arrived with.
    let vnis: UnsafeMutablePointer<UInt32>

    init(capacity: Int, frameCapacity: Int) {
        self.capacity = capacity
        self.frameCapacity = frameCapacity
        stride = (FrameBatch.headroom + frameCapacity + 63) & ~63
        storage = .allocate(byteCount: stride * capacity, alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: stride * capacity)
        lengths = .allocate(capacity: capacity)
        lengths.initialize(repeating: 0, count: capacity)
        vnis = .allocate(capacity: capacity)
        vnis.initialize(repeating: 0, count: capacity)
    }

    deinit {
        storage.deallocate()
        lengths.deallocate()
        vnis.deallocate()
    }

    /// The start of slot `i`'s frame (the VXLAN header, if any, is the 8 bytes before it).
    @inline(__always)
    func frame(_ i: Int) -> UnsafeMutableRawPointer { storage + i * stride + FrameBatch.headroom }
}

// MARK: - Sending

protocol TransmitEnd: AnyObject {
    /// The largest frame this end carries (its MTU plus the Ethernet header).
    var largestFrame: Int { get }
    /// Times the kernel pushed back (a full queue) and the send was retried after a pause.
    var retries: UInt64 { get }
    /// Sends frames `start ..< start + count` of `batch` (lengths and VNIs set); returns how many
    /// went, at least one. Waits and retries while the kernel pushes back; throws what it cannot
    /// get past (the interface went away, nothing listens on the port).
    func send(_ batch: FrameBatch, from start: Int, count: Int) throws(LoadError) -> Int
    /// Throws if the far side has said no since the last call (a UDP port nobody listens on).
    /// Called every ~100 ms and once at the end.
    func checkHealth() throws(LoadError)
    func close()
}

extension TransmitEnd {
    func checkHealth() throws(LoadError) {}
}

/// A pause after the kernel said "no room" (ENOBUFS, EAGAIN): long enough for a queue to drain
/// a little, short enough not to matter at a rate a queue can take.
private func backOff() { usleep(50) }

/// One sendmmsg of messages `start ..< start + count`, repeated after a pause while the kernel
/// pushes back (a full queue: ENOBUFS, EAGAIN); any other error is the end's to describe.
private func sendPushingBack(
    _ messages: MessageVector, on fd: FileDescriptor, from start: Int, count: Int, retries: inout UInt64,
    describe: (SystemError) -> String
) throws(LoadError) -> Int {
    while true {
        do {
            if let sent = try messages.send(on: fd, from: start, count: count) { return sent }
        } catch {
            guard error.errno == ENOBUFS || error.errno == EAGAIN else { throw LoadError(describe(error)) }
        }
        retries += 1
        backOff()
    }
}

final class PacketTransmitter: TransmitEnd {
    let name: String
    let fd: FileDescriptor
    let largestFrame: Int
    private(set) var retries: UInt64 = 0
    private let messages: MessageVector

    init(interface name: String, capacity: Int) throws(SystemError) {
        self.name = name
        fd = try PacketSocket.open(interface: name, receive: false, nonblocking: false)
        fd.requestBuffer(bytes: 4 << 20, receive: false)
        var mtu: Int32 = 1500
        _ = vx_if_get_mtu(name, &mtu)
        largestFrame = Int(mtu) + EthernetFrame.headerSize
        messages = MessageVector(capacity: capacity)
    }

    func send(_ batch: FrameBatch, from start: Int, count: Int) throws(LoadError) -> Int {
        for i in start..<(start + count) { messages.setBuffer(i, base: batch.frame(i), length: batch.lengths[i]) }
        return try sendPushingBack(messages, on: fd, from: start, count: count, retries: &retries) { error in
            describeSendError(error, end: "iface:\(name)", length: batch.lengths[start])
        }
    }

    func close() { fd.close() }
}

final class UDPTransmitter: TransmitEnd {
    let remote: Endpoint
    let fd: FileDescriptor
    let largestFrame: Int
    private(set) var retries: UInt64 = 0
    private let messages: MessageVector

    init(to remote: Endpoint, capacity: Int) throws(SystemError) {
        self.remote = remote
        fd = try DatagramSocket.openConnected(to: remote)
        do {
            try DatagramSocket.enableErrorQueue(fd, ipv6: !remote.address.isV4)
        } catch {
            fd.close()
            throw error
        }
        fd.requestBuffer(bytes: 4 << 20, receive: false)
        let pathMTU = DatagramSocket.pathMTU(fd) ?? 1500
        // The inner frame is what is left of the path MTU after IP, UDP and VXLAN headers.
        largestFrame = pathMTU - VXLANHeader.overhead(for: remote.address.family) + EthernetFrame.headerSize
        messages = MessageVector(capacity: capacity)
    }

    func send(_ batch: FrameBatch, from start: Int, count: Int) throws(LoadError) -> Int {
        for i in start..<(start + count) {
            let header = batch.frame(i) - VXLANHeader.size
            VXLANHeader.encode(vni: VNI(unchecked: batch.vnis[i]), to: header)
            messages.setBuffer(i, base: header, length: VXLANHeader.size + batch.lengths[i])
        }
        return try sendPushingBack(messages, on: fd, from: start, count: count, retries: &retries) { error in
            describeSendError(error, end: "vxlan:\(remote)", length: batch.lengths[start])
        }
    }

    /// sendmmsg reports an ICMP error only when it hits the first message of a call, and then
    /// drops it; the error queue keeps every one.
    func checkHealth() throws(LoadError) {
        guard let err = DatagramSocket.takeQueuedError(fd) else { return }
        throw LoadError(describeSendError(SystemError(call: "sendmmsg", errno: err), end: "vxlan:\(remote)", length: 0))
    }

    func close() { fd.close() }
}

final class TapTransmitter: TransmitEnd {
    let name: String
    let queue: TapQueue
    let largestFrame: Int
    private(set) var retries: UInt64 = 0

    init(name: String, queue: TapQueue) {
        self.name = name
        self.queue = queue
        var mtu: Int32 = 1500
        _ = vx_if_get_mtu(name, &mtu)
        largestFrame = Int(mtu) + EthernetFrame.headerSize
    }

    func send(_ batch: FrameBatch, from start: Int, count: Int) throws(LoadError) -> Int {
        for i in start..<(start + count) {
            while true {
                let r = Glibc.write(queue.fd.rawValue, batch.frame(i), batch.lengths[i])
                if r >= 0 { break }
                let err = errno
                if err == EINTR { continue }
                if err == EAGAIN || err == ENOBUFS {
                    retries += 1
                    backOff()
                    continue
                }
                if i > start { return i - start }
                let reason = err == EIO ? " (is the TAP up?)" : ""
                throw LoadError("tap:\(name): write: \(String(cString: strerror(err)))\(reason)")
            }
        }
        return count
    }

    func close() {}  // the TapInterface owns the queues
}

private func describeSendError(_ error: SystemError, end: String, length: Int) -> String {
    switch error.errno {
    case ECONNREFUSED:
        return "\(end): nothing listens on that UDP port (the host answered port unreachable)"
    case EHOSTUNREACH, ENETUNREACH:
        return "\(end): the host cannot be reached (\(String(cString: strerror(error.errno))))"
    case EMSGSIZE:
        return "\(end): a \(length)-byte frame is more than it carries"
    case ENETDOWN:
        return "\(end): the interface is down"
    case ENXIO, ENODEV:
        return "\(end): the interface went away"
    default:
        return "\(end): \(error)"
    }
}

// MARK: - Receiving

protocol ReceiveEnd: AnyObject {
    /// The end as given (`iface:vx42`), for messages.
    var label: String { get }
    /// Polled for readability.
    var fd: FileDescriptor { get }
    /// Reads what is queued, up to a batch, without waiting: frames at `batch.frame(i)`,
    /// `lengths[i]` 0 for a slot to skip. Returns the slots used (0: nothing queued).
    func receive(into batch: FrameBatch) throws(LoadError) -> Int
    /// Frames the kernel dropped because this end's queue was full (packet sockets only).
    func kernelDrops() -> UInt64
    func close()
}

final class PacketReceiver: ReceiveEnd {
    let name: String
    var label: String { "iface:\(name)" }
    let fd: FileDescriptor
    private let messages: MessageVector
    private var drops: UInt64 = 0

    init(interface name: String, batch: FrameBatch, fanoutGroup: UInt16?) throws(SystemError) {
        self.name = name
        fd = try PacketSocket.open(interface: name, receive: true, nonblocking: true)
        do {
            fd.requestBuffer(bytes: 32 << 20, receive: true)
            if let fanoutGroup { try PacketSocket.joinFanout(fd, group: fanoutGroup) }
        } catch {
            fd.close()
            throw error
        }
        messages = MessageVector(capacity: batch.capacity)
        for i in 0..<batch.capacity { messages.setBuffer(i, base: batch.frame(i), length: batch.frameCapacity) }
        _ = PacketSocket.drops(fd)  // start from zero: frames queued before the run are not ours
    }

    func receive(into batch: FrameBatch) throws(LoadError) -> Int {
        let n: Int
        do {
            guard let received = try messages.receive(on: fd, count: batch.capacity) else { return 0 }
            n = received
        } catch {
            throw LoadError("iface:\(name): \(error.errno == ENETDOWN ? "the interface went down" : "\(error)")")
        }
        for i in 0..<n { batch.lengths[i] = messages.receivedLength(i) }
        return n
    }

    func kernelDrops() -> UInt64 {
        drops += PacketSocket.drops(fd)
        return drops
    }

    func close() { fd.close() }
}

final class UDPReceiver: ReceiveEnd {
    let local: Endpoint
    var label: String { "vxlan:\(local)" }
    let fd: FileDescriptor
    private let messages: MessageVector
    /// Datagrams that were not VXLAN (too short, I flag clear).
    private(set) var malformed: UInt64 = 0

    init(local: Endpoint, batch: FrameBatch, sharedPort: Bool) throws(SystemError) {
        self.local = local
        fd = try DatagramSocket.openReceiver(local: local, sharedPort: sharedPort)
        fd.requestBuffer(bytes: 32 << 20, receive: true)
        messages = MessageVector(capacity: batch.capacity)
        for i in 0..<batch.capacity {
            messages.setBuffer(i, base: batch.frame(i) - VXLANHeader.size, length: VXLANHeader.size + batch.frameCapacity)
        }
    }

    func receive(into batch: FrameBatch) throws(LoadError) -> Int {
        let n: Int
        do {
            guard let received = try messages.receive(on: fd, count: batch.capacity) else { return 0 }
            n = received
        } catch {
            throw LoadError("vxlan:\(local): \(error)")
        }
        for i in 0..<n {
            let length = messages.receivedLength(i) - VXLANHeader.size
            let header = UnsafeRawBufferPointer(start: batch.frame(i) - VXLANHeader.size, count: VXLANHeader.size)
            if length >= EthernetFrame.headerSize, case .success(let vni) = VXLANHeader.decode(header) {
                batch.lengths[i] = length
                batch.vnis[i] = vni.rawValue
            } else {
                batch.lengths[i] = 0
                malformed += 1
            }
        }
        return n
    }

    func kernelDrops() -> UInt64 { 0 }
    func close() { fd.close() }
}

final class TapReceiver: ReceiveEnd {
    let name: String
    var label: String { "tap:\(name)" }
    var queue: TapQueue
    var fd: FileDescriptor { queue.fd }

    init(name: String, queue: TapQueue) {
        self.name = name
        self.queue = queue
    }

    func receive(into batch: FrameBatch) throws(LoadError) -> Int {
        var n = 0
        while n < batch.capacity {
            let r = Glibc.read(queue.fd.rawValue, batch.frame(n), batch.frameCapacity)
            if r < 0 {
                let err = errno
                if err == EINTR { continue }
                if err == EAGAIN { break }
                throw LoadError("tap:\(name): read: \(String(cString: strerror(err)))")
            }
            batch.lengths[n] = r
            n += 1
        }
        return n
    }

    func kernelDrops() -> UInt64 { 0 }
    func close() {}  // the TapInterface owns the queues
}

// MARK: - Opening

/// Everything one side of a run opened, to close at the end.
final class OpenedEnds {
    var transmitters: [TransmitEnd] = []
    var receivers: [ReceiveEnd] = []
    var taps: [TapInterface] = []

    func close() {
        for t in transmitters { t.close() }
        for r in receivers { r.close() }
        for tap in taps { tap.close() }
        transmitters.removeAll()
        receivers.removeAll()
        taps.removeAll()
    }
}

enum EndOpener {
    /// `count` sending ends for `spec`, opened inside `namespace` (nil: this one).
    static func transmitters(
        _ spec: EndSpec, count: Int, batchCapacity: Int, namespace: String?, into opened: OpenedEnds
    ) throws -> [TransmitEnd] {
        try inNamespace(namespace, spec) {
            var ends: [TransmitEnd] = []
            switch spec {
            case .interface(let name):
                for _ in 0..<count { ends.append(try PacketTransmitter(interface: name, capacity: batchCapacity)) }
            case .vxlan(let remote):
                guard !remote.address.isUnspecified else {
                    throw LoadError("end \(spec): a sending vxlan end needs the VTEP's address (vxlan:HOST:PORT)")
                }
                for _ in 0..<count { ends.append(try UDPTransmitter(to: remote, capacity: batchCapacity)) }
            case .tap(let name):
                let tap = try openTap(name, queues: count)
                opened.taps.append(tap)
                ends = tap.queues.map { TapTransmitter(name: name, queue: $0) }
            }
            opened.transmitters += ends
            return ends
        }
    }

    /// `count` receiving ends for `spec`, each with its batch, opened inside `namespace`.
    static func receivers(
        _ spec: EndSpec, batches: [FrameBatch], namespace: String?, into opened: OpenedEnds
    ) throws -> [ReceiveEnd] {
        try inNamespace(namespace, spec) {
            var ends: [ReceiveEnd] = []
            switch spec {
            case .interface(let name):
                // A fanout group id unique to this process, so two sinks never share frames.
                let group: UInt16? = batches.count > 1 ? UInt16(truncatingIfNeeded: getpid()) : nil
                for batch in batches {
                    let end = try PacketReceiver(interface: name, batch: batch, fanoutGroup: group)
                    ends.append(end)
                    opened.receivers.append(end)
                }
            case .vxlan(let local):
                // Nobody else may hold the port: a kernel vxlan device on it would take the packets.
                try DatagramSocket.claim(local)
                for batch in batches {
                    let end = try UDPReceiver(local: local, batch: batch, sharedPort: batches.count > 1)
                    ends.append(end)
                    opened.receivers.append(end)
                }
            case .tap(let name):
                let tap = try openTap(name, queues: batches.count)
                opened.taps.append(tap)
                ends = tap.queues.map { TapReceiver(name: name, queue: $0) }
                opened.receivers += ends
            }
            return ends
        }
    }

    private static func openTap(_ name: String, queues: Int) throws -> TapInterface {
        let tap = try TapInterface(name: name, queueCount: queues)
        if tap.createdHere {
            do { try tap.setUp() } catch {
                tap.close()
                throw error
            }
        }
        return tap
    }

    /// Runs `body` in `namespace`, turning platform errors into one line naming the end.
    private static func inNamespace<T>(_ namespace: String?, _ spec: EndSpec, _ body: () throws -> T) throws -> T {
        if let namespace, namespace.contains("/") || access("\(NetworkNamespace.directory)/\(namespace)", F_OK) != 0 {
            throw LoadError("no network namespace \(namespace) (see `ip netns list`)")
        }
        do {
            return try NetworkNamespace.run(in: namespace, body)
        } catch let error as LoadError {
            throw error
        } catch let error as SystemError {
            let place = namespace.map { " in network namespace \($0)" } ?? ""
            if error.errno == ENODEV, case .interface(let name) = spec {
                throw LoadError("end \(spec): no interface \(name)\(place)")
            }
            if error.errno == EPERM || error.errno == EACCES {
                throw LoadError("end \(spec)\(place): \(error) (vxload needs root, or CAP_NET_RAW and CAP_NET_ADMIN)")
            }
            throw LoadError("end \(spec)\(place): \(error)")
        }
    }
}
