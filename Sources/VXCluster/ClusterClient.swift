// The runtime side of cluster mode: one task that publishes this router's records under a lease
// of its own and one that watches the overlay and programs the tables, both serialised through
// this actor (the reconciler's only owner). The router's tables are reached through
// `ClusterTables` only, so this builds and tests without the runtime.
//
// Faults, on purpose:
//  - etcd unreachable: nothing is purged; the tables keep the last state and forwarding goes on.
//    Both loops retry with a capped backoff; the status says `connected: false`.
//  - the lease lost (expired during a partition, revoked by an operator): a new lease is granted
//    and every record republished. The router never exits for it (flannel #904, #1240).
//  - the watch lost: resumed from the last revision; a compaction past it (or a resume that
//    fails) re-lists and applies the difference, level-triggered (flannel #533, #2524).
//  - a periodic anti-entropy pass reads the tables back and repairs (and counts) any drift.
import Foundation
import Logging
import VXControlAPI
import VXWire

/// What the cluster client needs from the router: its tables, through the router's service.
public protocol ClusterTables: Sendable {
    /// Programs one action. Entries are replaced, never exclusive-added; learning cannot
    /// override them.
    func apply(_ action: ClusterAction) async throws
    /// For anti-entropy: of `programmed`, what the tables really hold now.
    func actual(of programmed: ClusterTablesState) async throws -> ClusterTablesState
    /// The stations behind this router's TAPs, per VNI: MAC → IPs seen behind it.
    func localStations() async throws -> [VNI: [MACAddress: [IPAddress]]]
}

public struct ClusterSettings: Sendable {
    public var endpoints: [String]
    public var overlay: String
    public var hostID: String
    public var address: IPAddress
    public var port: UInt16
    public var servedVNIs: [VNI]
    public var leaseTTL: Int64
    /// TLS to etcd (https:// endpoints); nil: plain HTTP, or https with the system's roots.
    public var tls: EtcdTLS?
    /// etcd authentication; nil: none (etcd with auth off).
    public var credentials: EtcdCredentials?
    /// How often local stations are re-read and changes published.
    public var publishInterval: Duration = .seconds(2)
    /// How often the tables are read back and compared with the cluster.
    public var antiEntropyInterval: Duration = .seconds(30)
    /// Cap of the retry backoff while etcd is unreachable.
    public var maxBackoff: Duration = .seconds(5)
    /// How long a full listing of the overlay may take (other calls: 3 s). A 1,000-host overlay
    /// is ~43,000 keys, over 10 MB of JSON from the gateway; a timeout there would retry the
    /// listing forever and never converge.
    public var listTimeout: Duration = .seconds(60)

    public init(
        endpoints: [String], overlay: String, hostID: String, address: IPAddress, port: UInt16, servedVNIs: [VNI],
        leaseTTL: Int64
    ) {
        self.endpoints = endpoints
        self.overlay = overlay
        self.hostID = hostID
        self.address = address
        self.port = port
        self.servedVNIs = servedVNIs
        self.leaseTTL = leaseTTL
    }
}

public actor ClusterClient {
    public let settings: ClusterSettings
    public let incarnation: String
    let keys: ClusterKeys
    let etcd: EtcdClient
    let tables: any ClusterTables
    let logger: Logger
    let onEvent: @Sendable (ClusterEvent) -> Void

    var reconciler: ClusterReconciler
    var lease: Int64?
    /// What this router has put, key → value, so changes are published as differences.
    var published: [String: [UInt8]] = [:]
    var connected = false
    var lastSync: ContinuousClock.Instant?
    var relists: UInt64 = 0
    var leasesGranted: UInt64 = 0
    var applyFailures: UInt64 = 0
    var lastError: String?
    var reconciling = false
    var currentWatch: Task<Void, any Error>?
    /// Set by tests to leave like a crashed router: no revoke, the lease left to expire.
    var abandoned = false
    var reconcileAgain = false
    /// Actions that failed and have not succeeded since (their warning is not repeated).
    var failing: Set<ClusterAction> = []

    public init(
        settings: ClusterSettings, tables: any ClusterTables, logger: Logger,
        onEvent: @escaping @Sendable (ClusterEvent) -> Void = { _ in }
    ) {
        self.settings = settings
        self.tables = tables
        self.logger = logger
        self.onEvent = onEvent
        keys = ClusterKeys(overlay: settings.overlay)
        etcd = EtcdClient(
            endpoints: settings.endpoints, callTimeout: .seconds(3), tls: settings.tls, credentials: settings.credentials)
        incarnation = String(UInt64.random(in: 1...UInt64.max), radix: 16)
        reconciler = ClusterReconciler(
            keys: keys, selfID: settings.hostID, servedVNIs: settings.servedVNIs, port: settings.port)
    }

    /// Runs until cancelled; never returns early and never throws: every failure is retried.
    /// On cancellation the lease is revoked (a clean leave: the others drop our records at once).
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.publishLoop() }
            group.addTask { await self.watchLoop() }
            group.addTask { await self.antiEntropyLoop() }
            await group.waitForAll()
        }
        if let lease, !abandoned {
            try? await etcd.revoke(lease)
            self.lease = nil
        }
        await etcd.shutdown()
    }

    func abandonForTest() { abandoned = true }

    /// `GET /v1/cluster`'s facts, in the API's own type (one type, no field-by-field copy).
    public func status() -> ClusterInfo {
        ClusterInfo(
            overlay: settings.overlay, hostID: settings.hostID, incarnation: incarnation, connected: connected,
            endpoint: etcd.currentEndpoint, endpoints: etcd.endpoints, revision: reconciler.revision,
            lastSyncSecondsAgo: lastSync.map { instant in
                let elapsed = ContinuousClock.now - instant
                return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            },
            leaseID: lease.map { String($0, radix: 16) }, leaseTTLSeconds: settings.leaseTTL,
            members: reconciler.snapshot.hosts.keys.sorted(),
            floodMembers: reconciler.programmed.flood.values.reduce(0) { $0 + $1.count },
            entries: reconciler.programmed.entryCount, published: published.count, relists: relists,
            leasesGranted: leasesGranted, corrections: reconciler.corrections, conflicts: reconciler.conflicts,
            moves: reconciler.moves, applyFailures: applyFailures, lastError: lastError,
            excludedMembers: reconciler.excluded.sorted { $0.key < $1.key }.map {
                ClusterExcludedMember(host: $0.key, address: $0.value.address, port: $0.value.port, reason: $0.value.reason)
            },
            portMismatches: reconciler.portMismatches)
    }

    /// The cluster's share of the tables as programmed (for `vxrouter cluster status` and tests).
    public func programmed() -> ClusterTablesState { reconciler.programmed }

    // MARK: Publishing (our records, under our lease)

    func publishLoop() async {
        var backoff = Backoff(max: settings.maxBackoff)
        let keepaliveEvery = Duration.seconds(max(1, settings.leaseTTL)) / 3
        var nextKeepalive = ContinuousClock.now
        while !Task.isCancelled {
            do {
                // Connected is claimed only on an answer: a pass that had nothing to send says
                // nothing about etcd (the watch may have just failed).
                var answered = false
                if lease == nil {
                    try await grantAndRepublish()
                    answered = true
                }
                if ContinuousClock.now >= nextKeepalive, let lease {
                    try await etcd.keepAlive(lease)
                    nextKeepalive = ContinuousClock.now + keepaliveEvery
                    answered = true
                }
                if try await publishChanges() { answered = true }
                if answered { markConnected() }
                backoff.reset()
                try await Task.sleep(for: min(settings.publishInterval, keepaliveEvery))
            } catch is CancellationError {
                return
            } catch EtcdError.leaseNotFound {
                logger.warning("cluster: lease lost; granting a new one and republishing")
                lease = nil
            } catch {
                markDisconnected(error)
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    func grantAndRepublish() async throws {
        let granted = try await etcd.grantLease(ttl: settings.leaseTTL)
        lease = granted.id
        leasesGranted += 1
        published = [:]
        let host = HostRecord(address: settings.address.description, port: settings.port, incarnation: incarnation)
        // The host record first: the records after it count only once it names our incarnation.
        try await put(keys.host(settings.hostID), host)
        logger.info("cluster: joined", metadata: ["overlay": "\(settings.overlay)", "host": "\(settings.hostID)", "lease": "\(granted.id)"])
    }

    /// Puts what changed since the last publish and deletes what was withdrawn; whether it
    /// wrote anything.
    @discardableResult
    func publishChanges() async throws -> Bool {
        var wanted: [String: [UInt8]] = [:]
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        wanted[keys.host(settings.hostID)] = try Array(
            encoder.encode(HostRecord(address: settings.address.description, port: settings.port, incarnation: incarnation)))
        for vni in settings.servedVNIs {
            wanted[keys.flood(vni, settings.hostID)] = try Array(encoder.encode(FloodRecord(incarnation: incarnation)))
        }
        let stations = try await tables.localStations()
        for (vni, macs) in stations where settings.servedVNIs.contains(vni) {
            for (mac, ips) in macs {
                let key = keys.mac(vni, mac, settings.hostID)
                // Keep the sequence we published unless another host has since claimed higher.
                var sequence = reconciler.sequenceForLocal(vni: vni, mac: mac)
                if let old = published[key], let record = try? JSONDecoder().decode(MACRecord.self, from: Data(old)),
                    record.sequence >= sequence
                {
                    sequence = record.sequence
                }
                let record = MACRecord(ips: ips.map(\.description).sorted(), sequence: sequence, incarnation: incarnation)
                wanted[key] = try Array(encoder.encode(record))
            }
        }
        guard let lease else { return false }
        var wrote = false
        for (key, value) in wanted.sorted(by: { $0.key < $1.key }) where published[key] != value {
            try await etcd.put(key, value: value, lease: lease)
            published[key] = value
            wrote = true
        }
        for key in published.keys.sorted() where wanted[key] == nil {
            try await etcd.delete(key)
            published[key] = nil
            wrote = true
        }
        return wrote
    }

    func put(_ key: String, _ record: some Encodable) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let value = try Array(encoder.encode(record))
        try await etcd.put(key, value: value, lease: lease ?? 0)
        published[key] = value
    }

    // MARK: Watching (everyone's records → our tables)

    func watchLoop() async {
        var backoff = Backoff(max: settings.maxBackoff)
        var needsList = true
        while !Task.isCancelled {
            do {
                if needsList {
                    let listing = try await etcd.range(keys.prefix, timeout: settings.listTimeout)
                    relists += 1
                    let present = Set(listing.keyValues.map(\.key))
                    for key in published.keys where !present.contains(key) { published[key] = nil }
                    emit(reconciler.relist(listing.keyValues, revision: listing.revision))
                    needsList = false
                    markConnected()
                    await reconcile()
                }
                // Connected only once the watch answers (consumeWatch): a resume that cannot reach
                // etcd must not report a connection it does not have.
                // In a task of its own so that a connection loss seen by the publisher (a
                // keepalive that failed) restarts it: a watch on a dead TCP connection would
                // otherwise wait forever.
                let from = reconciler.revision + 1
                let watch = Task { try await self.consumeWatch(from: from) }
                currentWatch = watch
                try await withTaskCancellationHandler {
                    try await watch.value
                } onCancel: {
                    watch.cancel()
                }
                backoff.reset()
            } catch is CancellationError {
                if Task.isCancelled { return }
                return
            } catch EtcdError.compacted {
                logger.info("cluster: watch revision compacted; listing again")
                needsList = true
            } catch {
                if Task.isCancelled { return }
                markDisconnected(error)
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    func consumeWatch(from revision: Int64) async throws {
        for try await update in etcd.watch(prefix: keys.prefix, fromRevision: revision) {
            markConnected()
            if case .events(let revision, let events) = update {
                forgetDeletedOwnRecords(events)
                emit(reconciler.apply(events, revision: revision))
                await reconcile()
            }
        }
        throw EtcdError.watchEnded(Task.isCancelled ? "restarted after a connection loss" : "the stream ended")
    }

    /// Our own records deleted by someone else (an operator, a lease we no longer hold) are
    /// forgotten as published, so the next publish puts them back.
    func forgetDeletedOwnRecords(_ events: [EtcdEvent]) {
        for event in events where event.kind == .delete && published[event.keyValue.key] != nil {
            published[event.keyValue.key] = nil
        }
    }

    func antiEntropyLoop() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: settings.antiEntropyInterval)
            } catch {
                return
            }
            await antiEntropy()
        }
    }

    /// Lists the overlay again and reads the tables back, and repairs what differs (counted as
    /// corrections): a missed event or a table changed behind our back heals here.
    public func antiEntropy() async {
        // Drift is measured against settled tables: while a pass is still applying its actions
        // (the first one after joining a large overlay takes a while) the difference is work in
        // flight, and planning it again would apply it twice. The next interval checks instead.
        if reconciling { return }
        do {
            let listing = try await etcd.range(keys.prefix, timeout: settings.listTimeout)
            relists += 1
            emit(reconciler.relist(listing.keyValues, revision: listing.revision))
        } catch {
            markDisconnected(error)
            return  // nothing purged on a failed listing
        }
        if reconciling {
            // One started while the listing was read: let it plan against the fresh snapshot too.
            reconcileAgain = true
            return
        }
        do {
            let actual = try await tables.actual(of: reconciler.programmed)
            let (actions, events) = reconciler.antiEntropy(actual: actual)
            if !actions.isEmpty { logger.warning("cluster: anti-entropy found \(actions.count) differences; repairing") }
            emit(events)
            await execute(actions)
        } catch {
            logger.warning("cluster: anti-entropy could not read the tables: \(error)")
        }
    }

    /// Plans against the snapshot and applies; a pass already running repeats instead.
    func reconcile() async {
        if reconciling {
            reconcileAgain = true
            return
        }
        reconciling = true
        defer { reconciling = false }
        repeat {
            reconcileAgain = false
            let (actions, events) = reconciler.plan()
            emit(events)
            await execute(actions)
        } while reconcileAgain
        lastSync = .now
    }

    func execute(_ actions: [ClusterAction]) async {
        for action in actions {
            do {
                try await tables.apply(action)
                reconciler.applied(action)
                failing.remove(action)
            } catch {
                // Not recorded as applied: the next pass plans it again. Logged once while it
                // keeps failing (a full flood list refuses the same adds on every pass).
                applyFailures += 1
                if failing.insert(action).inserted { logger.warning("cluster: could not apply \(action): \(error)") }
            }
        }
    }

    func emit(_ events: [ClusterEvent]) {
        for event in events {
            logger.info("cluster: \(event)")
            onEvent(event)
        }
    }

    func markConnected() {
        if !connected { logger.info("cluster: connected to etcd") }
        connected = true
    }

    /// Logged when the connection is lost and whenever the reason changes (a router that never
    /// connected — refused credentials, say — says why once, not on every retry).
    func markDisconnected(_ error: any Error) {
        let reason = "\(error)"
        if connected || reason != lastError {
            logger.warning("cluster: etcd unreachable, forwarding on the last state: \(reason)")
        }
        connected = false
        currentWatch?.cancel()
        lastError = reason
    }
}

/// Doubling delay from 100 ms up to a cap.
struct Backoff {
    let max: Duration
    var current: Duration = .milliseconds(100)

    init(max: Duration) { self.max = max }

    mutating func next() -> Duration {
        defer { current = Swift.min(current * 2, max) }
        return current
    }

    mutating func reset() { current = .milliseconds(100) }
}
