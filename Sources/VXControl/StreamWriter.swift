// The one writer behind both streaming responses — `GET /v1/events` (Server-Sent Events) and
// `GET /v1/capture/stream` (pcap): producers on other threads (the control thread's event hub,
// the capture writer) queue chunks; the connection's event loop writes them while the
// connection can take them, and again when it becomes writable.
//
//  - bounded: a chunk that finds no room waits at most `patience` (the capture writer's 200 ms,
//    so a briefly slow client costs ring copies, not records) or is refused at once (events),
//    and is counted as lost — a producer never waits on a client for longer, nor grows memory;
//  - the events stream tells its client how many it lost (`event: lost`) before the next ones;
//  - `finish()` ends the response once what is queued is written (a capture that ended).
import NIOCore
import NIOHTTP1
import Synchronization
import VXCapture
import VXRouter

#if canImport(Glibc)
    import Glibc
#endif

final class StreamWriter: Sendable {
    private struct State {
        var pending: [[UInt8]] = []
        var pendingBytes = 0
        var lost = 0
        /// The response head is written: chunks may follow.
        var ready: Bool
        var closed = false
        var finished = false
        var drainScheduled = false
    }

    let channel: any Channel
    /// Room: at most this many chunks, and this many bytes unless the queue is empty.
    let maxChunks: Int
    let maxBytes: Int
    /// The message announcing `n` lost chunks, written before the next ones (events only).
    let lostNotice: (@Sendable (Int) -> String)?
    private let state: Mutex<State>

    init(channel: any Channel, maxChunks: Int, maxBytes: Int, ready: Bool, lostNotice: (@Sendable (Int) -> String)? = nil) {
        self.channel = channel
        self.maxChunks = maxChunks
        self.maxBytes = maxBytes
        self.lostNotice = lostNotice
        state = Mutex(State(ready: ready))
    }

    /// Events a subscriber holds before it loses the next ones.
    static let eventBufferCapacity = 1024
    /// Capture bytes queued for a slow client before the writer waits.
    static let captureMaxPending = 4 << 20

    /// An SSE connection: its head is written by the handler before it subscribes.
    static func events(channel: any Channel) -> StreamWriter {
        StreamWriter(
            channel: channel, maxChunks: eventBufferCapacity, maxBytes: .max, ready: true,
            lostNotice: { "event: lost\ndata: {\"count\":\($0)}\n\n" })
    }

    /// A pcap stream: bytes flow once the capture started and the head is written (`open()`).
    static func capture(channel: any Channel) -> StreamWriter {
        StreamWriter(channel: channel, maxChunks: .max, maxBytes: captureMaxPending, ready: false)
    }

    /// Any thread: queues `bytes`, waiting up to `patience` for room; a chunk that finds none is lost.
    func offer(_ bytes: [UInt8], patience: Duration) -> StreamDelivery {
        let deadline = ContinuousClock.now + patience
        while true {
            var schedule = false
            let outcome: StreamDelivery? = state.withLock { state in
                if state.closed { return .closed }
                let room =
                    state.pending.count < maxChunks && (state.pending.isEmpty || state.pendingBytes + bytes.count <= maxBytes)
                guard room else { return nil }
                state.pending.append(bytes)
                state.pendingBytes += bytes.count
                if state.ready, !state.drainScheduled {
                    state.drainScheduled = true
                    schedule = true
                }
                return .delivered
            }
            if schedule { channel.eventLoop.execute { self.drain() } }
            if let outcome { return outcome }
            if ContinuousClock.now >= deadline {
                state.withLock { $0.lost += 1 }
                return .tooSlow
            }
            usleep(1000)
        }
    }

    /// Producer: no more chunks; the response ends once what is queued is written.
    func finish() {
        var schedule = false
        state.withLock { state in
            state.finished = true
            if state.ready, !state.drainScheduled {
                state.drainScheduled = true
                schedule = true
            }
        }
        if schedule { channel.eventLoop.execute { self.drain() } }
    }

    /// Event loop: the response head is written; chunks may follow.
    func open() {
        state.withLock { $0.ready = true }
        drain()
    }

    /// Event loop: the client went away; further chunks are dropped unqueued.
    func close() { state.withLock { $0.closed = true } }

    /// Event loop: writes what is queued, unless the connection cannot take more right now
    /// (then `channelWritabilityChanged` calls this again).
    func drain() {
        guard channel.isWritable, state.withLock({ $0.ready }) else {
            state.withLock { $0.drainScheduled = false }
            return
        }
        let (chunks, lost, finished) = state.withLock { state in
            let taken = (state.pending, lostNotice == nil ? 0 : state.lost, state.finished && !state.closed)
            state.pending.removeAll(keepingCapacity: true)
            state.pendingBytes = 0
            if lostNotice != nil { state.lost = 0 }
            state.drainScheduled = false
            if taken.2 { state.closed = true }
            return taken
        }
        if !chunks.isEmpty || lost > 0 {
            var buffer = channel.allocator.buffer(capacity: chunks.reduce(64) { $0 + $1.count })
            if lost > 0, let lostNotice { buffer.writeString(lostNotice(lost)) }
            for chunk in chunks { buffer.writeBytes(chunk) }
            channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: nil)
        }
        if finished {
            let channel = self.channel
            channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

/// The event hub offers formatted SSE messages; a full buffer refuses them at once (counted by the hub).
extension StreamWriter: EventSink {
    func offer(_ message: String) -> Bool {
        offer(Array(message.utf8), patience: .zero) != .tooSlow
    }
}

/// The capture writer offers whole pcap records and says when the capture ended.
extension StreamWriter: CaptureStreamSink {}
