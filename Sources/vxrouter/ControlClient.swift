// The CLI's side of the control endpoint: one request per command over TCP or a Unix socket,
// through SwiftNIO's HTTP/1.1 client codec — the same parser family the server uses, so this
// file writes no HTTP and decodes no chunked bodies by hand. The commands are blocking: each
// call waits for its answer (or for the stream's end) on NIO's shared event-loop thread.
// Streams (events, capture) hand body bytes to a callback as they arrive; it returns false to stop.
import NIOCore
import NIOHTTP1
import NIOPosix
import VXConfig

#if canImport(Glibc)
    import Glibc
#endif

public struct ControlClientError: Error, CustomStringConvertible {
    public let description: String
    /// True when nothing answered at the endpoint (no router, or its endpoint is off).
    public let unreachable: Bool
}

public struct ControlResponse: Sendable {
    public let status: Int
    public let headers: [(String, String)]
    public let body: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

public struct ControlClient: Sendable {
    public let endpoint: ControlAddress
    public let token: String?
    /// Seconds to wait for a response (0 = forever, for streams).
    public var timeout: Int = 10

    public init(endpoint: ControlAddress, token: String? = nil) {
        self.endpoint = endpoint
        self.token = token
    }

    /// One request; returns the whole response.
    public func request(_ method: String, _ path: String, json body: String? = nil) throws(ControlClientError)
        -> ControlResponse
    {
        var collected: [UInt8] = []
        let head = try exchange(method, path, body: body) { collected += $0; return true }
        return ControlResponse(status: head.status, headers: head.headers, body: collected)
    }

    /// A request whose body is consumed as it arrives; `onBytes` returns false to stop reading.
    @discardableResult
    public func stream(_ method: String, _ path: String, onBytes: @escaping ([UInt8]) -> Bool) throws(ControlClientError)
        -> (status: Int, headers: [(String, String)])
    {
        var client = self
        client.timeout = 0
        return try client.exchange(method, path, body: nil, onBytes: onBytes)
    }

    private func exchange(_ method: String, _ path: String, body: String?, onBytes: @escaping ([UInt8]) -> Bool)
        throws(ControlClientError) -> (status: Int, headers: [(String, String)])
    {
        let consumer = BodyConsumer(onBytes)
        let group = MultiThreadedEventLoopGroup.singleton
        let done = group.next().makePromise(of: (status: Int, headers: [(String, String)]).self)
        let endpoint = self.endpoint
        let bootstrap = ClientBootstrap(group: group).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(
                    ResponseHandler(endpoint: endpoint, consumer: consumer, done: done))
            }
        }
        let channel: any Channel
        do {
            switch endpoint {
            case .unix(let socketPath): channel = try bootstrap.connect(unixDomainSocketPath: socketPath).wait()
            case .tcp(let ip, let port):
                channel = try bootstrap.connect(to: try SocketAddress(ipAddress: ip.description, port: Int(port))).wait()
            }
        } catch {
            done.fail(error)
            throw ControlClientError(
                description: "no router answers at \(endpoint): \(Self.reason(error))", unreachable: true)
        }
        if timeout > 0 {
            let timeout = self.timeout
            channel.eventLoop.scheduleTask(in: .seconds(Int64(timeout))) {
                done.fail(ControlClientError(description: "\(endpoint) did not answer in time", unreachable: false))
                channel.close(promise: nil)
            }
        }
        var headers = HTTPHeaders()
        headers.add(name: "host", value: "vxrouter")
        headers.add(name: "user-agent", value: "vxrouter-cli")
        headers.add(name: "connection", value: "close")
        headers.add(name: "accept", value: "application/json, text/event-stream")
        if let token { headers.add(name: "authorization", value: "Bearer \(token)") }
        if body != nil { headers.add(name: "content-type", value: "application/json") }
        if body != nil || method != "GET" { headers.add(name: "content-length", value: String(body?.utf8.count ?? 0)) }
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { done.fail($0) }
        defer { channel.close(promise: nil) }
        do {
            return try done.futureResult.wait()
        } catch let error as ControlClientError {
            throw error
        } catch {
            throw ControlClientError(description: "talking to \(endpoint): \(Self.reason(error))", unreachable: false)
        }
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
        return "\(error)"
    }
}

/// The caller's body callback. It runs on the event loop while the calling thread is blocked in
/// `wait()` for the same exchange, so the two never run at once: hence `@unchecked Sendable`.
private final class BodyConsumer: @unchecked Sendable {
    let onBytes: ([UInt8]) -> Bool
    init(_ onBytes: @escaping ([UInt8]) -> Bool) { self.onBytes = onBytes }
}

private final class ResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    let endpoint: ControlAddress
    let consumer: BodyConsumer
    let done: EventLoopPromise<(status: Int, headers: [(String, String)])>
    var head: HTTPResponseHead?
    var stopped = false

    init(endpoint: ControlAddress, consumer: BodyConsumer, done: EventLoopPromise<(status: Int, headers: [(String, String)])>) {
        self.endpoint = endpoint
        self.consumer = consumer
        self.done = done
    }

    var result: (status: Int, headers: [(String, String)])? {
        head.map { (Int($0.status.code), $0.headers.map { ($0.name.lowercased(), $0.value) }) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !stopped else { return }
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body(let buffer):
            if !consumer.onBytes(Array(buffer.readableBytesView)) {
                stopped = true
                if let result { done.succeed(result) }
                context.close(promise: nil)
            }
        case .end:
            stopped = true
            if let result { done.succeed(result) }
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !stopped {
            done.fail(ControlClientError(description: "\(endpoint) closed the connection early", unreachable: false))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(ControlClientError(description: "\(endpoint) did not answer with HTTP: \(error)", unreachable: false))
        context.close(promise: nil)
    }
}
