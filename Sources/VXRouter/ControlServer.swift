// The control endpoint's HTTP side (SwiftNIO's HTTP/1.1 codec; no HTTP is parsed here).
//
//  1. one event-loop thread accepts connections on TCP or a Unix socket; NIO's pipeline parses
//     requests (answering malformed ones with 400) and serialises pipelined ones;
//  2. the handler collects a body of at most `maxBody` bytes (more is 413), checks the bearer
//     token on changes, and hands the request to the control thread through `ControlQueue`;
//  3. the control thread routes it and completes a promise with the response, which the handler
//     writes back on its event loop; `GET /v1/events` instead stays open as a Server-Sent Events
//     stream fed by `EventHub`.
import VXConfig
import NIOCore
import NIOHTTP1
import NIOPosix
import VXPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// A request as the control thread sees it.
struct APIRequest: Sendable {
    var method: HTTPMethod
    /// Path without the query, percent-decoded.
    var path: String
    var query: [String: String]
    var body: [UInt8]
}

/// A response ready to write.
struct APIResponse: Sendable {
    var status: HTTPResponseStatus
    var contentType = "application/json"
    var body: [UInt8]
    var extraHeaders: [(String, String)] = []

    static func json(_ status: HTTPResponseStatus, _ text: String) -> APIResponse {
        APIResponse(status: status, body: Array(text.utf8))
    }

    /// `{"error": {"status": 400, "message": "..."}}`
    static func error(_ status: HTTPResponseStatus, _ message: String) -> APIResponse {
        json(status, "{\"error\":{\"status\":\(status.code),\"message\":\(jsonString(message))}}\n")
    }
}

/// A JSON string literal for `text`.
func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

public struct ControlEndpointError: Error, CustomStringConvertible {
    public let description: String
}

final class ControlServer: Sendable {
    static let maxBody = 64 * 1024

    let group: MultiThreadedEventLoopGroup
    let channel: any Channel
    let address: ControlAddress

    init(address: ControlAddress, token: String?, queue: ControlQueue, hub: EventHub) throws(ControlEndpointError) {
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
                        ControlHTTPHandler(token: tokenBytes, queue: queue, hub: hub))
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

    func shutdown() {
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
    private let queue: ControlQueue
    private let hub: EventHub
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false
    private var subscriber: EventSubscriber?
    private var captureStream: CaptureStreamConnection?

    init(token: [UInt8]?, queue: ControlQueue, hub: EventHub) {
        self.token = token
        self.queue = queue
        self.hub = hub
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
            hub.unsubscribe(subscriber)
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
        let changes =
            (head.method != .GET && head.method != .HEAD && head.method != .OPTIONS) || path == "/v1/capture/stream"
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
        if path == "/v1/events" && head.method == .GET {
            startEventStream(context: context, head: head)
            return
        }
        if path == "/v1/capture/stream" && head.method == .GET {
            startCaptureStream(context: context, head: head, query: query)
            return
        }
        let request = APIRequest(method: head.method, path: path, query: query, body: body)
        body = []
        let promise = context.eventLoop.makePromise(of: APIResponse.self)
        let queued = queue.submit { router in promise.succeed(router.handle(request)) }
        guard queued else {
            promise.succeed(.error(.serviceUnavailable, "the router is stopping"))
            respond(context: context, head: head, keepAlive: false, .error(.serviceUnavailable, "the router is stopping"))
            return
        }
        promise.futureResult.assumeIsolated().whenSuccess { response in
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
        let subscriber = EventSubscriber(channel: context.channel)
        self.subscriber = subscriber
        hub.subscribe(subscriber)
        // Subscribed before this is written: a client that has read it misses nothing after.
        var hello = context.channel.allocator.buffer(capacity: 32)
        hello.writeString(": subscribed\nretry: 1000\n\n")
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(hello))), promise: nil)
    }

    /// A live capture as a pcap byte stream: the control thread checks the query and starts the
    /// capture (or answers 4xx); the bytes then flow until the capture ends or the client leaves.
    private func startCaptureStream(context: ChannelHandlerContext, head: HTTPRequestHead, query: [String: String]) {
        let connection = CaptureStreamConnection(channel: context.channel)
        // Held from now on, so a client that leaves before the capture starts still stops it.
        captureStream = connection
        let promise = context.eventLoop.makePromise(of: APIResponse?.self)
        let queued = queue.submit { router in promise.succeed(router.startStreamCapture(query, connection: connection)) }
        guard queued else {
            respond(context: context, head: head, keepAlive: false, .error(.serviceUnavailable, "the router is stopping"))
            return
        }
        promise.futureResult.assumeIsolated().whenSuccess { refusal in
            if let refusal {
                self.captureStream = nil
                self.respond(context: context, head: head, keepAlive: head.isKeepAlive, refusal)
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
