// `vxrouter trace`: what a running router would do with a frame, and why (POST /v1/trace) — as
// Open vSwitch's `ofproto/trace`. The frame comes as hex, as a pcap record, or from a few fields;
// the router answers from its live tables and sends, learns and counts nothing.
import ArgumentParser
import Foundation
import VXControlAPI
import VXWire

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the router would do with a frame, and why (nothing is sent or changed).",
        discussion: """
            The frame comes from a TAP (--from tap --vni N) or from the tunnel (--from tunnel --remote VTEP, \
            with --vni for an inner frame), given as --hex, as a pcap record (--pcap FILE --record N; a \
            tunnel-side record of an outer VXLAN packet gives the sender and VNI itself), or built from \
            --dst-mac/--src-mac [--vlan] [--ipv4 SRC,DST,PROTO,SPORT,DPORT | --arp SENDER,TARGET] [--size N].

            Examples:
              vxrouter trace --vni 42 --from tap --dst-mac 02:00:00:00:00:02 --src-mac 02:00:00:00:00:01 \\
                  --ipv4 198.19.0.1,198.19.0.2,tcp,40000,5201 --size 1400
              vxrouter trace --from tunnel --remote 198.18.0.2 --vni 42 --hex 0200000000010200000000020800...
              vxrouter trace --from tunnel --pcap /var/lib/vxrouter/captures/c.pcap --record 7
            """)

    enum Origin: String, ExpressibleByArgument, CaseIterable { case tap, tunnel }

    @Option(help: "Where the frame comes from: tap (read from the VNI's TAP) or tunnel (from a remote VTEP).")
    var from: Origin = .tap
    @Option(help: "The network (from a TAP: required; from the tunnel: the VNI of an inner frame).") var vni: VNI?
    @Option(help: "From the tunnel: the sending VTEP's underlay address.") var remote: IPAddress?

    @Option(help: "The frame in hex (from the tunnel with --vxlan: the UDP payload, VXLAN header first).")
    var hex: String?
    @Flag(help: "--hex (or the pcap record) is the whole UDP payload: VXLAN header and inner frame.")
    var vxlan = false
    @Option(help: "A pcap file (Ethernet) to take the frame from.") var pcap: String?
    @Option(help: "Which record of --pcap, from 1 as Wireshark numbers them.") var record: Int = 1

    @Option(help: "Destination MAC of a frame built from fields.") var dstMac: MACAddress?
    @Option(help: "Source MAC of a frame built from fields.") var srcMac: MACAddress?
    @Option(help: "An 802.1Q VLAN tag (0-4094).") var vlan: UInt16?
    @Option(help: "IPv4 header: SRC,DST[,PROTO[,SPORT,DPORT]] (PROTO tcp, udp, icmp or a number; default udp).")
    var ipv4: String?
    @Option(help: "An ARP request: SENDER,TARGET (who has TARGET, tell SENDER).") var arp: String?
    @Option(help: "Pad the frame to this many bytes (for the MTU check).") var size: Int?

    @OptionGroup var options: EndpointOptions

    func validate() throws {
        let sources = [hex != nil, pcap != nil, dstMac != nil || srcMac != nil].filter { $0 }.count
        guard sources == 1 else {
            throw ValidationError("give the frame one way: --hex, --pcap (with --record), or --dst-mac and --src-mac")
        }
        if dstMac != nil || srcMac != nil {
            guard dstMac != nil, srcMac != nil else { throw ValidationError("a frame from fields needs --dst-mac and --src-mac") }
            guard !vxlan else { throw ValidationError("--vxlan is for --hex or --pcap") }
        } else if vlan != nil || ipv4 != nil || arp != nil || size != nil {
            throw ValidationError("--vlan, --ipv4, --arp and --size build a frame from fields (with --dst-mac, --src-mac)")
        }
        if ipv4 != nil, arp != nil { throw ValidationError("--ipv4 and --arp build different frames: give one") }
        if let vlan, vlan > 4094 { throw ValidationError("--vlan \(vlan) is not a VLAN id (0-4094)") }
        if let size, size < 14 || size > 65535 + 22 { throw ValidationError("--size \(size) is not a frame length (14-65557)") }
        if from == .tap {
            guard vni != nil else { throw ValidationError("--from tap needs --vni (whose TAP the frame comes from)") }
            guard remote == nil, !vxlan else { throw ValidationError("--remote and --vxlan are for --from tunnel") }
        }
    }

    func run() throws {
        var request = TraceRequest(from: from.rawValue, vni: vni?.rawValue, remote: remote?.description)
        let bytes = try frameBytes()
        switch from {
        case .tap:
            request.frame = Self.hex(bytes)
        case .tunnel:
            var payload: [UInt8]? = vxlan ? bytes : nil
            var sender = remote
            // A tunnel-side capture record: the outer packet says who sent it and carries the VXLAN header.
            if payload == nil, pcap != nil, let datagram = TraceFrame.vxlanDatagram(bytes, port: try underlayPort()) {
                payload = datagram.payload
                sender = sender ?? datagram.source
            }
            guard let sender else {
                throw ValidationError("--from tunnel needs --remote (the sending VTEP's underlay address)")
            }
            request.remote = sender.description
            if let payload {
                guard vni == nil else { throw ValidationError("the VXLAN payload carries its VNI: leave out --vni") }
                request.payload = Self.hex(payload)
            } else {
                guard vni != nil else { throw ValidationError("--from tunnel with an inner frame needs --vni") }
                request.frame = Self.hex(bytes)
            }
        }
        let answer = try options.call(TraceResponse.self, "POST", APIPath.trace, body: request)
        if options.json { return }
        print(Self.render(answer), terminator: "")
    }

    func frameBytes() throws -> [UInt8] {
        if let hex {
            var bytes: [UInt8] = []
            var high: UInt8?
            for scalar in hex.unicodeScalars where !" :-\n\t".unicodeScalars.contains(scalar) {
                guard let digit = UInt8(String(scalar), radix: 16) else { throw ValidationError("--hex: \(scalar) is not a hex digit") }
                if let h = high {
                    bytes.append(h << 4 | digit)
                    high = nil
                } else {
                    high = digit
                }
            }
            guard high == nil, !bytes.isEmpty else { throw ValidationError("--hex needs whole bytes (an even number of digits)") }
            return bytes
        }
        if let pcap {
            guard let data = FileManager.default.contents(atPath: pcap) else { throw ValidationError("cannot read \(pcap)") }
            do {
                return try TraceFrame.pcapRecord(Array(data), index: record)
            } catch {
                throw ValidationError("\(pcap): \(error)")
            }
        }
        var ipv4Flow: TraceFrame.IPv4Flow?
        if let ipv4 {
            guard let flow = TraceFrame.IPv4Flow(ipv4) else {
                throw ValidationError("--ipv4 \(ipv4): expected SRC,DST[,PROTO[,SPORT,DPORT]] with IPv4 addresses")
            }
            ipv4Flow = flow
        }
        var arpRequest: (IPAddress, IPAddress)?
        if let arp {
            let parts = arp.split(separator: ",").map(String.init)
            guard parts.count == 2, let sender = IPAddress(parts[0]), sender.isV4, let target = IPAddress(parts[1]), target.isV4
            else { throw ValidationError("--arp \(arp): expected SENDER,TARGET (IPv4 addresses)") }
            arpRequest = (sender, target)
        }
        return TraceFrame(
            destination: dstMac!, source: srcMac!, vlan: vlan, ipv4: ipv4Flow, arp: arpRequest, size: size
        ).bytes
    }

    /// The VXLAN port, for picking a tunnel-side pcap record apart (from the router's config).
    func underlayPort() throws -> UInt16 {
        try options.call(EffectiveConfig.self, "GET", APIPath.config, printJSON: false).underlay.port
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// The steps, numbered, then the verdict in one line.
    static func render(_ answer: TraceResponse) -> String {
        var text = ""
        let width = max(answer.steps.map(\.stage.count).max() ?? 0, 5)
        for (i, step) in answer.steps.enumerated() {
            let stage = step.stage.padding(toLength: width, withPad: " ", startingAt: 0)
            text += String(format: "%2d. ", i + 1) + stage + "  " + step.result + "\n"
        }
        text += "\n" + verdict(answer) + "\n"
        return text
    }

    static func verdict(_ answer: TraceResponse) -> String {
        let port = answer.outerSourcePort.map { " (outer source port \($0))" } ?? ""
        switch answer.action {
        case .unicast: return "Verdict: unicast to \(answer.remotes.joined(separator: ", "))\(port)"
        case .flood: return "Verdict: flood to \(answer.remotes.count) remote VTEPs: \(answer.remotes.joined(separator: ", "))\(port)"
        case .answer: return "Verdict: answered locally (\(answer.answer ?? "?")); nothing enters the tunnel"
        case .deliver: return "Verdict: deliver to \(answer.tap.map { "TAP \($0)" } ?? "the TAP")"
        case .drop:
            let icmp = answer.icmpTooBig == true ? " (the sender gets ICMP \"too big\")" : ""
            return "Verdict: drop, \(answer.dropReason ?? "?")\(icmp)"
        }
    }
}
