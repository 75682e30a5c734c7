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
import VXPlatform
import VXRouter

#if canImport(Glibc)
    import Glibc
#endif

public struct ControlEndpointError: Error, CustomStringConvertible {
    public let description: String
}

/// The control endpoint: HTTP on its own event-loop thread, answering from `service`; and, when
/// asked, the read-only metrics listener on the same thread.
public final class ControlServer: ControlEndpoint {
    static let maxBody = 64 * 1024
    /// The Unix socket's mode: owner (root) and the control group may connect, nobody else.
    static let socketMode: mode_t = 0o660
    /// The socket's directory when it has to be created: anyone may look up the socket in it (the
    /// socket's own mode decides who may connect).
    static let socketDirectoryMode: mode_t = 0o755

    let group: MultiThreadedEventLoopGroup
    let channels: [any Channel]
    public let address: ControlAddress
    public let metricsAddress: ControlAddress?

    /// Listens on `address`. Changes and the capture stream need `token` when one is given and,
    /// on a Unix socket, a caller that is root or in `controlGroup`. `metrics` (TCP) serves
    /// GET /metrics only, to anyone.
    public init(
        address: ControlAddress, token: String?, controlGroup: String = ControlConfig.defaultGroup,
        metrics: ControlAddress? = nil, service: any RouterService
    ) throws(ControlEndpointError) {
        self.address = address
        self.metricsAddress = metrics
        var resolvedGroup: ControlGroup?
        if address.isUnix {
            let gid: UInt32?
            do {
                gid = try groupID(named: controlGroup)
            } catch {
                throw ControlEndpointError(description: "control.group \(controlGroup): cannot look it up: \(error)")
            }
            guard let gid else {
                throw ControlEndpointError(
                    description: "control.group \(controlGroup): no such group (create it with `groupadd \(controlGroup)`, "
                        + "or leave control.group unset for root only)")
            }
            resolvedGroup = ControlGroup(name: controlGroup, gid: gid)
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let tokenBytes = token.map { Array($0.utf8) }
        func bootstrap(_ makeHandler: @escaping @Sendable () -> ControlHTTPHandler) -> ServerBootstrap {
            ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 64)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.so_keepalive), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(makeHandler())
                    }
                }
        }
        let controlGroup = resolvedGroup
        let control = bootstrap {
            ControlHTTPHandler(token: tokenBytes, controlGroup: controlGroup, service: service)
        }
        var channels: [any Channel] = []
        func fail(_ what: String, _ error: any Error) -> ControlEndpointError {
            for channel in channels { try? channel.close().wait() }
            try? group.syncShutdownGracefully()
            return ControlEndpointError(description: "\(what): \(error)")
        }
        do {
            switch address {
            case .tcp(let ip, let port):
                channels.append(try control.bind(host: ip.description, port: Int(port)).wait())
            case .unix(let path):
                channels.append(try Self.bindSocket(control, path: path, group: resolvedGroup!))
            }
        } catch {
            throw fail("control endpoint: cannot listen on \(address)", error)
        }
        if let metrics, case .tcp(let ip, let port) = metrics {
            let listener = bootstrap { ControlHTTPHandler(token: nil, controlGroup: nil, service: service, routes: .metrics) }
            do {
                channels.append(try listener.bind(host: ip.description, port: Int(port)).wait())
            } catch {
                throw fail("metrics.listen: cannot listen on \(metrics)", error)
            }
        }
        self.channels = channels
        self.group = group
    }

    /// Binds the Unix socket under a temporary name, gives it to root and the control group with
    /// mode 0660, then renames it into place: no moment where the socket at `path` is open to
    /// more callers than that.
    static func bindSocket(_ bootstrap: ServerBootstrap, path: String, group: ControlGroup) throws -> any Channel {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
        if !directory.isEmpty { try makeDirectoryIfMissing(directory, mode: socketDirectoryMode) }
        // Never take over a live router's socket (two routers on one host, e.g. in network
        // namespaces, share the file system): its clients would silently reach this one.
        if unixSocketAnswers(path) {
            throw ControlEndpointError(
                description: "another process is listening on \(path); give each router its own control.listen (--control unix:PATH)")
        }
        // sun_path holds 107 bytes and a NUL; a path at the limit is bound in place.
        let staging = path.utf8.count < 106 ? path + ".new" : path
        let channel = try bootstrap.bind(unixDomainSocketPath: staging, cleanupExistingSocketFile: true).wait()
        do {
            try setOwnerAndMode(staging, uid: 0, gid: group.gid, mode: socketMode)
            if staging != path { try renamePath(staging, to: path) }
        } catch {
            try? channel.close().wait()
            _ = unlink(staging)
            throw error
        }
        return channel
    }

    public func shutdown() {
        for channel in channels { try? channel.close().wait() }
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
    /// On the Unix socket: whose credentials may change things (nil on TCP: the token decides).
    private let controlGroup: ControlGroup?
    private let readPeer: @Sendable (any Channel) -> EventLoopFuture<PeerCredentials?>
    /// The caller's credentials, read once when the connection opens (Unix socket only).
    private var peer: EventLoopFuture<PeerCredentials?>?
    private let service: any RouterService
    private let routes: RouteTable
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false
    /// The open stream, if this connection is one (events or capture: one `StreamWriter` each).
    private var subscriber: StreamWriter?
    private var captureStream: StreamWriter?

    init(
        token: [UInt8]?, controlGroup: ControlGroup? = nil, service: any RouterService, routes: RouteTable = .control,
        readPeer: @escaping @Sendable (any Channel) -> EventLoopFuture<PeerCredentials?> = ControlHTTPHandler.peerCredentials
    ) {
        self.token = token
        self.controlGroup = controlGroup
        self.readPeer = readPeer
        self.service = service
        self.routes = routes
    }

    /// SO_PEERCRED of the connection (NIO's socket-option call on the channel's own socket; it
    /// exposes no descriptor), with the caller's groups; nil when it cannot be read.
    static let peerCredentials: @Sendable (any Channel) -> EventLoopFuture<PeerCredentials?> = { channel in
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        let raw: EventLoopFuture<PeerCredentialsOption> = provider.unsafeGetSocketOption(
            level: .socket, name: NIOBSDSocket.Option(rawValue: peerCredentialsOptionName))
        return raw.map { Optional(PeerCredentials($0)) }.recover { _ in nil }
    }

    func channelActive(context: ChannelHandlerContext) {
        if controlGroup != nil { peer = readPeer(context.channel) }
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Added to a channel that is already active (tests, or a late pipeline change).
        if controlGroup != nil, context.channel.isActive, peer == nil { peer = readPeer(context.channel) }
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
        let kind = routes.requestKind(head.method, path)
        if kind.privileged, let token {
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
        if kind.privileged, let controlGroup {
            let peer = self.peer ?? context.eventLoop.makeSucceededFuture(nil)
            peer.assumeIsolated().whenComplete { result in
                let caller = (try? result.get()) ?? nil
                switch ControlAccess.decide(kind, caller: caller, group: controlGroup) {
                case .allow:
                    self.dispatch(context: context, head: head, keepAlive: keepAlive, request: request)
                case .deny(let reason):
                    self.respond(context: context, head: head, keepAlive: keepAlive, .error(.forbidden, reason))
                }
            }
            return
        }
        dispatch(context: context, head: head, keepAlive: keepAlive, request: request)
    }

    private func dispatch(context: ChannelHandlerContext, head: HTTPRequestHead, keepAlive: Bool, request: APIRequest) {
        if case .found(let route, _) = routes.match(head.method, request.path) {
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
