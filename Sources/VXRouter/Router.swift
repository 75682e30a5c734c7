// The running router: builds the datapath from a validated config, runs one worker per core, and
// is itself the control thread — the FDB's only writer, the reader of every worker's counters,
// and the handler of signals.
//
//  1. resolve MTUs and worker count; intern flood lists and static entries;
//  2. open every socket and TAP queue (all or nothing: a failure closes what was opened);
//  3. start the control endpoint (given by the caller, e.g. VXControl's HTTP server) with this
//     router's service (`RouterControl`), which hands every call to this thread through a ControlQueue;
//  4. start the workers; then loop: run queued control requests, apply learn events from the
//     workers' rings (publishing learn/move/FDB-full events), age the FDBs once a second
//     (age-out events), answer SIGUSR1 with the counters, and on SIGINT/SIGTERM stop the
//     endpoint and the workers, close everything (TAPs created here vanish with their last
//     queue) and return.
//  5. on SIGHUP or `POST /v1/reload` (Router+Reload.swift): re-read the config file, diff it
//     against the running one (ConfigDiff) and apply the difference live, all or nothing.
//
// Networks live in slots (NetworkGeneration.swift): a network's `index` is its slot for life, and
// the set the workers serve is published as immutable generations. `networks` and `settings` are
// the control thread's view of the latest generation.
import Foundation
import Logging
import VXCapture
import VXConfig
import VXControlAPI
import VXDatapath
import VXPlatform
import VXWire

public final class Router {
    /// The running config: the one started with, then each reload's. Control thread only.
    public internal(set) var config: RouterConfig
    let logger: Logger
    /// The networks served, in config order (each at its slot). Control thread only.
    var networks: [Network]
    /// Each served network's config, by slot.
    var settings: SlotSettings
    /// Network slots this process keeps room for: counters, capture VNIs and the workers' tables
    /// are sized once, so a reload may add networks up to this many at once.
    let slotCount: Int
    static let spareSlots = 64
    let remotes = RemoteTable()
    let underlayMTU: Int
    let underlayMaxFrame: Int
    /// By slot; nil where no network is.
    var taps: [TapInterface?] = []
    /// Where network generations are published to the workers (live reload).
    var exchange: NetworkExchange<TapQueue>!
    /// TAPs of removed networks, closed once no worker can still read them: by the epoch that removed them.
    var retiredTaps: [(epoch: UInt64, slot: Int, tap: TapInterface)] = []
    /// Slots below this have held a network at some time (new networks prefer the others).
    var slotsEverUsed: Int
    /// Reads the config again for a reload (nil: started from flags, nothing to re-read).
    let reloadSource: (() throws -> RouterConfig)?
    /// The capture the config's `capture:` section started, while it runs (a reload replaces it).
    var configCaptureSession: CaptureSession?
    /// The VNIs the control endpoint serves (changed by reloads).
    let served: ServedVNIBox
    /// Each slot's TAP interface index when it was opened, to tell which one a failed queue was.
    var tapIndexes: [Int: UInt32] = [:]
    /// Networks whose TAP failed under the router, with why (slot → reason). Written here.
    var failedNetworks: [Int: String] = [:]
    private(set) var links: [UDPLink] = []
    /// The UDP send sockets every worker shares (offloads on and at least one port bound).
    private(set) var pool: UDPSendPool?
    /// What the offloads came to, for the start-up log.
    private var offloadSummary: Logger.Metadata = [:]
    /// With CPU steering on, worker w's CPU at index w (a TAP a reload adds is steered the same
    /// way); nil with the kernel's flow steering.
    private(set) var steeredCPUs: [Int]?
    var loops: [WorkerLoop] = []
    private var rings: [SPSCRing<LearnEvent>] = []
    /// Per worker; written by that worker, read (summed) here.
    private(set) var counters: [WorkerCounters] = []
    private(set) var remoteCounters: [RemoteCounters] = []
    /// Per worker: strangers refused by `allow_from`, by source (written by that worker, merged here).
    private(set) var refusedSources: [RefusedSources] = []
    private let signals: ControlSignals
    /// Learn outcomes the control thread counts itself, per network.
    var fdbFull: [UInt64]
    var remoteTableFull: [UInt64]
    /// Per remote index: monotonic milliseconds a packet from it was last accepted (0 = never),
    /// and the received-packet total that was last seen, to notice new ones. Control thread only.
    private(set) var lastHeard: [UInt64] = []
    private var lastReceived: [UInt64] = []
    /// Per network: the second of the last FDB-full event, so a MAC flood publishes one a second.
    var lastFullEvent: [UInt32]
    /// Per network slot: the stations behind its TAP (what cluster mode publishes).
    var localStations: [LocalStations]
    let startedAt = monotonicMilliseconds()
    /// Packet capture (README "Packet capture"): the datapath's switch and rings, the capture
    /// that runs (at most one), and the summary of the last one. Control thread only.
    private(set) var captureTap: CaptureTap!
    var capture: CaptureSession?
    var lastCapture: CaptureSummary?
    /// The config's `capture:` section, opened (file created, filter compiled) before anything else.
    private var configCapture: (CaptureSpec, InnerFilter?, PcapFileWriter)?

    // The control endpoint (nil when `control.enabled` is false).
    let controlQueue: ControlQueue
    /// The control loop's nap when nothing happens; workers wake it.
    let controlNap: ControlNap
    let eventHub = EventHub()
    /// Cluster mode's state and events, reported by the cluster client (Router+Cluster).
    let clusterBoard = ClusterBoard()
    /// Whether changes need a token (`control.token_file`; the endpoint checks it).
    let tokenRequired: Bool
    private var endpoint: (any ControlEndpoint)?

    /// Opens every device and socket the config asks for, or throws having left nothing behind.
    /// `endpoint` starts the control endpoint (when `control.enabled`) with the router's service.
    public init(
        config: RouterConfig, reloadSource: (() throws -> RouterConfig)? = nil, logger: Logger, endpoint startEndpoint: ((any RouterService) throws -> any ControlEndpoint)? = nil
    ) throws {
        self.config = config
        self.reloadSource = reloadSource
        self.logger = logger
        let family = config.underlay.local.family
        guard let holder = try Interfaces.holding(config.underlay.local) else {
            throw RouterError.localAddressMissing(config.underlay.local)
        }
        underlayMTU = config.underlay.mtu ?? holder.mtu
        let overhead = VXLANHeader.overhead(for: family)
        let underlayMaxFrame = underlayMTU - overhead
        guard underlayMaxFrame >= 68 + EthernetFrame.headerSize else {
            throw RouterError.underlayMTUTooSmall(underlayMTU)
        }
        self.underlayMaxFrame = underlayMaxFrame
        slotCount = config.networks.count + Self.spareSlots
        slotsEverUsed = config.networks.count
        var slotSettings = SlotSettings(slots: slotCount)
        var networks: [Network] = []
        for (index, net) in config.networks.enumerated() {
            networks.append(Self.makeNetwork(net, slot: index, underlayMTU: underlayMTU, underlayMaxFrame: underlayMaxFrame, logger: logger))
            slotSettings[index] = net
        }
        settings = slotSettings
        self.networks = networks
        served = ServedVNIBox(networks.map(\.vni))
        fdbFull = Array(repeating: 0, count: slotCount)
        remoteTableFull = Array(repeating: 0, count: slotCount)
        lastFullEvent = Array(repeating: 0, count: slotCount)
        localStations = Array(repeating: LocalStations(), count: slotCount)
        tokenRequired = config.control.enabled && config.control.tokenFile != nil
        controlQueue = try ControlQueue()
        controlNap = ControlNap(wake: controlQueue.wake)
        signals = try ControlSignals()

        for (network, net) in zip(networks, config.networks) {
            let flood = net.flood.compactMap { remotes.intern($0) }
            network.flood.set(flood)
            for entry in net.fdb {
                guard let remote = remotes.intern(entry.remote) else { continue }
                if network.fdb.setStatic(entry.mac, remote: remote) == .full {
                    throw RouterError.staticEntriesExceedMax(net.vni)
                }
                if !entry.ips.isEmpty, network.neighbours.setIPs(entry.ips, of: entry.mac) == .full {
                    throw RouterError.staticEntriesExceedMax(net.vni)
                }
            }
            noteKnownVTEPs(network)
        }

        if let spec = config.capture {
            // Before any TAP or socket: a bad filter or an unwritable file stops the start here.
            configCapture = try Self.openCaptureFile(spec)
        }
        do {
            try open(workerCount: config.workers ?? allowedCPUs().count)
            if config.control.enabled, let startEndpoint {
                endpoint = try startEndpoint(
                    RouterControl(
                        queue: controlQueue, hub: eventHub, served: served, local: config.underlay.local,
                        cluster: clusterBoard))
            }
        } catch {
            closeAll()
            throw error
        }
    }

    /// A network as the datapath sees it, in slot `slot`.
    static func makeNetwork(
        _ net: NetworkConfig, slot: Int, underlayMTU: Int, underlayMaxFrame: Int, logger: Logger
    ) -> Network {
        let mtu = net.mtu ?? (underlayMaxFrame - EthernetFrame.headerSize)
        if mtu + EthernetFrame.headerSize > underlayMaxFrame {
            logger.warning(
                "network MTU exceeds what the underlay carries unfragmented; larger frames are dropped as oversize",
                metadata: ["vni": "\(net.vni)", "mtu": "\(mtu)", "underlay_mtu": "\(underlayMTU)"])
        }
        return Network(
            index: slot, vni: net.vni, mtu: mtu, underlayMaxFrame: underlayMaxFrame,
            learning: net.learning, maxEntries: net.maxEntries, allowFrom: net.allowFrom,
            arpSuppression: net.arpSuppression, pmtuSignal: net.pmtuSignal,
            knownOnly: net.acceptsOnlyKnownVTEPs)
    }

    private func open(workerCount: Int) throws {
        let local = Endpoint(address: config.underlay.local, port: config.underlay.port)
        let batchSize = 64
        // Sized for the largest frame any network can carry, so a network a reload adds fits.
        let maxFrame = underlayMaxFrame
        // Before creating anything: a port held elsewhere must fail here, not join its group.
        try UDPLink.claimPort(local)
        let offloads = config.offloads
        taps = Array(repeating: nil, count: slotCount)
        for network in networks {
            taps[network.index] = try TapInterface(name: settings[network.index].tap, queueCount: workerCount, offloads: offloads)
        }
        let family = config.underlay.local.family
        if offloads {
            pool = UDPSendPool(
                local: config.underlay.local, sourcePorts: config.underlay.sourcePorts, listenPort: config.underlay.port,
                zeroChecksums: !OuterChecksum.sends(family: family, choice: config.underlay.udpChecksum, udpSockets: true))
        }
        let sendsChecksums = OuterChecksum.sends(
            family: family, choice: config.underlay.udpChecksum, udpSockets: pool != nil)
        // The receive sockets never set UDP_NO_CHECK6_RX: IPv6 UDP without a checksum is dropped.
        let vouches = OuterChecksum.vouchesForInner(
            OuterChecksum.ReceivePath(family: family, zeroChecksumsAccepted: false),
            trust: config.underlay.trustUDPChecksum)
        for network in networks { try bringUp(taps[network.index]!, network) }
        // Pinned only when there is a CPU of our own for each worker, and only to CPUs we may use.
        let cpus = allowedCPUs()
        let workerCPUs = workerCount <= cpus.count ? Array(cpus.prefix(workerCount)) : nil
        captureTap = CaptureTap(workers: workerCount, networks: networks.map(\.vni), networkSlots: slotCount)
        let first = NetworkGeneration<TapQueue>(
            epoch: 0, networks: networks,
            devices: (0..<workerCount).map { w in taps.map { $0?.queues[w] } })
        exchange = NetworkExchange(workers: workerCount, first: first)
        for w in 0..<workerCount {
            let refused = RefusedSources()
            refusedSources.append(refused)
            // The one way a worker is wired (WorkerWiring, shared with the tests and vxbench).
            let wiring = WorkerWiring(
                networks: networks, remotes: remotes, port: config.underlay.port,
                sourcePorts: config.underlay.sourcePorts,
                capture: WorkerCapture(tap: captureTap, worker: w, localPort: config.underlay.port), slots: slotCount,
                refusedSources: refused)
            let link = try UDPLink(
                local: local, batchSize: batchSize, sendCapacity: max(batchSize, 64) + wiring.forwarder.maxFanOut,
                pool: pool, gro: offloads, rawChecksums: sendsChecksums)
            links.append(link)
            let worker = wiring.worker(
                devices: first.devices[w], link: link, batchSize: batchSize, maxFrame: maxFrame, offloads: offloads,
                outerChecksumVouches: vouches)
            loops.append(
                try WorkerLoop(
                    worker: worker, cpu: workerCPUs?[w], busyPollMicroseconds: config.busyPoll,
                    exchange: exchange, index: w, nap: controlNap))
            rings.append(wiring.learnRing)
            counters.append(wiring.counters)
            remoteCounters.append(wiring.remoteCounters)
        }
        let steering = try startSteering(pinnedTo: workerCPUs)
        offloadSummary = [
            "steering": "\(steering)",
            "offloads": "\(offloads ? "on" : "off")",
            "tap": "\(offloads ? taps.compactMap { $0.map { "\($0.name):\($0.offloads)" } }.joined(separator: " ") : "plain")",
            "udp_gso": "\(pool.map { $0.gsoSupported ? "on (\($0.count) source ports)" : "off (refused; \($0.count) source ports)" } ?? "off (raw socket)")",
            "udp_gro": "\(links.first?.gro == true ? "on" : "off")",
            "busy_poll": "\(config.busyPoll > 0 ? "\(config.busyPoll)us" : "off")",
            "udp_checksum": "\(sendsChecksums ? "on" : "off")",
            "trust_udp_checksum": "\(vouches ? "on (coalescer skips the inner sum)" : "off")",
        ]
    }

    /// CPU steering (README "CPU steering") on every TAP and the receive sockets, as `steering` asks;
    /// `workerCPUs` is nil when the workers are not pinned. Returns what the start-up log says.
    /// `cpu` that cannot be had stops the start; `auto` falls back to the kernel's flow steering.
    private func startSteering(pinnedTo workerCPUs: [Int]?) throws -> String {
        if config.steering == .flow {
            steerTapsByFlow()
            return "flow"
        }
        let unavailable: String
        if let workerCPUs, workerCPUs.count > 1 {
            do {
                for tap in taps { if let tap { try CPUSteering.steer(tap, workerCPUs: workerCPUs) } }
                if let first = links.first {
                    try CPUSteering.steer(receiveGroup: first.receiveFD, workerCPUs: workerCPUs)
                }
                steeredCPUs = workerCPUs
                return "cpu (\(workerCPUs.map(String.init).joined(separator: ",")))"
            } catch {
                unavailable = "\(error)"
            }
        } else {
            unavailable = workerCPUs == nil
                ? "the workers are not pinned: more workers than CPUs to pin them to"
                : "one worker"
        }
        if config.steering == .cpu { throw RouterError.steeringUnavailable(unavailable) }
        steerTapsByFlow()
        return "flow (cpu steering: \(unavailable))"
    }

    /// Every TAP without a program: one made elsewhere (persistent) may carry an earlier run's, and
    /// one steered above before a later step failed carries ours. Best effort: a kernel without
    /// steering programs (before 4.16) has none to take away.
    private func steerTapsByFlow() {
        for tap in taps { if let tap { try? CPUSteering.steerByFlow(tap) } }
    }

    /// A network's TAP made ready: its MAC, MTU, address, and link up.
    func bringUp(_ tap: TapInterface, _ network: Network) throws {
        let net = settings[network.index]
        try prepareLink(tap, net, host: HostIdentity.seed())
        try tap.setMTU(network.mtu)
        if let address = net.address { try tap.assign(address) }
        try tap.setUp()
        tapIndexes[network.index] = Interfaces.index(tap.name)
    }

    /// The TAP's MAC and announcements, before its link goes up (README "Stable MAC"): a TAP made
    /// here gets `mac:` or the derived stable MAC; an existing TAP keeps the MAC it has unless
    /// `mac:` names one (whoever made it chose its address, and it survives our restarts anyway).
    private func prepareLink(_ tap: TapInterface, _ net: NetworkConfig, host: (seed: [UInt8], source: HostIdentity.Source))
        throws
    {
        if let mac = net.mac ?? (tap.createdHere ? StableMAC.derive(seed: host.seed, vni: net.vni) : nil),
            (try? tap.macAddress()) != mac
        {
            try tap.setMACAddress(mac)
            if net.mac == nil {
                logger.debug("stable MAC", metadata: ["tap": "\(tap.name)", "mac": "\(mac)", "from": "\(host.source.rawValue)"])
            }
        }
        for failure in tap.enableAnnouncements() {
            logger.debug("address announcements not enabled", metadata: ["tap": "\(tap.name)", "error": "\(failure)"])
        }
    }

    private func closeAll() {
        endpoint?.shutdown()
        endpoint = nil
        for tap in taps { tap?.close() }
        for retired in retiredTaps { retired.tap.close() }
        retiredTaps.removeAll()
        for link in links { link.close() }
        pool?.close()
        pool = nil
        taps.removeAll()
        links.removeAll()
        signals.fd.close()
        controlQueue.wake.fd.close()
    }

    /// Runs until SIGINT or SIGTERM, then stops cleanly.
    public func run() throws {
        for (i, loop) in loops.enumerated() { try loop.start(name: "vx-worker-\(i)") }
        for network in networks {
            guard let tap = taps[network.index] else { continue }
            let mac = (try? tap.macAddress()).map { "\($0)" } ?? "?"
            logger.info(
                "network up",
                metadata: [
                    "vni": "\(network.vni)", "tap": "\(tap.name)", "mac": "\(mac)", "mtu": "\(network.mtu)",
                    "flood": "\(settings[network.index].flood.map(\.description).joined(separator: ","))",
                ])
        }
        logger.info(
            "vxrouter ready",
            metadata: [
                "local": "\(Endpoint(address: config.underlay.local, port: config.underlay.port))",
                "workers": "\(loops.count)", "underlay_mtu": "\(underlayMTU)",
                "control": "\(endpoint.map { "\($0.address)" } ?? "off")",
            ])
        logger.info("offloads", metadata: offloadSummary)
        // Type=notify units (Config/vxrouter.service) wait for this; without NOTIFY_SOCKET it does nothing.
        do { try ServiceNotify.ready(status: "forwarding \(networks.count) network(s)") } catch {
            logger.warning("could not tell systemd the router is ready", metadata: ["error": "\(error)"])
        }
        if let (spec, filter, writer) = configCapture {
            configCapture = nil
            try startCapture(spec, filter: filter, sink: writer)
            configCaptureSession = capture
        }
        var lastAgeing = monotonicSeconds()
        var reportedFailures = 0
        var reportedGSOFallbacks = 0
        let pathMTUWatch = openPathMTUWatch(now: lastAgeing)
        // Every 5 ms while anything happens; with nothing to do (no work, no learning, no capture,
        // no network retiring) it naps until the next whole second, woken early by the workers.
        var busy = true
        controlLoop: while true {
            let nap =
                !busy && capture == nil && retiredTaps.isEmpty
                && controlNap.settle { rings.allSatisfy { $0.count == 0 } && !remotes.probesPending }
            waitReadable(
                [signals.fd, controlQueue.wake.fd],
                timeoutMilliseconds: nap ? Int32(1000 - monotonicMilliseconds() % 1000) : 5)
            controlNap.awake()
            let work = controlQueue.take()
            for work in work { work(self) }
            let requests = signals.pending()
            for request in requests {
                switch request {
                case .report: writeStats()
                case .reload: reloadFromSignal()
                case .stop(let signal):
                    logger.info("stopping", metadata: ["signal": "\(signal)"])
                    try? ServiceNotify.stopping()
                    break controlLoop
                }
            }
            reapCapture()
            finishRetirement()
            let now = monotonicSeconds()
            let learned = applyLearnEvents(now: now)
            pathMTUWatch?.poll(now: now)
            busy = !work.isEmpty || !requests.isEmpty || learned > 0
            if now != lastAgeing {
                lastAgeing = now
                age(now: now)
                noteHeardRemotes()
                let failures = loops.reduce(0) { $0 + $1.failedDevices.load(ordering: .relaxed) }
                if failures > reportedFailures {
                    noteFailedTaps()
                    reportedFailures = failures
                }
                let fallbacks = links.reduce(0) { $0 + $1.gsoFallbacks.load(ordering: .relaxed) }
                if fallbacks > 0, reportedGSOFallbacks == 0 {
                    logger.warning("UDP GSO send failed with EIO (no checksum offload on the underlay?); sending one datagram per packet on that socket")
                }
                reportedGSOFallbacks = fallbacks
            }
        }
        // Requests already queued are answered; later ones get 503 from the endpoint.
        for work in controlQueue.close() { work(self) }
        stopCapture()
        endpoint?.shutdown()
        endpoint = nil
        for loop in loops { loop.requestStop() }
        for loop in loops { loop.join() }
        closeAll()
        logger.info("stopped")
    }

    /// A worker took a failed TAP queue out of its poll set: find the network whose TAP is gone
    /// (or is another interface now) and report it failed — in `/v1/health`, metrics
    /// (`vxrouter_network_up`) and the log. It stays failed until a restart: the TAP is not made
    /// again behind an operator's back, and the queues cannot be reopened on the workers while
    /// they run.
    func noteFailedTaps() {
        var found = false
        for network in networks where failedNetworks[network.index] == nil {
            guard let tap = taps[network.index], let opened = tapIndexes[network.index],
                Interfaces.index(tap.name) != opened
            else { continue }
            found = true
            failedNetworks[network.index] =
                "TAP \(tap.name) was deleted under the router: the network forwards nothing until vxrouter restarts "
                + "or a reload removes and adds it again"
            logger.error(
                "TAP deleted under the router: its queues failed and are no longer polled; the network forwards nothing until vxrouter restarts or a reload removes and adds it again",
                metadata: ["vni": "\(network.vni)", "tap": "\(tap.name)"])
        }
        if !found {
            logger.error("a TAP queue failed and is no longer polled (its TAP still exists)")
        }
    }

    func failedNetworksBody() -> [Health.FailedNetwork] {
        networks.compactMap { network in
            failedNetworks[network.index].map {
                Health.FailedNetwork(vni: network.vni.rawValue, tap: settings[network.index].tap, reason: $0)
            }
        }
    }

    /// Returns how many events it took.
    @discardableResult
    func applyLearnEvents(now: UInt32) -> Int {
        var taken = 0
        for ring in rings {
            while let event = ring.pop() {
                taken += 1
                // An event from a network a reload removed (its slot is empty, or taken by a network
                // added after the removal was acknowledged, when the ring was drained) is dropped.
                guard let network = networks.first(where: { $0.index == event.network }) else { continue }
                if event.side == .tap {
                    let ip = event.address.isUnspecified ? nil : event.address
                    switch localStations[network.index].sighted(event.mac, ip: ip, now: now) {
                    case .added, .newAddress:
                        logger.debug("station", metadata: ["vni": "\(network.vni)", "mac": "\(event.mac)", "ip": "\(ip.map { "\($0)" } ?? "-")"])
                    case .refreshed, .full: break
                    }
                    continue
                }
                guard let remote = remotes.intern(event.address) else {
                    remoteTableFull[event.network] += 1
                    continue
                }
                switch network.fdb.learn(event.mac, behind: remote, now: now) {
                case .added:
                    logger.debug("learned", metadata: ["vni": "\(network.vni)", "mac": "\(event.mac)", "remote": "\(event.address)"])
                    publish(.learn, network, mac: event.mac, remote: event.address)
                case .moved(let from):
                    logger.info(
                        "moved", metadata: ["vni": "\(network.vni)", "mac": "\(event.mac)", "from": "\(remotes.address(from))", "to": "\(event.address)"])
                    publish(.move, network, mac: event.mac, remote: event.address, from: remotes.address(from))
                case .full:
                    if fdbFull[event.network] == 0 {
                        logger.warning("FDB full, not learning", metadata: ["vni": "\(network.vni)", "max_entries": "\(network.fdb.maxEntries)"])
                    }
                    fdbFull[event.network] += 1
                    if lastFullEvent[event.network] != now {
                        lastFullEvent[event.network] = now
                        publish(.fdbFull, network, mac: event.mac, remote: event.address)
                    }
                case .refreshed, .staticKept:
                    break
                }
            }
        }
        return taken
    }

    private func age(now: UInt32) {
        for network in networks where settings[network.index].ageing > 0 {
            let net = settings[network.index]
            network.fdb.age(now: now, maxAge: UInt32(net.ageing)) { entry in
                logger.debug("aged out", metadata: ["vni": "\(network.vni)", "mac": "\(entry.mac)"])
                publish(.ageOut, network, mac: entry.mac, remote: remotes.address(entry.remote))
            }
            for mac in localStations[network.index].age(now: now, maxAge: UInt32(net.ageing)) {
                logger.debug("station aged out", metadata: ["vni": "\(network.vni)", "mac": "\(mac)"])
            }
        }
    }

    /// Hands an FDB event to the event stream's subscribers (formatted only when there are some).
    private func publish(_ kind: EventKind, _ network: Network, mac: MACAddress, remote: IPAddress, from: IPAddress? = nil) {
        guard eventHub.subscriberCount > 0 else {
            eventHub.published.add(1, ordering: .relaxed)
            return
        }
        let body = FDBEvent(
            type: kind, vni: network.vni.rawValue, mac: mac.description, remote: remote.description,
            from: from?.description, maxEntries: kind == .fdbFull ? network.fdb.maxEntries : nil,
            time: Date().ISO8601Format())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(body) else { return }
        eventHub.publish(kind, json: String(decoding: data, as: UTF8.self))
    }

    /// Once a second: which remote VTEPs sent something since the last look.
    private func noteHeardRemotes() {
        let count = remotes.count
        if lastHeard.count < count {
            lastHeard += Array(repeating: 0, count: count - lastHeard.count)
            lastReceived += Array(repeating: 0, count: count - lastReceived.count)
        }
        let now = monotonicMilliseconds()
        for i in 0..<count {
            let index = RemoteIndex(rawValue: UInt16(i))
            let received = remoteCounters.reduce(UInt64(0)) { $0 &+ $1.load(.rxPackets, remote: index) }
            if received != lastReceived[i] {
                lastReceived[i] = received
                lastHeard[i] = now
            }
        }
    }

    /// Every worker's counters, summed.
    public func counterTotals() -> CounterSnapshot {
        counters.reduce(CounterSnapshot(rows: slotCount + 1)) { $0 + $1.snapshot() }
    }

    /// The SIGUSR1 report: one `stats` line per network, one for unattributed drops, then `stats end`.
    func writeStats() {
        let totals = counterTotals()
        var text = ""
        let uptime = (monotonicMilliseconds() - startedAt) / 1000
        for network in networks {
            var fields = [
                "vni=\(network.vni)", "tap=\(settings[network.index].tap)", "fdb_entries=\(network.fdb.count)",
                "flood_remotes=\(network.flood.current.count)",
            ]
            for counter in TrafficCounter.allCases { fields.append("\(counter.name)=\(totals[network.index, counter])") }
            for reason in DropReason.allCases { fields.append("drop_\(reason.name)=\(totals[network.index, drop: reason])") }
            fields.append("learn_fdb_full=\(fdbFull[network.index])")
            fields.append("learn_remotes_full=\(remoteTableFull[network.index])")
            text += "stats " + fields.joined(separator: " ") + "\n"
        }
        let row = slotCount
        let unattributed = DropReason.allCases.map { "drop_\($0.name)=\(totals[row, drop: $0])" }
        text += "stats vni=- uptime_seconds=\(uptime) remotes=\(remotes.count) " + unattributed.joined(separator: " ") + "\n"
        text += "stats end\n"
        writeToStandardError(text)
    }
}

public enum RouterError: Error, CustomStringConvertible {
    case localAddressMissing(IPAddress)
    case underlayMTUTooSmall(Int)
    case staticEntriesExceedMax(VNI)
    case steeringUnavailable(String)

    public var description: String {
        switch self {
        case .localAddressMissing(let address):
            "underlay.local \(address) is not an address of any interface on this host"
        case .underlayMTUTooSmall(let mtu):
            "underlay MTU \(mtu) leaves no room for an inner frame after VXLAN overhead"
        case .staticEntriesExceedMax(let vni):
            "networks[vni \(vni)]: more static fdb entries than max_entries"
        case .steeringUnavailable(let reason):
            "steering: cpu is not available (\(reason)); use auto or flow"
        }
    }
}
