// One request through the control endpoint's own parsing without a socket: the body limit, the
// request target split and percent-decoded (`ControlHTTPHandler.splitTarget`), the route table
// with its body and parameter rules, and the service — the steps the HTTP handler takes after
// the caller's credentials or token have been checked. The control API's fuzz target
// (Tools/fuzz/fuzz-control) drives request parsing through it.
import NIOHTTP1
import VXCapture
import VXRouter

public struct ControlExchange: Sendable {
    /// The HTTP status of the answer.
    public var status: Int
    public var contentType: String
    public var body: [UInt8]

    /// The answer to `method target` with `body`. A stream route (events, the capture stream)
    /// answers 200 with no body once it would start streaming: its parameters are what is parsed.
    public static func answer(method: String, target: String, body: [UInt8], service: any RouterService) async
        -> ControlExchange
    {
        let response = await respond(HTTPMethod(rawValue: method), target: target, body: body, service: service)
        return ControlExchange(status: Int(response.status.code), contentType: response.contentType, body: response.body)
    }

    static func respond(_ method: HTTPMethod, target: String, body: [UInt8], service: any RouterService) async
        -> APIResponse
    {
        guard body.count <= ControlServer.maxBody else {
            return .error(.payloadTooLarge, "the request body is larger than \(ControlServer.maxBody) bytes")
        }
        guard let (path, query) = ControlHTTPHandler.splitTarget(target) else {
            return .error(.badRequest, "the request target is not a valid path")
        }
        let request = APIRequest(method: method, path: path, query: query, body: body)
        let routes = RouteTable.control
        if case .found(let route, _) = routes.match(method, path) {
            switch route.action {
            case .events: return APIResponse(status: .ok, contentType: "text/event-stream", body: [])
            case .captureStream:
                let parameters = RouteRequest(request: request, parameters: [:], service: service).captureQuery
                do {
                    try await service.startStreamCapture(parameters, into: DiscardingStream())
                    return APIResponse(status: .ok, contentType: "application/vnd.tcpdump.pcap", body: [])
                } catch {
                    return .from(error)
                }
            case .respond: break
            }
        }
        return await routes.respond(request, service: service)
    }
}

/// A capture stream nobody reads: every chunk is taken and forgotten.
final class DiscardingStream: CaptureStreamSink {
    func offer(_ bytes: [UInt8], patience: Duration) -> StreamDelivery { .delivered }
    func finish() {}
}
