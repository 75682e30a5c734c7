// An etcd v3 client over etcd's JSON gateway (documented for clients without gRPC), on
// AsyncHTTPClient: one POST per call, one long POST per watch whose body is a stream of JSON
// objects, one per line. Only what cluster mode needs: range, put, delete, leases, watch.
//
// Endpoints are tried in order; a call that cannot reach one moves on to the next, and the one
// that answered is tried first next time. A server's refusal (a gRPC status in the body) is not
// retried elsewhere: every member would say the same.
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// What an etcd call failed with.
public enum EtcdError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No endpoint answered; the last transport error.
    case unreachable(String)
    /// The revision asked for is compacted away: list again from the current revision.
    case compacted(compactRevision: Int64)
    /// The lease is gone (expired or revoked): grant a new one.
    case leaseNotFound
    /// The server refused the call (gRPC status code and message).
    case server(code: Int, message: String)
    /// The answer was not what the gateway documents.
    case badResponse(String)
    /// The watch stream ended or was canceled by the server for a reason other than compaction.
    case watchEnded(String)
    /// The call's token is missing, expired or stale: authenticate again (handled inside the
    /// client when it has credentials).
    case tokenRejected(String)
    /// etcd refused the credentials, or wants some and none are configured.
    case authenticationFailed(String)

    public var description: String {
        switch self {
        case .unreachable(let why): "etcd unreachable: \(why)"
        case .compacted(let revision): "revision compacted (compact revision \(revision))"
        case .leaseNotFound: "lease not found"
        case .server(let code, let message): "etcd refused (code \(code)): \(message)"
        case .badResponse(let why): "unexpected etcd answer: \(why)"
        case .watchEnded(let why): "watch ended: \(why)"
        case .tokenRejected(let why): "etcd refused the auth token: \(why)"
        case .authenticationFailed(let why): "etcd authentication failed: \(why)"
        }
    }
}

/// One key and its value as stored.
public struct EtcdKeyValue: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    public var modRevision: Int64
    public var lease: Int64

    public init(key: String, value: [UInt8], modRevision: Int64 = 0, lease: Int64 = 0) {
        self.key = key
        self.value = value
        self.modRevision = modRevision
        self.lease = lease
    }
}

/// A listing: the keys and the store's revision they are consistent at.
public struct EtcdRange: Sendable, Equatable {
    public var revision: Int64
    public var keyValues: [EtcdKeyValue]
}

/// A change seen by a watch.
public struct EtcdEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case put, delete }
    public var kind: Kind
    /// For a delete: the key, with the deletion's revision and no value.
    public var keyValue: EtcdKeyValue
    /// The value before, when the watch asked for it and there was one.
    public var previous: EtcdKeyValue?
}

/// What a watch stream delivers besides errors.
public enum EtcdWatchUpdate: Sendable, Equatable {
    /// The watch is in place; the store was at `revision`.
    case created(revision: Int64)
    /// Changes in revision order; the store is at `revision`.
    case events(revision: Int64, [EtcdEvent])
}

/// A granted lease.
public struct EtcdLease: Sendable, Equatable {
    public var id: Int64
    public var ttl: Int64
}

/// TLS to etcd (https:// endpoints): PEM files of the CA that signed etcd's certificate (nil:
/// the system's roots) and of this client's certificate and key, for etcd's --client-cert-auth.
/// The files are read when the client is made; one that does not load fails every call with the
/// reason (reported and retried like an unreachable etcd, never a crash).
public struct EtcdTLS: Sendable, Equatable {
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?

    public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
    }

    /// The certificate and key are read as PEM whatever their names end with (NIOSSL's `.file`
    /// sources take anything not named *.pem for DER, and keys are usually *.key).
    func configuration() throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.trustRoots = .certificates(try load(caFile) { try NIOSSLCertificate.fromPEMFile($0) }) }
        if let certFile, let keyFile {
            tls.certificateChain = try load(certFile) { try NIOSSLCertificate.fromPEMFile($0) }.map { .certificate($0) }
            tls.privateKey = .privateKey(try load(keyFile) { try NIOSSLPrivateKey(file: $0, format: .pem) })
        }
        return tls
    }

    private func load<T>(_ path: String, _ read: (String) throws -> T) throws -> T {
        guard FileManager.default.isReadableFile(atPath: path) else { throw EtcdError.unreachable("TLS: cannot read \(path)") }
        do {
            return try read(path)
        } catch {
            throw EtcdError.unreachable("TLS: \(path) is not a PEM file of the expected kind (\(error))")
        }
    }
}

/// A user and password for etcd's authentication. The password is never printed.
public struct EtcdCredentials: Sendable, Equatable, CustomStringConvertible {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    public var description: String { "user \(username)" }
}

public final class EtcdClient: Sendable {
    public let endpoints: [String]
    private let http: HTTPClient
    private let ownsHTTP: Bool
    private let callTimeout: TimeAmount
    /// The endpoint that answered last: tried first.
    private let preferred = Mutex(0)
    /// Why the TLS files could not be used: every call fails with it.
    private let tlsFailure: EtcdError?
    private let credentials: EtcdCredentials?
    /// The token calls carry: nil before the first authentication and after one was rejected;
    /// "" when etcd has authentication off (calls go without one).
    private let token = Mutex<String?>(nil)
    /// How many times this client authenticated (tests: a token expiry was survived by renewing).
    private let authentications = Mutex<UInt64>(0)

    /// `endpoints` are base URLs (`http://127.0.0.1:2379`). No read timeout on the connection:
    /// a watch is idle for as long as nothing changes; each unary call has `callTimeout` instead.
    public init(
        endpoints: [String], callTimeout: Duration = .seconds(5), tls: EtcdTLS? = nil, credentials: EtcdCredentials? = nil
    ) {
        precondition(!endpoints.isEmpty, "at least one etcd endpoint")
        self.credentials = credentials
        self.endpoints = endpoints.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(2), read: nil)
        var tlsFailure: EtcdError?
        if let tls {
            do {
                configuration.tlsConfiguration = try tls.configuration()
            } catch {
                tlsFailure = error as? EtcdError ?? .unreachable("TLS: \(error)")
            }
        }
        self.tlsFailure = tlsFailure
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        ownsHTTP = true
        self.callTimeout = Self.timeAmount(callTimeout)
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// The endpoint that answered last: the one the next call tries first.
    public var currentEndpoint: String { endpoints[preferred.withLock { $0 }] }

    /// How many times this client has authenticated so far.
    public var authenticationCount: UInt64 { authentications.withLock { $0 } }

    public func shutdown() async {
        if ownsHTTP { try? await http.shutdown() }
    }

    // MARK: KV

    /// Every key under `prefix` (or the one key `prefix` when `prefix` is false), at `revision`
    /// (0: the current one). `timeout` replaces the call timeout: a whole overlay's listing (tens
    /// of thousands of keys, megabytes of JSON the gateway has to write) takes longer than a put.
    public func range(
        _ key: String, prefix: Bool = true, revision: Int64 = 0, timeout: Duration? = nil
    ) async throws -> EtcdRange {
        let request = EtcdWire.RangeRequest(
            key: Base64Bytes(key), rangeEnd: prefix ? Base64Bytes(Self.prefixEnd(key)) : nil,
            revision: revision == 0 ? nil : Int64String(revision))
        let response: EtcdWire.RangeResponse = try await call("/v3/kv/range", request, timeout: timeout.map(Self.timeAmount))
        let keyValues = try (response.kvs ?? []).map(Self.keyValue)
        return EtcdRange(revision: response.header?.revision?.value ?? 0, keyValues: keyValues)
    }

    /// Writes `value` at `key`, attached to `lease` (0: none); the revision of the write.
    @discardableResult
    public func put(_ key: String, value: [UInt8], lease: Int64 = 0) async throws -> Int64 {
        let request = EtcdWire.PutRequest(
            key: Base64Bytes(key), value: Base64Bytes(value), lease: lease == 0 ? nil : Int64String(lease))
        let response: EtcdWire.PutResponse = try await call("/v3/kv/put", request)
        return response.header?.revision?.value ?? 0
    }

    /// Deletes `key` (or every key under it when `prefix`); how many were deleted.
    @discardableResult
    public func delete(_ key: String, prefix: Bool = false) async throws -> Int64 {
        let request = EtcdWire.DeleteRangeRequest(
            key: Base64Bytes(key), rangeEnd: prefix ? Base64Bytes(Self.prefixEnd(key)) : nil)
        let response: EtcdWire.DeleteRangeResponse = try await call("/v3/kv/deleterange", request)
        return response.deleted?.value ?? 0
    }

    /// Compacts the history up to `revision` (tests and the simulator use it to provoke the
    /// re-list path).
    public func compact(revision: Int64) async throws {
        let _: EtcdWire.PutResponse = try await call("/v3/kv/compaction", EtcdWire.CompactionRequest(revision: Int64String(revision)))
    }

    // MARK: Leases

    public func grantLease(ttl: Int64) async throws -> EtcdLease {
        let response: EtcdWire.LeaseGrantResponse = try await call(
            "/v3/lease/grant", EtcdWire.LeaseGrantRequest(TTL: Int64String(ttl), ID: nil))
        if let error = response.error, !error.isEmpty { throw EtcdError.server(code: 0, message: error) }
        guard let id = response.ID?.value, id != 0 else { throw EtcdError.badResponse("lease grant without ID") }
        return EtcdLease(id: id, ttl: response.TTL?.value ?? ttl)
    }

    /// Refreshes `lease`; its TTL now. Throws `leaseNotFound` when it has expired or was revoked
    /// (the gateway then answers with a TTL of 0).
    @discardableResult
    public func keepAlive(_ lease: Int64) async throws -> Int64 {
        let body = try JSONEncoder().encode(EtcdWire.LeaseIDRequest(ID: Int64String(lease)))
        let response: EtcdWire.LeaseKeepAliveResponse = try await withToken { token in
            let response: EtcdWire.LeaseKeepAliveResponse = try await callOnce(
                "/v3/lease/keepalive", body, token: token, firstLineOnly: true)
            if let error = response.error {
                let message = error.message ?? "keepalive failed"
                if isTokenRefusal(message) { throw EtcdError.tokenRejected(message) }
                throw EtcdError.server(code: error.grpcCode ?? 0, message: message)
            }
            return response
        }
        let ttl = response.result?.TTL?.value ?? 0
        if ttl <= 0 { throw EtcdError.leaseNotFound }
        return ttl
    }

    public func revoke(_ lease: Int64) async throws {
        let _: EtcdWire.LeaseRevokeResponse = try await call(
            "/v3/lease/revoke", EtcdWire.LeaseIDRequest(ID: Int64String(lease)))
    }

    // MARK: Watch

    /// Changes under `prefix` from `revision` on (inclusive), with previous values. The stream
    /// starts with `.created`; it throws `EtcdError.compacted` when `revision` is compacted away
    /// (list again), and `watchEnded`/`unreachable` when the stream is lost (list or resume).
    /// Ending the iteration (or cancelling its task) closes the HTTP request.
    public func watch(prefix: String, fromRevision revision: Int64) -> AsyncThrowingStream<EtcdWatchUpdate, any Error> {
        let request = EtcdWire.WatchRequest(
            createRequest: .init(
                key: Base64Bytes(prefix), rangeEnd: Base64Bytes(Self.prefixEnd(prefix)),
                startRevision: revision == 0 ? nil : Int64String(revision), prevKV: true, progressNotify: true))
        let (stream, continuation) = AsyncThrowingStream<EtcdWatchUpdate, any Error>.makeStream()
        let task = Task {
            do {
                let body = try JSONEncoder().encode(request)
                // A watch refused for its token (created and canceled at once) is made again,
                // once, with a fresh one; nothing was delivered before the refusal.
                try await self.withToken { token in
                    let response = try await self.send("/v3/watch", body, timeout: .hours(24 * 365), token: token)
                    guard response.status == .ok else {
                        let body = try await response.body.collect(upTo: 1 << 20)
                        throw Self.refusal(status: response.status, body: Array(buffer: body))
                    }
                    var lines = LineSplitter()
                    for try await chunk in response.body {
                        for line in lines.append(chunk) {
                            if let update = try Self.watchUpdate(line) { continuation.yield(update) }
                        }
                    }
                    throw EtcdError.watchEnded("the server closed the stream")
                }
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    static func watchUpdate(_ line: [UInt8]) throws -> EtcdWatchUpdate? {
        let response: EtcdWire.WatchResponse
        do {
            response = try JSONDecoder().decode(EtcdWire.WatchResponse.self, from: Data(line))
        } catch {
            throw EtcdError.badResponse("watch line: \(error)")
        }
        if let error = response.error {
            throw EtcdError.watchEnded(error.message ?? "stream error \(error.grpcCode ?? 0)")
        }
        guard let result = response.result else { return nil }
        if let compact = result.compactRevision?.value, compact > 0 {
            throw EtcdError.compacted(compactRevision: compact)
        }
        if result.canceled == true {
            let reason = result.cancelReason ?? "no reason given"
            if isTokenRefusal(reason) { throw EtcdError.tokenRejected(reason) }
            throw EtcdError.watchEnded("canceled: \(reason)")
        }
        let revision = result.header?.revision?.value ?? 0
        if result.created == true { return .created(revision: revision) }
        let events = try (result.events ?? []).map { event -> EtcdEvent in
            guard let kv = event.kv else { throw EtcdError.badResponse("watch event without kv") }
            return EtcdEvent(
                kind: event.type == "DELETE" ? .delete : .put, keyValue: try keyValue(kv),
                previous: try event.prevKV.map(keyValue))
        }
        // An empty result is a progress notification: the store moved on without our keys.
        return .events(revision: revision, events)
    }

    // MARK: Transport

    private func call<Request: Encodable, Response: Decodable>(
        _ path: String, _ request: Request, firstLineOnly: Bool = false, timeout: TimeAmount? = nil
    ) async throws -> Response {
        let body = try JSONEncoder().encode(request)
        return try await withToken { token in
            try await callOnce(path, body, token: token, firstLineOnly: firstLineOnly, timeout: timeout)
        }
    }

    private func callOnce<Response: Decodable>(
        _ path: String, _ body: Data, token: String?, firstLineOnly: Bool, timeout: TimeAmount? = nil
    ) async throws -> Response {
        let response = try await send(path, body, timeout: timeout ?? callTimeout, token: token)
        var bytes = Array(buffer: try await response.body.collect(upTo: 64 << 20))
        if firstLineOnly, let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) {
            bytes = Array(bytes[..<newline])
        }
        guard response.status == .ok else { throw Self.refusal(status: response.status, body: bytes) }
        do {
            return try JSONDecoder().decode(Response.self, from: Data(bytes))
        } catch {
            throw EtcdError.badResponse("\(path): \(error)")
        }
    }

    // MARK: Authentication

    /// Runs `operation` with the current token (authenticating first when there is none); when
    /// etcd rejects the token, authenticates again and runs it once more. Without credentials a
    /// rejection means etcd wants some: said so plainly.
    private func withToken<T>(_ operation: (String?) async throws -> T) async throws -> T {
        var renewed = false
        while true {
            let used = try await currentToken()
            do {
                return try await operation(used)
            } catch EtcdError.tokenRejected(let why) {
                guard credentials != nil else {
                    throw EtcdError.authenticationFailed(
                        "etcd has authentication enabled (\(why)); configure cluster.username and cluster.password_file")
                }
                if renewed { throw EtcdError.tokenRejected(why) }
                renewed = true
                // Only the token that was refused: another call may have renewed it already.
                token.withLock { if ($0 ?? "") == (used ?? "") { $0 = nil } }
            }
        }
    }

    /// The token to send (nil: none), authenticating when there is none yet.
    private func currentToken() async throws -> String? {
        guard let credentials else { return nil }
        if let cached = token.withLock({ $0 }) { return cached.isEmpty ? nil : cached }
        let fresh = try await authenticate(credentials)
        token.withLock { $0 = fresh }
        return fresh.isEmpty ? nil : fresh
    }

    /// `POST /v3/auth/authenticate`: a token for `credentials`, or "" when etcd has authentication
    /// off (calls then go without one, as clientv3's do).
    private func authenticate(_ credentials: EtcdCredentials) async throws -> String {
        let request = EtcdWire.AuthenticateRequest(name: credentials.username, password: credentials.password)
        let response: EtcdWire.AuthenticateResponse
        do {
            response = try await callOnce("/v3/auth/authenticate", try JSONEncoder().encode(request), token: nil, firstLineOnly: false)
        } catch EtcdError.server(_, let message) where message.contains("authentication is not enabled") {
            return ""
        } catch EtcdError.server(_, let message) {
            throw EtcdError.authenticationFailed("\(message) (\(credentials))")
        }
        authentications.withLock { $0 += 1 }
        guard let token = response.token, !token.isEmpty else { throw EtcdError.badResponse("authenticate without a token") }
        return token
    }

    // MARK: Transport

    /// POSTs `body` to the first endpoint that answers, starting with the one that answered last.
    private func send(_ path: String, _ body: Data, timeout: TimeAmount, token: String?) async throws -> HTTPClientResponse {
        if let tlsFailure { throw tlsFailure }
        let start = preferred.withLock { $0 }
        var lastError = "no endpoint"
        for step in 0..<endpoints.count {
            let index = (start + step) % endpoints.count
            var request = HTTPClientRequest(url: endpoints[index] + path)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            // etcd takes the token as it is, without a "Bearer" scheme.
            if let token { request.headers.add(name: "authorization", value: token) }
            request.body = .bytes(ByteBuffer(bytes: body))
            do {
                let response = try await http.execute(request, timeout: timeout)
                if step != 0 { preferred.withLock { $0 = index } }
                return response
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                if Task.isCancelled { throw CancellationError() }
                lastError = "\(endpoints[index]): \(error)"
            }
        }
        throw EtcdError.unreachable(lastError)
    }

    /// The gateway's error body → an `EtcdError` (code 11 with "compacted" is a compaction,
    /// code 5 for a lease is a missing lease).
    static func refusal(status: HTTPResponseStatus, body: [UInt8]) -> EtcdError {
        guard let error = try? JSONDecoder().decode(EtcdWire.MaybeError.self, from: Data(body)) else {
            return .badResponse("HTTP \(status.code)")
        }
        let message = error.message ?? error.error ?? "HTTP \(status.code)"
        if message.contains("required revision has been compacted") { return .compacted(compactRevision: 0) }
        if message.contains("requested lease not found") { return .leaseNotFound }
        if isTokenRefusal(message) { return .tokenRejected(message) }
        return .server(code: error.code ?? 0, message: message)
    }

    static func keyValue(_ kv: EtcdWire.KeyValue) throws -> EtcdKeyValue {
        guard let key = String(validating: kv.key.bytes, as: UTF8.self) else {
            throw EtcdError.badResponse("a key that is not UTF-8")
        }
        return EtcdKeyValue(
            key: key, value: kv.value?.bytes ?? [], modRevision: kv.modRevision?.value ?? 0,
            lease: kv.lease?.value ?? 0)
    }

    /// The end of the range of keys that start with `prefix`: its last byte below 0xff plus one.
    static func prefixEnd(_ prefix: String) -> [UInt8] {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return bytes
            }
            bytes.removeLast()
        }
        return [0]  // the whole key space
    }
}

/// etcd's answers that mean "authenticate again": the token expired or is unknown, the auth store
/// changed since it was issued, or there was none (clientv3: ErrInvalidAuthToken,
/// ErrAuthOldRevision, ErrUserEmpty).
func isTokenRefusal(_ message: String) -> Bool {
    message.contains("invalid auth token") || message.contains("revision of auth store is old")
        || message.contains("user name is empty")
}

/// Splits a byte stream into lines (the gateway ends each streamed object with a newline).
struct LineSplitter {
    private var pending: [UInt8] = []

    mutating func append(_ chunk: ByteBuffer) -> [[UInt8]] {
        pending.append(contentsOf: chunk.readableBytesView)
        var lines: [[UInt8]] = []
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = Array(pending[..<newline])
            pending.removeSubrange(...newline)
            if !line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { lines.append(line) }
        }
        return lines
    }
}
