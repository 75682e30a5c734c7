import VXWire

/// Frames a worker answers with itself — written back to the TAP queue it read the question from,
/// never sent into the tunnel: ARP replies and neighbour advertisements (suppression), ICMP "too
/// big" (PMTU signalling). Built in place in slots allocated once per worker; the forwarder fills
/// them during `encapsulate`, the worker writes them after the batch and empties the buffer.
///
///  1. the forwarder asks `next` for a slot (nil when full: it stops the batch there, the worker
///     flushes, and the batch goes on);
///  2. builds the frame at the slot (room for `frameCapacity` bytes) and `commit`s it with its
///     network;
///  3. the worker writes each slot to that network's device — behind a zeroed virtio header in
///     the slot's headroom when the device carries them — and calls `removeAll`.
///
/// Owned by one worker; the pointers live until `deallocate`.
public struct LocalReplies {
    /// The most bytes one reply can be: Ethernet, two VLAN tags and an IPv6 "packet too big"
    /// (1280 bytes, RFC 4443 §3.2), rounded up.
    public static let frameCapacity = 1344
    /// Room in front of each frame for a virtio header.
    public static let headroom = 16
    static let stride = headroom + frameCapacity

    public let capacity: Int
    let storage: UnsafeMutableRawPointer
    let lengths: UnsafeMutablePointer<Int>
    let networks: UnsafeMutablePointer<Int>
    let filled: UnsafeMutablePointer<Int>
    /// Two pieces (virtio header, frame) for a gathering write.
    let pieces: UnsafeMutablePointer<FramePiece>
    /// Rate limit of ICMP errors: the second of the current window and how many went in it.
    let errorWindow: UnsafeMutablePointer<(second: Int64, sent: Int)>
    let epoch: ContinuousClock.Instant
    /// ICMP errors (PMTU signalling) one worker sends per second at most, like the kernel's
    /// `icmp_msgs_per_sec` (1000 per host): the first one already tells a sender its path MTU;
    /// the limit keeps a sender that ignores them from turning every oversize frame into two.
    public static let errorsPerSecond = 100

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        storage = .allocate(byteCount: Self.stride * capacity, alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: Self.stride * capacity)
        lengths = .allocate(capacity: capacity)
        lengths.initialize(repeating: 0, count: capacity)
        networks = .allocate(capacity: capacity)
        networks.initialize(repeating: 0, count: capacity)
        filled = .allocate(capacity: 1)
        filled.initialize(to: 0)
        pieces = .allocate(capacity: 2)
        pieces.initialize(repeating: .empty, count: 2)
        errorWindow = .allocate(capacity: 1)
        errorWindow.initialize(to: (-1, 0))
        epoch = .now
    }

    /// Whether one more ICMP error may go this second (and takes it). Reads the clock: only for
    /// the rare frame that needs an error.
    public func takeErrorBudget() -> Bool {
        let second = epoch.duration(to: .now).components.seconds
        if errorWindow.pointee.second != second { errorWindow.pointee = (second, 0) }
        guard errorWindow.pointee.sent < Self.errorsPerSecond else { return false }
        errorWindow.pointee.sent += 1
        return true
    }

    func deallocate() {
        storage.deallocate()
        lengths.deallocate()
        networks.deallocate()
        filled.deallocate()
        pieces.deallocate()
        errorWindow.deallocate()
    }

    /// Replies waiting to be written.
    @inline(__always)
    public var count: Int { filled.pointee }

    /// Where the next reply is built, or nil when every slot is taken.
    @inline(__always)
    public func next() -> UnsafeMutableRawPointer? {
        let n = filled.pointee
        return n < capacity ? frame(n) : nil
    }

    /// Takes the slot `next` returned: a reply of `length` bytes for network `network`'s device.
    @inline(__always)
    public func commit(length: Int, network: Int) {
        let n = filled.pointee
        precondition(n < capacity && length <= Self.frameCapacity)
        lengths[n] = length
        networks[n] = network
        filled.pointee = n + 1
    }

    @inline(__always)
    public func frame(_ index: Int) -> UnsafeMutableRawPointer { storage + index * Self.stride + Self.headroom }

    @inline(__always)
    public func length(_ index: Int) -> Int { lengths[index] }

    @inline(__always)
    public func network(_ index: Int) -> Int { networks[index] }

    /// Reply `index` as pieces for a device with virtio headers: a zeroed header (no offload
    /// asked: every reply is complete, checksums included), then the frame.
    @inline(__always)
    public func piecesWithHeader(_ index: Int) -> UnsafeBufferPointer<FramePiece> {
        let frame = frame(index)
        let header = frame - VirtioNetHeader.size
        VirtioNetHeader().encode(to: header)
        pieces[0] = FramePiece(base: header, length: VirtioNetHeader.size)
        pieces[1] = FramePiece(base: frame, length: lengths[index])
        return UnsafeBufferPointer(start: pieces, count: 2)
    }

    @inline(__always)
    public func removeAll() { filled.pointee = 0 }
}
