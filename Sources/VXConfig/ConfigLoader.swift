// The YAML config file (see Config/vxrouter.yaml) into a `RouterConfig`, and the semantic checks
// every config goes through, whether it came from a file or from command-line flags.
//
//  1. read the file (bounded size), require UTF-8, compose it with Yams into a `Node` tree;
//  2. walk only the expected shape: each mapping's keys against the allowed list, each value
//     against its type, building the model and remembering the line of every key read;
//  3. `validate(lines:)`: ranges, families, duplicates — with those lines in the messages.
//
// The first problem found is thrown as a `ConfigError`; nothing in here traps on bad input.
import VXWire
import VXCapture
import VXDatapath
import Yams

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

public enum ConfigLoader {
    /// Far above any real config; stops `--config /dev/zero` from reading forever.
    static let maxFileSize = 16 << 20

    /// Reads, parses and validates the file at `path`.
    public static func load(path: String) throws(ConfigError) -> RouterConfig {
        let bytes = try readFile(path)
        let text = try decodeUTF8(bytes)
        return try parse(yaml: text)
    }

    /// Parses and validates YAML text.
    public static func parse(yaml: String) throws(ConfigError) -> RouterConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw syntaxError(error, yaml: yaml)
        }
        guard let root else {
            throw ConfigError(
                path: "",
                reason: "the file is empty; expected a mapping with keys \(ConfigKeys.root.joined(separator: ", "))")
        }
        var reader = ConfigReader()
        let config = try reader.routerConfig(root)
        try config.validate(lines: reader.lines)
        return config
    }

    static func readFile(_ path: String) throws(ConfigError) -> [UInt8] {
        func failure(_ verb: String) -> ConfigError {
            ConfigError(path: "", reason: "cannot \(verb) \(path): \(String(cString: strerror(errno)))")
        }
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw failure("open") }
        defer { _ = close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("read")
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count > maxFileSize {
                throw ConfigError(path: "", reason: "cannot read \(path): larger than \(maxFileSize >> 20) MiB")
            }
        }
    }

    /// The text, or an error on the line of the first byte that is not UTF-8.
    static func decodeUTF8(_ bytes: [UInt8]) throws(ConfigError) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var line = 1
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        scan: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): if scalar == "\n" { line += 1 }
            case .emptyInput, .error: break scan
            }
        }
        throw ConfigError(path: "", line: line, reason: "not UTF-8 text")
    }

    static func syntaxError(_ error: any Error, yaml: String) -> ConfigError {
        guard let error = error as? YamlError else {
            return ConfigError(path: "", reason: "not valid YAML: \(error)")
        }
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var reason = "YAML syntax error: \(problem)"
            if let context { reason += " (\(context.text) at line \(context.mark.line))" }
            return ConfigError(path: "", line: mark.line, reason: reason)
        case .reader(let problem, let offset, _, _):
            // `offset` counts Characters; libyaml's own line count is not available here.
            let line = offset.map { offset in 1 + yaml.prefix(offset).reduce(0) { $0 + ($1.isNewline ? 1 : 0) } }
            return ConfigError(path: "", line: line, reason: "not YAML text: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { ConfigReader.quoted($0) }.joined(separator: ", ")
            return ConfigError(path: "", line: context.mark.line, reason: "duplicate key \(keys) in the same mapping")
        default:
            return ConfigError(path: "", reason: "not valid YAML: \(error)")
        }
    }
}

enum ConfigKeys {
    static let root = [
        "underlay", "workers", "networks", "control", "offloads", "busy_poll", "capture", "metrics", "cluster",
    ]
    /// The API's capture request and where `POST /v1/capture` writes (one key list for both).
    static let capture = ["directory"] + CaptureRequestRule.keys
    static let control = ["enabled", "listen", "token_file", "group"]
    static let metrics = ["listen"]
    static let underlay = ["local", "port", "source_ports", "mtu"]
    static let network = [
        "vni", "tap", "mtu", "address", "learning", "ageing", "max_entries", "flood", "fdb", "allow_from",
        "mac", "arp_suppression", "pmtu_signal",
    ]
    static let fdbEntry = ["mac", "remote", "ips"]
}

// MARK: - Reading the node tree

/// A value in the tree with the key path that led to it.
struct ConfigField {
    let node: Node
    let path: String
    /// The line of the key naming the value (a block list or mapping starts on the line after),
    /// or of the value itself for a list element.
    let line: Int?

    init(node: Node, path: String, line: Int? = nil) {
        self.node = node
        self.path = path
        self.line = line ?? node.mark?.line
    }

    func error(_ reason: String) -> ConfigError { ConfigError(path: path, line: line, reason: reason) }

    func typeError(expected: String) -> ConfigError {
        error("expected \(expected), got \(ConfigReader.describe(node))")
    }

    func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// A scalar's text, refusing null and collections.
    func text(expected: String) throws(ConfigError) -> (text: String, plain: Bool) {
        guard case .scalar(let scalar) = node, !ConfigReader.isNull(scalar) else {
            throw typeError(expected: expected)
        }
        return (scalar.string, scalar.style == .plain || scalar.style == .any)
    }

    func mapping(allowed: [String]) throws(ConfigError) -> ConfigMapping {
        guard case .mapping(let mapping) = node else {
            throw typeError(expected: "a mapping with keys \(allowed.joined(separator: ", "))")
        }
        var values: [String: ConfigField] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key, !ConfigReader.isNull(scalar) else {
                throw ConfigError(
                    path: child("?"), line: key.mark?.line ?? line,
                    reason: "keys must be names, got \(ConfigReader.describe(key))")
            }
            let name = scalar.string
            guard allowed.contains(name) else {
                let shown =
                    name.utf8.count <= 40 && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
                    ? name : ConfigReader.quoted(name)
                throw ConfigError(
                    path: child(shown), line: key.mark?.line ?? line,
                    reason: "unknown key (allowed: \(allowed.joined(separator: ", ")))")
            }
            values[name] = ConfigField(node: value, path: child(name), line: key.mark?.line)
        }
        return ConfigMapping(field: self, values: values)
    }

    func elements(expected: String) throws(ConfigError) -> [ConfigField] {
        guard case .sequence(let sequence) = node else { throw typeError(expected: "a list of \(expected)") }
        return sequence.enumerated().map { ConfigField(node: $1, path: "\(path)[\($0)]") }
    }

    func integer(in range: ClosedRange<Int>, note: String = "", expected: String = "an integer") throws(ConfigError)
        -> Int
    {
        let (text, plain) = try text(expected: expected)
        let digits = text.first == "-" || text.first == "+" ? text.utf8.dropFirst() : text.utf8[...]
        guard plain, !digits.isEmpty, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else { throw typeError(expected: expected) }
        guard let value = Int(text), range.contains(value) else {
            throw error(outOfRange(ConfigReader.quotedIfLong(text), range, note: note))
        }
        return value
    }

    /// `auto` is nil.
    func autoOrInteger(in range: ClosedRange<Int>, note: String = "") throws(ConfigError) -> Int? {
        if case .scalar(let scalar) = node, scalar.string == "auto" { return nil }
        return try integer(in: range, note: note, expected: "auto or an integer")
    }

    func bool() throws(ConfigError) -> Bool {
        let (text, plain) = try text(expected: "true or false")
        switch (text, plain) {
        case ("true", true), ("True", true), ("TRUE", true): return true
        case ("false", true), ("False", true), ("FALSE", true): return false
        default: throw typeError(expected: "true or false")
        }
    }

    func string() throws(ConfigError) -> String { try text(expected: "a string").text }

    func address() throws(ConfigError) -> IPAddress {
        let text = try text(expected: "an IP address").text
        guard let address = IPAddress(text) else {
            throw error("\(ConfigReader.quoted(text)) is not an IP address")
        }
        return address
    }

    /// `ADDRESS/LEN`; with `requireLength` false a bare address is a host prefix.
    func prefix(requireLength: Bool) throws(ConfigError) -> IPPrefix {
        let expected = requireLength ? "an address with a prefix length (ADDRESS/LEN)" : "an address or prefix"
        let text = try text(expected: expected).text
        if requireLength, !text.contains("/"), let address = IPAddress(text) {
            let example = "\(text)/\(address.isV4 ? 24 : 64)"
            throw error("\(ConfigReader.quoted(text)) has no prefix length; write ADDRESS/LEN, e.g. \(example)")
        }
        guard let prefix = IPPrefix(text) else { throw error("\(ConfigReader.quoted(text)) is not \(expected)") }
        return prefix
    }

    func mac() throws(ConfigError) -> MACAddress {
        let text = try text(expected: "a MAC address").text
        guard let mac = MACAddress(text) else {
            throw error("\(ConfigReader.quoted(text)) is not a MAC address (expected \(StationMACProblem.format))")
        }
        return mac
    }

    /// `FIRST-LAST`, or one port `N` meaning `N-N`.
    func portRange() throws(ConfigError) -> ClosedRange<UInt16> {
        let text = try text(expected: "a port range FIRST-LAST").text
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { part in
            String(part.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
        }
        let isNumber = { (part: String) in
            !part.isEmpty && part.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        }
        guard parts.count <= 2, parts.allSatisfy(isNumber) else {
            throw error("\(ConfigReader.quoted(text)) is not a port range (expected FIRST-LAST, e.g. 49152-65535)")
        }
        var ports: [UInt16] = []
        for part in parts {
            guard let port = Int(part), ConfigLimits.port.contains(port) else {
                throw error(outOfRange(ConfigReader.quotedIfLong(part), ConfigLimits.port))
            }
            ports.append(UInt16(port))
        }
        let first = ports[0]
        let last = ports[ports.count - 1]
        guard first <= last else { throw error("\(first)-\(last): the first port is greater than the last") }
        return first...last
    }
}

/// A mapping whose keys have been checked against the allowed list.
struct ConfigMapping {
    let field: ConfigField
    let values: [String: ConfigField]
}

func outOfRange(_ value: String, _ range: ClosedRange<Int>, note: String = "") -> String {
    "\(value) is out of range\(note) (\(range.lowerBound)-\(range.upperBound))"
}

/// Builds the model from the tree, recording the line of every key it reads so that `validate`
/// can point at them. It walks only the expected shape, so an alias-expanded subtree is never
/// visited more than the config's own structure asks.
struct ConfigReader {
    var lines: [String: Int] = [:]

    mutating func visit(_ field: ConfigField) -> ConfigField {
        if let line = field.line { lines[field.path] = line }
        return field
    }

    mutating func required(_ mapping: ConfigMapping, _ key: String) throws(ConfigError) -> ConfigField {
        guard let field = mapping.values[key] else {
            throw ConfigError(
                path: mapping.field.child(key), line: mapping.field.line, reason: "required key is missing")
        }
        return visit(field)
    }

    mutating func optional(_ mapping: ConfigMapping, _ key: String) -> ConfigField? {
        mapping.values[key].map { visit($0) }
    }

    mutating func elements(_ field: ConfigField, expected: String) throws(ConfigError) -> [ConfigField] {
        try field.elements(expected: expected).map { visit($0) }
    }

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

    static func isNull(_ scalar: Node.Scalar) -> Bool {
        (scalar.style == .plain || scalar.style == .any) && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        case .scalar(let scalar):
            if isNull(scalar) {
                "nothing (null)"
            } else if scalar.style == .plain || scalar.style == .any {
                quoted(scalar.string)
            } else {
                "the quoted string \(quoted(scalar.string))"
            }
        }
    }

    /// Text for a message: quoted, control characters escaped, cut at 40 characters.
    static func quoted(_ text: String) -> String {
        let limit = 40
        let scalars = text.unicodeScalars
        let shown = scalars.prefix(limit).map { $0.escaped(asASCII: false) }.joined()
        return "\"" + shown + (scalars.count > limit ? "…" : "") + "\""
    }

    /// A number as written, unless it is long enough to need cutting.
    static func quotedIfLong(_ text: String) -> String { text.utf8.count > 40 ? quoted(text) : text }
}


// MARK: - Validation

extension RouterConfig {
    /// Semantic checks shared by the YAML path and the command-line (ad-hoc) path.
    public func validate() throws(ConfigError) {
        try validate(lines: [:])
    }

    /// `lines` maps key paths to YAML lines; a path not in it takes the line of its nearest parent.
    func validate(lines: [String: Int]) throws(ConfigError) {
        func fail(_ path: String, _ reason: String) -> ConfigError {
            var key = Substring(path)
            while lines[String(key)] == nil, let cut = key.lastIndex(where: { $0 == "." || $0 == "[" }) {
                key = key[..<cut]
            }
            return ConfigError(path: path, line: lines[String(key)], reason: reason)
        }
        let local = underlay.local
        let family = local.family
        if local.isUnspecified {
            throw fail("underlay.local", "\(local) is the unspecified address; give the address packets are sent from")
        }
        if local.isMulticast {
            throw fail("underlay.local", "\(local) is a multicast address; give a unicast address of this host")
        }
        if !ConfigLimits.port.contains(Int(underlay.port)) {
            throw fail("underlay.port", outOfRange("\(underlay.port)", ConfigLimits.port))
        }
        let ports = underlay.sourcePorts
        if !ConfigLimits.port.contains(Int(ports.lowerBound)) {
            throw fail(
                "underlay.source_ports", outOfRange("\(ports.lowerBound)-\(ports.upperBound)", ConfigLimits.port))
        }
        if let mtu = underlay.mtu, !ConfigLimits.underlayMTU(for: family).contains(mtu) {
            throw fail(
                "underlay.mtu",
                outOfRange(
                    "\(mtu)", ConfigLimits.underlayMTU(for: family), note: " for an \(familyName(family)) underlay"))
        }
        if let workers, !ConfigLimits.workers.contains(workers) {
            throw fail("workers", outOfRange("\(workers)", ConfigLimits.workers))
        }
        if networks.isEmpty { throw fail("networks", "at least one network is required") }
        if let cluster, let (key, reason) = cluster.problem() { throw fail("cluster.\(key)", reason) }
        if control.enabled, !control.listen.isUnix, control.tokenFile == nil {
            let reach =
                control.listen.isLocalOnly
                ? "is TCP on loopback, which every local user can connect to (loopback is not a security boundary)"
                : "is reachable beyond this host"
            throw fail(
                "control.listen",
                "\(control.listen) \(reach); set control.token_file (run: --control-token-file) so changes and captures need a token "
                    + "(or listen on a unix: socket, where the caller's credentials are checked)")
        }
        if let problem = GroupNameRule.problem(control.group) { throw fail("control.group", problem) }
        if let listen = metrics.listen {
            if listen.isUnix { throw fail("metrics.listen", "the metrics listener is TCP: ADDRESS:PORT") }
            if case .tcp(let address, _) = listen, address.isMulticast {
                throw fail("metrics.listen", "\(address) is a multicast address")
            }
            if control.enabled, listen == control.listen {
                throw fail("metrics.listen", "\(listen) is control.listen too; give metrics a port of its own")
            }
        }
        if case .tcp(let address, _) = control.listen, address.isMulticast {
            throw fail("control.listen", "\(address) is a multicast address")
        }

        /// A remote VTEP (flood list or static entry): the rule the API applies too, worded for the config.
        func checkRemote(_ remote: IPAddress, _ path: String) throws(ConfigError) {
            switch RemoteVTEPProblem.check(remote, local: local) {
            case nil: return
            case .family(let family, let underlay):
                throw fail(path, "\(remote) is \(familyName(family)) but underlay.local is \(familyName(underlay))")
            case .isLocal: throw fail(path, "\(remote) is underlay.local itself")
            case .unspecified: throw fail(path, "\(remote) is the unspecified address")
            case .multicast:
                throw fail(path, "\(remote) is a multicast address; list each remote VTEP's unicast address")
            }
        }

        var vnis: [VNI: Int] = [:]
        var taps: [String: Int] = [:]
        for (i, net) in networks.enumerated() {
            let p = "networks[\(i)]"
            if let first = vnis[net.vni] {
                throw fail("\(p).vni", "\(net.vni) is already used by networks[\(first)]")
            }
            vnis[net.vni] = i
            if let reason = tapNameProblem(net.tap) { throw fail("\(p).tap", reason) }
            if let first = taps[net.tap] {
                throw fail("\(p).tap", "\"\(net.tap)\" is already used by networks[\(first)]")
            }
            taps[net.tap] = i
            if let mtu = net.mtu, !ConfigLimits.networkMTU.contains(mtu) {
                throw fail("\(p).mtu", outOfRange("\(mtu)", ConfigLimits.networkMTU))
            }
            if let address = net.address {
                if address.address.isUnspecified { throw fail("\(p).address", "\(address) is the unspecified address") }
                if address.address.isMulticast { throw fail("\(p).address", "\(address) is a multicast address") }
            }
            if !ConfigLimits.ageing.contains(net.ageing) {
                throw fail("\(p).ageing", outOfRange("\(net.ageing)", ConfigLimits.ageing))
            }
            if !ConfigLimits.maxEntries.contains(net.maxEntries) {
                throw fail("\(p).max_entries", outOfRange("\(net.maxEntries)", ConfigLimits.maxEntries))
            }

            var flood: [IPAddress: Int] = [:]
            for (j, remote) in net.flood.enumerated() {
                try checkRemote(remote, "\(p).flood[\(j)]")
                if let first = flood[remote] {
                    throw fail("\(p).flood[\(j)]", "\(remote) is already listed as flood[\(first)]")
                }
                flood[remote] = j
            }

            if net.fdb.count > net.maxEntries {
                throw fail("\(p).fdb", "\(net.fdb.count) static entries exceed max_entries (\(net.maxEntries))")
            }
            var macs: [MACAddress: Int] = [:]
            var ips: [IPAddress: (Int, Int)] = [:]
            for (j, entry) in net.fdb.enumerated() {
                let e = "\(p).fdb[\(j)]"
                let mac = entry.mac
                switch StationMACProblem.check(mac) {
                case nil: break
                case .broadcast:
                    throw fail("\(e).mac", "\(mac) is the broadcast address; a static entry needs a unicast MAC")
                case .multicast:
                    throw fail("\(e).mac", "\(mac) is a multicast MAC; a static entry needs a unicast MAC")
                case .zero: throw fail("\(e).mac", "\(mac) is the all-zero MAC")
                }
                if let first = macs[mac] { throw fail("\(e).mac", "\(mac) already has a static entry, fdb[\(first)]") }
                macs[mac] = j
                try checkRemote(entry.remote, "\(e).remote")
                for (k, ip) in entry.ips.enumerated() {
                    if let reason = neighbourAddressProblem(ip) { throw fail("\(e).ips[\(k)]", reason) }
                    if let (first, firstIP) = ips[ip] {
                        throw fail("\(e).ips[\(k)]", "\(ip) is already listed as fdb[\(first)].ips[\(firstIP)]")
                    }
                    ips[ip] = (j, k)
                }
            }
            let ipCount = net.fdb.reduce(0) { $0 + $1.ips.count }
            if ipCount > net.maxEntries {
                throw fail("\(p).fdb", "\(ipCount) fdb ips exceed max_entries (\(net.maxEntries))")
            }
            if let mac = net.mac, let reason = interfaceMACProblem(mac) { throw fail("\(p).mac", reason) }

            for (j, prefix) in net.allowFrom.enumerated() where prefix.address.family != family {
                throw fail(
                    "\(p).allow_from[\(j)]",
                    "\(prefix) is \(familyName(prefix.address.family)) but underlay.local is \(familyName(family))")
            }
        }
    }
}

/// Why `mac` cannot be a TAP's address (`mac`, `--mac`), or nil.
public func interfaceMACProblem(_ mac: MACAddress) -> String? {
    if mac.isZero { return "\(mac) is the all-zero MAC" }
    if mac == .broadcast { return "\(mac) is the broadcast address; an interface needs a unicast MAC" }
    if mac.isMulticast { return "\(mac) is a multicast MAC; an interface needs a unicast MAC" }
    return nil
}

/// Why Linux would refuse `name` as an interface name (`dev_valid_name`, kept to a portable
/// character set), or nil.
func tapNameProblem(_ name: String) -> String? {
    let bytes = name.utf8
    if bytes.isEmpty { return "the TAP name is empty" }
    let shown = ConfigReader.quoted(name)
    if !ConfigLimits.tapNameLength.contains(bytes.count) {
        return "\(shown) is \(bytes.count) bytes long; interface names are 1-15 bytes"
    }
    let allowed = bytes.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
            true
        default: false
        }
    }
    if !allowed { return "\(shown) may only contain letters, digits, '_', '.' and '-'" }
    if name == "." || name == ".." { return "\(shown) is not a valid interface name" }
    return nil
}
