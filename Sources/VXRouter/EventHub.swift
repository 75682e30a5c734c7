// FDB events (learn, move, age-out, FDB full) from the control thread to Server-Sent Events
// subscribers.
//
//  1. the control thread formats an event once and offers it to every subscriber;
//  2. each subscriber holds a bounded buffer: a full buffer drops the event and counts it, so a
//     slow client never blocks the control thread (nor grows its memory);
//  3. the subscriber's event loop drains the buffer into its connection while the connection is
//     writable, and again when it becomes writable; lost events are announced to the client.
import NIOCore
import NIOHTTP1
import Synchronization

/// The events the stream carries (the SSE `event:` field).
enum EventKind: String, Sendable, Encodable { case learn, move, ageOut = "age_out", fdbFull = "fdb_full" }

final class EventHub: Sendable {
    static let bufferCapacity = 1024

    private let subscribers = Mutex<[ObjectIdentifier: EventSubscriber]>([:])
    private let sequence = Atomic<UInt64>(0)
    /// Events not delivered to some subscriber because its buffer was full.
    let dropped = Atomic<UInt64>(0)
    let published = Atomic<UInt64>(0)

    var subscriberCount: Int { subscribers.withLock { $0.count } }

    func subscribe(_ subscriber: EventSubscriber) {
        subscribers.withLock { $0[ObjectIdentifier(subscriber)] = subscriber }
    }

    func unsubscribe(_ subscriber: EventSubscriber) {
        _ = subscribers.withLock { $0.removeValue(forKey: ObjectIdentifier(subscriber)) }
    }

    /// Control thread: formats `event` as one SSE message and offers it to every subscriber.
    func publish(_ kind: EventKind, json: String) {
        let id = sequence.add(1, ordering: .relaxed).newValue
        published.add(1, ordering: .relaxed)
        let current = subscribers.withLock { Array($0.values) }
        guard !current.isEmpty else { return }
        let message = "id: \(id)\nevent: \(kind.rawValue)\ndata: \(json)\n\n"
        for subscriber in current where !subscriber.offer(message) {
            dropped.add(1, ordering: .relaxed)
        }
    }
}

/// One SSE client: its bounded buffer and its connection.
final class EventSubscriber: Sendable {
    private struct State {
        var buffer: [String] = []
        var lost = 0
        var drainScheduled = false
        var closed = false
    }

    let channel: any Channel
    private let state = Mutex(State())

    init(channel: any Channel) { self.channel = channel }

    /// Any thread: queues `message`; false when the buffer is full (the event is lost).
    func offer(_ message: String) -> Bool {
        var schedule = false
        let accepted = state.withLock { state -> Bool in
            if state.closed { return true }
            guard state.buffer.count < EventHub.bufferCapacity else {
                state.lost += 1
                return false
            }
            state.buffer.append(message)
            if !state.drainScheduled {
                state.drainScheduled = true
                schedule = true
            }
            return true
        }
        if schedule { channel.eventLoop.execute { self.drain() } }
        return accepted
    }

    func close() { state.withLock { $0.closed = true } }

    /// Event loop: writes what is buffered, unless the connection cannot take more right now
    /// (then `channelWritabilityChanged` calls this again).
    func drain() {
        guard channel.isWritable else {
            state.withLock { $0.drainScheduled = false }
            return
        }
        let (messages, lost) = state.withLock { state in
            let taken = (state.buffer, state.lost)
            state.buffer.removeAll(keepingCapacity: true)
            state.lost = 0
            state.drainScheduled = false
            return taken
        }
        guard !messages.isEmpty || lost > 0 else { return }
        var buffer = channel.allocator.buffer(capacity: messages.reduce(64) { $0 + $1.utf8.count })
        if lost > 0 { buffer.writeString("event: lost\ndata: {\"count\":\(lost)}\n\n") }
        for message in messages { buffer.writeString(message) }
        channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: nil)
    }
}
