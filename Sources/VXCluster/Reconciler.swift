// The reconciler: what the cluster says (a snapshot kept from a listing at revision R plus the
// watch events since) against what is programmed, as a list of actions. Level-triggered, as
// Kubernetes controllers are: `plan()` compares whole states, so the same step serves a watch
// event, the re-list after a compaction or a lost watch, and the periodic anti-entropy pass; a
// missed event is healed by the next pass instead of drifting (flannel #533, moby #35401).
//
// Pure: no I/O, no clock. The caller applies the actions and reports each one that took effect
// (`applied`); one that failed is simply planned again next pass.
import VXWire

public struct ClusterReconciler: Sendable {
    public let keys: ClusterKeys
    /// This router's host id: its own records never become remote entries or flood members.
    public let selfID: String
    public let servedVNIs: Set<VNI>
    /// This router's underlay port: the one it sends every remote to (the tables hold addresses
    /// only). A member publishing another port could not be reached, so it is not programmed but
    /// reported (`excluded`, `portMismatches`, a `.portMismatch` event). nil: no check.
    public let port: UInt16?

    public private(set) var snapshot = ClusterSnapshot()
    /// The store revision the snapshot is consistent at (resume a watch from `revision + 1`).
    public private(set) var revision: Int64 = 0
    /// What the tables hold from the cluster, as far as the actions applied say.
    public private(set) var programmed = ClusterTablesState()

    /// MACs two live hosts claim with the same sequence, each counted once while it lasts.
    public private(set) var conflicts: UInt64 = 0
    public private(set) var activeConflicts: Set<MACInVNI> = []
    /// Differences an anti-entropy pass found between the tables and the cluster.
    public private(set) var corrections: UInt64 = 0
    public private(set) var moves: UInt64 = 0
    /// Members left out of the tables, by host id, with why (their records count for nothing
    /// here until they publish a usable host record).
    public private(set) var excluded: [String: Exclusion] = [:]
    /// Times a member was found publishing an underlay port other than ours (once per appearance).
    public private(set) var portMismatches: UInt64 = 0

    /// A member this router cannot program, and why.
    public struct Exclusion: Sendable, Equatable {
        public var address: String
        public var port: UInt16
        public var reason: String
    }

    public struct MACInVNI: Hashable, Sendable {
        public var vni: VNI
        public var mac: MACAddress
    }

    public init(keys: ClusterKeys, selfID: String, servedVNIs: some Sequence<VNI>, port: UInt16? = nil) {
        self.keys = keys
        self.selfID = selfID
        self.servedVNIs = Set(servedVNIs)
        self.port = port
    }

    // MARK: What the cluster says

    /// Replaces the snapshot with a full listing at `revision`; joins and leaves against the
    /// previous snapshot.
    public mutating func relist(_ keyValues: [EtcdKeyValue], revision: Int64) -> [ClusterEvent] {
        let before = snapshot.hosts
        var fresh = ClusterSnapshot()
        for keyValue in keyValues {
            if let key = keys.parse(keyValue.key) { fresh.apply(key, value: keyValue.value) }
        }
        snapshot = fresh
        self.revision = revision
        return Self.hostEvents(before: before, after: snapshot.hosts, selfID: selfID)
    }

    /// Applies watch events (in order) from a response whose header says `revision`.
    ///
    /// The snapshot's revision moves to the last event's own revision, not the header's: a
    /// watch catching up on more than etcd sends at once (1,000 revisions) gets its first batch
    /// with the store's current revision in the header and the rest after it, so taking the
    /// header would skip those (as older than the snapshot) and resume past them after a lost
    /// stream — etcd's clientv3 resumes from the last event too. Only an empty response (a
    /// progress notification: nothing of ours up to there) advances to the header's revision.
    public mutating func apply(_ events: [EtcdEvent], revision: Int64) -> [ClusterEvent] {
        let before = snapshot.hosts
        var seen = self.revision
        for event in events {
            // Older than the snapshot (a re-list overtook a lagging watch): already in it.
            if event.keyValue.modRevision != 0, event.keyValue.modRevision <= self.revision { continue }
            seen = max(seen, event.keyValue.modRevision)
            guard let key = keys.parse(event.keyValue.key) else { continue }
            snapshot.apply(key, value: event.kind == .put ? event.keyValue.value : nil)
        }
        let eventRevisions = events.allSatisfy { $0.keyValue.modRevision != 0 }
        self.revision = max(self.revision, events.isEmpty || !eventRevisions ? revision : seen)
        return Self.hostEvents(before: before, after: snapshot.hosts, selfID: selfID)
    }

    static func hostEvents(before: [String: HostRecord], after: [String: HostRecord], selfID: String) -> [ClusterEvent] {
        var events: [ClusterEvent] = []
        for (id, host) in after.sorted(by: { $0.key < $1.key }) where id != selfID {
            if let old = before[id] {
                if old.incarnation != host.incarnation { events.append(.restarted(host: id)) }
            } else {
                events.append(.joined(host: id, address: host.address))
            }
        }
        for id in before.keys.sorted() where after[id] == nil && id != selfID {
            events.append(.left(host: id))
        }
        return events
    }

    // MARK: Desired state

    /// The tables the snapshot asks for, and the MACs claimed by two live hosts at the same
    /// sequence. A claim counts only while its host is live in the same incarnation. With `port`,
    /// a member on another underlay port is neither a flood member nor an entry's remote: it would
    /// be programmed and silently unreachable, since the datapath sends every remote to one port
    /// (its claims still compete, so a MAC that moved there loses its entry). Among the
    /// claims of a MAC the highest sequence wins (mobility); a tie keeps what `current` has
    /// programmed (no flapping), else this host's own claim, else the lowest host id. A MAC this
    /// host wins is local: no remote entry.
    public static func desired(
        _ snapshot: ClusterSnapshot, selfID: String, servedVNIs: Set<VNI>, current: ClusterTablesState,
        port: UInt16? = nil
    ) -> (state: ClusterTablesState, conflicts: [(MACInVNI, claimants: [String], kept: String)]) {
        func usableAddress(_ id: String, incarnation: String) -> IPAddress? {
            guard let address = snapshot.liveAddress(id, incarnation: incarnation) else { return nil }
            if let port, id != selfID, snapshot.hosts[id]?.port != port { return nil }
            return address
        }
        var state = ClusterTablesState()
        var conflicts: [(MACInVNI, claimants: [String], kept: String)] = []
        for vni in servedVNIs {
            var members = Set<IPAddress>()
            for (id, record) in snapshot.flood[vni] ?? [:] where id != selfID {
                if let address = usableAddress(id, incarnation: record.incarnation) { members.insert(address) }
            }
            if !members.isEmpty { state.flood[vni] = members }

            var entries: [MACAddress: RemoteMACEntry] = [:]
            for (mac, claims) in snapshot.macs[vni] ?? [:] {
                let live = claims.compactMap { id, record -> (id: String, address: IPAddress, record: MACRecord)? in
                    guard let address = snapshot.liveAddress(id, incarnation: record.incarnation) else { return nil }
                    return (id, address, record)
                }
                guard let top = live.map(\.record.sequence).max() else { continue }
                let tied = live.filter { $0.record.sequence == top }.sorted { $0.id < $1.id }
                var winner = tied[0]
                if tied.count > 1 {
                    let programmedRemote = current.entries[vni]?[mac]?.remote
                    if let kept = tied.first(where: { $0.address == programmedRemote && $0.id != selfID }) {
                        winner = kept
                    } else if let own = tied.first(where: { $0.id == selfID }) {
                        winner = own
                    }
                    conflicts.append((MACInVNI(vni: vni, mac: mac), tied.map(\.id), winner.id))
                }
                guard winner.id != selfID else { continue }
                // Behind a member on another port: no entry rather than one pointing at the host
                // the MAC left (its claim still takes part, so a move there is not missed).
                guard usableAddress(winner.id, incarnation: winner.record.incarnation) != nil else { continue }
                entries[mac] = RemoteMACEntry(
                    remote: winner.address, ips: winner.record.ips.compactMap { IPAddress($0) }.sorted(),
                    owner: winner.id, sequence: winner.record.sequence)
            }
            if !entries.isEmpty { state.entries[vni] = entries }
        }
        return (state, conflicts)
    }

    /// The actions that turn `programmed` into `desired`: flood additions, entry sets (add or
    /// replace), entry removals, flood removals — each group in VNI, then address/MAC order.
    public static func diff(desired: ClusterTablesState, programmed: ClusterTablesState) -> [ClusterAction] {
        var floodAdds: [ClusterAction] = []
        var floodRemoves: [ClusterAction] = []
        var sets: [ClusterAction] = []
        var removes: [ClusterAction] = []
        let vnis = Set(desired.flood.keys).union(programmed.flood.keys).union(desired.entries.keys)
            .union(programmed.entries.keys).sorted()
        for vni in vnis {
            let want = desired.flood[vni] ?? []
            let have = programmed.flood[vni] ?? []
            floodAdds += want.subtracting(have).sorted().map { .addFlood(vni: vni, remote: $0) }
            floodRemoves += have.subtracting(want).sorted().map { .removeFlood(vni: vni, remote: $0) }

            let wantEntries = desired.entries[vni] ?? [:]
            let haveEntries = programmed.entries[vni] ?? [:]
            for (mac, entry) in wantEntries.sorted(by: { $0.key < $1.key }) {
                if let existing = haveEntries[mac], existing.programsLike(entry) { continue }
                sets.append(.setEntry(vni: vni, mac: mac, entry: entry))
            }
            for mac in haveEntries.keys.sorted() where wantEntries[mac] == nil {
                removes.append(.removeEntry(vni: vni, mac: mac))
            }
        }
        return floodAdds + sets + removes + floodRemoves
    }

    /// This pass's actions (and the conflict and move events it finds). Conflicts are counted
    /// once when they appear, not on every pass.
    public mutating func plan() -> (actions: [ClusterAction], events: [ClusterEvent]) {
        let (state, found) = Self.desired(snapshot, selfID: selfID, servedVNIs: servedVNIs, current: programmed, port: port)
        var events: [ClusterEvent] = []
        // Members on another port: reported once when they appear (or change port), forgotten
        // when they leave or come back on ours.
        var nowExcluded: [String: Exclusion] = [:]
        if let port {
            for (id, host) in snapshot.hosts.sorted(by: { $0.key < $1.key }) where id != selfID && host.port != port {
                let exclusion = Exclusion(
                    address: host.address, port: host.port,
                    reason: "underlay port \(host.port) differs from this router's \(port): not programmed")
                nowExcluded[id] = exclusion
                if excluded[id] != exclusion {
                    portMismatches += 1
                    events.append(.portMismatch(host: id, address: host.address, port: host.port, expected: port))
                }
            }
        }
        excluded = nowExcluded
        var nowActive: Set<MACInVNI> = []
        for (key, claimants, kept) in found.sorted(by: { ($0.0.vni, $0.0.mac) < ($1.0.vni, $1.0.mac) }) {
            nowActive.insert(key)
            if !activeConflicts.contains(key) {
                conflicts += 1
                events.append(.conflict(vni: key.vni, mac: key.mac, claimants: claimants, kept: kept))
            }
        }
        activeConflicts = nowActive
        let actions = Self.diff(desired: state, programmed: programmed)
        for case .setEntry(let vni, let mac, let entry) in actions {
            if let old = programmed.entries[vni]?[mac], old.remote != entry.remote {
                moves += 1
                events.append(
                    .moved(vni: vni, mac: mac, from: old.owner ?? old.remote.description, to: entry.owner ?? entry.remote.description))
            }
        }
        return (actions, events)
    }

    /// Records that `action` took effect in the tables.
    public mutating func applied(_ action: ClusterAction) {
        switch action {
        case .addFlood(let vni, let remote):
            programmed.flood[vni, default: []].insert(remote)
        case .removeFlood(let vni, let remote):
            programmed.flood[vni]?.remove(remote)
            if programmed.flood[vni]?.isEmpty == true { programmed.flood[vni] = nil }
        case .setEntry(let vni, let mac, let entry):
            programmed.entries[vni, default: [:]][mac] = entry
        case .removeEntry(let vni, let mac):
            programmed.entries[vni]?[mac] = nil
            if programmed.entries[vni]?.isEmpty == true { programmed.entries[vni] = nil }
        }
    }

    /// Anti-entropy: takes `actual` (read back from the tables) as the programmed state and plans
    /// against it; every action is a correction of drift and is counted.
    public mutating func antiEntropy(actual: ClusterTablesState) -> (actions: [ClusterAction], events: [ClusterEvent]) {
        // Keep owner and sequence where the tables agree with what we programmed.
        var merged = actual
        for (vni, entries) in actual.entries {
            for (mac, entry) in entries {
                if let known = programmed.entries[vni]?[mac], known.programsLike(entry) { merged.entries[vni]?[mac] = known }
            }
        }
        programmed = merged
        let result = plan()
        corrections += UInt64(result.actions.count)
        return result
    }

    // MARK: Publishing

    /// The sequence this host publishes for a MAC it has just learned: above every live claim by
    /// another host (the MAC moved here), 0 when nobody else claims it.
    public func sequenceForLocal(vni: VNI, mac: MACAddress) -> UInt64 {
        let claims = snapshot.macs[vni]?[mac] ?? [:]
        let others = claims.filter { id, record in
            id != selfID && snapshot.liveAddress(id, incarnation: record.incarnation) != nil
        }
        guard let top = others.values.map(\.sequence).max() else { return 0 }
        return top + 1
    }
}
