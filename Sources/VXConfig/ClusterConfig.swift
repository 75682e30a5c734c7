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
//     username: vxrouter                        # etcd auth (`etcdctl auth enable`): the user, and
//     password_file: /etc/vxrouter/etcd-password #   a file holding its password (never inline)
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
    /// etcd authentication: the user, and the file its password is read from when the router
    /// starts (both or neither). The password itself is never in the config or on a command line.
    public var username: String?
    public var passwordFile: String?

    public static let defaultLeaseTTL = 15
    /// etcd refuses TTLs under its minimum (about 2 s with default timings); a day is plenty.
    public static let leaseTTLRange: ClosedRange<Int> = 2...86_400

    public init(
        endpoints: [String], name: String, leaseTTL: Int = ClusterConfig.defaultLeaseTTL, hostID: String? = nil,
        caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, username: String? = nil,
        passwordFile: String? = nil
    ) {
        self.username = username
        self.passwordFile = passwordFile
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

    /// What is wrong with the credentials, as (key, reason): a user needs its password file and
    /// the other way round.
    public func credentialsProblem() -> (key: String, reason: String)? {
        if let username {
            if username.isEmpty { return ("username", "the user name is empty") }
            if username.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
                return ("username", "the user name contains control characters")
            }
        }
        if passwordFile?.isEmpty == true { return ("password_file", "the path is empty") }
        if username != nil, passwordFile == nil {
            return ("username", "username needs password_file (a file holding the password; never the password inline)")
        }
        if passwordFile != nil, username == nil { return ("password_file", "password_file needs username") }
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
        if let problem = credentialsProblem() { return problem }
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
        let fields = try field.mapping(allowed: [
                "endpoints", "name", "lease_ttl", "host_id", "ca_file", "cert_file", "key_file", "username", "password_file",
            ])
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
        var credentialFields: [String: ConfigField] = [:]
        if let userField = optional(fields, "username") {
            config.username = try userField.string()
            credentialFields["username"] = userField
        }
        if let fileField = optional(fields, "password_file") {
            config.passwordFile = try fileField.string()
            credentialFields["password_file"] = fileField
        }
        if let (key, reason) = config.credentialsProblem() { throw (credentialFields[key] ?? field).error(reason) }
        return config
    }
}


/// `cluster.password_file`: the password is the file's first line (its line ending dropped;
/// everything else kept, spaces included). Read when the router starts, as control.token_file is;
/// `vxrouter cluster status --password-file` reads it the same way.
public struct PasswordFileError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public var description: String { "cluster.password_file \(path): \(reason)" }
}

public func readPassword(path: String) throws(PasswordFileError) -> String {
    guard let bytes = try? ConfigLoader.readFile(path), let text = String(validating: bytes, as: UTF8.self) else {
        throw PasswordFileError(path: path, reason: "cannot read it")
    }
    let password = String(text.prefix { $0 != "\n" && $0 != "\r\n" && $0 != "\r" })
    guard !password.isEmpty else { throw PasswordFileError(path: path, reason: "its first line is empty") }
    guard !password.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" }) else {
        throw PasswordFileError(path: path, reason: "the password contains control characters")
    }
    return password
}
