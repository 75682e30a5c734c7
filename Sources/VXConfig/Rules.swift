// The rules every source of config and change shares — the YAML file, the command line, the
// control API — written once each. A rule answers with the problem (or the parsed value); each
// caller words it for its reader: the config names the key and line, the API the field.
import VXCapture
import VXDatapath
import VXWire

#if canImport(Glibc)
    import Glibc
#endif

package func familyName(_ family: IPAddress.Family) -> String { family == .v4 ? "IPv4" : "IPv6" }

/// What is wrong with an address named as a remote VTEP (a flood-list member, a static entry's
/// destination): it must be unicast, of the underlay's family, and not this router.
public enum RemoteVTEPProblem: Sendable, Equatable {
    case family(IPAddress.Family, underlay: IPAddress.Family)
    case isLocal
    case unspecified
    case multicast

    public static func check(_ remote: IPAddress, local: IPAddress) -> RemoteVTEPProblem? {
        if remote.family != local.family { return .family(remote.family, underlay: local.family) }
        if remote == local { return .isLocal }
        if remote.isUnspecified { return .unspecified }
        if remote.isMulticast { return .multicast }
        return nil
    }
}

/// What is wrong with a MAC named as a station (a static FDB entry): it must be unicast and not zero.
public enum StationMACProblem: Sendable, Equatable {
    case broadcast
    case multicast
    case zero

    public static func check(_ mac: MACAddress) -> StationMACProblem? {
        if mac == .broadcast { return .broadcast }
        if mac.isMulticast { return .multicast }
        if mac.isZero { return .zero }
        return nil
    }

    /// How a MAC is written, for messages.
    public static let format = "aa:bb:cc:dd:ee:ff"
}

/// The VNIs a router serves: a request naming another is refused.
public struct ServedVNIs: Sendable, Equatable {
    public let vnis: [VNI]
    public init(_ vnis: [VNI]) { self.vnis = vnis }

    public func contains(_ vni: VNI) -> Bool { vnis.contains(vni) }

    /// A VNI as written in a path or query: digits only, in range. Nil otherwise.
    public static func parse(_ text: some StringProtocol) -> VNI? {
        guard !text.isEmpty, text.utf8.count <= 8, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let value = Int(text)
        else { return nil }
        return VNI(value)
    }

    public func notServed(_ vni: some CustomStringConvertible) -> String {
        "vni \(vni) is not served by this router (served: \(vnis.map { "\($0)" }.joined(separator: ", ")))"
    }
}

/// `control.token_file`: the bearer token is the file's contents without surrounding whitespace,
/// printable ASCII. The router reads it at start; the CLI's `--token-file` reads it the same way.
public struct TokenFileError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public var description: String { "control.token_file \(path): \(reason)" }
}

public func readToken(path: String) throws(TokenFileError) -> String {
    guard let bytes = try? ConfigLoader.readFile(path), let text = String(validating: bytes, as: UTF8.self) else {
        throw TokenFileError(path: path, reason: "cannot read it")
    }
    let token = String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    guard !token.isEmpty else { throw TokenFileError(path: path, reason: "it is empty") }
    guard token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
        throw TokenFileError(path: path, reason: "the token must be printable ASCII without spaces")
    }
    return token
}

/// `control.group`: a group name as useradd/groupadd accept it (portable characters, at most 32,
/// not starting with '-'). Whether the group exists is checked when the router starts.
public enum GroupNameRule {
    public static func problem(_ name: String) -> String? {
        if name.isEmpty { return "the group name is empty" }
        if name.utf8.count > 32 { return "\(jsonQuoted(name)) is longer than 32 characters" }
        let portable = name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
        if !portable || name.hasPrefix("-") {
            return "\(jsonQuoted(name)) is not a group name (letters, digits, '_', '-', '.'; not starting with '-')"
        }
        return nil
    }
}

// MARK: - Capture requests

/// One field of a capture request as it came: a JSON value, or a query parameter's text.
public enum CaptureParameter: Sendable, Equatable, Decodable {
    case string(String)
    case integer(Int)
    /// A JSON number that is not an integer (refused where an integer is expected).
    case number(Double)
    case strings([String])
    /// Anything else (a boolean, an object, a mixed list): refused with the field's type.
    case other

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if (try? container.decode(Bool.self)) != nil {
            self = .other
        } else if let value = try? container.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([String].self) {
            self = .strings(value)
        } else {
            self = .other
        }
    }
}

public typealias CaptureParameters = [String: CaptureParameter]

public struct CaptureRequestError: Error, Sendable, Equatable {
    public let message: String
}

/// A capture request from the API (`POST /v1/capture` JSON or `/v1/capture/stream` query)
/// into a checked `CaptureSpec`: known fields, ranges, a served VNI, a remote of the underlay's
/// family, a plain file name, and `CaptureSpec.problem()` for the combinations.
public struct CaptureRequestRule: Sendable {
    public static let keys = [
        "points", "vni", "remote", "filter", "snaplen", "count", "duration", "file", "rotate_bytes", "rotate_files",
    ]
    /// Only `POST /v1/capture` writes files.
    static let fileKeys = ["file", "rotate_bytes", "rotate_files"]

    public var served: ServedVNIs
    public var underlayFamily: IPAddress.Family
    public var captureDirectory: String

    public init(served: ServedVNIs, underlayFamily: IPAddress.Family, captureDirectory: String) {
        self.served = served
        self.underlayFamily = underlayFamily
        self.captureDirectory = captureDirectory
    }

    public func spec(_ fields: CaptureParameters, fileAllowed: Bool) throws(CaptureRequestError) -> CaptureSpec {
        func fail(_ message: String) -> CaptureRequestError { CaptureRequestError(message: message) }
        let allowed = fileAllowed ? Self.keys : Self.keys.filter { !Self.fileKeys.contains($0) }
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw fail("unknown parameter \(jsonQuoted(unknown)) (allowed: \(allowed.joined(separator: ", ")))")
        }
        func integer(_ key: String, _ range: ClosedRange<Int>) throws(CaptureRequestError) -> Int? {
            guard let value = fields[key] else { return nil }
            var number: Int?
            switch value {
            case .string(let text): number = text.utf8.count <= 19 ? Int(text) : nil
            case .integer(let n): number = n
            default: number = nil
            }
            guard let number else { throw fail("\(key) must be an integer") }
            guard range.contains(number) else {
                throw fail("\(key) \(number) is out of range (\(range.lowerBound)-\(range.upperBound))")
            }
            return number
        }
        func string(_ key: String) throws(CaptureRequestError) -> String? {
            guard let value = fields[key] else { return nil }
            guard case .string(let text) = value else { throw fail("\(key) must be a string") }
            return text
        }
        var spec = CaptureSpec()
        if let value = fields["points"] {
            let names: [String]
            switch value {
            case .string(let text): names = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            case .strings(let list): names = list
            default: throw fail("points must be a list of inner, outer, drop")
            }
            var points: Set<CapturePoint> = []
            for name in names {
                guard let point = CapturePoint(name: name) else {
                    throw fail("\(jsonQuoted(name)) is not a capture point (inner, outer, drop)")
                }
                points.insert(point)
            }
            spec.points = points
        }
        if let value = try integer("vni", 0...Int(VNI.max)) {
            guard let vni = VNI(value), served.contains(vni) else { throw fail(served.notServed(value)) }
            spec.vni = vni
        }
        if let text = try string("remote") {
            guard let address = IPAddress(text) else { throw fail("remote \(jsonQuoted(text)) is not an IP address") }
            if address.family != underlayFamily {
                throw fail(
                    "remote \(address) is \(familyName(address.family)) but the underlay is \(familyName(underlayFamily))")
            }
            spec.remote = address
        }
        spec.filter = try string("filter")
        if let value = try integer("snaplen", CaptureSpec.Limits.snapLength) { spec.snapLength = value }
        spec.count = try integer("count", CaptureSpec.Limits.count)
        if let value = try integer("duration", 1...Int(CaptureSpec.Limits.duration.upperBound)) {
            spec.duration = Double(value)
        }
        spec.rotateBytes = try integer("rotate_bytes", CaptureSpec.Limits.rotateBytes)
        spec.rotateFiles = try integer("rotate_files", CaptureSpec.Limits.rotateFiles)
        if let name = try string("file") {
            guard Self.isPlainFileName(name) else {
                throw fail(
                    "file \(jsonQuoted(name)) must be a plain file name (printable ASCII, no '/', not starting with '.'), written in \(captureDirectory)"
                )
            }
            spec.file = name
        }
        if let (key, reason) = spec.problem() { throw fail("\(key): \(reason)") }
        return spec
    }

    /// A name, never a path, so a request cannot make the router (root) write outside its directory.
    public static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 200 && !name.contains("/") && !name.hasPrefix(".")
            && name.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
    }
}

/// A JSON string literal for `text` (how API messages quote what the client sent).
public func jsonQuoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// Why `address` cannot be a MAC/IP entry's address (an inner address ARP/ND is answered for), or nil.
public func neighbourAddressProblem(_ address: IPAddress) -> String? {
    if address.isUnspecified { return "\(address) is the unspecified address" }
    if address.isMulticast { return "\(address) is a multicast address; an entry names one station's address" }
    if address.isV4, address.v4Value == .max { return "\(address) is the broadcast address" }
    if address.isV4 ? address.v4Value >> 24 == 127 : (address.high == 0 && address.low == 1) {
        return "\(address) is a loopback address"
    }
    return nil
}
