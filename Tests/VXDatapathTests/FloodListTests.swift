import Foundation
import Synchronization
import Testing

@testable import VXDatapath

@Suite("FloodList")
struct FloodListTests {
    func snapshot(_ list: FloodList) -> [UInt16] {
        let buffer = UnsafeMutablePointer<RemoteIndex>.allocate(capacity: list.capacity)
        defer { buffer.deallocate() }
        let n = list.view.snapshot(into: buffer)
        return (0..<n).map { buffer[$0].rawValue }
    }

    func indexes(_ raw: [UInt16]) -> [RemoteIndex] { raw.map(RemoteIndex.init(rawValue:)) }

    @Test func startsEmpty() {
        let list = FloodList(capacity: 4)
        #expect(snapshot(list) == [])
        #expect(list.current == [])
        #expect(list.view.capacity == 4)
    }

    @Test func setThenSnapshot() {
        let list = FloodList(capacity: 8)
        #expect(list.set(indexes([3, 1, 4])))
        #expect(snapshot(list) == [3, 1, 4])
        #expect(list.current == indexes([3, 1, 4]))
    }

    @Test func replaceWithShorterAndLongerLists() {
        let list = FloodList(capacity: 8)
        list.set(indexes([1, 2, 3, 4, 5]))
        list.set(indexes([9]))
        #expect(snapshot(list) == [9], "no stale members after a shrink")
        list.set(indexes([7, 6, 5, 4, 3, 2, 1, 0]))
        #expect(snapshot(list) == [7, 6, 5, 4, 3, 2, 1, 0])
        list.set([])
        #expect(snapshot(list) == [])
        #expect(list.current == [])
    }

    @Test func overCapacityChangesNothing() {
        let list = FloodList(capacity: 2)
        list.set(indexes([1, 2]))
        #expect(list.set(indexes([5, 6, 7])) == false)
        #expect(snapshot(list) == [1, 2])
        #expect(list.current == indexes([1, 2]))
    }

    /// A reader racing the writer only ever sees one of the lists the writer set, whole.
    @Test(.timeLimit(.minutes(1)))
    func readersSeeWholeLists() async {
        let list = FloodList(capacity: 16)
        let lists: [[UInt16]] = [[1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [2, 2, 2], [3, 3, 3, 3, 3, 3, 3], []]
        list.set(indexes(lists[0]))
        let stop = Flag()
        let torn = TornCount()
        let reader = Thread {
            let buffer = UnsafeMutablePointer<RemoteIndex>.allocate(capacity: 16)
            defer { buffer.deallocate() }
            var reads = 0
            while !stop.isSet || reads < 1000 {
                let n = list.view.snapshot(into: buffer)
                let seen = (0..<n).map { buffer[$0].rawValue }
                if !lists.contains(seen) { torn.value += 1 }
                reads += 1
            }
            torn.done.signal()
        }
        reader.start()
        for i in 0..<200_000 { list.set(indexes(lists[i % lists.count])) }
        stop.set()
        await withCheckedContinuation { continuation in
            Thread {
                torn.done.wait()
                continuation.resume()
            }.start()
        }
        #expect(torn.value == 0)
    }

    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        var isSet: Bool { value.load(ordering: .acquiring) }
        func set() { value.store(true, ordering: .releasing) }
    }

    final class TornCount: @unchecked Sendable {
        var value = 0
        let done = DispatchSemaphore(value: 0)
    }
}
