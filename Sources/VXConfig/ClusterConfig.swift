// The `cluster:` section (and `vxrouter run --cluster URL[,URL…] --cluster-name NAME`): which
// etcd to use and which overlay to join. Its rules are functions the YAML reader and the CLI
// both call, each wording the problem for its reader.
//
//   cluster:
//     endpoints: [http://10.0.0.1:2379, http://10.0.0.2:2379]
//     name: prod            # the overlay: keys live under /vxrouter/v1/<name>/
//     lease_ttl: 15         # seconds; the router's records vanish this long after it dies
//     host_id: rack1-a      # optional; default: the underlay address
public struct ClusterConfig: Sendable, Equatable {
    public var endpoints: [String]
    public var name: String
    public var leaseTTL: Int
    public var hostID: String?

    public static let defaultLeaseTTL = 15
    /// etcd refuses TTLs under its minimum (about 2 s with default timings); a day is plenty.
    public static let leaseTTLRange: ClosedRange<Int> = 2...86_400

    public init(endpoints: [String], name: String, leaseTTL: Int = ClusterConfig.defaultLeaseTTL, hostID: String? = nil) {
        self.endpoints = endpoints
        self.name = name
        self.leaseTTL = leaseTTL
        self.hostID = hostID
    }

    /// What is wrong with an etcd endpoint: it must be `http://HOST:PORT` (the JSON gateway),
    /// with no path. TLS is not supported yet, so `https://` is refused rather than half-used.
    public static func endpointProblem(_ text: String) -> String? {
        if text.hasPrefix("https://") { return "\(text): https endpoints are not supported yet (use http://HOST:PORT)" }
        guard text.hasPrefix("http://") else { return "\(text) is not an http://HOST:PORT URL" }
        var rest = text.dropFirst("http://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), let colon = rest.lastIndex(of: ":") else {
            return "\(text) must be http://HOST:PORT, with the port and no path"
        }
        let host = rest[..<colon]
        guard !host.isEmpty, let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
            return "\(text) must be http://HOST:PORT with a port in 1-65535"
        }
        return nil
    }

    /// What is wrong with an overlay name or host id used in a key: 1-64 of letters, digits,
    /// '_', '.' and '-' (no '/', which would change the key layout).
    public static func namePartProblem(_ text: String, what: String) -> String? {
        if text.isEmpty { return "the \(what) is empty" }
        if text.utf8.count > 64 { return "the \(what) \(text.prefix(20))… is longer than 64 characters" }
        let allowed = text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: ":")
        }
        return allowed ? nil : "the \(what) \(text) may only contain letters, digits, '_', '.', ':' and '-'"
    }

    /// Every problem of the section, first one wins; `nil` when it is usable.
    public func problem() -> (key: String, reason: String)? {
        if endpoints.isEmpty { return ("endpoints", "at least one etcd endpoint is needed") }
        for endpoint in endpoints {
            if let problem = Self.endpointProblem(endpoint) { return ("endpoints", problem) }
        }
        if let problem = Self.namePartProblem(name, what: "cluster name") { return ("name", problem) }
        if !Self.leaseTTLRange.contains(leaseTTL) {
            return ("lease_ttl", "\(leaseTTL) is out of range (\(Self.leaseTTLRange.lowerBound)-\(Self.leaseTTLRange.upperBound) seconds)")
        }
        if let hostID, let problem = Self.namePartProblem(hostID, what: "host id") { return ("host_id", problem) }
        return nil
    }
}

extension ConfigReader {
    mutating func clusterConfig(_ field: ConfigField) throws(ConfigError) -> ClusterConfig {
        let fields = try field.mapping(allowed: ["endpoints", "name", "lease_ttl", "host_id"])
        let endpointsField = try required(fields, "endpoints")
        var endpoints: [String] = []
        for element in try elements(endpointsField, expected: "a list of http://HOST:PORT URLs") {
            let text = try element.string()
            if let problem = ClusterConfig.endpointProblem(text) { throw element.error(problem) }
            endpoints.append(text)
        }
        if endpoints.isEmpty { throw endpointsField.error("at least one etcd endpoint is needed") }
        let nameField = try required(fields, "name")
        let name = try nameField.string()
        if let problem = ClusterConfig.namePartProblem(name, what: "cluster name") { throw nameField.error(problem) }
        let ttl = try optional(fields, "lease_ttl")?.integer(in: ClusterConfig.leaseTTLRange, note: " seconds")
            ?? ClusterConfig.defaultLeaseTTL
        var hostID: String?
        if let idField = optional(fields, "host_id") {
            let id = try idField.string()
            if let problem = ClusterConfig.namePartProblem(id, what: "host id") { throw idField.error(problem) }
            hostID = id
        }
        return ClusterConfig(endpoints: endpoints, name: name, leaseTTL: ttl, hostID: hostID)
    }
}
