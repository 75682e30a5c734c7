import Foundation
import Testing

@testable import VXDatapath

@Suite("SPSCRing")
struct SPSCRingTests {
    @Test func firstInFirstOut() {
        let ring = SPSCRing<Int>(capacity: 8)
        #expect(ring.pop() == nil)
        for i in 0..<5 { #expect(ring.push(i)) }
        #expect(ring.count == 5)
        for i in 0..<5 { #expect(ring.pop() == i) }
        #expect(ring.pop() == nil)
        #expect(ring.count == 0)
    }

    @Test func fullRingRefusesAndKeepsWhatItHas() {
        let ring = SPSCRing<Int>(capacity: 4)
        for i in 0..<4 { #expect(ring.push(i)) }
        #expect(ring.push(99) == false)
        #expect(ring.push(100) == false)
        #expect(ring.count == 4)
        #expect(ring.pop() == 0)
        #expect(ring.push(4))  // one slot freed
        #expect(ring.push(5) == false)
        #expect((0..<4).map { _ in ring.pop() } == [1, 2, 3, 4])
        #expect(ring.pop() == nil)
    }

    @Test(
        "capacity rounds up to a power of two (at least 2)",
        arguments: [
            (0, 2), (1, 2), (2, 2), (3, 4), (4, 4), (5, 8), (1000, 1024), (4096, 4096), (4097, 8192),
        ])
    func capacityRoundsUp(requested: Int, actual: Int) {
        let ring = SPSCRing<UInt8>(capacity: requested)
        #expect(ring.capacity == actual)
        for i in 0..<actual { #expect(ring.push(UInt8(truncatingIfNeeded: i))) }
        #expect(ring.push(0) == false)
    }

    @Test func wrapsAroundManyTimes() {
        let ring = SPSCRing<Int>(capacity: 4)
        var next = 0
        var expected = 0
        for round in 0..<1000 {
            let burst = round % 5  // 0...4 items in, then all out
            for _ in 0..<burst {
                #expect(ring.push(next))
                next += 1
            }
            while let value = ring.pop() {
                #expect(value == expected)
                expected += 1
            }
        }
        #expect(expected == next)
    }

    @Test func carriesStructs() {
        struct Pair: BitwiseCopyable, Equatable {
            var a: UInt64
            var b: UInt16
        }
        let ring = SPSCRing<Pair>(capacity: 2)
        #expect(ring.push(Pair(a: .max, b: 7)))
        #expect(ring.pop() == Pair(a: .max, b: 7))
    }

    /// One producer thread, one consumer thread, a small ring so both sides keep meeting the
    /// full and empty edges: every value arrives, once, in order.
    @Test(.timeLimit(.minutes(1)))
    func producerAndConsumerThreads() async {
        let total = 1_000_000
        let ring = SPSCRing<Int>(capacity: 64)
        let producerRefusals = Counter()
        let result = Result()
        let done = DispatchSemaphore(value: 0)
        let producer = Thread {
            var i = 0
            while i < total {
                if ring.push(i) {
                    i += 1
                } else {
                    producerRefusals.value += 1
                    if producerRefusals.value & 0xFF == 0 { sched_yield() }
                }
            }
            done.signal()
        }
        let consumer = Thread {
            var expected = 0
            var outOfOrder = 0
            var spins = 0
            while expected < total {
                if let value = ring.pop() {
                    if value != expected { outOfOrder += 1 }
                    expected = value + 1
                    result.received += 1
                } else {
                    spins += 1
                    if spins & 0xFF == 0 { sched_yield() }
                }
            }
            result.outOfOrder = outOfOrder
            done.signal()
        }
        producer.start()
        consumer.start()
        await withCheckedContinuation { continuation in
            Thread {
                done.wait()
                done.wait()
                continuation.resume()
            }.start()
        }
        #expect(result.received == total)
        #expect(result.outOfOrder == 0)
        #expect(ring.pop() == nil)
        #expect(ring.count == 0)
    }

    /// Written by one thread, read by the test after both threads signalled.
    final class Result: @unchecked Sendable {
        var received = 0
        var outOfOrder = 0
    }

    final class Counter: @unchecked Sendable { var value = 0 }
}
