// vxload: a load generator for overlay datapaths. Argument parsing only; Runner does the work.
//
// Exit status: 0 the run completed and met what was asked; 1 it ran but failed or could not
// complete (an end failed, interrupted, the rate not reached, the sender's count never came);
// 2 it could not start (a missing capture, no such interface, a port in use); 64 bad usage.
import ArgumentParser
import VXPlatform
import VXWire

@main
struct VXLoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vxload",
        abstract: "Load generator for overlay datapaths: probe frames (or a capture) in one end, measured out the other.",
        discussion: """
            Ends:
              iface:NAME        the host side of interface NAME (AF_PACKET): a TAP, a kernel vxlan device, a veth
              tap:NAME          the program behind TAP NAME (created if missing); not vxrouter's own TAP
              vxlan:HOST:PORT   a remote VTEP: VXLAN over UDP to HOST:PORT; as a sink, listen on HOST:PORT
            Examples:
              vxload run --tx iface:vx42 --tx-netns a --rx iface:vx42 --rx-netns b --rate 100k --duration 10
              vxload send --to vxlan:10.0.0.1:4789 --vni 42 --flows 64 --size imix --threads 2
              vxload sink --from vxlan:4789 --json
            """,
        subcommands: [Run.self, Send.self, Sink.self])
}

struct TrafficOptions: ParsableArguments {
    @Option(help: "Frame size in bytes, without FCS (min 64): 64 | 64,512,1400 | 64:7,594:4,1514:1 | imix.")
    var size = "64"

    @Option(help: "Flows (distinct source ports), each with its own sequence numbers (1-65535).")
    var flows = 1

    @Option(name: .customLong("src-macs"), help: "Distinct source MACs, assigned to flows in turn.")
    var sourceMACs = 1

    @Option(name: .customLong("dst-macs"), help: "Distinct destination MACs, assigned to flows in turn.")
    var destinationMACs = 1

    @Option(help: "VNI of the first flow (vxlan: ends).")
    var vni = 42

    @Option(help: "Distinct VNIs, assigned to flows in turn from --vni (vxlan: ends).")
    var vnis = 1

    @Option(name: .customLong("src-ip"), help: "Inner source IPv4 address.")
    var sourceIP = "198.19.200.1"

    @Option(name: .customLong("dst-ip"), help: "Inner destination IPv4 address.")
    var destinationIP = "198.19.200.2"

    @Option(help: "Packets per second over all threads (250k, 1.5M), or max (the default; a capture: its own timing).")
    var rate: String?

    @Option(help: "Seconds to send (default 10 unless --count, or a capture's --loop, ends the run).")
    var duration: Double?

    @Option(help: "Packets to send in total.")
    var count: UInt64?

    @Option(help: "Sending threads, each with its own socket (or TAP queue) and flows.")
    var threads = 1

    @Option(help: "Frames per sendmmsg batch.")
    var batch = 64

    @Option(help: "Replay the Ethernet frames of this pcap/pcapng file instead of generating probes.")
    var pcap: String?

    @Option(help: "Replay the capture this many times (0: until --duration or --count).")
    var loop = 1

    @Option(help: "Replay at the capture's own timing times this factor (default when --rate is not given: 1).")
    var speed: Double?

    func apply(to config: inout RunConfig) throws {
        config.sizes = size
        config.plan.flows = flows
        config.plan.sourceMACs = sourceMACs
        config.plan.destinationMACs = destinationMACs
        guard let base = VNI(vni) else { throw ValidationError("--vni \(vni) is out of range (0-16777215)") }
        config.plan.baseVNI = base.rawValue
        config.plan.vnis = vnis
        guard let src = IPAddress(sourceIP), src.isV4 else { throw ValidationError("--src-ip \(sourceIP) is not an IPv4 address") }
        guard let dst = IPAddress(destinationIP), dst.isV4 else {
            throw ValidationError("--dst-ip \(destinationIP) is not an IPv4 address")
        }
        config.plan.sourceIP = src.v4Value
        config.plan.destinationIP = dst.v4Value
        do { config.rate = try rate.map(Rate.parse) ?? .unlimited } catch { throw ValidationError(error.description) }
        // A capture without --rate goes at its own pace.
        config.speed = speed ?? (pcap != nil && rate == nil ? 1 : nil)
        config.duration = duration
        config.count = count
        config.threads = threads
        config.batch = batch
        config.pcap = pcap
        config.loops = loop
    }
}

struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the result as one JSON object on standard output.")
    var json = false

    @Flag(name: .shortAndLong, help: "A progress line per second on standard error even when it is not a terminal.")
    var verbose = false

    @Flag(name: .shortAndLong, help: "No progress line, even on a terminal.")
    var quiet = false

    func apply(to config: inout RunConfig) {
        config.verbose = verbose
        config.progress = !quiet && (verbose || Console.stderrIsTerminal)
    }
}

/// Opens, runs and reports; the exit status says how it went.
func perform(_ config: RunConfig, json: Bool) throws {
    // Before any thread exists, so every thread inherits the mask and SIGINT reaches the signalfd.
    ControlSignals.block()
    let signals: ControlSignals
    do {
        signals = try ControlSignals()
    } catch {
        throw failToStart("\(error)", mode: config.mode, json: json)
    }
    let runner = Runner(config: config)
    do {
        try runner.prepare()
    } catch {
        throw failToStart(String(describing: error), mode: config.mode, json: json)
    }
    let result = runner.execute(signals: signals)
    Console.out(json ? result.json : result.text)
    if !result.succeeded { throw ExitCode(1) }
}

private func failToStart(_ message: String, mode: Mode, json: Bool) -> ExitCode {
    Console.error("vxload: error: \(message)")
    if json {
        var result = RunResult(mode: mode.rawValue)
        result.complete = false
        result.errors = [message]
        Console.out(result.json)
    }
    return ExitCode(2)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drive both ends from one process: exact loss, one clock for latency.",
        discussion: """
            Each end may live in its own network namespace (ip netns): the socket is opened there and keeps it.
              vxload run --tx iface:vx42 --tx-netns a --rx iface:vx42 --rx-netns b --rate 50k --duration 5
            """)

    @Option(help: "Where frames go in: iface:NAME, tap:NAME, vxlan:HOST:PORT.")
    var tx: String

    @Option(help: "Where they come out: iface:NAME, tap:NAME, vxlan:[HOST:]PORT.")
    var rx: String

    @Option(name: .customLong("tx-netns"), help: "Network namespace (ip netns) of the sending end.")
    var txNamespace: String?

    @Option(name: .customLong("rx-netns"), help: "Network namespace (ip netns) of the receiving end.")
    var rxNamespace: String?

    @Option(name: .customLong("rx-threads"), help: "Receiving threads (packet fanout / SO_REUSEPORT).")
    var rxThreads = 1

    @Option(help: "Seconds to wait after the last send for packets still in flight.")
    var drain = 1.0

    @OptionGroup var traffic: TrafficOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        var config = RunConfig(mode: .run)
        do {
            config.tx = try EndSpec.parse(tx)
            config.rx = try EndSpec.parse(rx)
        } catch { throw ValidationError(error.description) }
        config.txNamespace = txNamespace
        config.rxNamespace = rxNamespace
        config.rxThreads = rxThreads
        config.drain = drain
        try traffic.apply(to: &config)
        output.apply(to: &config)
        try perform(config, json: output.json)
    }
}

struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Only send; a sink elsewhere measures. Ends with a marker that tells the sink the count.")

    @Option(help: "Where frames go in: iface:NAME, tap:NAME, vxlan:HOST:PORT.")
    var to: String

    @Option(name: .customLong("netns"), help: "Network namespace (ip netns) to send from.")
    var namespace: String?

    @Option(name: .customLong("run-id"), help: "Run id to stamp (1-65534; default random, printed).")
    var runID: UInt16?

    @OptionGroup var traffic: TrafficOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        var config = RunConfig(mode: .send)
        do { config.tx = try EndSpec.parse(to) } catch { throw ValidationError(error.description) }
        config.txNamespace = namespace
        if let runID, !(1...0xFFFE).contains(runID) { throw ValidationError("--run-id must be 1-65534") }
        config.runID = runID
        try traffic.apply(to: &config)
        output.apply(to: &config)
        try perform(config, json: output.json)
    }
}

struct Sink: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Only receive and measure what a `vxload send` elsewhere sent.",
        discussion: """
            Stops when the sender's end marker has arrived (and what it counted, or --drain passes), at
            --duration, after --idle seconds without traffic, or on SIGINT. Without the marker the run is
            incomplete: the sender's count is unknown.
            """)

    @Option(help: "Where frames come out: iface:NAME, tap:NAME, vxlan:[HOST:]PORT.")
    var from: String

    @Option(name: .customLong("netns"), help: "Network namespace (ip netns) to receive in.")
    var namespace: String?

    @Option(name: .customLong("rx-threads"), help: "Receiving threads (packet fanout / SO_REUSEPORT).")
    var rxThreads = 1

    @Option(name: .customLong("run-id"), help: "Only count this run (default: the first one seen).")
    var runID: UInt16?

    @Option(help: "The capture the sender replays: frames are recognised by content.")
    var pcap: String?

    @Option(help: "Stop after this many seconds.")
    var duration: Double?

    @Option(help: "Stop after this many seconds without a packet (once one arrived).")
    var idle: Double?

    @Option(help: "Seconds to wait after the end marker for packets still in flight.")
    var drain = 1.0

    @OptionGroup var output: OutputOptions

    func run() throws {
        var config = RunConfig(mode: .sink)
        do { config.rx = try EndSpec.parse(from) } catch { throw ValidationError(error.description) }
        config.rxNamespace = namespace
        config.rxThreads = rxThreads
        config.runID = runID
        config.pcap = pcap
        config.duration = duration
        if let idle, !(idle > 0) { throw ValidationError("--idle must be more than 0") }
        config.idle = idle
        config.drain = drain
        output.apply(to: &config)
        try perform(config, json: output.json)
    }
}
