// The `cluster:` section (and `vxrouter run --cluster URL[,URL…] --cluster-name NAME`): which
// etcd to use and which overlay to join. Its rules are functions the YAML reader and the CLI
// both call, each wording the problem for its reader.
//
//   cluster:
//     endpoints: [http://10.0.0.1:2379, http://10.0.0.2:2379]
//     name: prod            # the overlay: keys live under /vxrouter/v1/<name>/
//     lease_ttl: 15         # seconds; the router's records vanish this long after it dies
//     host_id: rack1-a      # optional; default: the underlay address
//     ca_file: /etc/vxrouter/etcd-ca.pem      # TLS (https:// endpoints): the CA that signed
//     cert_file: /etc/vxrouter/etcd-client.pem #   etcd's certificate, and this router's client
//     key_file: /etc/vxrouter/etcd-client.key  #   certificate and key when etcd asks for one
public struct ClusterConfig: Sendable, Equatable {
    public var endpoints: [String]
    public var name: String
    public var leaseTTL: Int
    public var hostID: String?
    /// PEM files for TLS to etcd: the CA to trust (default: the system's roots), and the client
    /// certificate and key (both or neither) for etcd's `--client-cert-auth`.
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?

    public static let defaultLeaseTTL = 15
    /// etcd refuses TTLs under its minimum (about 2 s with default timings); a day is plenty.
    public static let leaseTTLRange: ClosedRange<Int> = 2...86_400

    public init(
        endpoints: [String], name: String, leaseTTL: Int = ClusterConfig.defaultLeaseTTL, hostID: String? = nil,
        caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil
    ) {
        self.endpoints = endpoints
        self.name = name
        self.leaseTTL = leaseTTL
        self.hostID = hostID
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
    }

    /// Whether the endpoints are https:// (TLS); `endpointsProblem` makes sure they all agree.
    public var usesTLS: Bool { endpoints.first?.hasPrefix("https://") == true }

    /// What is wrong with an etcd endpoint: it must be `http://HOST:PORT` or `https://HOST:PORT`
    /// (the JSON gateway), with no path.
    public static func endpointProblem(_ text: String) -> String? {
        let scheme = text.hasPrefix("https://") ? "https://" : "http://"
        guard text.hasPrefix(scheme) else { return "\(text) is not an http://HOST:PORT or https://HOST:PORT URL" }
        var rest = text.dropFirst(scheme.count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), let colon = rest.lastIndex(of: ":") else {
            return "\(text) must be \(scheme)HOST:PORT, with the port and no path"
        }
        let host = rest[..<colon]
        guard !host.isEmpty, let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
            return "\(text) must be \(scheme)HOST:PORT with a port in 1-65535"
        }
        return nil
    }

    /// What is wrong with the endpoints together: all http:// or all https:// (one client, one
    /// transport; a mix would send credentials in clear to some members).
    public static func endpointsProblem(_ endpoints: [String]) -> String? {
        let secure = endpoints.filter { $0.hasPrefix("https://") }.count
        if secure != 0 && secure != endpoints.count { return "the endpoints mix http:// and https://; use one scheme" }
        return nil
    }

    /// What is wrong with the TLS keys, as (key, reason).
    public func tlsProblem() -> (key: String, reason: String)? {
        for (key, value) in [("ca_file", caFile), ("cert_file", certFile), ("key_file", keyFile)] {
            guard let value else { continue }
            if value.isEmpty { return (key, "the path is empty") }
            if !usesTLS { return (key, "TLS files need https:// endpoints (the endpoints are http://)") }
        }
        if certFile != nil, keyFile == nil { return ("cert_file", "cert_file needs key_file (a client certificate goes with its key)") }
        if keyFile != nil, certFile == nil { return ("key_file", "key_file needs cert_file (a client key goes with its certificate)") }
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
        if let problem = Self.endpointsProblem(endpoints) { return ("endpoints", problem) }
        if let problem = tlsProblem() { return problem }
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
        let fields = try field.mapping(allowed: ["endpoints", "name", "lease_ttl", "host_id", "ca_file", "cert_file", "key_file"])
        let endpointsField = try required(fields, "endpoints")
        var endpoints: [String] = []
        for element in try elements(endpointsField, expected: "a list of http://HOST:PORT URLs") {
            let text = try element.string()
            if let problem = ClusterConfig.endpointProblem(text) { throw element.error(problem) }
            endpoints.append(text)
        }
        if endpoints.isEmpty { throw endpointsField.error("at least one etcd endpoint is needed") }
        if let problem = ClusterConfig.endpointsProblem(endpoints) { throw endpointsField.error(problem) }
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
        var config = ClusterConfig(endpoints: endpoints, name: name, leaseTTL: ttl, hostID: hostID)
        var tlsFields: [String: ConfigField] = [:]
        for key in ["ca_file", "cert_file", "key_file"] {
            guard let pathField = optional(fields, key) else { continue }
            let path = try pathField.string()
            tlsFields[key] = pathField
            switch key {
            case "ca_file": config.caFile = path
            case "cert_file": config.certFile = path
            default: config.keyFile = path
            }
        }
        if let (key, reason) = config.tlsProblem() { throw (tlsFields[key] ?? field).error(reason) }
        return config
    }
}
