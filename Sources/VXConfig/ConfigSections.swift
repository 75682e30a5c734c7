// The config's sections, each read from its mapping against its key list (ConfigKeys) into the
// model: the root, underlay, networks (with their FDB entries), control, metrics and capture.
import VXCapture
import VXDatapath
import VXWire
import Yams

extension ConfigReader {
    mutating func routerConfig(_ root: Node) throws(ConfigError) -> RouterConfig {
        let rootField = ConfigField(node: root, path: "")
        guard case .mapping = root else {
            throw ConfigError(
                path: "", line: rootField.line,
                reason: "the top level must be a mapping with keys \(ConfigKeys.root.joined(separator: ", ")); "
                    + "got \(ConfigReader.describe(root))")
        }
        let top = try rootField.mapping(allowed: ConfigKeys.root)
        let underlay = try underlayConfig(required(top, "underlay"))
        let offloads = try optional(top, "offloads")?.bool() ?? true
        let busyPoll = try optional(top, "busy_poll")?.integer(in: RouterConfig.busyPollRange) ?? 0
        let steering = try optional(top, "steering")?.oneOf(Steering.self) ?? .auto
        let workers = try optional(top, "workers")?.autoOrInteger(in: ConfigLimits.workers)
        var networks: [NetworkConfig] = []
        for field in try elements(required(top, "networks"), expected: "networks") {
            networks.append(try networkConfig(field))
        }
        var control = ControlConfig()
        if let field = optional(top, "control") { control = try controlConfig(field) }
        var metrics = MetricsConfig()
        if let field = optional(top, "metrics") { metrics = try metricsConfig(field) }
        var capture: CaptureSpec?
        var directory = RouterConfig.defaultCaptureDirectory
        if let field = optional(top, "capture") {
            (capture, directory) = try captureConfig(field, served: networks.map(\.vni), family: underlay.local.family)
        }
        var config = RouterConfig(underlay: underlay, workers: workers, networks: networks, control: control, offloads: offloads, capture: capture)
        config.metrics = metrics
        config.captureDirectory = directory
        config.busyPoll = busyPoll
        config.steering = steering
        if let field = optional(top, "cluster") { config.cluster = try clusterConfig(field) }
        return config
    }

    /// The `capture:` section: checked in full here (the filter compiled by libpcap) so
    /// `check-config` catches it; only the file's writability waits for the router's start.
    mutating func captureConfig(_ field: ConfigField, served: [VNI], family: IPAddress.Family) throws(ConfigError)
        -> (CaptureSpec?, String)
    {
        let fields = try field.mapping(allowed: ConfigKeys.capture)
        var directory = RouterConfig.defaultCaptureDirectory
        if let dir = optional(fields, "directory") {
            directory = try dir.string()
            guard directory.hasPrefix("/"), directory.utf8.count > 1 else {
                throw dir.error("\(ConfigReader.quoted(directory)) is not an absolute directory path")
            }
        }
        // Only `directory`: no capture at start.
        if fields.values.keys.allSatisfy({ $0 == "directory" }) { return (nil, directory) }
        var spec = CaptureSpec()
        spec.file = try required(fields, "file").string()
        if let points = optional(fields, "points") {
            var set: Set<CapturePoint> = []
            for element in try elements(points, expected: "capture points (inner, outer, drop)") {
                let name = try element.string()
                guard let point = CapturePoint(name: name) else {
                    throw element.error("\(ConfigReader.quoted(name)) is not a capture point (inner, outer, drop)")
                }
                set.insert(point)
            }
            spec.points = set
        }
        if let vni = optional(fields, "vni") {
            let value = try vni.integer(in: 0...Int(VNI.max))
            guard let served = VNI(value).flatMap({ ServedVNIs(served).contains($0) ? $0 : nil }) else {
                throw vni.error("vni \(value) is not one of the networks")
            }
            spec.vni = served
        }
        if let remote = optional(fields, "remote") {
            let address = try remote.address()
            if address.family != family {
                throw remote.error("\(address) is \(familyName(address.family)) but the underlay is \(familyName(family))")
            }
            spec.remote = address
        }
        if let filter = optional(fields, "filter") {
            let text = try filter.string()
            do {
                _ = try InnerFilter(text)
            } catch {
                throw filter.error(error.description)
            }
            spec.filter = text
        }
        if let v = optional(fields, "snaplen") { spec.snapLength = try v.integer(in: CaptureSpec.Limits.snapLength) }
        if let v = optional(fields, "count") { spec.count = try v.integer(in: CaptureSpec.Limits.count) }
        if let v = optional(fields, "duration") {
            spec.duration = Double(try v.integer(in: 1...Int(CaptureSpec.Limits.duration.upperBound)))
        }
        if let v = optional(fields, "rotate_bytes") {
            spec.rotateBytes = try v.integer(in: CaptureSpec.Limits.rotateBytes)
        }
        if let v = optional(fields, "rotate_files") {
            spec.rotateFiles = try v.integer(in: CaptureSpec.Limits.rotateFiles)
        }
        if let (key, reason) = spec.problem() {
            throw (fields.values[key] ?? field).error(reason)
        }
        return (spec, directory)
    }

    mutating func controlConfig(_ field: ConfigField) throws(ConfigError) -> ControlConfig {
        let fields = try field.mapping(allowed: ConfigKeys.control)
        var control = ControlConfig()
        if let enabled = try optional(fields, "enabled")?.bool() { control.enabled = enabled }
        if let listen = optional(fields, "listen") {
            let text = try listen.text(expected: "an address ADDRESS:PORT or unix:PATH").text
            guard let address = ControlAddress(text) else {
                throw listen.error(
                    "\(ConfigReader.quoted(text)) is not ADDRESS:PORT, [IPV6]:PORT or unix:PATH "
                        + "(e.g. 127.0.0.1:4790, unix:/run/vxrouter.sock)")
            }
            control.listen = address
        }
        if let token = optional(fields, "token_file") {
            let path = try token.string()
            if path.isEmpty { throw token.error("the token file path is empty") }
            control.tokenFile = path
        }
        if let group = optional(fields, "group") {
            let name = try group.string()
            if let problem = GroupNameRule.problem(name) { throw group.error(problem) }
            control.group = name
        }
        return control
    }

    mutating func metricsConfig(_ field: ConfigField) throws(ConfigError) -> MetricsConfig {
        let fields = try field.mapping(allowed: ConfigKeys.metrics)
        var metrics = MetricsConfig()
        if let listen = optional(fields, "listen") {
            let text = try listen.text(expected: "an address ADDRESS:PORT").text
            guard let address = ControlAddress(text), !address.isUnix else {
                throw listen.error(
                    "\(ConfigReader.quoted(text)) is not ADDRESS:PORT or [IPV6]:PORT (e.g. 127.0.0.1:\(MetricsConfig.conventionalPort))")
            }
            metrics.listen = address
        }
        return metrics
    }

    mutating func underlayConfig(_ field: ConfigField) throws(ConfigError) -> UnderlayConfig {
        let fields = try field.mapping(allowed: ConfigKeys.underlay)
        let local = try required(fields, "local").address()
        var underlay = UnderlayConfig(local: local)
        if let port = try optional(fields, "port")?.integer(in: ConfigLimits.port) {
            underlay.port = UInt16(port)
        }
        if let ports = try optional(fields, "source_ports")?.portRange() {
            underlay.sourcePorts = ports
        }
        underlay.mtu = try optional(fields, "mtu")?.autoOrInteger(
            in: ConfigLimits.underlayMTU(for: local.family), note: " for an \(familyName(local.family)) underlay")
        if let field = optional(fields, "udp_checksum") { underlay.udpChecksum = try field.autoOrBool() }
        if let field = optional(fields, "trust_udp_checksum") { underlay.trustUDPChecksum = try field.autoOrBool() }
        return underlay
    }

    mutating func networkConfig(_ field: ConfigField) throws(ConfigError) -> NetworkConfig {
        let fields = try field.mapping(allowed: ConfigKeys.network)
        let vniField = try required(fields, "vni")
        guard let vni = VNI(try vniField.integer(in: ConfigLimits.vni)) else {
            throw vniField.error("not a VNI")  // unreachable: the range is VNI's
        }
        var net = NetworkConfig(vni: vni, tap: try required(fields, "tap").string())
        net.mtu = try optional(fields, "mtu")?.autoOrInteger(in: ConfigLimits.networkMTU)
        net.address = try optional(fields, "address")?.prefix(requireLength: true)
        if let learning = try optional(fields, "learning")?.bool() { net.learning = learning }
        if let ageing = try optional(fields, "ageing")?.integer(in: ConfigLimits.ageing) { net.ageing = ageing }
        if let max = try optional(fields, "max_entries")?.integer(in: ConfigLimits.maxEntries) { net.maxEntries = max }
        if let flood = optional(fields, "flood") {
            for entry in try elements(flood, expected: "IP addresses") { net.flood.append(try entry.address()) }
        }
        if let fdb = optional(fields, "fdb") {
            for entry in try elements(fdb, expected: "{ mac, remote } mappings") {
                let pair = try entry.mapping(allowed: ConfigKeys.fdbEntry)
                let mac = try required(pair, "mac").mac()
                let remote = try required(pair, "remote").address()
                var ips: [IPAddress] = []
                if let list = optional(pair, "ips") {
                    for ip in try elements(list, expected: "IP addresses") { ips.append(try ip.address()) }
                }
                net.fdb.append(StaticFDBEntry(mac: mac, remote: remote, ips: ips))
            }
        }
        net.mac = try optional(fields, "mac")?.mac()
        if let on = try optional(fields, "arp_suppression")?.bool() { net.arpSuppression = on }
        if let on = try optional(fields, "pmtu_signal")?.bool() { net.pmtuSignal = on }
        if let allow = optional(fields, "allow_from") {
            if case .scalar = allow.node {
                switch try allow.text(expected: "known, any, or a list of addresses or prefixes").text {
                case "known": net.allowKnown = true
                case "any": net.allowKnown = false
                case let other:
                    throw allow.error(
                        "\(ConfigReader.quoted(other)) is not known or any; expected a list of addresses or prefixes, known or any")
                }
            } else {
                for entry in try elements(allow, expected: "addresses or prefixes") {
                    net.allowFrom.append(try entry.prefix(requireLength: false))
                }
                // An explicit [] says "any", as it always has.
                if net.allowFrom.isEmpty { net.allowKnown = false }
            }
        }
        return net
    }
}
