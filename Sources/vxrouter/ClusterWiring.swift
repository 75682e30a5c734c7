// Cluster mode wired to a running router: the cluster client (VXCluster) programs the tables
// through the router's service only, as the HTTP endpoint does.
//
// Cluster entries are static entries: data-plane learning cannot override them, and setting one
// replaces whatever the MAC had (a learned entry included) instead of failing on it (moby #53663).
// Flood members the config or API put there are never removed by the cluster.
import Foundation
import Logging
import VXCluster
import VXConfig
import VXControlAPI
import VXRouter
import VXWire

struct RouterClusterTables: ClusterTables {
    let service: any RouterService
    /// Flood members that were there before the cluster started (config): never the cluster's to remove.
    let configuredFlood: [VNI: Set<IPAddress>]
    let logger: Logger

    static func make(service: any RouterService, logger: Logger) async throws -> RouterClusterTables {
        var configured: [VNI: Set<IPAddress>] = [:]
        for vni in service.servedVNIs {
            configured[vni] = Set(try await service.flood(vni: vni).remotes.compactMap { IPAddress($0) })
        }
        return RouterClusterTables(service: service, configuredFlood: configured, logger: logger)
    }

    func apply(_ action: ClusterAction) async throws {
        switch action {
        case .addFlood(let vni, let remote):
            try check(remote)
            _ = try await service.addFlood(vni: vni, remote: remote)
        case .removeFlood(let vni, let remote):
            if configuredFlood[vni]?.contains(remote) == true { return }
            do {
                _ = try await service.removeFlood(vni: vni, remote: remote)
            } catch let error as ServiceError where error.kind == .notFound {}
        case .setEntry(let vni, let mac, let entry):
            guard !mac.isMulticast else { throw ServiceError(.invalid, "\(mac) is not a unicast MAC") }
            try check(entry.remote)
            // The entry's IPs feed ARP/ND suppression; an address the config or API would refuse
            // is left out (the MAC → VTEP mapping still holds).
            var ips: [IPAddress] = []
            for ip in entry.ips where neighbourAddressProblem(ip) == nil && !ips.contains(ip) { ips.append(ip) }
            _ = try await service.setStaticEntry(vni: vni, mac: mac, remote: entry.remote, ips: ips)
        case .removeEntry(let vni, let mac):
            do {
                _ = try await service.deleteEntry(vni: vni, mac: mac)
            } catch let error as ServiceError where error.kind == .notFound {}
        }
    }

    /// A remote from the cluster passes the same rule as one from the config or the API.
    func check(_ remote: IPAddress) throws {
        if let problem = RemoteVTEPProblem.check(remote, local: service.underlayLocal) {
            throw ServiceError(.invalid, "cluster remote \(remote): \(problem)")
        }
    }

    func actual(of programmed: ClusterTablesState) async throws -> ClusterTablesState {
        var actual = ClusterTablesState()
        let vnis = Set(programmed.flood.keys).union(programmed.entries.keys)
        for vni in vnis {
            let members = Set(try await service.flood(vni: vni).remotes.compactMap { IPAddress($0) })
            let flood = (programmed.flood[vni] ?? []).intersection(members)
            if !flood.isEmpty { actual.flood[vni] = flood }
            var entries: [MACAddress: RemoteMACEntry] = [:]
            let fdb = try await service.fdb(vni: vni)
            for row in fdb.entries where row.type == .static {
                guard let mac = MACAddress(row.mac), let remote = IPAddress(row.remote),
                    let mine = programmed.entries[vni]?[mac]
                else { continue }
                entries[mac] = RemoteMACEntry(remote: remote, ips: mine.ips, owner: nil, sequence: 0)
            }
            if !entries.isEmpty { actual.entries[vni] = entries }
        }
        return actual
    }

    /// The stations behind this router's TAPs: each network's TAP itself (its MAC, with the
    /// address the config gives it: published before it sends anything), and every station the
    /// router saw send from the TAP with the IPs it claimed by ARP/ND (`GET .../stations`; a
    /// bridge behind the TAP shows its stations there). A station that ages out is left out of
    /// the next publish, which withdraws its record.
    func localStations() async throws -> [VNI: [MACAddress: [IPAddress]]] {
        var stations: [VNI: [MACAddress: [IPAddress]]] = [:]
        for network in try await service.effectiveConfig().networks {
            guard let vni = VNI(network.vni) else { continue }
            var macs: [MACAddress: Set<IPAddress>] = [:]
            if let mac = Self.interfaceMAC(network.tap) {
                macs[mac] = Set(network.address.flatMap { IPPrefix($0) }.map { [$0.address] } ?? [])
            }
            for station in try await service.stations(vni: vni).stations {
                guard let mac = MACAddress(station.mac) else { continue }
                macs[mac, default: []].formUnion(station.ips.compactMap { IPAddress($0) })
            }
            stations[vni] = macs.mapValues { $0.sorted() }
        }
        return stations
    }

    static func interfaceMAC(_ name: String) -> MACAddress? {
        guard let text = try? String(contentsOfFile: "/sys/class/net/\(name)/address", encoding: .utf8) else { return nil }
        return MACAddress(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// The cluster client of one `vxrouter run`, started once the router's service exists and
/// stopped (lease revoked: a clean leave) when the router stops. It reports to the router through
/// `hook`: its state for `GET /v1/cluster` and /metrics, its events for the event stream.
final class ClusterRunner: @unchecked Sendable {
    private var task: Task<Void, Never>?
    private(set) var client: ClusterClient?

    /// `password`: read from cluster.password_file when the router started.
    func start(
        config: RouterConfig, cluster: ClusterConfig, password: String?, service: any RouterService, hook: ClusterHook,
        logger: Logger
    ) {
        var settings = ClusterSettings(
            endpoints: cluster.endpoints, overlay: cluster.name,
            hostID: cluster.hostID ?? config.underlay.local.description, address: config.underlay.local,
            port: config.underlay.port, servedVNIs: config.networks.map(\.vni), leaseTTL: Int64(cluster.leaseTTL))
        if cluster.usesTLS {
            settings.tls = EtcdTLS(caFile: cluster.caFile, certFile: cluster.certFile, keyFile: cluster.keyFile)
        }
        if let username = cluster.username, let password {
            settings.credentials = EtcdCredentials(username: username, password: password)
        }
        task = Task {
            // The service answers once the control thread runs; retried until it does.
            var tables: RouterClusterTables?
            while tables == nil, !Task.isCancelled {
                tables = try? await RouterClusterTables.make(service: service, logger: logger)
                if tables == nil { try? await Task.sleep(for: .milliseconds(100)) }
            }
            guard let tables else { return }
            let client = ClusterClient(settings: settings, tables: tables, logger: logger) { event in
                hook.publish(ClusterEventBody(event, time: Date().ISO8601Format()))
            }
            self.client = client
            hook.attach { await client.status() }
            await client.run()
        }
    }

    /// Cancels the client and waits (up to 3 s) for its lease to be revoked.
    func stop() {
        guard let task else { return }
        task.cancel()
        let done = DispatchSemaphore(value: 0)
        Task {
            await task.value
            done.signal()
        }
        _ = done.wait(timeout: .now() + 3)
    }
}

extension ClusterEventBody {
    init(_ event: ClusterEvent, time: String) {
        switch event {
        case .joined(let host, let address):
            self.init(type: .memberJoined, host: host, address: address, time: time)
        case .left(let host):
            self.init(type: .memberLeft, host: host, time: time)
        case .restarted(let host):
            self.init(type: .memberRestarted, host: host, time: time)
        case .moved(let vni, let mac, let from, let to):
            self.init(type: .macMoved, vni: vni.rawValue, mac: mac.description, from: from, to: to, time: time)
        case .conflict(let vni, let mac, let claimants, let kept):
            self.init(type: .macConflict, vni: vni.rawValue, mac: mac.description, claimants: claimants, kept: kept, time: time)
        case .portMismatch(let host, let address, let port, let expected):
            self.init(
                type: .memberExcluded, host: host, address: address, port: port,
                reason: "underlay port \(port) differs from this router's \(expected): not programmed", time: time)
        }
    }
}
