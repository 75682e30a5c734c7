// The executable: argument parsing, wiring, signals — nothing else.
import ArgumentParser
import Logging
import VXControl
import VXPlatform
import VXWire

@main
struct VXRouterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vxrouter",
        abstract: "A userspace VXLAN (RFC 7348) router: TAP devices in, VXLAN over UDP out.",
        subcommands: [
            Run.self, CheckConfig.self, Stats.self, FDB.self, Flood.self, Peers.self, Events.self, Capture.self,
        ])
}

struct LogOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func bootstrap() throws -> Logger {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level \(logLevel) is not one of trace, debug, info, notice, warning, error, critical")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "vxrouter")
    }
}

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
    var vni: Int?

    @Option(help: "TAP device for the network (created if missing, removed on exit).")
    var tap: String?

    @Option(help: "Local underlay address (source of encapsulated packets).")
    var local: String?

    @Option(help: "A remote VTEP for the flood list (repeatable).")
    var remote: [String] = []

    @Option(help: "UDP port listened on and sent to.")
    var port: Int = 4789

    @Option(help: "Address with prefix length for the TAP, e.g. 192.168.42.1/24.")
    var address: String?

    @Option(help: "TAP MTU (default: underlay MTU minus 50 for IPv4, 70 for IPv6).")
    var mtu: Int?

    @Option(help: "The TAP's MAC, e.g. 02:11:22:33:44:55 (default: a stable MAC derived from /etc/machine-id and the VNI).")
    var mac: String?

    @Option(help: "Worker threads (default: one per core).")
    var workers: Int?

    @Option(help: "Control endpoint: ADDRESS:PORT or unix:PATH (default 127.0.0.1:4790; with --config, overrides control.listen).")
    var control: String?

    @Flag(help: "Do not start the control endpoint.")
    var noControl = false

    @Flag(help: "Turn offloads off: plain TAP reads/writes (no virtio headers, TSO or coalescing), raw-socket sends without UDP GSO, receives without UDP GRO. Overrides the config's `offloads`.")
    var noOffloads = false

    @Option(help: "Microseconds a worker keeps polling after traffic before it sleeps (0 = off, up to 10000): lower latency for request/response traffic at the cost of CPU while traffic flows; an idle router never spins. Overrides the config's `busy_poll`.")
    var busyPoll: Int?

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
            try applyControlFlags(&loaded.control)
            try loaded.validate()
            return loaded
        }
        guard let vni, let tap, let local else {
            throw ValidationError("give --config FILE, or --vni, --tap and --local (and --remote for each peer)")
        }
        guard let vniValue = VNI(vni) else { throw ValidationError("--vni \(vni) is out of range (0-16777215)") }
        guard let localAddress = IPAddress(local) else { throw ValidationError("--local \(local) is not an IP address") }
        var flood: [IPAddress] = []
        for text in remote {
            guard let address = IPAddress(text) else { throw ValidationError("--remote \(text) is not an IP address") }
            flood.append(address)
        }
        var prefix: IPPrefix? = nil
        if let address {
            guard address.contains("/"), let parsed = IPPrefix(address) else {
                throw ValidationError("--address \(address) must be ADDRESS/PREFIXLEN, e.g. 192.168.42.1/24")
            }
            prefix = parsed
        }
        var tapMAC: MACAddress? = nil
        if let mac {
            guard let parsed = MACAddress(mac) else {
                throw ValidationError("--mac \(mac) is not a MAC address (expected aa:bb:cc:dd:ee:ff)")
            }
            if let reason = interfaceMACProblem(parsed) { throw ValidationError("--mac \(reason)") }
            tapMAC = parsed
        }
        guard (1...65535).contains(port) else { throw ValidationError("--port \(port) is out of range (1-65535)") }
        var config = RouterConfig(
            underlay: UnderlayConfig(local: localAddress, port: UInt16(port)),
            workers: workers,
            networks: [NetworkConfig(vni: vniValue, tap: tap, mtu: mtu, address: prefix, flood: flood)],
            offloads: !noOffloads)
        config.networks[0].mac = tapMAC
        config.busyPoll = busyPoll ?? 0
        try applyControlFlags(&config.control)
        try config.validate()
        return config
    }

    func applyControlFlags(_ control: inout ControlConfig) throws {
        if let text = self.control {
            guard let address = ControlAddress(text) else {
                throw ValidationError("--control \(text) is not ADDRESS:PORT, [IPV6]:PORT or unix:PATH")
            }
            control.listen = address
        }
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
        do {
            router = try Router(config: config, logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        try router.run()
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a config file and print what it means, without starting.")

    @Argument(help: "YAML config file.")
    var path: String

    func run() throws {
        let config = try ConfigLoader.load(path: path)
        try config.validate()
        print("\(path): ok — \(config.networks.count) network(s), local \(config.underlay.local), port \(config.underlay.port)")
        for net in config.networks {
            print("  vni \(net.vni) tap \(net.tap) flood \(net.flood.map(\.description)) static \(net.fdb.count)")
        }
    }
}
