// The router's answers and changes behind `RouterService` (api/openapi.yaml documents the
// routes that reach them). Everything here runs on the control thread, the only writer of the
// FDBs, flood lists and remote table, so reads see a consistent table and a change is in the
// datapath's tables before the caller hears back.
//
// A refused change throws a `ServiceError` and changes nothing: every input is checked before
// the first write.
import Foundation
import VXConfig
import VXControlAPI
import VXDatapath
import VXPlatform
import VXWire

extension Traffic {
    /// The counters of `rows` summed, every name present (zeros included).
    init(_ snapshot: CounterSnapshot, rows: some Sequence<Int>) {
        var counters: [String: UInt64] = [:]
        var drops: [String: UInt64] = [:]
        for counter in TrafficCounter.allCases { counters[counter.name] = 0 }
        for reason in DropReason.allCases { drops[reason.name] = 0 }
        for row in rows {
            for counter in TrafficCounter.allCases { counters[counter.name, default: 0] &+= snapshot[row, counter] }
            for reason in DropReason.allCases { drops[reason.name, default: 0] &+= snapshot[row, drop: reason] }
        }
        self.init(counters: counters, drops: drops)
    }
}

extension Router {
    // MARK: Reads

    var uptimeSeconds: UInt64 { (monotonicMilliseconds() - startedAt) / 1000 }

    /// The network serving `vni`, or `notFound` naming the ones served.
    func network(_ vni: VNI) throws(ServiceError) -> Network {
        guard let network = networks.first(where: { $0.vni == vni }) else {
            throw ServiceError(.notFound, ServedVNIs(networks.map(\.vni)).notServed(vni))
        }
        return network
    }

    func networkSummary(_ network: Network) -> NetworkSummary {
        let net = settings[network.index]
        return NetworkSummary(
            vni: network.vni.rawValue, tap: net.tap, mtu: network.mtu, learning: net.learning, ageing: net.ageing,
            maxEntries: network.fdb.maxEntries, fdbEntries: network.fdb.count,
            flood: network.flood.current.map { remotes.address($0).description })
    }

    /// The config as running: MTUs and worker count resolved, flood lists and static entries as
    /// they are now (changes through the API included).
    func effectiveConfig() -> EffectiveConfig {
        let nets = networks.map { network -> EffectiveConfig.Network in
            let net = settings[network.index]
            let statics = network.fdb.entries().filter { $0.entry.isStatic }.sorted { $0.entry.mac < $1.entry.mac }
            return EffectiveConfig.Network(
                vni: network.vni.rawValue, tap: net.tap, mtu: network.mtu, address: net.address?.description,
                learning: net.learning, ageing: net.ageing, maxEntries: network.fdb.maxEntries,
                flood: network.flood.current.map { remotes.address($0).description },
                fdb: statics.map {
                    EffectiveConfig.StaticEntry(
                        mac: $0.entry.mac.description, remote: remotes.address($0.entry.remote).description)
                },
                // `allow_from: known` shows as ["known"]; otherwise the prefixes (empty = any).
                allowFrom: network.knownOnly ? ["known"] : net.allowFrom.map(\.description))
        }
        let ports = config.underlay.sourcePorts
        return EffectiveConfig(
            underlay: .init(
                local: config.underlay.local.description, port: config.underlay.port,
                sourcePorts: "\(ports.lowerBound)-\(ports.upperBound)", mtu: underlayMTU),
            workers: counters.count, networks: nets,
            control: .init(listen: config.control.listen.description, tokenRequired: tokenRequired))
    }

    func statsBody() -> Stats {
        let perWorker = counters.map { $0.snapshot() }
        let totals = perWorker.reduce(CounterSnapshot(rows: slotCount + 1), +)
        let nets = networks.map { network in
            NetworkStats(
                vni: network.vni.rawValue, tap: settings[network.index].tap, fdbEntries: network.fdb.count,
                floodRemotes: network.flood.current.count, learnFdbFull: fdbFull[network.index],
                learnRemotesFull: remoteTableFull[network.index],
                traffic: Traffic(totals, rows: [network.index]),
                kernelTapDrops: Interfaces.transmitDrops(settings[network.index].tap))
        }
        return Stats(
            uptimeSeconds: uptimeSeconds, totals: Traffic(totals, rows: 0...slotCount), networks: nets,
            unattributed: Traffic(totals, rows: [slotCount]), remotes: remotesBody(),
            workers: perWorker.enumerated().map {
                WorkerStats(
                    worker: $0, traffic: Traffic($1, rows: 0...slotCount),
                    kernelSocketDrops: $0 < links.count ? links[$0].kernelDrops() : nil)
            },
            events: EventCounters(
                published: eventHub.published.load(ordering: .relaxed),
                dropped: eventHub.dropped.load(ordering: .relaxed),
                subscribers: UInt64(eventHub.subscriberCount)),
            capture: CaptureCounters(
                running: capture == nil ? 0 : 1, records: capture?.summary.records ?? 0,
                ringFullTotal: captureTap.refusedTotal),
            refusedSources: refusedSourceCounts())
    }

    /// The workers' tables of refused strangers, merged (at most `RefusedSourceCounts.limit` listed).
    func refusedSourceCounts() -> RefusedSourceCounts {
        let merged = RefusedSources.merge(refusedSources.map { $0.snapshot() }, limit: RefusedSourceCounts.limit)
        return RefusedSourceCounts(
            sources: merged.sources.map { .init(address: $0.address.description, packets: $0.packets) },
            otherPackets: merged.other)
    }

    func remotesBody() -> [Remote] {
        let count = remotes.count
        let sums = remoteCounters.reduce(RemoteCounterSnapshot(rows: count)) { $0 + $1.snapshot(rows: count) }
        var entriesPerRemote = [Int](repeating: 0, count: count)
        for network in networks {
            for (entry, _) in network.fdb.entries() where Int(entry.remote.rawValue) < count {
                entriesPerRemote[Int(entry.remote.rawValue)] += 1
            }
        }
        let nowMs = monotonicMilliseconds()
        return (0..<count).map { i in
            let index = RemoteIndex(rawValue: UInt16(i))
            let path = pathMTU(of: index)
            var drops: [String: UInt64] = [:]
            for reason in DropReason.allCases { drops[reason.name] = sums[index, drop: reason] }
            return Remote(
                address: remotes.address(index).description,
                lastHeardSecondsAgo: i < lastHeard.count && lastHeard[i] != 0 ? (nowMs - lastHeard[i]) / 1000 : nil,
                rxPackets: sums[index, .rxPackets], rxBytes: sums[index, .rxBytes],
                txPackets: sums[index, .txPackets], txBytes: sums[index, .txBytes], drops: drops,
                floodVnis: networks.filter { $0.flood.current.contains(index) }.map(\.vni.rawValue),
                fdbEntries: entriesPerRemote[i], pathMTU: path.mtu, pathMTULearned: path.learned)
        }
    }

    func entryBody(_ entry: ForwardingTable.Entry, lastSeen: UInt32, now: UInt32, ips: [IPAddress] = []) -> FDBEntry {
        FDBEntry(
            mac: entry.mac.description, remote: remotes.address(entry.remote).description,
            type: entry.isStatic ? .static : .learned, ageSeconds: entry.isStatic ? nil : now &- lastSeen,
            ips: ips.isEmpty ? nil : ips.map(\.description))
    }

    func fdbBody(_ network: Network) -> FDBList {
        let now = monotonicSeconds()
        let entries = network.fdb.entries().sorted { $0.entry.mac < $1.entry.mac }
        return FDBList(
            vni: network.vni.rawValue,
            entries: entries.map {
                entryBody($0.entry, lastSeen: $0.lastSeen, now: now, ips: network.neighbours.ips(of: $0.entry.mac))
            })
    }

    func stationsBody(_ network: Network) -> StationList {
        let now = monotonicSeconds()
        let table = localStations[network.index]
        return StationList(
            vni: network.vni.rawValue,
            stations: table.stations.sorted { $0.key < $1.key }.map { mac, station in
                LocalStation(
                    mac: mac.description, ips: station.addresses.keys.sorted().map(\.description),
                    ageSeconds: now &- station.lastSeen)
            },
            refused: table.refused)
    }

    func floodBody(_ network: Network) -> VXControlAPI.FloodList {
        VXControlAPI.FloodList(vni: network.vni.rawValue, remotes: network.flood.current.map { remotes.address($0).description })
    }

    // MARK: Changes (the caller has applied the request rules: MAC unicast, remote a VTEP)

    /// Keeps `allow_from: known` equal to what the network names: its flood list and the remotes
    /// of its static entries. Called after every change to either.
    func noteKnownVTEPs(_ network: Network) {
        guard network.knownOnly else { return }
        let statics = network.fdb.entries().lazy.filter(\.entry.isStatic).map(\.entry.remote)
        network.known.set(network.flood.current + statics)
    }

    func setStatic(_ network: Network, mac: MACAddress, remote address: IPAddress, ips: [IPAddress] = [])
        throws(ServiceError) -> (entry: FDBEntry, created: Bool)
    {
        if network.fdb.lookup(mac) == nil, network.fdb.count >= network.fdb.maxEntries {
            throw ServiceError(
                .conflict, "the FDB of vni \(network.vni) is full (max_entries \(network.fdb.maxEntries)); delete or flush entries first")
        }
        // Checked before the first write, so a refused request changes nothing.
        guard network.neighbours.fits(ips, for: mac) else {
            throw ServiceError(
                .conflict, "the MAC/IP table of vni \(network.vni) is full (\(network.neighbours.maxEntries) addresses)")
        }
        guard let remote = remotes.intern(address) else {
            throw ServiceError(.conflict, "the remote VTEP table is full (\(remotes.capacity) addresses)")
        }
        let outcome = network.fdb.setStatic(mac, remote: remote)
        network.neighbours.setIPs(ips, of: mac)
        noteKnownVTEPs(network)
        // The MAC is behind another VTEP now (the cluster or the operator says so): no longer a
        // station of ours to publish. Should it still send from the TAP, it is seen again.
        localStations[network.index].forget(mac)
        logger.info(
            "static FDB entry set",
            metadata: [
                "vni": "\(network.vni)", "mac": "\(mac)", "remote": "\(address)",
                "ips": "\(ips.map(\.description).joined(separator: ","))",
            ])
        return (
            FDBEntry(
                mac: mac.description, remote: address.description, type: .static,
                ips: ips.isEmpty ? nil : ips.map(\.description)),
            outcome == .added
        )
    }

    func deleteEntry(_ network: Network, _ mac: MACAddress) throws(ServiceError) -> FDBEntry {
        guard let old = network.fdb.remove(mac) else {
            throw ServiceError(.notFound, "vni \(network.vni) has no FDB entry for \(mac)")
        }
        // The MAC's addresses go with its entry: suppression never answers for a MAC we cannot reach.
        let ips = network.neighbours.removeIPs(of: mac)
        noteKnownVTEPs(network)
        logger.info("FDB entry deleted", metadata: ["vni": "\(network.vni)", "mac": "\(mac)"])
        return entryBody(old, lastSeen: 0, now: 0, ips: ips)
    }

    func addFlood(_ network: Network, _ address: IPAddress) throws(ServiceError) -> (list: VXControlAPI.FloodList, created: Bool) {
        var members = network.flood.current
        if let existing = remotes.existingIndex(address), members.contains(existing) {
            return (floodBody(network), false)
        }
        guard members.count < network.flood.capacity else {
            throw ServiceError(.conflict, "the flood list of vni \(network.vni) is full (\(network.flood.capacity) remotes)")
        }
        guard let remote = remotes.intern(address) else {
            throw ServiceError(.conflict, "the remote VTEP table is full (\(remotes.capacity) addresses)")
        }
        members.append(remote)
        network.flood.set(members)
        noteKnownVTEPs(network)
        logger.info("flood list: added", metadata: ["vni": "\(network.vni)", "remote": "\(address)"])
        return (floodBody(network), true)
    }

    func removeFlood(_ network: Network, _ address: IPAddress) throws(ServiceError) -> VXControlAPI.FloodList {
        guard let index = remotes.existingIndex(address), network.flood.current.contains(index) else {
            throw ServiceError(.notFound, "\(address) is not on the flood list of vni \(network.vni)")
        }
        network.flood.set(network.flood.current.filter { $0 != index })
        noteKnownVTEPs(network)
        logger.info("flood list: removed", metadata: ["vni": "\(network.vni)", "remote": "\(address)"])
        return floodBody(network)
    }
}
