import Synchronization

/// A network's head-end replication list: the remote VTEPs that get a copy of every broadcast,
/// multicast and unknown-unicast frame (the kernel's all-zeros FDB entries).
///
/// Written by the control thread, read by workers through a sequence lock: the writer makes the
/// sequence odd, changes the members, makes it even; a reader copies the members and retries if
/// the sequence moved. A reader therefore always sends to one consistent list — never to a member
/// twice or to half of an update.
public final class FloodList: @unchecked Sendable {
    public let capacity: Int
    private let sequence: UnsafeMutablePointer<Atomic<UInt64>>
    private let length: UnsafeMutablePointer<Atomic<Int>>
    private let members: UnsafeMutablePointer<Atomic<UInt16>>
    /// The members as the control thread last set them.
    public private(set) var current: [RemoteIndex] = []

    /// Room for a 1,000-VTEP overlay with margin (cluster mode floods to every member of a VNI,
    /// as the kernel's all-zeros entries do). 256 refused 744 members per VNI in the 1,000-VTEP
    /// simulation; the cost is 8 KiB per network and the workers' send lists sized to match.
    public static let defaultCapacity = 4096

    public init(capacity: Int = FloodList.defaultCapacity) {
        self.capacity = capacity
        sequence = .allocate(capacity: 1)
        sequence.initialize(to: Atomic(0))
        length = .allocate(capacity: 1)
        length.initialize(to: Atomic(0))
        members = .allocate(capacity: capacity)
        for i in 0..<capacity { (members + i).initialize(to: Atomic(0)) }
    }

    deinit {
        sequence.deallocate()
        length.deallocate()
        members.deallocate()
    }

    /// Control thread: replaces the list. Returns false (changing nothing) past `capacity`.
    @discardableResult
    public func set(_ remotes: [RemoteIndex]) -> Bool {
        guard remotes.count <= capacity else { return false }
        let s = sequence.pointee.load(ordering: .relaxed)
        sequence.pointee.store(s + 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        for (i, remote) in remotes.enumerated() { members[i].store(remote.rawValue, ordering: .relaxed) }
        length.pointee.store(remotes.count, ordering: .relaxed)
        sequence.pointee.store(s + 2, ordering: .releasing)
        current = remotes
        return true
    }

    public var view: View { View(sequence: sequence, length: length, members: members, capacity: capacity) }

    public struct View: BitwiseCopyable {
        let sequence: UnsafeMutablePointer<Atomic<UInt64>>
        let length: UnsafeMutablePointer<Atomic<Int>>
        let members: UnsafeMutablePointer<Atomic<UInt16>>
        public let capacity: Int

        /// Copies a consistent snapshot into `buffer` (room for `capacity`); returns how many.
        @inline(__always)
        public func snapshot(into buffer: UnsafeMutablePointer<RemoteIndex>) -> Int {
            while true {
                let before = sequence.pointee.load(ordering: .acquiring)
                if before & 1 != 0 { continue }
                let n = min(length.pointee.load(ordering: .relaxed), capacity)
                for i in 0..<n { buffer[i] = RemoteIndex(rawValue: members[i].load(ordering: .relaxed)) }
                atomicMemoryFence(ordering: .acquiring)
                if sequence.pointee.load(ordering: .relaxed) == before { return n }
            }
        }
    }
}
