// The control endpoint's routes (api/openapi.yaml documents them), as one table: method, path
// pattern, and what answers it. A route parses its path parameters and body into typed values
// with the shared rules (VXConfig), calls the router's service, and encodes the typed answer.
// Errors become `{"error": {"status": N, "message": "..."}}` with the status of their kind.
import Foundation
import NIOHTTP1
import VXConfig
import VXControlAPI
import VXRouter
import VXWire

/// A request as the routes see it.
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

    static func encoded<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok) throws -> APIResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return APIResponse(status: status, body: Array(try encoder.encode(value)) + [0x0A])
    }

    /// The error response for anything a route threw.
    static func from(_ error: any Error) -> APIResponse {
        switch error {
        case let error as APIError: return .error(error.status, error.message)
        case let error as ServiceError:
            let status: HTTPResponseStatus =
                switch error.kind {
                case .invalid: .badRequest
                case .notFound: .notFound
                case .conflict: .conflict
                case .stopping: .serviceUnavailable
                case .failed: .internalServerError
                }
            return .error(status, error.message)
        default: return .error(.internalServerError, "\(error)")
        }
    }
}

/// A JSON string literal for `text`.
func jsonString(_ text: String) -> String { jsonQuoted(text) }

/// A request the HTTP layer refuses itself (bad path, bad body), with its status.
struct APIError: Error {
    let status: HTTPResponseStatus
    let message: String
    init(_ status: HTTPResponseStatus, _ message: String) {
        self.status = status
        self.message = message
    }
}

struct Route: Sendable {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    enum Action: Sendable {
        case respond(@Sendable (RouteRequest) async throws -> APIResponse)
        /// `GET /v1/events`: a Server-Sent Events stream.
        case events
        /// `GET /v1/capture/stream`: a pcap byte stream.
        case captureStream
    }

    let method: HTTPMethod
    let pattern: String
    let segments: [Segment]
    /// A read that still needs the bearer token: it exposes traffic and starts work.
    let exposesTraffic: Bool
    /// Not a GET, but changes nothing and shows only what reads show (`POST /v1/trace`).
    let answersAsRead: Bool
    let action: Action

    init(
        _ method: HTTPMethod, _ pattern: String, exposesTraffic: Bool = false, answersAsRead: Bool = false,
        _ action: Action
    ) {
        self.method = method
        self.pattern = pattern
        segments = pattern.split(separator: "/").map { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? .parameter(String(part.dropFirst().dropLast())) : .literal(String(part))
        }
        self.exposesTraffic = exposesTraffic
        self.answersAsRead = answersAsRead
        self.action = action
    }

    /// The path parameters when `segments` match this route's pattern.
    func parameters(_ path: [String]) -> [String: String]? {
        guard path.count == segments.count else { return nil }
        var values: [String: String] = [:]
        for (segment, part) in zip(segments, path) {
            switch segment {
            case .literal(let text): if text != part { return nil }
            case .parameter(let name): values[name] = part
            }
        }
        return values
    }

    var literalCount: Int {
        segments.filter { if case .literal = $0 { true } else { false } }.count
    }
}

/// What a route handler gets: the request, its path parameters, and the service.
struct RouteRequest: Sendable {
    let request: APIRequest
    let parameters: [String: String]
    let service: any RouterService

    /// `{vni}`: a VNI (400 otherwise) that this router serves (404 otherwise).
    func vni() throws -> VNI {
        let text = parameters["vni"] ?? ""
        guard let vni = ServedVNIs.parse(text) else {
            throw APIError(.badRequest, "\(jsonString(text)) is not a VNI (an integer 0-16777215)")
        }
        let served = ServedVNIs(service.servedVNIs)
        guard served.contains(vni) else { throw APIError(.notFound, served.notServed(vni)) }
        return vni
    }

    /// The body as `T`: a JSON object with exactly `T`'s fields, each of its type.
    func body<T: RequestBody>(_ type: T.Type) throws -> T {
        let keys = T.fieldNames
        let lists = T.optionalListFieldNames
        let shape =
            "a JSON object {\((keys.map { "\"\($0)\": \"...\"" } + lists.map { "\"\($0)\": [\"...\"] (optional)" }).joined(separator: ", "))}"
        let body = request.body
        guard !body.isEmpty else { throw APIError(.badRequest, "the request body is empty; expected \(shape)") }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)) else {
            throw APIError(.badRequest, "the request body is not valid JSON; expected \(shape)")
        }
        guard case .object(let object) = value else {
            throw APIError(.badRequest, "the request body is not a JSON object; expected \(shape)")
        }
        if let unknown = object.keys.sorted().first(where: { !keys.contains($0) && !lists.contains($0) }) {
            throw APIError(.badRequest, "unknown field \(jsonString(unknown)) (allowed: \((keys + lists).joined(separator: ", ")))")
        }
        for key in keys {
            guard let field = object[key] else { throw APIError(.badRequest, "missing field \"\(key)\"; expected \(shape)") }
            guard case .string = field else { throw APIError(.badRequest, "field \"\(key)\" must be a string") }
        }
        for key in lists {
            guard let field = object[key] else { continue }
            guard case .array(let items) = field, items.allSatisfy({ if case .string = $0 { true } else { false } }) else {
                throw APIError(.badRequest, "field \"\(key)\" must be a list of strings")
            }
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch {
            throw APIError(.badRequest, "the request body does not match; expected \(shape)")
        }
    }

    /// A body that must be absent or `{}` (blank counts as absent).
    func emptyBody(_ message: String) throws {
        let body = request.body
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return }
        guard case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: Data(body)), object.isEmpty
        else { throw APIError(.badRequest, message) }
    }

    /// A capture request from a JSON object body.
    func captureBody() throws -> CaptureParameters {
        let body = request.body
        guard !body.isEmpty else { throw APIError(.badRequest, "the request body is empty; expected a JSON object") }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(body)) else {
            throw APIError(.badRequest, "the request body is not valid JSON")
        }
        guard case .object = value else { throw APIError(.badRequest, "the request body is not a JSON object") }
        guard let fields = try? JSONDecoder().decode(CaptureParameters.self, from: Data(body)) else {
            throw APIError(.badRequest, "the request body is not a JSON object")
        }
        return fields
    }

    /// The capture stream's query: every value a string.
    var captureQuery: CaptureParameters { request.query.mapValues { .string($0) } }
}

/// Any JSON value, to check a body's shape before decoding it into its type.
enum JSONValue: Decodable, Sendable {
    case object([String: JSONValue])
    case array([JSONValue])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }
}

/// The rules a request's fields go through, worded for the API (the field's name first).
enum RequestRules {
    static func mac(_ text: String) throws -> MACAddress {
        guard let mac = MACAddress(text) else {
            throw APIError(.badRequest, "mac \(jsonString(text)) is not a MAC address (expected \(StationMACProblem.format))")
        }
        return mac
    }

    static func stationMAC(_ text: String) throws -> MACAddress {
        let mac = try mac(text)
        if StationMACProblem.check(mac) != nil {
            throw APIError(.badRequest, "mac \(mac) is not a unicast station address")
        }
        return mac
    }

    static func address(_ text: String) throws -> IPAddress {
        guard let address = IPAddress(text) else {
            throw APIError(.badRequest, "remote \(jsonString(text)) is not an IP address")
        }
        return address
    }

    /// A MAC/IP entry's inner addresses (the `ips` field): each an address a station may hold, no
    /// duplicates, at most `limit`.
    static func stationAddresses(_ texts: [String]?, limit: Int = 64) throws -> [IPAddress] {
        guard let texts else { return [] }
        guard texts.count <= limit else { throw APIError(.badRequest, "ips lists \(texts.count) addresses (at most \(limit))") }
        var addresses: [IPAddress] = []
        for text in texts {
            guard let address = IPAddress(text) else {
                throw APIError(.badRequest, "ips: \(jsonString(text)) is not an IP address")
            }
            if let reason = neighbourAddressProblem(address) { throw APIError(.badRequest, "ips: \(reason)") }
            guard !addresses.contains(address) else { throw APIError(.badRequest, "ips: \(address) is listed twice") }
            addresses.append(address)
        }
        return addresses
    }

    /// A remote VTEP named by a client: unicast, the underlay's family, not this router.
    static func remoteVTEP(_ text: String, local: IPAddress) throws -> IPAddress {
        let address = try address(text)
        switch RemoteVTEPProblem.check(address, local: local) {
        case nil: return address
        case .family(let family, let underlay):
            throw APIError(.badRequest, "remote \(address) is \(familyName(family)) but the underlay is \(familyName(underlay))")
        case .isLocal: throw APIError(.badRequest, "remote \(address) is this router's own address")
        case .unspecified, .multicast: throw APIError(.badRequest, "remote \(address) is not a unicast address")
        }
    }
}

/// Every route, in the order their methods are listed when one is not allowed.
struct RouteTable: Sendable {
    let routes: [Route]

    enum Match {
        case found(Route, [String: String])
        case methodNotAllowed([HTTPMethod])
        case notFound
    }

    func match(_ method: HTTPMethod, _ path: String) -> Match {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        // The most literal pattern wins: `/fdb/flush` before `/fdb/{mac}`.
        let candidates = routes.compactMap { route in route.parameters(parts).map { (route, $0) } }
        guard let best = candidates.map({ $0.0.literalCount }).max() else { return .notFound }
        let matching = candidates.filter { $0.0.literalCount == best }
        if let found = matching.first(where: { $0.0.method == method }) { return .found(found.0, found.1) }
        return .methodNotAllowed(matching.map(\.0.method))
    }

    /// Whether any route at `path` needs the token although it is a read.
    func exposesTraffic(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        return routes.contains { $0.exposesTraffic && $0.parameters(parts) != nil }
    }

    /// What a request would do, for the privilege check.
    func requestKind(_ method: HTTPMethod, _ path: String) -> RequestKind {
        if case .found(let route, _) = match(method, path), route.answersAsRead { return .read }
        return RequestKind(method: method, exposesTraffic: exposesTraffic(path))
    }

    /// The response for a route that answers with one body (not a stream).
    func respond(_ request: APIRequest, service: any RouterService) async -> APIResponse {
        switch match(request.method, request.path) {
        case .notFound:
            return .error(.notFound, "no such route: \(request.method.rawValue) \(request.path) (see api/openapi.yaml)")
        case .methodNotAllowed(let allowed):
            return .error(
                .methodNotAllowed,
                "\(request.method.rawValue) is not allowed on \(request.path) (allowed: \(allowed.map(\.rawValue).joined(separator: ", ")))"
            )
        case .found(let route, let parameters):
            guard case .respond(let handler) = route.action else {
                return .error(.internalServerError, "\(route.pattern) is a stream")
            }
            do {
                return try await handler(RouteRequest(request: request, parameters: parameters, service: service))
            } catch {
                return .from(error)
            }
        }
    }

    /// GET /metrics: Prometheus text. One route, served by the control endpoint and by the
    /// metrics listener alike.
    static let metricsRoute = Route(.GET, APIPath.metrics, .respond { r in
        APIResponse(
            status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
            body: Array(try await r.service.metricsText().utf8))
    })

    /// The metrics listener (`metrics.listen`): /metrics and nothing else (404; 405 for another
    /// method on /metrics). Readable by anyone who reaches the port; it grants nothing.
    static let metrics = RouteTable(routes: [metricsRoute])

    static let control = RouteTable(routes: [
        metricsRoute,
        Route(.GET, APIPath.health, .respond { r in try .encoded(try await r.service.health()) }),
        Route(.GET, APIPath.version, .respond { _ in try .encoded(VersionInfo()) }),
        Route(.GET, APIPath.config, .respond { r in try .encoded(try await r.service.effectiveConfig()) }),
        Route(.GET, APIPath.stats, .respond { r in try .encoded(try await r.service.stats()) }),
        Route(.GET, APIPath.remotes, .respond { r in try .encoded(RemoteList(remotes: try await r.service.remotes())) }),
        Route(.GET, APIPath.networks, .respond { r in try .encoded(NetworkList(networks: try await r.service.networks())) }),
        Route(.GET, APIPath.events, .events),
        Route(.GET, APIPath.cluster, .respond { r in try .encoded(try await r.service.cluster()) }),
        Route(.GET, APIPath.capture, .respond { r in try .encoded(try await r.service.captureStatus()) }),
        Route(.POST, APIPath.capture, .respond { r in
            try .encoded(try await r.service.startFileCapture(try r.captureBody()), status: .created)
        }),
        Route(.DELETE, APIPath.capture, .respond { r in try .encoded(try await r.service.stopCapture()) }),
        Route(.GET, APIPath.captureStream, exposesTraffic: true, .captureStream),
        Route(.POST, APIPath.trace, answersAsRead: true, .respond { r in try .encoded(try await r.service.trace(try r.traceInput())) }),
        Route(.POST, APIPath.reload, .respond { r in
            try r.emptyBody("reload takes no parameters (it re-reads the config file): send no body or {}")
            return try .encoded(try await r.service.reload())
        }),
        Route(.GET, "/v1/networks/{vni}/fdb", .respond { r in try .encoded(try await r.service.fdb(vni: try r.vni())) }),
        Route(.GET, "/v1/networks/{vni}/stations", .respond { r in
            try .encoded(try await r.service.stations(vni: try r.vni()))
        }),
        Route(.POST, "/v1/networks/{vni}/fdb", .respond { r in
            let vni = try r.vni()
            let body = try r.body(StaticEntryRequest.self)
            let mac = try RequestRules.stationMAC(body.mac)
            let remote = try RequestRules.remoteVTEP(body.remote, local: r.service.underlayLocal)
            let ips = try RequestRules.stationAddresses(body.ips)
            let (entry, created) = try await r.service.setStaticEntry(vni: vni, mac: mac, remote: remote, ips: ips)
            return try .encoded(entry, status: created ? .created : .ok)
        }),
        Route(.POST, "/v1/networks/{vni}/fdb/flush", .respond { r in
            let vni = try r.vni()
            try r.emptyBody("flush takes no parameters: send no body or {}")
            let removed = try await r.service.flushLearned(vni: vni)
            return try .encoded(FlushResult(vni: Int(vni.rawValue), removed: removed))
        }),
        Route(.DELETE, "/v1/networks/{vni}/fdb/{mac}", .respond { r in
            let vni = try r.vni()
            let mac = try RequestRules.mac(r.parameters["mac"] ?? "")
            return try .encoded(try await r.service.deleteEntry(vni: vni, mac: mac))
        }),
        Route(.GET, "/v1/networks/{vni}/flood", .respond { r in try .encoded(try await r.service.flood(vni: try r.vni())) }),
        Route(.POST, "/v1/networks/{vni}/flood", .respond { r in
            let vni = try r.vni()
            let body = try r.body(FloodRequest.self)
            let remote = try RequestRules.remoteVTEP(body.remote, local: r.service.underlayLocal)
            let (list, created) = try await r.service.addFlood(vni: vni, remote: remote)
            return try .encoded(list, status: created ? .created : .ok)
        }),
        Route(.DELETE, "/v1/networks/{vni}/flood/{remote}", .respond { r in
            let vni = try r.vni()
            let remote = try RequestRules.address(r.parameters["remote"] ?? "")
            return try .encoded(try await r.service.removeFlood(vni: vni, remote: remote))
        }),
    ])
}
