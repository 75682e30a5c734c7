import Synchronization

/// A bounded single-producer/single-consumer ring: how side work (a learned MAC, later a capture
/// copy) leaves a worker without a lock. A full ring refuses the item and the producer counts it —
/// forwarding never waits on the consumer.
///
/// `push` is called only by the one producer thread and `pop` only by the one consumer thread.
/// Each index lives on its own cache line, and each side keeps a private copy of the other's
/// index so the common case touches no shared line.
public final class SPSCRing<Element: BitwiseCopyable>: @unchecked Sendable {
    public let capacity: Int
    private let mask: Int
    private let slots: UnsafeMutablePointer<Element>
    /// Next slot to read; written by the consumer.
    private let head: UnsafeMutablePointer<Atomic<Int>>
    /// Next slot to write; written by the producer.
    private let tail: UnsafeMutablePointer<Atomic<Int>>
    private let lines: UnsafeMutableRawPointer
    // Owned by the producer.
    private var cachedHead = 0
    // Owned by the consumer.
    private var cachedTail = 0

    public init(capacity requested: Int) {
        var size = 2
        while size < requested { size <<= 1 }
        capacity = size
        mask = size - 1
        slots = .allocate(capacity: size)
        lines = .allocate(byteCount: 256, alignment: 128)
        head = lines.bindMemory(to: Atomic<Int>.self, capacity: 1)
        head.initialize(to: Atomic(0))
        tail = (lines + 128).bindMemory(to: Atomic<Int>.self, capacity: 1)
        tail.initialize(to: Atomic(0))
    }

    deinit {
        slots.deallocate()
        lines.deallocate()
    }

    /// Producer side. Returns false, storing nothing, when the ring is full.
    @inline(__always)
    public func push(_ element: Element) -> Bool {
        let t = tail.pointee.load(ordering: .relaxed)
        if t - cachedHead == capacity {
            cachedHead = head.pointee.load(ordering: .acquiring)
            if t - cachedHead == capacity { return false }
        }
        slots[t & mask] = element
        tail.pointee.store(t + 1, ordering: .releasing)
        return true
    }

    /// Consumer side. Returns nil when the ring is empty.
    @inline(__always)
    public func pop() -> Element? {
        let h = head.pointee.load(ordering: .relaxed)
        if h == cachedTail {
            cachedTail = tail.pointee.load(ordering: .acquiring)
            if h == cachedTail { return nil }
        }
        let element = slots[h & mask]
        head.pointee.store(h + 1, ordering: .releasing)
        return element
    }

    /// Items waiting; exact only when both sides are idle.
    public var count: Int {
        tail.pointee.load(ordering: .acquiring) - head.pointee.load(ordering: .acquiring)
    }
}
