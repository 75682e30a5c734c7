import Synchronization

/// The remote VTEPs a network knows — its flood list and the remotes of its static entries (and,
/// with the cluster, its members) — as a bitmap over `RemoteIndex`, for `allow_from: known`:
/// a packet from any other VTEP is refused (`not_allowed`) before it can teach the FDB anything.
///
/// Written only by the control thread (`set`), read by the workers without locks: one relaxed
/// atomic word per 64 remotes. A reader racing a change sees the old or the new membership of each
/// remote, never anything else.
public final class KnownVTEPs: @unchecked Sendable {
    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    private let wordCount: Int

    public init(capacity: Int = RemoteIndex.limit) {
        wordCount = (capacity + 63) / 64
        words = .allocate(capacity: wordCount)
        for i in 0..<wordCount { (words + i).initialize(to: Atomic(0)) }
    }

    deinit {
        words.deinitialize(count: wordCount)
        words.deallocate()
    }

    /// Control thread: makes `members` exactly the known remotes (indices past the capacity are ignored).
    public func set(_ members: some Sequence<RemoteIndex>) {
        var wanted = [UInt64](repeating: 0, count: wordCount)
        for member in members {
            let i = Int(member.rawValue)
            guard i / 64 < wordCount else { continue }
            wanted[i / 64] |= 1 << UInt64(i % 64)
        }
        for i in 0..<wordCount where words[i].load(ordering: .relaxed) != wanted[i] {
            words[i].store(wanted[i], ordering: .relaxed)
        }
    }

    public func contains(_ remote: RemoteIndex) -> Bool { view.contains(remote) }

    public var view: View { View(words: words, wordCount: wordCount) }

    public struct View: BitwiseCopyable {
        let words: UnsafeMutablePointer<Atomic<UInt64>>
        let wordCount: Int

        @inline(__always)
        public func contains(_ remote: RemoteIndex) -> Bool {
            let i = Int(remote.rawValue)
            guard i / 64 < wordCount else { return false }
            return words[i / 64].load(ordering: .relaxed) & (1 << UInt64(i % 64)) != 0
        }
    }
}
