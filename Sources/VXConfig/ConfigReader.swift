// The config tree as the reader sees it: a value with the key path that led to it and the line
// it stands on, typed readers for scalars (each error naming that path and line), and the walk's
// state (every key's line, for validation's messages). The sections it reads are in
// ConfigSections.swift.
import VXWire
import Yams

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

    /// `auto`, `true` or `false` (an `OuterChecksum.Choice`).
    func autoOrBool() throws(ConfigError) -> OuterChecksum.Choice {
        if case .scalar(let scalar) = node, scalar.string == "auto" { return .auto }
        let (text, plain) = try self.text(expected: "auto, true or false")
        switch (text.lowercased(), plain) {
        case ("true", true): return .on
        case ("false", true): return .off
        default: throw typeError(expected: "auto, true or false")
        }
    }

    func string() throws(ConfigError) -> String { try text(expected: "a string").text }

    /// One of an enumeration's names (`steering: cpu`).
    func oneOf<Choice: RawRepresentable & CaseIterable>(_: Choice.Type) throws(ConfigError) -> Choice
    where Choice.RawValue == String {
        let names = Choice.allCases.map(\.rawValue)
        let expected = names.dropLast().joined(separator: ", ") + " or " + names.last!
        guard let choice = Choice(rawValue: try text(expected: expected).text) else { throw typeError(expected: expected) }
        return choice
    }

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
