// `GET /metrics`: every counter in the Prometheus text exposition format (version 0.0.4), with
// HELP and TYPE lines, conventional `_total` counters and `vni`/`reason`/`remote`/`worker` labels.
// Built on the control thread from the workers' counters, summed on demand.
import Foundation
import VXControlAPI
import VXDatapath
import VXPlatform
import VXWire

struct MetricsWriter {
    private(set) var text = ""

    mutating func family(_ name: String, _ type: String, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: UInt64) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " \(value)\n"
    }

    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}

extension TrafficCounter {
    var help: String {
        switch self {
        case .tapRxPackets: "Frames read from the network's TAP (drops included)."
        case .tapRxBytes: "Bytes of frames read from the network's TAP."
        case .tunnelTxPackets: "VXLAN packets the kernel accepted for sending (one per flood copy)."
        case .tunnelTxBytes: "Bytes (UDP header onwards) of VXLAN packets sent."
        case .tunnelRxPackets: "VXLAN packets accepted from the tunnel."
        case .tunnelRxBytes: "Bytes (VXLAN header onwards) of VXLAN packets accepted."
        case .tapTxPackets: "Frames written to the network's TAP."
        case .tapTxBytes: "Bytes of frames written to the network's TAP."
        case .floodedFrames: "Frames sent to the flood list rather than one VTEP."
        case .learnQueueFull: "Learn events lost because a worker's queue to the control thread was full."
        case .checksumUnfinished: "Frames from the tunnel with an unfinished inner TCP/UDP checksum, accepted."
        case .neighAnswered: "ARP requests and neighbour solicitations from the TAP answered from MAC/IP entries."
        case .neighFlooded: "ARP requests and neighbour solicitations for addresses no MAC/IP entry knows (forwarded)."
        case .neighUnanswerable: "Malformed or unsupported ARP/neighbour solicitation frames from the TAP (forwarded)."
        case .pmtuSignalled: "ICMP too-big messages sent to inner senders whose frames did not fit the underlay."
        case .pmtuPathSignalled: "Of those, the ones sent because a remote's learned path MTU was smaller than the underlay's."
        }
    }
}

extension Router {
    func metricsText() -> String {
        var out = MetricsWriter()
        let perWorker = counters.map { $0.snapshot() }
        let totals = perWorker.reduce(CounterSnapshot(rows: slotCount + 1), +)
        let vniLabel = { (network: Network) in ("vni", "\(network.vni)") }

        out.family("vxrouter_build_info", "gauge", "Always 1; the version in a label.")
        out.sample("vxrouter_build_info", [("version", vxrouterVersion)], 1)
        out.family("vxrouter_uptime_seconds", "gauge", "Seconds since the router started.")
        out.sample("vxrouter_uptime_seconds", [], uptimeSeconds)
        out.family(
            "vxrouter_capture_ring_full_total", "counter",
            "Packet capture copies refused by full worker rings (the capture's loss, never a forwarded packet's).")
        out.sample("vxrouter_capture_ring_full_total", [], captureTap.refusedTotal)
        out.family("vxrouter_capture_running", "gauge", "1 while a packet capture runs.")
        out.sample("vxrouter_capture_running", [], capture == nil ? 0 : 1)
        out.family("vxrouter_network_up", "gauge", "1 while the network forwards; 0 once its TAP failed (see /v1/health).")
        for network in networks {
            out.sample("vxrouter_network_up", [vniLabel(network)], failedNetworks[network.index] == nil ? 1 : 0)
        }
        out.family("vxrouter_workers", "gauge", "Worker threads.")
        out.sample("vxrouter_workers", [], UInt64(counters.count))

        for counter in TrafficCounter.allCases {
            let name = "vxrouter_\(counter.name)_total"
            out.family(name, "counter", counter.help)
            for network in networks { out.sample(name, [vniLabel(network)], totals[network.index, counter]) }
        }
        out.family(
            "vxrouter_drops_total", "counter",
            "Packets not forwarded, by reason; vni=\"none\" for packets no served network can own.")
        for network in networks {
            for reason in DropReason.allCases {
                out.sample("vxrouter_drops_total", [vniLabel(network), ("reason", reason.name)], totals[network.index, drop: reason])
            }
        }
        for reason in DropReason.allCases {
            out.sample("vxrouter_drops_total", [("vni", "none"), ("reason", reason.name)], totals[slotCount, drop: reason])
        }

        out.family("vxrouter_fdb_entries", "gauge", "FDB entries, by type.")
        for network in networks {
            let statics = network.fdb.entries().reduce(0) { $0 + ($1.entry.isStatic ? 1 : 0) }
            out.sample("vxrouter_fdb_entries", [vniLabel(network), ("type", "static")], UInt64(statics))
            out.sample("vxrouter_fdb_entries", [vniLabel(network), ("type", "learned")], UInt64(network.fdb.count - statics))
        }
        out.family("vxrouter_fdb_max_entries", "gauge", "FDB capacity (max_entries).")
        for network in networks { out.sample("vxrouter_fdb_max_entries", [vniLabel(network)], UInt64(network.fdb.maxEntries)) }
        out.family("vxrouter_flood_remotes", "gauge", "Remote VTEPs on the network's flood list.")
        for network in networks { out.sample("vxrouter_flood_remotes", [vniLabel(network)], UInt64(network.flood.current.count)) }
        out.family("vxrouter_learn_fdb_full_total", "counter", "MACs not learned because the FDB was full.")
        for network in networks { out.sample("vxrouter_learn_fdb_full_total", [vniLabel(network)], fdbFull[network.index]) }
        out.family("vxrouter_learn_remotes_full_total", "counter", "MACs not learned because the remote VTEP table was full.")
        for network in networks { out.sample("vxrouter_learn_remotes_full_total", [vniLabel(network)], remoteTableFull[network.index]) }
        out.family("vxrouter_local_stations", "gauge", "Stations seen sending from the network's TAP (GET /v1/networks/{vni}/stations).")
        for network in networks {
            out.sample("vxrouter_local_stations", [vniLabel(network)], UInt64(localStations[network.index].stations.count))
        }
        out.family("vxrouter_local_stations_refused_total", "counter", "New stations behind the TAP not listed: the table was full.")
        for network in networks {
            out.sample("vxrouter_local_stations_refused_total", [vniLabel(network)], localStations[network.index].refused)
        }

        // Per remote VTEP.
        let count = remotes.count
        let sums = remoteCounters.reduce(RemoteCounterSnapshot(rows: count)) { $0 + $1.snapshot(rows: count) }
        out.family("vxrouter_remotes", "gauge", "Remote VTEPs known (configured, added or heard from).")
        out.sample("vxrouter_remotes", [], UInt64(count))
        let remoteFamilies: [(RemoteCounter, String, String)] = [
            (.rxPackets, "vxrouter_remote_rx_packets_total", "VXLAN packets accepted from the remote VTEP."),
            (.rxBytes, "vxrouter_remote_rx_bytes_total", "Bytes of VXLAN packets accepted from the remote VTEP."),
            (.txPackets, "vxrouter_remote_tx_packets_total", "VXLAN packets sent to the remote VTEP."),
            (.txBytes, "vxrouter_remote_tx_bytes_total", "Bytes of VXLAN packets sent to the remote VTEP."),
        ]
        for (counter, name, help) in remoteFamilies {
            out.family(name, "counter", help)
            for i in 0..<count {
                let index = RemoteIndex(rawValue: UInt16(i))
                out.sample(name, [("remote", remotes.address(index).description)], sums[index, counter])
            }
        }
        out.family("vxrouter_remote_drops_total", "counter", "Packets from or to the remote VTEP not forwarded, by reason.")
        for i in 0..<count {
            let index = RemoteIndex(rawValue: UInt16(i))
            for reason in DropReason.allCases where sums[index, drop: reason] > 0 {
                out.sample(
                    "vxrouter_remote_drops_total", [("remote", remotes.address(index).description), ("reason", reason.name)],
                    sums[index, drop: reason])
            }
        }

        // Strangers refused by allow_from: the most refused sources only, so spoofed addresses
        // cannot multiply the series (RefusedSourceCounts.limit).
        let refused = refusedSourceCounts()
        out.family(
            "vxrouter_refused_source_packets_total", "counter",
            "Packets refused by allow_from from a source not in the remote table, for the most refused sources.")
        for source in refused.sources {
            out.sample("vxrouter_refused_source_packets_total", [("source", source.address)], source.packets)
        }
        out.family(
            "vxrouter_refused_sources_other_packets_total", "counter",
            "Packets refused by allow_from from sources not in the remote table and not listed by source.")
        out.sample("vxrouter_refused_sources_other_packets_total", [], refused.otherPackets)

        // Per worker: how evenly the kernel spreads the load.
        let workerFamilies: [TrafficCounter] = [.tapRxPackets, .tunnelTxPackets, .tunnelRxPackets, .tapTxPackets]
        for counter in workerFamilies {
            let name = "vxrouter_worker_\(counter.name)_total"
            out.family(name, "counter", counter.help + " Per worker, all networks.")
            for (w, snapshot) in perWorker.enumerated() {
                let value = (0..<slotCount).reduce(UInt64(0)) { $0 &+ snapshot[$1, counter] }
                out.sample(name, [("worker", String(w))], value)
            }
        }
        out.family("vxrouter_worker_drops_total", "counter", "Packets a worker did not forward, all reasons and networks.")
        for (w, snapshot) in perWorker.enumerated() {
            let value = (0...slotCount).reduce(UInt64(0)) { $0 &+ snapshot.dropTotal(row: $1) }
            out.sample("vxrouter_worker_drops_total", [("worker", String(w))], value)
        }
        // What the kernel dropped before the router saw it: a loss the router's own counters
        // cannot show (a CPU-starved worker, a receive buffer too small for a burst).
        out.family(
            "vxrouter_kernel_socket_drops_total", "counter",
            "Datagrams the kernel dropped at a worker's receive socket (buffer full, bad UDP checksum).")
        for (w, link) in links.enumerated() {
            if let drops = link.kernelDrops() { out.sample("vxrouter_kernel_socket_drops_total", [("worker", String(w))], drops) }
        }
        out.family("vxrouter_kernel_tap_drops_total", "counter", "Frames the kernel dropped at the TAP before the router read them (queue full).")
        for network in networks {
            if let drops = Interfaces.transmitDrops(settings[network.index].tap) {
                out.sample("vxrouter_kernel_tap_drops_total", [vniLabel(network)], drops)
            }
        }

        out.family("vxrouter_events_published_total", "counter", "FDB events published to the event stream.")
        out.sample("vxrouter_events_published_total", [], eventHub.published.load(ordering: .relaxed))
        out.family("vxrouter_events_dropped_total", "counter", "Events a slow event-stream subscriber did not get.")
        out.sample("vxrouter_events_dropped_total", [], eventHub.dropped.load(ordering: .relaxed))
        out.family("vxrouter_event_subscribers", "gauge", "Open event-stream connections.")
        out.sample("vxrouter_event_subscribers", [], UInt64(eventHub.subscriberCount))
        return out.text
    }
}
