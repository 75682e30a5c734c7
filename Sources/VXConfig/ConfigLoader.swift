// The YAML config file (see Config/vxrouter.yaml) into a `RouterConfig`, and the semantic checks
// every config goes through, whether it came from a file or from command-line flags. In four files:
//
//  1. here: read the file (bounded size), require UTF-8, compose it with Yams into a `Node` tree,
//     and the key lists each mapping is held to;
//  2. ConfigReader.swift: the tree as fields with key paths and lines, typed scalar readers;
//  3. ConfigSections.swift: walk only the expected shape, section by section, building the model
//     and remembering the line of every key read;
//  4. ConfigValidation.swift: `validate(lines:)`: ranges, families, duplicates — with those lines
//     in the messages.
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
        "underlay", "workers", "networks", "control", "offloads", "busy_poll", "steering", "capture", "metrics", "cluster",
    ]
    /// The API's capture request and where `POST /v1/capture` writes (one key list for both).
    static let capture = ["directory"] + CaptureRequestRule.keys
    static let control = ["enabled", "listen", "token_file", "group"]
    static let metrics = ["listen"]
    static let underlay = ["local", "port", "source_ports", "mtu", "udp_checksum", "trust_udp_checksum"]
    static let network = [
        "vni", "tap", "mtu", "address", "learning", "ageing", "max_entries", "flood", "fdb", "allow_from",
        "mac", "arp_suppression", "pmtu_signal",
    ]
    static let fdbEntry = ["mac", "remote", "ips"]
}
