// One `GET /v1/capture/stream` client: the router's capture writer offers it whole pcap records
// (`CaptureStreamSink`), its event loop writes them while the connection can take them.
import NIOCore
import NIOHTTP1
import Synchronization
import VXCapture
import VXRouter

#if canImport(Glibc)
    import Glibc
#endif

/// One `GET /v1/capture/stream` client: the capture writer offers pcap bytes (whole records),
/// the connection's event loop writes them. A slow client makes the writer wait (bounded), so
/// the workers' rings fill and further copies are refused and counted — forwarding never waits.
final class CaptureStreamConnection: CaptureStreamSink {
    static let maxPending = 4 << 20

    private struct State {
        var pending: [UInt8] = []
        var ready = false
        var closed = false
        var finished = false
        var drainScheduled = false
    }

    let channel: any Channel
    private let state = Mutex(State())

    init(channel: any Channel) { self.channel = channel }

    /// Writer thread: queues `bytes` (whole records). Waits up to `patience` for room — so a
    /// briefly slow client costs ring copies (counted), not stream records — then leaves the
    /// chunk out; a stop request is never held up for longer than that.
    func offer(_ bytes: [UInt8], patience: Duration = .milliseconds(200)) -> StreamDelivery {
        let deadline = ContinuousClock.now + patience
        while true {
            var schedule = false
            let outcome: StreamDelivery? = state.withLock { state in
                if state.closed { return .closed }
                if state.pending.count + bytes.count > Self.maxPending, !state.pending.isEmpty { return nil }
                state.pending += bytes
                if state.ready, !state.drainScheduled {
                    state.drainScheduled = true
                    schedule = true
                }
                return .delivered
            }
            if schedule { channel.eventLoop.execute { self.drain() } }
            if let outcome { return outcome }
            if ContinuousClock.now >= deadline { return .tooSlow }
            usleep(1000)
        }
    }

    /// Writer thread: the capture ended; the response ends once what is queued is written.
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

    /// Event loop: the response head is written; bytes may follow.
    func open() {
        state.withLock { $0.ready = true }
        drain()
    }

    /// Event loop: the client went away.
    func close() { state.withLock { $0.closed = true } }

    /// Event loop.
    func drain() {
        guard channel.isWritable, state.withLock({ $0.ready }) else {
            state.withLock { $0.drainScheduled = false }
            return
        }
        let (bytes, finished) = state.withLock { state in
            let taken = (state.pending, state.finished && !state.closed)
            state.pending.removeAll(keepingCapacity: true)
            state.drainScheduled = false
            if taken.1 { state.closed = true }
            return taken
        }
        if !bytes.isEmpty {
            var buffer = channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: nil)
        }
        if finished {
            let channel = self.channel
            channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
