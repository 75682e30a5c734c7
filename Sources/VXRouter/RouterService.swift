// What a running router offers whoever steers it — the HTTP endpoint today, the cluster client
// next: typed reads and changes, each run on the control thread (the tables' only writer) and
// answered once the change is visible to forwarding. Callers never see the `Router` itself.
//
// Values that are fixed for the router's life (the VNIs served, the underlay address, the
// capture directory) are plain properties, so a caller can check a request before it queues it.
import VXCapture
import VXConfig
import VXControlAPI
import VXWire

/// Why a service call changed nothing. The HTTP layer maps the kind to a status (400, 404, 409, 503).
public struct ServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The request is malformed or breaks a rule (400).
        case invalid
        /// What it names does not exist (404).
        case notFound
        /// It cannot be done in the current state: a table is full, a capture already runs (409).
        case conflict
        /// The router is stopping (503).
        case stopping
        /// Something failed that the request could not help (500).
        case failed
    }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    static let stopping = ServiceError(.stopping, "the router is stopping")
}

/// A Server-Sent Events connection the event hub offers formatted messages to.
public protocol EventSink: AnyObject, Sendable {
    /// Any thread: queues `message`; false when the sink's buffer is full (the event is lost).
    func offer(_ message: String) -> Bool
}

/// A live capture's destination (the stream route's connection): whole pcap records in order.
public protocol CaptureStreamSink: AnyObject, Sendable {
    /// Writer thread: queues `bytes`, waiting up to `patience` for room.
    func offer(_ bytes: [UInt8], patience: Duration) -> StreamDelivery
    /// Writer thread: the capture ended.
    func finish()
}

/// The typed service. Every call but the constant properties hops to the control thread.
public protocol RouterService: Sendable {
    /// The VNIs this router serves, in config order (changed only by a reload).
    var servedVNIs: [VNI] { get }
    /// `underlay.local`: a remote VTEP must be of its family and not it.
    var underlayLocal: IPAddress { get }

    func health() async throws -> Health
    func effectiveConfig() async throws -> EffectiveConfig
    func stats() async throws -> Stats
    func remotes() async throws -> [Remote]
    func networks() async throws -> [NetworkSummary]
    /// Prometheus text (version 0.0.4).
    func metricsText() async throws -> String

    func fdb(vni: VNI) async throws -> FDBList
    /// The stations behind the network's TAP (MACs seen sending, IPs claimed by ARP/ND).
    func stations(vni: VNI) async throws -> StationList
    /// Adds or replaces a static entry whose MAC holds exactly `ips` (answered by ARP/ND
    /// suppression; empty = none); `created` is false when it replaced one.
    func setStaticEntry(vni: VNI, mac: MACAddress, remote: IPAddress, ips: [IPAddress]) async throws
        -> (entry: FDBEntry, created: Bool)
    func deleteEntry(vni: VNI, mac: MACAddress) async throws -> FDBEntry
    /// Removes every learned entry; the number removed.
    func flushLearned(vni: VNI) async throws -> Int

    func flood(vni: VNI) async throws -> FloodList
    /// `created` is false when the remote was already on the list.
    func addFlood(vni: VNI, remote: IPAddress) async throws -> (list: FloodList, created: Bool)
    func removeFlood(vni: VNI, remote: IPAddress) async throws -> FloodList

    func captureStatus() async throws -> CaptureStatus
    /// Starts a capture into a file in the capture directory.
    func startFileCapture(_ parameters: CaptureParameters) async throws -> CaptureStatus
    /// Starts a capture into `sink`; throws (and starts nothing) when the request is refused.
    func startStreamCapture(_ parameters: CaptureParameters, into sink: any CaptureStreamSink) async throws
    func stopCapture() async throws -> CaptureStatus

    /// `GET /v1/cluster`: the cluster client's state; `notFound` when cluster mode is off.
    func cluster() async throws -> ClusterInfo
    /// What the datapath would do with a frame and why (`vxrouter trace`), read from the live
    /// tables without sending, learning or counting anything.
    func trace(_ input: TraceInput) async throws -> TraceResponse
    /// Re-reads the config file the router was started with and applies what changed, all or
    /// nothing (README "Running it in production"): `.conflict` names the key that cannot change
    /// live, `.invalid` a config that does not validate.
    func reload() async throws -> ReloadResult

    /// FDB events (learn, move, age-out, FDB full) from now on, as SSE messages.
    func subscribe(_ sink: any EventSink)
    func unsubscribe(_ sink: any EventSink)
}

extension RouterService {
    /// A router without cluster mode.
    public func cluster() async throws -> ClusterInfo {
        throw ServiceError(.notFound, "cluster mode is off (no `cluster:` in the config, no --cluster)")
    }
}

/// A frame to trace, its fields checked by the caller.
public enum TraceInput: Sendable, Equatable {
    /// Read from the TAP of the network serving `vni`.
    case tap(vni: VNI, frame: [UInt8])
    /// Received from VTEP `remote`: the UDP payload (VXLAN header and inner frame).
    case tunnel(remote: IPAddress, payload: [UInt8])
}

/// A started control endpoint, stopped by the router when it stops.
public protocol ControlEndpoint: AnyObject, Sendable {
    var address: ControlAddress { get }
    func shutdown()
}

extension RouterService {
    /// For services that cannot reload (test fakes, in-process steerers): refused.
    public func reload() async throws -> ReloadResult {
        throw ServiceError(.conflict, "this service cannot reload its config")
    }
}
