/// The first thing wrong with a config: which key, on which line of the file when it came from one,
/// and why. `config: networks[1].vni (line 12): 16777216 is out of range (0-16777215)`.
public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The key, as `underlay.local`, `networks[1].flood[0]`; empty when the problem is the whole
    /// file (unreadable, not YAML, not a mapping).
    public var path: String
    /// 1-based line in the YAML file; nil for configs built from flags, or when no line applies.
    public var line: Int?
    public var reason: String

    public init(path: String, line: Int? = nil, reason: String) {
        self.path = path
        self.line = line
        self.reason = reason
    }

    public var description: String {
        switch (path.isEmpty, line) {
        case (false, let line?): "config: \(path) (line \(line)): \(reason)"
        case (false, nil): "config: \(path): \(reason)"
        case (true, let line?): "config: line \(line): \(reason)"
        case (true, nil): "config: \(reason)"
        }
    }
}
