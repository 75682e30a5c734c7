// The traffic a run sends and where it goes, parsed from the command line: frame sizes, rates,
// the flows' addresses, and the two kinds of end. Pure: no syscalls, unit-tested.
import VXWire

/// A bad argument, a missing file, an end that cannot be opened: said plainly, no usage text.
struct LoadError: Error, CustomStringConvertible, Equatable {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Frame sizes

/// The sizes of successive frames: a cycle, smooth weighted round-robin over `size:weight`
/// entries, so a 7:4:1 mix interleaves rather than sending seven small frames in a row.
struct FrameSizes: Equatable, Sendable, CustomStringConvertible {
    let entries: [(size: Int, weight: Int)]
    let pattern: [Int]
    let description: String

    static func == (lhs: FrameSizes, rhs: FrameSizes) -> Bool { lhs.pattern == rhs.pattern }

    /// The simple IMIX: 7 small, 4 medium, 1 large frame. Its sizes are the usual 64/594/1518
    /// counted with the FCS; vxload counts frames without it (as packet sockets and tcpdump do),
    /// so the large one is 1514, clamped to what the sending end carries.
    static let imixEntries: [(size: Int, weight: Int)] = [(64, 7), (594, 4), (1514, 1)]

    /// `64` (fixed), `64,512,1400` (each in turn), `64:7,594:4,1514:1` (weighted), or `imix`.
    /// `largest` is the biggest frame the sending end carries: an explicit size above it is an
    /// error, imix's large frame is clamped to it.
    static func parse(_ text: String, largest: Int = 9014) throws(LoadError) -> FrameSizes {
        let trimmed = text.lowercased().filter { !$0.isWhitespace }
        var entries: [(size: Int, weight: Int)] = []
        if trimmed == "imix" {
            entries = imixEntries.map { (Swift.min($0.size, largest), $0.weight) }
        } else {
            for item in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
                let parts = item.split(separator: ":", omittingEmptySubsequences: false)
                guard (1...2).contains(parts.count), let size = Int(parts[0]),
                    let weight = parts.count == 2 ? Int(parts[1]) : 1, weight > 0
                else {
                    throw LoadError("--size \(text): expected SIZE, SIZE,SIZE,... , SIZE:WEIGHT,... or imix")
                }
                guard size >= Probe.minimumFrame else {
                    throw LoadError(
                        "--size \(size) is below \(Probe.minimumFrame) bytes, the smallest frame that holds "
                            + "Ethernet, IPv4, UDP and the 22-byte probe")
                }
                guard size <= largest else {
                    throw LoadError("--size \(size) is more than the sending end carries (\(largest)-byte frames)")
                }
                entries.append((size, weight))
            }
        }
        guard !entries.isEmpty else { throw LoadError("--size is empty") }
        guard entries.reduce(0, { $0 + $1.weight }) <= 10_000 else { throw LoadError("--size weights add up to more than 10000") }
        let label: String
        if trimmed == "imix" {
            label = "imix (" + entries.map { "\($0.size):\($0.weight)" }.joined(separator: ",") + ")"
        } else if entries.count == 1 {
            label = "\(entries[0].size)"
        } else {
            label = entries.map { $0.weight == 1 ? "\($0.size)" : "\($0.size):\($0.weight)" }.joined(separator: ",")
        }
        return FrameSizes(entries: entries, label: label)
    }

    private init(entries: [(size: Int, weight: Int)], label: String) {
        self.entries = entries
        description = label
        // nginx's smooth weighted round-robin: each step every entry gains its weight, the
        // richest is picked and pays the total.
        let total = entries.reduce(0) { $0 + $1.weight }
        var current = [Int](repeating: 0, count: entries.count)
        var pattern: [Int] = []
        for _ in 0..<total {
            var best = 0
            for i in entries.indices {
                current[i] += entries[i].weight
                if current[i] > current[best] { best = i }
            }
            current[best] -= total
            pattern.append(entries[best].size)
        }
        self.pattern = pattern
    }

    var largest: Int { pattern.max()! }
    var mean: Double { Double(pattern.reduce(0, +)) / Double(pattern.count) }
}

// MARK: - Rates and counts

enum Rate: Equatable, Sendable, CustomStringConvertible {
    case unlimited
    case packetsPerSecond(Double)

    /// `max`, or packets per second with an optional k/M/G suffix (`250k`, `1.5M`).
    static func parse(_ text: String) throws(LoadError) -> Rate {
        let t = text.trimmingWhitespace
        if t.lowercased() == "max" { return .unlimited }
        var multiplier = 1.0
        var digits = Substring(t)
        switch t.last {
        case "k", "K": multiplier = 1e3; digits = digits.dropLast()
        case "m", "M": multiplier = 1e6; digits = digits.dropLast()
        case "g", "G": multiplier = 1e9; digits = digits.dropLast()
        default: break
        }
        guard let value = Double(digits), value.isFinite, value > 0 else {
            throw LoadError("--rate \(text): expected packets per second (e.g. 5000, 250k, 1.5M) or max")
        }
        let rate = value * multiplier
        guard rate <= 1e9 else { throw LoadError("--rate \(text) is above a billion packets per second") }
        return .packetsPerSecond(rate)
    }

    var description: String {
        switch self {
        case .unlimited: return "max"
        case .packetsPerSecond(let r): return "\(formatCount(r)) pps"
        }
    }
}

/// Plain number formatting without Foundation: `12345678` → `12.3M`.
func formatCount(_ value: Double) -> String {
    let a = abs(value)
    if a >= 1e9 { return formatDecimal(value / 1e9, places: 2) + "G" }
    if a >= 1e6 { return formatDecimal(value / 1e6, places: 2) + "M" }
    if a >= 1e4 { return formatDecimal(value / 1e3, places: 1) + "k" }
    return formatDecimal(value, places: a == a.rounded() || a >= 100 ? 0 : 1)
}

func formatDecimal(_ value: Double, places: Int) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = Int64(scaled / scale)
    let fraction = Int64(scaled - Double(whole) * scale)
    var text = (value < 0 && scaled != 0 ? "-" : "") + String(whole)
    if places > 0 {
        let digits = String(fraction)
        text += "." + String(repeating: "0", count: places - digits.count) + digits
    }
    return text
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s = s.dropFirst() }
        while s.last?.isWhitespace == true { s = s.dropLast() }
        return String(s)
    }
}

// MARK: - Flows

/// How flows map onto addresses: flow f takes source MAC f mod `sourceMACs`, destination MAC
/// f mod `destinationMACs`, VNI base + f mod `vnis`, and a source port of its own. The MACs are
/// locally administered (02:76:78 = "vx") and never a device's own, so at a sink the kernel sees
/// frames for another host and drops them quietly after the packet socket has its copy.
struct FlowPlan: Equatable, Sendable {
    var flows = 1
    var sourceMACs = 1
    var destinationMACs = 1
    var vnis = 1
    var baseVNI: UInt32 = 42
    var sourceIP: UInt32 = 0xC613_C801  // 198.19.200.1
    var destinationIP: UInt32 = 0xC613_C802  // 198.19.200.2
    /// The discard port: nothing should answer.
    var destinationPort: UInt16 = 9

    static let sourceMACBase: UInt64 = 0x02_76_78_01_00_00
    static let destinationMACBase: UInt64 = 0x02_76_78_02_00_00
    static let sourcePortBase = 1024
    static let sourcePorts = 65536 - sourcePortBase

    func validate() throws(LoadError) {
        guard (1...Probe.maximumFlows).contains(flows) else { throw LoadError("--flows must be 1...\(Probe.maximumFlows)") }
        guard (1...65536).contains(sourceMACs) else { throw LoadError("--src-macs must be 1...65536") }
        guard (1...65536).contains(destinationMACs) else { throw LoadError("--dst-macs must be 1...65536") }
        guard vnis >= 1, UInt64(baseVNI) + UInt64(vnis) - 1 <= UInt64(VNI.max) else {
            throw LoadError("--vni \(baseVNI) with --vnis \(vnis) runs past the largest VNI (16777215)")
        }
    }

    func address(of flow: Int) -> FlowAddress {
        FlowAddress(
            id: UInt16(flow),
            source: MACAddress(unchecked: FlowPlan.sourceMACBase + UInt64(flow % sourceMACs)),
            destination: MACAddress(unchecked: FlowPlan.destinationMACBase + UInt64(flow % destinationMACs)),
            sourceIP: sourceIP &+ UInt32(flow / FlowPlan.sourcePorts),
            destinationIP: destinationIP,
            sourcePort: UInt16(FlowPlan.sourcePortBase + flow % FlowPlan.sourcePorts),
            destinationPort: destinationPort,
            vni: VNI(unchecked: baseVNI + UInt32(flow % vnis)))
    }
}

// MARK: - Ends

/// One side of a run: what it sends into or listens on.
enum EndSpec: Equatable, Sendable, CustomStringConvertible {
    /// `iface:NAME` — the host side of any interface, through an AF_PACKET socket: sending is the
    /// kernel transmitting on it (into a TAP's reader, a vxlan device's encapsulation, a veth),
    /// receiving sees what it receives.
    case interface(String)
    /// `tap:NAME` — the program behind a TAP (as a VM or vxrouter is): vxload opens a queue,
    /// creating the TAP if it does not exist. Never on vxrouter's own TAP: a second queue would
    /// take a share of the frames meant for the router.
    case tap(String)
    /// `vxlan:HOST[:PORT]` — a remote VTEP: VXLAN over UDP to HOST:PORT; as a sink, listen on
    /// HOST:PORT (HOST may be 0.0.0.0, or left out: `vxlan:PORT`). PORT defaults to 4789.
    case vxlan(Endpoint)

    static func parse(_ text: String) throws(LoadError) -> EndSpec {
        guard let colon = text.firstIndex(of: ":") else {
            throw LoadError("end \(text): expected iface:NAME, tap:NAME or vxlan:HOST[:PORT]")
        }
        let kind = text[..<colon].lowercased()
        let rest = String(text[text.index(after: colon)...])
        switch kind {
        case "iface", "tap":
            guard !rest.isEmpty, rest.utf8.count <= 15, !rest.contains("/"), !rest.contains(where: \.isWhitespace),
                rest != ".", rest != ".."
            else { throw LoadError("end \(text): \(rest.isEmpty ? "no interface name" : "\(rest) is not an interface name (at most 15 characters, no / or spaces)")") }
            return kind == "iface" ? .interface(rest) : .tap(rest)
        case "vxlan":
            return .vxlan(try parseEndpoint(rest, in: text))
        default:
            throw LoadError("end \(text): unknown kind \(kind); expected iface:NAME, tap:NAME or vxlan:HOST[:PORT]")
        }
    }

    private static func parseEndpoint(_ rest: String, in text: String) throws(LoadError) -> Endpoint {
        func port(_ s: Substring) throws(LoadError) -> UInt16 {
            guard let p = UInt16(s), p > 0 else { throw LoadError("end \(text): \(s) is not a UDP port (1-65535)") }
            return p
        }
        let any = IPAddress(v4: 0)
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]"), let address = IPAddress(rest[rest.index(after: rest.startIndex)..<close])
            else { throw LoadError("end \(text): bad [IPv6] address") }
            let after = rest[rest.index(after: close)...]
            if after.isEmpty { return Endpoint(address: address, port: 4789) }
            guard after.first == ":" else { throw LoadError("end \(text): expected :PORT after the ]") }
            return Endpoint(address: address, port: try port(after.dropFirst()))
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 1 where !rest.contains("."):
            return Endpoint(address: any, port: try port(parts[0]))
        case 1:
            guard let address = IPAddress(parts[0]) else { throw LoadError("end \(text): \(parts[0]) is not an IP address") }
            return Endpoint(address: address, port: 4789)
        case 2:
            guard let address = IPAddress(parts[0]) else { throw LoadError("end \(text): \(parts[0]) is not an IP address") }
            return Endpoint(address: address, port: try port(parts[1]))
        default:
            if let address = IPAddress(rest) { return Endpoint(address: address, port: 4789) }
            throw LoadError("end \(text): expected vxlan:HOST:PORT (IPv6 as vxlan:[ADDRESS]:PORT)")
        }
    }

    var description: String {
        switch self {
        case .interface(let name): return "iface:\(name)"
        case .tap(let name): return "tap:\(name)"
        case .vxlan(let endpoint): return "vxlan:\(endpoint)"
        }
    }
}
