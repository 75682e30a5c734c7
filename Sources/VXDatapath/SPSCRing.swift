import Synchronization

/// A bounded single-producer/single-consumer ring: how side work (a learned MAC, later a capture
/// copy) leaves a worker without a lock. A full ring refuses the item and the producer counts it —
/// forwarding never waits on the consumer.
///
/// `push` is called only by the one producer thread and `pop` only by the one consumer thread.
/// Each index lives on its own cache line, and each side keeps a private copy of the other's
/// index so the common case touches no shared line.
public final class SPSCRing<Element: BitwiseCopyable>: @unchecked Sendable {
    private let indices: SPSCIndices
    private let slots: UnsafeMutablePointer<Element>

    public init(capacity requested: Int) {
        indices = SPSCIndices(capacity: requested)
        slots = .allocate(capacity: indices.capacity)
    }

    deinit { slots.deallocate() }

    public var capacity: Int { indices.capacity }

    /// Producer side. Returns false, storing nothing, when the ring is full.
    @inline(__always)
    public func push(_ element: Element) -> Bool {
        guard let slot = indices.reserve() else { return false }
        slots[slot] = element
        indices.commit()
        return true
    }

    /// Consumer side. Returns nil when the ring is empty.
    @inline(__always)
    public func pop() -> Element? {
        guard let slot = indices.front() else { return nil }
        let element = slots[slot]
        indices.release()
        return element
    }

    /// Items waiting; exact only when both sides are idle.
    public var count: Int { indices.count }
}

/// The two indices of a single-producer/single-consumer ring of `capacity` slots (a power of two),
/// for rings that keep their slots their own way (`SPSCRing`: elements; `CaptureRing`: byte
/// slots). Each index lives on its own cache line together with its side's private copy of the
/// other index, so the common case touches no line the other side writes. Noncopyable: the lines
/// live exactly as long as the ring.
struct SPSCIndices: ~Copyable {
    let capacity: Int
    private let mask: Int
    private let lines: UnsafeMutableRawPointer
    /// Next slot to read; written by the consumer. Its line also holds `cachedTail`.
    private let head: UnsafeMutablePointer<Atomic<Int>>
    /// Next slot to write; written by the producer. Its line also holds `cachedHead`.
    private let tail: UnsafeMutablePointer<Atomic<Int>>
    /// The producer's last look at `head`.
    private let cachedHead: UnsafeMutablePointer<Int>
    /// The consumer's last look at `tail`.
    private let cachedTail: UnsafeMutablePointer<Int>

    /// `requested` rounded up to a power of two (at least 2).
    init(capacity requested: Int) {
        var size = 2
        while size < requested { size <<= 1 }
        capacity = size
        mask = size - 1
        lines = .allocate(byteCount: 256, alignment: 128)
        head = lines.bindMemory(to: Atomic<Int>.self, capacity: 1)
        head.initialize(to: Atomic(0))
        tail = (lines + 128).bindMemory(to: Atomic<Int>.self, capacity: 1)
        tail.initialize(to: Atomic(0))
        cachedTail = (lines + 64).bindMemory(to: Int.self, capacity: 1)
        cachedTail.initialize(to: 0)
        cachedHead = (lines + 192).bindMemory(to: Int.self, capacity: 1)
        cachedHead.initialize(to: 0)
    }

    deinit { lines.deallocate() }

    /// Producer side: the slot to fill next, nil when the ring is full. Fill it, then `commit`.
    @inline(__always)
    func reserve() -> Int? {
        let t = tail.pointee.load(ordering: .relaxed)
        if t - cachedHead.pointee == capacity {
            cachedHead.pointee = head.pointee.load(ordering: .acquiring)
            if t - cachedHead.pointee == capacity { return nil }
        }
        return t & mask
    }

    /// Producer side: hands the slot `reserve` returned to the consumer.
    @inline(__always)
    func commit() {
        tail.pointee.store(tail.pointee.load(ordering: .relaxed) + 1, ordering: .releasing)
    }

    /// Consumer side: the oldest filled slot, nil when the ring is empty. Read it, then `release`.
    @inline(__always)
    func front() -> Int? {
        let h = head.pointee.load(ordering: .relaxed)
        if h == cachedTail.pointee {
            cachedTail.pointee = tail.pointee.load(ordering: .acquiring)
            if h == cachedTail.pointee { return nil }
        }
        return h & mask
    }

    /// Consumer side: frees the slot `front` returned.
    @inline(__always)
    func release() {
        head.pointee.store(head.pointee.load(ordering: .relaxed) + 1, ordering: .releasing)
    }

    /// Slots filled; exact only when both sides are idle.
    var count: Int {
        tail.pointee.load(ordering: .acquiring) - head.pointee.load(ordering: .acquiring)
    }
}
