// One Server-Sent Events client of `GET /v1/events`: the router's event hub offers it formatted
// events (`EventSink`), its event loop writes them while the connection can take them.
import NIOCore
import NIOHTTP1
import Synchronization
import VXRouter

/// One SSE client: its bounded buffer and its connection.
final class EventSubscriber: EventSink {
    /// Events a subscriber holds before it loses the next ones.
    static let bufferCapacity = 1024

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
            guard state.buffer.count < Self.bufferCapacity else {
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
