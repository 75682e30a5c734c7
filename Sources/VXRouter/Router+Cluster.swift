// Cluster mode's side of the router. The cluster client lives in the executable (it needs the
// etcd client, which the router does not); the router offers it:
//  - a service, for programming the tables the way the HTTP endpoint does;
//  - a `ClusterHook`, through which it hands over how to read its state (for `GET /v1/cluster`
//    and the `vxrouter_cluster_*` metrics) and its events (for the event stream).
import Foundation
import Synchronization
import VXControlAPI

extension Router {
    /// The service for an in-process steerer (the cluster client), whether or not the control
    /// endpoint runs: the same calls, queued to the control thread the same way.
    public func makeService() -> any RouterService {
        RouterControl(
            queue: controlQueue, hub: eventHub, served: served, local: config.underlay.local,
            cluster: clusterBoard)
    }

    /// Where cluster mode reports to this router.
    public var clusterHook: ClusterHook { ClusterHook(board: clusterBoard, hub: eventHub) }
}

/// The router's window onto the cluster client: how to read its state (nil: cluster mode off).
final class ClusterBoard: Sendable {
    private let source = Mutex<(@Sendable () async -> ClusterInfo)?>(nil)

    func attach(_ status: @escaping @Sendable () async -> ClusterInfo) { source.withLock { $0 = status } }

    func info() async -> ClusterInfo? {
        guard let status = source.withLock({ $0 }) else { return nil }
        return await status()
    }
}

/// What the cluster client reports through: its state, read on demand, and its events.
public struct ClusterHook: Sendable {
    let board: ClusterBoard
    let hub: EventHub

    public func attach(status: @escaping @Sendable () async -> ClusterInfo) { board.attach(status) }

    /// Puts a cluster event on the event stream (`event:` its type).
    public func publish(_ event: ClusterEventBody) {
        guard hub.subscriberCount > 0 else {
            hub.published.add(1, ordering: .relaxed)
            return
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(event) else { return }
        hub.publish(event: event.type.rawValue, json: String(decoding: data, as: UTF8.self))
    }
}

extension ClusterInfo {
    /// The `vxrouter_cluster_*` families for /metrics.
    public var metricsText: String {
        var out = MetricsWriter()
        func gauge(_ name: String, _ help: String, _ value: UInt64) {
            out.family("vxrouter_cluster_\(name)", "gauge", help)
            out.sample("vxrouter_cluster_\(name)", [], value)
        }
        func counter(_ name: String, _ help: String, _ value: UInt64) {
            out.family("vxrouter_cluster_\(name)_total", "counter", help)
            out.sample("vxrouter_cluster_\(name)_total", [], value)
        }
        gauge("connected", "1 while the last call to etcd succeeded.", connected ? 1 : 0)
        gauge("revision", "The etcd revision the tables are in line with.", UInt64(max(0, revision)))
        gauge(
            "last_sync_seconds", "Seconds since the tables were last brought in line with etcd (0 before the first time).",
            UInt64(max(0, lastSyncSecondsAgo ?? 0)))
        gauge("lease_held", "1 while this router holds a lease.", leaseID == nil ? 0 : 1)
        gauge("members", "Hosts with a record in the overlay, this one included.", UInt64(members.count))
        gauge("flood_members", "Flood-list members programmed from the cluster, all VNIs.", UInt64(floodMembers))
        gauge("entries", "Remote MAC entries programmed from the cluster, all VNIs.", UInt64(entries))
        gauge("published_records", "Records this router holds in etcd.", UInt64(published))
        counter("relists", "Full listings of the overlay (start, compaction, lost watch, anti-entropy).", relists)
        counter("leases_granted", "Leases granted (1 + the times a lease was lost).", leasesGranted)
        counter("corrections", "Differences between the tables and the cluster repaired by anti-entropy.", corrections)
        counter("conflicts", "MACs found claimed by two live hosts with the same sequence.", conflicts)
        counter("moves", "MACs that moved from one host to another.", moves)
        counter("apply_failures", "Table changes the router refused (retried on the next pass).", applyFailures)
        gauge(
            "excluded_members", "Hosts left out because their underlay port is not ours (listed in GET /v1/cluster).",
            UInt64(excludedMembers.count))
        counter("port_mismatches", "Times a member was found on an underlay port other than ours.", portMismatches)
        return out.text
    }
}
