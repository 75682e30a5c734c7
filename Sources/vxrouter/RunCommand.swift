// `vxrouter run`: the router, from a config file or from flags for one network; its control
// endpoint (VXControl's HTTP server) wired to its service here.
import ArgumentParser
import Logging
import VXCluster
import VXConfig
import VXControl
import VXPlatform
import VXRouter
import VXWire

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the router, from a config file or from flags for one network.",
        discussion: """
            With --config, everything comes from the YAML file (see Config/vxrouter.yaml).
            Without it, the flags describe one network, in the spirit of `ip link add type vxlan`:
              vxrouter run --vni 42 --tap vx42 --local 10.0.0.1 --remote 10.0.0.2 --address 192.168.42.1/24
            Each --remote joins the flood list. SIGUSR1 prints the counters; SIGINT/SIGTERM stop cleanly.
            """)

    @Option(name: .shortAndLong, help: "YAML config file.")
    var config: String?

    @Option(help: "VXLAN network identifier (0-16777215).")
    var vni: VNI?

    @Option(help: "TAP device for the network (created if missing, removed on exit).")
    var tap: String?

    @Option(help: "Local underlay address (source of encapsulated packets).")
    var local: IPAddress?

    @Option(help: "A remote VTEP for the flood list (repeatable).")
    var remote: [IPAddress] = []

    @Option(help: "UDP port listened on and sent to.")
    var port: Int = 4789

    @Option(help: "Address with prefix length for the TAP, e.g. 192.168.42.1/24.")
    var address: String?

    @Option(help: "TAP MTU (default: underlay MTU minus 50 for IPv4, 70 for IPv6).")
    var mtu: Int?

    @Option(help: "The TAP's MAC, e.g. 02:11:22:33:44:55 (default: a stable MAC derived from /etc/machine-id and the VNI).")
    var mac: MACAddress?

    @Option(help: "Worker threads (default: one per CPU this process may run on).")
    var workers: Int?

    @Option(help: "Control endpoint: unix:PATH or ADDRESS:PORT (default unix:/run/vxrouter/control.sock; a TCP address needs --control-token-file; with --config, overrides control.listen).")
    var control: String?

    @Option(help: "File holding the bearer token for changes and captures (required with a TCP --control; with --config, overrides control.token_file).")
    var controlTokenFile: String?

    @Flag(help: "Do not start the control endpoint.")
    var noControl = false

    @Flag(help: "Turn offloads off: plain TAP reads/writes (no virtio headers, TSO or coalescing), raw-socket sends without UDP GSO, receives without UDP GRO. Overrides the config's `offloads`.")
    var noOffloads = false

    @Option(help: "Microseconds a worker keeps polling after traffic before it sleeps (0 = off, up to 10000): lower latency for request/response traffic at the cost of CPU while traffic flows; an idle router never spins. Overrides the config's `busy_poll`.")
    var busyPoll: Int?

    @Option(help: "Which worker a packet goes to: auto (cpu where each worker has a CPU of its own), cpu (the worker pinned to the CPU the packet is on), or flow (the kernel's pick by flow). Overrides the config's `steering`.")
    var steering: Steering?

    @Option(name: .customLong("udp-checksum"), help: "Outer UDP checksums sent: auto (IPv6 always, IPv4 with offloads), true, or false (IPv4 only; costs UDP GSO). Overrides the config's `underlay.udp_checksum`.")
    var udpChecksum: String?

    @Option(name: .customLong("trust-udp-checksum"), help: "Let a verified outer UDP checksum stand for the inner TCP checksums of segments the coalescer merges: auto (IPv6 only), true (every peer sends outer checksums), false. Overrides the config's `underlay.trust_udp_checksum`.")
    var trustUDPChecksum: String?

    @Option(help: "Cluster mode: etcd endpoints, http://HOST:PORT[,http://HOST:PORT…] (with --config, overrides cluster.endpoints).")
    var cluster: String?

    @Option(help: "Cluster mode: the overlay's name (keys under /vxrouter/v1/NAME/; overrides cluster.name).")
    var clusterName: String?

    @Option(help: "Cluster mode: the etcd user, when etcd has authentication on (with --cluster-password-file; overrides cluster.username).")
    var clusterUsername: String?

    @Option(help: "Cluster mode: a file holding the etcd user's password (overrides cluster.password_file).")
    var clusterPasswordFile: String?

    @OptionGroup var log: LogOptions

    func makeConfig() throws -> RouterConfig {
        if let busyPoll, !RouterConfig.busyPollRange.contains(busyPoll) {
            throw ValidationError(
                "--busy-poll \(busyPoll) is out of range (\(RouterConfig.busyPollRange.lowerBound)-\(RouterConfig.busyPollRange.upperBound) microseconds)")
        }
        let adHoc =
            vni != nil || tap != nil || local != nil || !remote.isEmpty || address != nil || mtu != nil || mac != nil
        if let config {
            guard !adHoc else {
                throw ValidationError("--config cannot be combined with --vni/--tap/--local/--remote/--address/--mtu/--mac")
            }
            var loaded = try ConfigLoader.load(path: config)
            if let workers { loaded.workers = workers }
            if noOffloads { loaded.offloads = false }
            if let busyPoll { loaded.busyPoll = busyPoll }
            if let steering { loaded.steering = steering }
            try applyChecksumFlags(&loaded.underlay)
            try applyControlFlags(&loaded.control)
            try applyClusterFlags(&loaded)
            try loaded.validate()
            return loaded
        }
        guard let vni, let tap, let local else {
            throw ValidationError("give --config FILE, or --vni, --tap and --local (and --remote for each peer)")
        }
        var prefix: IPPrefix? = nil
        if let address {
            guard address.contains("/"), let parsed = IPPrefix(address) else {
                throw ValidationError("--address \(address) must be ADDRESS/PREFIXLEN, e.g. 192.168.42.1/24")
            }
            prefix = parsed
        }
        if let mac, let reason = interfaceMACProblem(mac) { throw ValidationError("--mac \(reason)") }
        guard ConfigLimits.port.contains(port) else {
            throw ValidationError("--port \(port) is out of range (\(ConfigLimits.port.lowerBound)-\(ConfigLimits.port.upperBound))")
        }
        var config = RouterConfig(
            underlay: UnderlayConfig(local: local, port: UInt16(port)),
            workers: workers,
            networks: [NetworkConfig(vni: vni, tap: tap, mtu: mtu, address: prefix, flood: remote)],
            offloads: !noOffloads)
        config.networks[0].mac = mac
        config.busyPoll = busyPoll ?? 0
        config.steering = steering ?? .auto
        try applyChecksumFlags(&config.underlay)
        try applyControlFlags(&config.control)
        try applyClusterFlags(&config)
        try config.validate()
        return config
    }

    /// `--udp-checksum` and `--trust-udp-checksum` (auto, true or false).
    func applyChecksumFlags(_ underlay: inout UnderlayConfig) throws {
        func choice(_ text: String, _ flag: String) throws -> OuterChecksum.Choice {
            guard let value = OuterChecksum.Choice(rawValue: text) else {
                throw ValidationError("\(flag) \(text) must be auto, true or false")
            }
            return value
        }
        if let udpChecksum { underlay.udpChecksum = try choice(udpChecksum, "--udp-checksum") }
        if let trustUDPChecksum { underlay.trustUDPChecksum = try choice(trustUDPChecksum, "--trust-udp-checksum") }
    }

    /// `--cluster URL[,URL…]` and `--cluster-name NAME`, checked by the rules the config uses.
    func applyClusterFlags(_ config: inout RouterConfig) throws {
        guard cluster != nil || clusterName != nil || clusterUsername != nil || clusterPasswordFile != nil else { return }
        var section = config.cluster ?? ClusterConfig(endpoints: [], name: "")
        if let cluster {
            section.endpoints = cluster.split(separator: ",").map { String($0) }
            for endpoint in section.endpoints {
                if let problem = ClusterConfig.endpointProblem(endpoint) { throw ValidationError("--cluster: \(problem)") }
            }
        }
        if let clusterName { section.name = clusterName }
        if let clusterUsername { section.username = clusterUsername }
        if let clusterPasswordFile { section.passwordFile = clusterPasswordFile }
        if let (key, reason) = section.credentialsProblem() {
            throw ValidationError("--cluster-\(key.replacingOccurrences(of: "_", with: "-")): \(reason)")
        }
        if section.endpoints.isEmpty { throw ValidationError("--cluster-name/--cluster-username need --cluster URL (or cluster.endpoints in the config)") }
        if section.name.isEmpty { throw ValidationError("--cluster needs --cluster-name NAME (or cluster.name in the config)") }
        if let problem = ClusterConfig.namePartProblem(section.name, what: "cluster name") {
            throw ValidationError("--cluster-name: \(problem)")
        }
        config.cluster = section
    }

    func applyControlFlags(_ control: inout ControlConfig) throws {
        if let text = self.control {
            guard let address = ControlAddress(text) else {
                throw ValidationError("--control \(text) is not ADDRESS:PORT, [IPV6]:PORT or unix:PATH")
            }
            control.listen = address
        }
        if let controlTokenFile { control.tokenFile = controlTokenFile }
        if noControl { control.enabled = false }
    }

    func run() throws {
        // Before any thread exists, so every thread inherits the mask and the control loop's
        // signalfd sees SIGINT/SIGTERM/SIGUSR1.
        ControlSignals.block()
        let logger = try log.bootstrap()
        // A ConfigError propagates as is: ArgumentParser prints its description (key, line,
        // reason) without the usage text, and exits non-zero.
        let config = try makeConfig()
        guard isRoot() else {
            logger.critical("needs root (CAP_NET_ADMIN for TAP devices, CAP_NET_RAW for the send socket)")
            throw ExitCode(1)
        }
        let router: Router
        let clusterRunner = ClusterRunner()
        let clusterPassword: String?
        do {
            // The token before any device: an unreadable file stops the start here.
            let token = config.control.enabled ? try config.control.tokenFile.map { try readToken(path: $0) } : nil
            // The etcd password likewise: read once, here, and kept in memory only.
            clusterPassword = try config.cluster?.passwordFile.map { try readPassword(path: $0) }
            // SIGHUP and `vxrouter reload` read the file again, with the same flags applied.
            let reloadSource: (() throws -> RouterConfig)? = self.config == nil ? nil : { try makeConfig() }
            router = try Router(config: config, reloadSource: reloadSource, logger: logger) { service in
                try ControlServer(
                    address: config.control.listen, token: token, controlGroup: config.control.group,
                    metrics: config.metrics.listen, service: service)
            }
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        if let cluster = config.cluster {
            clusterRunner.start(
                config: config, cluster: cluster, password: clusterPassword, service: router.makeService(), hook: router.clusterHook, logger: logger)
        }
        defer { clusterRunner.stop() }
        try router.run()
    }
}
