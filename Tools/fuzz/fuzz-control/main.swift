// The control API's request parsing (VXControl: the request target, the route table, the body and
// parameter rules; VXConfig's capture rule), through `ControlExchange`, the handler's own steps
// without a socket. Input: one byte choosing the method, the request target up to the first
// newline, then the body. Every input must be answered, never with a crash or a 5xx: either a 2xx
// whose typed call reached the service with values that pass the rules (a served VNI, a station
// MAC, a remote VTEP the underlay can reach, distinct inner addresses), or a 4xx with a JSON
// `{"error": {"status", "message"}}` naming what is wrong — and then nothing reached the service
// that would change anything (every input is checked before the first write).
#if canImport(Glibc)
    import Glibc
#endif
import Dispatch
import Foundation
import Synchronization
import VXCapture
import VXConfig
import VXControl
import VXControlAPI
import VXFuzzSupport
import VXRouter
import VXWire

/// A change the service was asked for, with its typed arguments.
enum Change {
    case setStatic(VNI, MACAddress, IPAddress, [IPAddress])
    case delete(VNI, MACAddress)
    case flush(VNI)
    case addFlood(VNI, IPAddress)
    case removeFlood(VNI, IPAddress)
    case fileCapture(CaptureSpec)
    case streamCapture(CaptureSpec)
    case stopCapture
}

/// A service that accepts whatever reaches it (so parsing is all that can refuse a request) and
/// records each change.
final class RecordingService: RouterService {
    let servedVNIs = [VNI(42)!, VNI(43)!]
    let underlayLocal = IPAddress("198.18.0.1")!
    let changes = Mutex<[Change]>([])
    var captureRule: CaptureRequestRule {
        CaptureRequestRule(served: ServedVNIs(servedVNIs), underlayFamily: .v4, captureDirectory: "/nonexistent")
    }

    func record(_ change: Change) { changes.withLock { $0.append(change) } }
    func served(_ vni: VNI) { fuzzCheck(servedVNIs.contains(vni), "the service got VNI \(vni), which is not served") }

    func health() async throws -> Health { Health(uptimeSeconds: 1) }
    func effectiveConfig() async throws -> EffectiveConfig {
        EffectiveConfig(
            underlay: .init(local: "198.18.0.1", port: 4789, sourcePorts: "49152-65535", mtu: 1500), workers: 1,
            networks: [], control: .init(listen: "unix:/x", tokenRequired: false))
    }
    func stats() async throws -> Stats {
        Stats(
            uptimeSeconds: 1, totals: Traffic(), networks: [], unattributed: Traffic(), remotes: [], workers: [],
            events: EventCounters(published: 0, dropped: 0, subscribers: 0),
            capture: CaptureCounters(running: 0, records: 0, ringFullTotal: 0))
    }
    func remotes() async throws -> [Remote] { [] }
    func networks() async throws -> [NetworkSummary] { [] }
    func metricsText() async throws -> String { "vxrouter_workers 1\n" }
    func fdb(vni: VNI) async throws -> FDBList {
        served(vni)
        return FDBList(vni: vni.rawValue, entries: [])
    }
    func stations(vni: VNI) async throws -> StationList {
        served(vni)
        return StationList(vni: vni.rawValue, stations: [], refused: 0)
    }
    func setStaticEntry(vni: VNI, mac: MACAddress, remote: IPAddress, ips: [IPAddress]) async throws
        -> (entry: FDBEntry, created: Bool)
    {
        record(.setStatic(vni, mac, remote, ips))
        return (FDBEntry(mac: mac.description, remote: remote.description, type: .static), true)
    }
    func deleteEntry(vni: VNI, mac: MACAddress) async throws -> FDBEntry {
        record(.delete(vni, mac))
        return FDBEntry(mac: mac.description, remote: "198.18.0.2", type: .static)
    }
    func flushLearned(vni: VNI) async throws -> Int {
        record(.flush(vni))
        return 0
    }
    func flood(vni: VNI) async throws -> FloodList {
        served(vni)
        return FloodList(vni: vni.rawValue, remotes: [])
    }
    func addFlood(vni: VNI, remote: IPAddress) async throws -> (list: FloodList, created: Bool) {
        record(.addFlood(vni, remote))
        return (FloodList(vni: vni.rawValue, remotes: [remote.description]), true)
    }
    func removeFlood(vni: VNI, remote: IPAddress) async throws -> FloodList {
        record(.removeFlood(vni, remote))
        return FloodList(vni: vni.rawValue, remotes: [])
    }
    func captureStatus() async throws -> CaptureStatus { CaptureStatus(capture: nil, ringFullTotal: 0) }
    // The router checks capture parameters with this same rule (Router.captureSpec) and answers 400.
    func startFileCapture(_ parameters: CaptureParameters) async throws -> CaptureStatus {
        do {
            let spec = try captureRule.spec(parameters, fileAllowed: true)
            guard spec.file != nil else { throw ServiceError(.invalid, "missing field \"file\"") }
            record(.fileCapture(spec))
        } catch let error as CaptureRequestError {
            throw ServiceError(.invalid, error.message)
        }
        return CaptureStatus(capture: nil, ringFullTotal: 0)
    }
    func startStreamCapture(_ parameters: CaptureParameters, into sink: any CaptureStreamSink) async throws {
        do {
            record(.streamCapture(try captureRule.spec(parameters, fileAllowed: false)))
        } catch {
            throw ServiceError(.invalid, error.message)
        }
    }
    func stopCapture() async throws -> CaptureStatus {
        record(.stopCapture)
        return CaptureStatus(capture: nil, ringFullTotal: 0)
    }
    /// A read: parsing decides everything; a traced TAP frame must name a served VNI.
    func trace(_ input: TraceInput) async throws -> TraceResponse {
        if case .tap(let vni, _) = input { served(vni) }
        return TraceResponse(
            from: "tap", vni: nil, tap: nil, action: .drop, dropReason: nil, steps: [], remotes: [],
            outerSourcePort: nil, fdbEntry: nil, answer: nil, icmpTooBig: nil, learn: nil, checksum: nil)
    }
    func subscribe(_ sink: any EventSink) {}
    func unsubscribe(_ sink: any EventSink) {}
}

final class Answer: @unchecked Sendable {
    var exchange: ControlExchange?
}

let service = RecordingService()
let methods = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD"]

func answerOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = fuzzInput(start, count)
    guard let first = input.first else { return 0 }
    let method = methods[Int(first) % methods.count]
    let rest = input.dropFirst()
    let newline = rest.firstIndex(of: 0x0A) ?? rest.endIndex
    let target = String(decoding: rest[..<newline], as: UTF8.self)
    let body = Array(rest[newline...].dropFirst())
    service.changes.withLock { $0.removeAll() }

    let answer = Answer()
    let done = DispatchSemaphore(value: 0)
    Task {
        answer.exchange = await ControlExchange.answer(method: method, target: target, body: body, service: service)
        done.signal()
    }
    done.wait()
    guard let exchange = answer.exchange else { fatalError("no answer") }
    let changes = service.changes.withLock { $0 }
    let request = "\(method) \(target.debugDescription) body \(String(decoding: body.prefix(200), as: UTF8.self).debugDescription)"

    fuzzCheck(
        (200..<300).contains(exchange.status) || (400..<500).contains(exchange.status),
        "status \(exchange.status) for \(request): \(String(decoding: exchange.body, as: UTF8.self))")
    if exchange.status >= 400 {
        fuzzCheck(exchange.contentType == "application/json", "an error as \(exchange.contentType)")
        let error = try? JSONDecoder().decode(ErrorBody.self, from: Data(exchange.body))
        fuzzCheck(error?.error.status == exchange.status, "an error body with its status for \(request)")
        fuzzCheck(error.map { !$0.error.message.isEmpty } ?? false, "an error without a message for \(request)")
        fuzzCheck(changes.isEmpty, "\(request) was refused (\(exchange.status)) after it reached the service: \(changes)")
        return 0
    }
    if exchange.contentType == "application/json" {
        fuzzCheck((try? JSONSerialization.jsonObject(with: Data(exchange.body))) != nil, "a 2xx body that is not JSON")
    }
    // A change is made once per request, only by a change method; a GET changes nothing (but the stream starts a capture).
    switch method {
    case "POST", "DELETE": fuzzCheck(changes.count == 1, "\(request) answered \(exchange.status) with \(changes.count) changes")
    default:
        let streams = changes.filter { if case .streamCapture = $0 { true } else { false } }.count
        fuzzCheck(changes.count == streams && streams <= 1, "\(request) changed \(changes)")
    }
    for change in changes {
        switch change {
        case .setStatic(let vni, let mac, let remote, let ips):
            service.served(vni)
            fuzzCheck(StationMACProblem.check(mac) == nil, "static entry for \(mac), not a station MAC")
            fuzzCheck(RemoteVTEPProblem.check(remote, local: service.underlayLocal) == nil, "static entry to \(remote)")
            fuzzCheck(ips.count <= 64 && Set(ips.map(\.description)).count == ips.count, "ips \(ips)")
            fuzzCheck(ips.allSatisfy { neighbourAddressProblem($0) == nil }, "ips \(ips)")
        case .addFlood(let vni, let remote):
            service.served(vni)
            fuzzCheck(RemoteVTEPProblem.check(remote, local: service.underlayLocal) == nil, "flood member \(remote)")
        case .delete(let vni, _), .flush(let vni), .removeFlood(let vni, _): service.served(vni)
        case .fileCapture(let spec):
            fuzzCheck(spec.file.map { !$0.isEmpty && !$0.contains("/") } ?? false, "a capture file \(String(describing: spec.file)), not a name")
        case .streamCapture(let spec): fuzzCheck(spec.file == nil, "a stream capture with a file")
        case .stopCapture: break
        }
    }
    return 0
}

fuzzMain(answerOne)
