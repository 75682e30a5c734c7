// Live reload (README "Running it in production"): SIGHUP and `POST /v1/reload` re-read the config
// the router was started with and apply what changed, on the control thread, all or nothing.
//
//  1. read and validate the file (a config that fails changes nothing: `.invalid`);
//  2. ConfigDiff: the changes, or the key that cannot change live (`.conflict`, nothing changed);
//  3. check everything that can still fail before touching anything: free network slots, room in
//     the remote table and the FDBs, new TAPs opened and brought up, a new `capture:` file opened
//     (on failure what was opened is closed again);
//  4. apply, which cannot fail: flood and static deltas on the networks kept (API-made entries stay
//     as they are); a network whose datapath settings changed is rebuilt in its slot around its TAP
//     with its tables copied; new networks take free slots;
//  5. when the network set changed, publish a new generation to the workers
//     (NetworkGeneration.swift); the TAPs of removed networks are closed (and so deleted, when
//     made here) only after every worker acknowledged it (`finishRetirement`).
// Traffic on what did not change never stops: its Network object, TAP queues and counters stay.
import Foundation
import Logging
import Synchronization
import VXCapture
import VXConfig
import VXControlAPI
import VXDatapath
import VXPlatform
import VXWire

/// The VNIs the control endpoint serves: read by request handlers on any thread, written by the
/// control thread on reload. Not on the packet path, so a lock is fine.
final class ServedVNIBox: Sendable {
    private let state: Mutex<[VNI]>
    init(_ vnis: [VNI]) { state = Mutex(vnis) }
    var vnis: [VNI] {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}

/// Each served network's config, by slot. Control thread only.
struct SlotSettings {
    private var bySlot: [NetworkConfig?]
    init(slots: Int) { bySlot = Array(repeating: nil, count: slots) }
    subscript(slot: Int) -> NetworkConfig {
        get { bySlot[slot]! }
        set { bySlot[slot] = newValue }
    }
    mutating func clear(_ slot: Int) { bySlot[slot] = nil }
    /// Each slot's TAP name ("" for a free slot), indexed by slot as the datapath's networks are.
    var taps: [String] { bySlot.map { $0?.tap ?? "" } }
}

extension Router {
    /// SIGHUP: reload and say how it went in the log (the journal, under systemd).
    func reloadFromSignal() {
        do {
            let result = try reload()
            if result.changes.isEmpty { logger.info("reload: the config is unchanged") }
        } catch {
            // `reload` logged the refusal with its key already.
            _ = error
        }
    }

    /// Re-reads the config and applies the difference; throws having changed nothing.
    func reload() throws(ServiceError) -> ReloadResult {
        guard let reloadSource else {
            let message = "started without a config file (--config): nothing to reload"
            logger.error("reload refused", metadata: ["reason": "\(message)"])
            throw ServiceError(.conflict, message)
        }
        let new: RouterConfig
        do { new = try reloadSource() } catch {
            logger.error("reload refused: the config does not load; nothing changed", metadata: ["error": "\(error)"])
            throw ServiceError(.invalid, "the config does not load, nothing changed: \(error)")
        }
        let changes: [ConfigChange]
        switch ConfigDiff.changes(from: config, to: new) {
        case .failure(let refusal):
            logger.error(
                "reload refused: \(refusal.key) cannot change live; nothing changed",
                metadata: ["key": "\(refusal.key)", "reason": "\(refusal.reason)"])
            throw ServiceError(.conflict, refusal.description)
        case .success(let list):
            changes = list
        }
        if changes.isEmpty {
            config = new
            return ReloadResult(changes: [])
        }
        do { try apply(changes, new) } catch {
            logger.error(
                "reload refused: \(error.message); nothing changed", metadata: ["kind": "\(error.kind)"])
            throw error
        }
        for change in changes { logger.info("reload: \(change)") }
        logger.info("reloaded", metadata: ["changes": "\(changes.count)", "networks": "\(networks.count)"])
        return ReloadResult(changes: changes.map(Self.body))
    }

    static func body(_ change: ConfigChange) -> ReloadChange {
        switch change {
        case .networkAdded(let vni): ReloadChange(kind: .networkAdded, vni: vni.rawValue)
        case .networkRemoved(let vni): ReloadChange(kind: .networkRemoved, vni: vni.rawValue)
        case .floodAdded(let vni, let remote): ReloadChange(kind: .floodAdded, vni: vni.rawValue, remote: "\(remote)")
        case .floodRemoved(let vni, let remote): ReloadChange(kind: .floodRemoved, vni: vni.rawValue, remote: "\(remote)")
        case .staticAdded(let vni, let mac): ReloadChange(kind: .staticAdded, vni: vni.rawValue, mac: "\(mac)")
        case .staticRemoved(let vni, let mac): ReloadChange(kind: .staticRemoved, vni: vni.rawValue, mac: "\(mac)")
        case .staticChanged(let vni, let mac): ReloadChange(kind: .staticChanged, vni: vni.rawValue, mac: "\(mac)")
        case .settingChanged(let vni, let key): ReloadChange(kind: .settingChanged, vni: vni?.rawValue, key: key)
        }
    }

    /// Steps 3–5 of the file comment. Throws only from step 3, before anything changed.
    private func apply(_ changes: [ConfigChange], _ new: RouterConfig) throws(ServiceError) {
        // Let the previous reload settle first, so its slots and TAPs are accounted for.
        waitForWorkers()
        finishRetirement()

        let kept = Dictionary(uniqueKeysWithValues: networks.map { ($0.vni, $0) })
        let removed = Set(changes.compactMap { if case .networkRemoved(let vni) = $0 { vni } else { nil } })
        let added = new.networks.filter { kept[$0.vni] == nil }
        let rebuilt = Set(
            changes.compactMap { change -> VNI? in
                if case .settingChanged(let vni?, let key) = change, ConfigDiff.needsRebuild(key) { return vni }
                return nil
            })

        // Step 3: what can fail. Slots first.
        var free = freeSlots()
        guard free.count >= added.count else {
            throw ServiceError(
                .conflict,
                "networks: \(added.count) network(s) to add but room for \(free.count) more in this process (it keeps \(slotCount) slots); restart the router")
        }
        // Room in the remote table for every new flood member and static remote.
        var newRemotes = Set<IPAddress>()
        for net in new.networks {
            for address in net.flood + net.fdb.map(\.remote) where remotes.existingIndex(address) == nil {
                newRemotes.insert(address)
            }
        }
        guard remotes.count + newRemotes.count <= remotes.capacity else {
            throw ServiceError(.conflict, "networks: the remote VTEP table is full (\(remotes.capacity) addresses)")
        }
        // Room for new static entries in the FDBs and MAC/IP tables kept as they are.
        for (index, net) in new.networks.enumerated() {
            guard let network = kept[net.vni], !rebuilt.contains(net.vni) else { continue }
            let old = settings[network.index]
            let oldMACs = Set(old.fdb.map(\.mac))
            let newMACs = Set(net.fdb.map(\.mac))
            let growth = net.fdb.filter { !oldMACs.contains($0.mac) && network.fdb.lookup($0.mac) == nil }.count
            let shrink = old.fdb.filter { !newMACs.contains($0.mac) && network.fdb.lookup($0.mac) != nil }.count
            guard network.fdb.count - shrink + growth <= network.fdb.maxEntries else {
                throw ServiceError(
                    .conflict,
                    "networks[\(index)].fdb: vni \(net.vni): the FDB is full (max_entries \(network.fdb.maxEntries)); flush learned entries first")
            }
            for entry in net.fdb where !entry.ips.isEmpty && !network.neighbours.fits(entry.ips, for: entry.mac) {
                throw ServiceError(.conflict, "networks[\(index)].fdb: vni \(net.vni): the MAC/IP table is full")
            }
        }
        // A rebuilt network must hold its static entries (config and API-made) in its new FDB.
        for (index, net) in new.networks.enumerated() where rebuilt.contains(net.vni) {
            let network = kept[net.vni]!
            let statics = Set(network.fdb.entries().filter(\.entry.isStatic).map(\.entry.mac)).union(net.fdb.map(\.mac))
                .subtracting(settings[network.index].fdb.map(\.mac).filter { mac in !net.fdb.contains { $0.mac == mac } })
            guard statics.count <= net.maxEntries else {
                throw ServiceError(
                    .conflict,
                    "networks[\(index)].max_entries: vni \(net.vni): \(statics.count) static entries exceed max_entries (\(net.maxEntries))")
            }
        }
        // New TAPs, opened by the control thread and brought up before any worker sees them.
        var opened: [(slot: Int, tap: TapInterface, network: Network, config: NetworkConfig)] = []
        var newCapture: (CaptureSpec, InnerFilter?, PcapFileWriter)?
        do {
            for net in added {
                let slot = free.removeFirst()
                let network = Self.makeNetwork(
                    net, slot: slot, underlayMTU: underlayMTU, underlayMaxFrame: underlayMaxFrame, logger: logger)
                let tap = try TapInterface(name: net.tap, queueCount: loops.count, offloads: config.offloads)
                opened.append((slot, tap, network, net))
                if let steeredCPUs {
                    try CPUSteering.steer(tap, workerCPUs: steeredCPUs)
                } else {
                    try? CPUSteering.steerByFlow(tap)  // a persistent TAP may carry an earlier run's program
                }
                settings[slot] = net
                try bringUp(tap, network)
            }
            if new.capture != config.capture, let spec = new.capture {
                if let running = capture, running !== configCaptureSession {
                    throw ServiceError(.conflict, "capture: a capture started through the API is running; stop it first")
                }
                newCapture = try Self.openCaptureFile(spec)
            }
        } catch {
            for (slot, tap, _, _) in opened {
                tap.close()
                settings.clear(slot)
            }
            if let error = error as? ServiceError { throw error }
            throw ServiceError(.failed, "\(error)")
        }

        // Step 4: from here on nothing fails.
        for net in new.networks where kept[net.vni] != nil && !rebuilt.contains(net.vni) {
            applyTableChanges(kept[net.vni]!, from: settings[kept[net.vni]!.index], to: net)
        }
        var replaced: [Network] = []
        for net in new.networks where rebuilt.contains(net.vni) {
            let old = kept[net.vni]!
            let network = rebuild(old, as: net)
            replaced.append(network)
        }
        let replacedByVNI = Dictionary(uniqueKeysWithValues: replaced.map { ($0.vni, $0) })
        for (_, _, network, net) in opened {
            programTables(network, net)
            fdbFull[network.index] = 0
            remoteTableFull[network.index] = 0
            lastFullEvent[network.index] = 0
            localStations[network.index].removeAll()
            captureTap.vnis.set(network.vni, slot: network.index)
        }
        let openedByVNI = Dictionary(uniqueKeysWithValues: opened.map { ($0.network.vni, $0) })
        var next: [Network] = []
        for net in new.networks {
            if let network = replacedByVNI[net.vni] ?? kept[net.vni] {
                settings[network.index] = net
                next.append(network)
            } else if let new = openedByVNI[net.vni] {
                taps[new.slot] = new.tap
                slotsEverUsed = max(slotsEverUsed, new.slot + 1)
                next.append(new.network)
            }
        }
        let leaving = networks.filter { removed.contains($0.vni) }
        networks = next
        served.vnis = next.map(\.vni)
        config = new

        // Step 5.
        if !opened.isEmpty || !leaving.isEmpty || !replaced.isEmpty {
            let epoch = exchange.current.epoch + 1
            for network in leaving {
                settings.clear(network.index)
                if let tap = taps[network.index] { retiredTaps.append((epoch, network.index, tap)) }
                taps[network.index] = nil
                tapIndexes[network.index] = nil
                failedNetworks[network.index] = nil
            }
            exchange.publish(
                NetworkGeneration(
                    epoch: epoch, networks: next,
                    devices: (0..<loops.count).map { w in taps.map { $0?.queues[w] } }))
            for loop in loops { loop.reconfigure.signal() }
        }
        for (_, tap, network, net) in opened {
            logger.info(
                "network up",
                metadata: [
                    "vni": "\(network.vni)", "tap": "\(tap.name)", "mtu": "\(network.mtu)",
                    "flood": "\(net.flood.map(\.description).joined(separator: ","))",
                ])
        }
        if changes.contains(.settingChanged(nil, key: "capture")) { replaceConfigCapture(newCapture) }
    }

    /// Flood and static deltas between two configs of one network, applied to its live tables.
    private func applyTableChanges(_ network: Network, from old: NetworkConfig, to net: NetworkConfig) {
        var members = network.flood.current
        let gone = Set(old.flood.filter { !net.flood.contains($0) }.compactMap { remotes.existingIndex($0) })
        members.removeAll { gone.contains($0) }
        for address in net.flood where !old.flood.contains(address) {
            if let index = remotes.intern(address), !members.contains(index) { members.append(index) }
        }
        if members != network.flood.current { _ = network.flood.set(members) }
        let oldEntries = Dictionary(old.fdb.map { ($0.mac, $0) }, uniquingKeysWith: { _, last in last })
        let newMACs = Set(net.fdb.map(\.mac))
        for entry in old.fdb where !newMACs.contains(entry.mac) {
            if network.fdb.lookup(entry.mac)?.isStatic == true {
                _ = network.fdb.remove(entry.mac)
                _ = network.neighbours.removeIPs(of: entry.mac)
            }
        }
        for entry in net.fdb where oldEntries[entry.mac] != entry {
            guard let remote = remotes.intern(entry.remote) else { continue }
            _ = network.fdb.setStatic(entry.mac, remote: remote)
            _ = network.neighbours.setIPs(entry.ips, of: entry.mac)
        }
        noteKnownVTEPs(network)
    }

    /// A new Network in `old`'s slot with `net`'s settings and `old`'s tables: flood list, static
    /// entries (config and API-made, with their addresses), then learned entries as they fit.
    private func rebuild(_ old: Network, as net: NetworkConfig) -> Network {
        let network = Self.makeNetwork(
            net, slot: old.index, underlayMTU: underlayMTU, underlayMaxFrame: underlayMaxFrame, logger: logger)
        _ = network.flood.set(old.flood.current)
        let entries = old.fdb.entries()
        for (entry, _) in entries where entry.isStatic {
            _ = network.fdb.setStatic(entry.mac, remote: entry.remote)
            _ = network.neighbours.setIPs(old.neighbours.ips(of: entry.mac), of: entry.mac)
        }
        var dropped = 0
        if net.learning {
            for (entry, lastSeen) in entries where !entry.isStatic {
                if network.fdb.learn(entry.mac, behind: entry.remote, now: lastSeen) == .full { dropped += 1 }
            }
        }
        if dropped > 0 {
            logger.warning(
                "reload: learned entries beyond the new max_entries were dropped",
                metadata: ["vni": "\(net.vni)", "dropped": "\(dropped)"])
        }
        applyTableChanges(network, from: settings[old.index], to: net)
        return network
    }

    /// A new network's tables from its config (as `init` does for the networks it starts with).
    private func programTables(_ network: Network, _ net: NetworkConfig) {
        _ = network.flood.set(net.flood.compactMap { remotes.intern($0) })
        for entry in net.fdb {
            guard let remote = remotes.intern(entry.remote) else { continue }
            _ = network.fdb.setStatic(entry.mac, remote: remote)
            if !entry.ips.isEmpty { _ = network.neighbours.setIPs(entry.ips, of: entry.mac) }
        }
        noteKnownVTEPs(network)
    }

    /// Slots no network holds and no retiring TAP still occupies: never-used ones first, so a
    /// slot's counters start at zero whenever the process has room.
    private func freeSlots() -> [Int] {
        let busy = Set(networks.map(\.index)).union(retiredTaps.map(\.slot))
        let all = (0..<slotCount).filter { !busy.contains($0) }
        return all.filter { $0 >= slotsEverUsed } + all.filter { $0 < slotsEverUsed }
    }

    /// Control loop, each pass: once every worker acknowledged the generation that removed them,
    /// drop old generations and close removed networks' TAPs (a TAP made here vanishes with its
    /// last queue). Learn events still queued from a removed network are drained first (and
    /// dropped: no served network has its slot), so its slot can be reused safely.
    func finishRetirement() {
        guard let exchange else { return }
        let collected = exchange.collect()
        guard !collected.isEmpty || !retiredTaps.isEmpty else { return }
        let settledEpoch = exchange.oldestAcknowledged
        let done = retiredTaps.filter { $0.epoch <= settledEpoch }
        guard !done.isEmpty else { return }
        applyLearnEvents(now: monotonicSeconds())
        for (_, _, tap) in done {
            tap.close()
            logger.info("network down", metadata: ["tap": "\(tap.name)"])
        }
        retiredTaps.removeAll { $0.epoch <= settledEpoch }
    }

    /// The `capture:` section changed: the capture it started (if still running) stops, and the
    /// new one (its file opened already) starts.
    private func replaceConfigCapture(_ opened: (CaptureSpec, InnerFilter?, PcapFileWriter)?) {
        if let running = capture, running === configCaptureSession { stopCapture() }
        configCaptureSession = nil
        guard let (spec, filter, writer) = opened else { return }
        do {
            try startCapture(spec, filter: filter, sink: writer)
            configCaptureSession = capture
        } catch {
            logger.error("reload: the capture from the config did not start", metadata: ["error": "\(error)"])
        }
    }

    /// Waits (briefly: workers wake on `reconfigure`) until every worker runs the latest generation.
    func waitForWorkers() {
        guard let exchange else { return }
        var spins = 0
        while !exchange.settled, spins < 2000 {
            usleep(1000)
            spins += 1
        }
    }
}
