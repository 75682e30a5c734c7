// The control endpoint's HTTP side (SwiftNIO's HTTP/1.1 codec; no HTTP is parsed here).
//
//  1. one event-loop thread accepts connections on TCP or a Unix socket; NIO's pipeline parses
//     requests (answering malformed ones with 400) and serialises pipelined ones;
//  2. the handler collects a body of at most `maxBody` bytes (more is 413), checks the bearer
//     token on changes (and on the capture stream, which exposes traffic);
//  3. the route table (`RouteTable.control`) finds the route; its handler calls the router's
//     service (`RouterService`, which runs the work on the control thread) and the response is
//     written back on the connection's event loop; `GET /v1/events` and `GET /v1/capture/stream`
//     instead stay open as streams fed by the router (one `StreamWriter` each).
import NIOCore
import NIOHTTP1
import NIOPosix
import VXConfig
import VXRouter

#if canImport(Glibc)
    import Glibc
#endif

public struct ControlEndpointError: Error, CustomStringConvertible {
    public let description: String
}

/// The control endpoint: HTTP on its own event-loop thread, answering from `service`.
public final class ControlServer: ControlEndpoint {
    static let maxBody = 64 * 1024

    let group: MultiThreadedEventLoopGroup
    let channel: any Channel
    public let address: ControlAddress

    /// Listens on `address`; changes need `token` when one is given.
    public init(address: ControlAddress, token: String?, service: any RouterService) throws(ControlEndpointError) {
        self.address = address
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let tokenBytes = token.map { Array($0.utf8) }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        ControlHTTPHandler(token: tokenBytes, service: service))
                }
            }
        do {
            switch address {
            case .tcp(let ip, let port):
                channel = try bootstrap.bind(host: ip.description, port: Int(port)).wait()
            case .unix(let path):
                channel = try bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
                // Only root (who runs the router) may talk to it.
                _ = chmod(path, 0o600)
            }
        } catch {
            try? group.syncShutdownGracefully()
            throw ControlEndpointError(description: "control endpoint: cannot listen on \(address): \(error)")
        }
        self.group = group
    }

    public func shutdown() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
        if case .unix(let path) = address { _ = unlink(path) }
    }
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from response times.
func tokensMatch(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for i in a.indices { difference |= a[i] ^ b[i] }
    return difference == 0
}

final class ControlHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let token: [UInt8]?
    private let service: any RouterService
    private let routes: RouteTable
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false
    /// The open stream, if this connection is one (events or capture: one `StreamWriter` each).
    private var subscriber: StreamWriter?
    private var captureStream: StreamWriter?

    init(token: [UInt8]?, service: any RouterService, routes: RouteTable = .control) {
        self.token = token
        self.service = service
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            tooLarge = false
            if let length = head.headers.first(name: "content-length").flatMap({ Int($0) }), length > ControlServer.maxBody {
                tooLarge = true
            }
        case .body(var chunk):
            guard !tooLarge else { return }
            if body.count + chunk.readableBytes > ControlServer.maxBody {
                tooLarge = true
                body = []
            } else if let bytes = chunk.readBytes(length: chunk.readableBytes) {
                body += bytes
            }
        case .end:
            guard let head else { return }
            self.head = nil
            handle(context: context, head: head)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let subscriber {
            subscriber.close()
            service.unsubscribe(subscriber)
            self.subscriber = nil
        }
        captureStream?.close()
        captureStream = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            subscriber?.drain()
            captureStream?.drain()
        }
        context.fireChannelWritabilityChanged()
    }

    private func handle(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let keepAlive = head.isKeepAlive && !tooLarge
        if tooLarge {
            respond(
                context: context, head: head, keepAlive: false,
                .error(.payloadTooLarge, "the request body is larger than \(ControlServer.maxBody) bytes"))
            return
        }
        guard let (path, query) = Self.splitTarget(head.uri) else {
            respond(context: context, head: head, keepAlive: keepAlive, .error(.badRequest, "the request target is not a valid path"))
            return
        }
        // A live capture is a GET but exposes traffic and starts work: it needs the token like a change.
        let changes = (head.method != .GET && head.method != .HEAD && head.method != .OPTIONS) || routes.exposesTraffic(path)
        if changes, let token {
            let presented = head.headers.first(name: "authorization").flatMap { value -> [UInt8]? in
                let prefix = "bearer "
                guard value.lowercased().hasPrefix(prefix) else { return nil }
                return Array(value.dropFirst(prefix.count).utf8)
            }
            guard let presented, tokensMatch(presented, token) else {
                var response = APIResponse.error(
                    .unauthorized, "changes need the bearer token: Authorization: Bearer <contents of control.token_file>")
                response.extraHeaders.append(("www-authenticate", "Bearer"))
                respond(context: context, head: head, keepAlive: keepAlive, response)
                return
            }
        }
        let request = APIRequest(method: head.method, path: path, query: query, body: body)
        body = []
        if case .found(let route, _) = routes.match(head.method, path) {
            switch route.action {
            case .events:
                startEventStream(context: context, head: head)
                return
            case .captureStream:
                startCaptureStream(context: context, head: head, request: request)
                return
            case .respond: break
            }
        }
        let promise = context.eventLoop.makePromise(of: APIResponse.self)
        let (routes, service) = (self.routes, self.service)
        promise.completeWithTask { await routes.respond(request, service: service) }
        promise.futureResult.assumeIsolated().whenSuccess { response in
            // A stopping router answers 503 and closes: no further request would be answered.
            let keepAlive = keepAlive && response.status != .serviceUnavailable
            self.respond(context: context, head: head, keepAlive: keepAlive, response)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead, keepAlive: Bool, _ response: APIResponse) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(response.body.count))
        for (name, value) in response.extraHeaders { headers.add(name: name, value: value) }
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: response.body.count)
            buffer.writeBytes(response.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    private func startEventStream(context: ChannelHandlerContext, head: HTTPRequestHead) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/event-stream")
        headers.add(name: "cache-control", value: "no-cache")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
        let subscriber = StreamWriter.events(channel: context.channel)
        self.subscriber = subscriber
        service.subscribe(subscriber)
        // Subscribed before this is written: a client that has read it misses nothing after.
        var hello = context.channel.allocator.buffer(capacity: 32)
        hello.writeString(": subscribed\nretry: 1000\n\n")
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(hello))), promise: nil)
    }

    /// A live capture as a pcap byte stream: the router checks the query and starts the capture
    /// (or it is refused with a 4xx); the bytes then flow until the capture ends or the client leaves.
    private func startCaptureStream(context: ChannelHandlerContext, head: HTTPRequestHead, request: APIRequest) {
        let connection = StreamWriter.capture(channel: context.channel)
        // Held from now on, so a client that leaves before the capture starts still stops it.
        captureStream = connection
        let promise = context.eventLoop.makePromise(of: APIResponse?.self)
        let service = self.service
        let parameters = RouteRequest(request: request, parameters: [:], service: service).captureQuery
        promise.completeWithTask {
            do {
                try await service.startStreamCapture(parameters, into: connection)
                return nil
            } catch {
                return APIResponse.from(error)
            }
        }
        promise.futureResult.assumeIsolated().whenSuccess { refusal in
            if let refusal {
                self.captureStream = nil
                let keepAlive = head.isKeepAlive && refusal.status != .serviceUnavailable
                self.respond(context: context, head: head, keepAlive: keepAlive, refusal)
                return
            }
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/vnd.tcpdump.pcap")
            headers.add(name: "cache-control", value: "no-cache")
            context.writeAndFlush(
                self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))),
                promise: nil)
            connection.open()
        }
    }

    /// `/v1/x?a=b` → ("/v1/x", ["a": "b"]), percent-decoded; nil for targets that are not a path.
    static func splitTarget(_ uri: String) -> (String, [String: String])? {
        guard uri.hasPrefix("/") else { return nil }
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        guard let path = percentDecode(parts[0]) else { return nil }
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let key = percentDecode(kv[0]) else { return nil }
                query[key] = kv.count == 2 ? percentDecode(kv[1]) ?? "" : ""
            }
        }
        return (path, query)
    }

    static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let h = iterator.next(), let l = iterator.next(),
                    let value = UInt8(String(decoding: [h, l], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
