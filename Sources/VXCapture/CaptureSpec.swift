// What one capture asks for, however it was asked (config `capture:` section, `POST
// /v1/captures`, `vxrouter capture`), and the checks every request goes through before anything
// starts.
import VXDatapath
import VXWire

public struct CaptureSpec: Sendable, Equatable {
    public var points: Set<CapturePoint>
    /// Only this VNI; nil = every network.
    public var vni: VNI?
    /// Only packets to or from this remote VTEP; nil = any.
    public var remote: IPAddress?
    /// A tcpdump-syntax filter applied to the inner frame; nil = everything.
    public var filter: String?
    /// Bytes kept per packet (of the datapath's copy; outer records get their synthesized
    /// Ethernet/IP headers on top).
    public var snapLength: Int
    /// Stop after this many records written; nil = no limit.
    public var count: Int?
    /// Stop after this many seconds; nil = no limit.
    public var duration: Double?
    /// Where the router writes the capture (config and file captures); nil for streams.
    public var file: String?
    /// Start a new file when the current one would grow beyond this many bytes; nil = one file.
    public var rotateBytes: Int?
    /// With rotation, keep at most this many files (the oldest are deleted); nil = keep all.
    public var rotateFiles: Int?

    public static let defaultSnapLength = 2048
    public static let defaultPoints: Set<CapturePoint> = [.inner, .outer]

    public init(
        points: Set<CapturePoint> = CaptureSpec.defaultPoints, vni: VNI? = nil, remote: IPAddress? = nil,
        filter: String? = nil, snapLength: Int = CaptureSpec.defaultSnapLength, count: Int? = nil,
        duration: Double? = nil, file: String? = nil, rotateBytes: Int? = nil, rotateFiles: Int? = nil
    ) {
        self.points = points
        self.vni = vni
        self.remote = remote
        self.filter = filter
        self.snapLength = snapLength
        self.count = count
        self.duration = duration
        self.file = file
        self.rotateBytes = rotateBytes
        self.rotateFiles = rotateFiles
    }

    /// Points in a stable order, as written in summaries.
    public var pointNames: [String] { CapturePoint.allCases.filter { points.contains($0) }.map(\.name) }

    public enum Limits {
        public static let snapLength: ClosedRange<Int> = 64...2048
        public static let count: ClosedRange<Int> = 1...1_000_000_000
        public static let duration: ClosedRange<Double> = 0.001...31_536_000
        public static let rotateBytes: ClosedRange<Int> = 4096...(1 << 40)
        public static let rotateFiles: ClosedRange<Int> = 1...100_000
    }

    /// The first problem with the request's own values, as (key, reason); nil when it is sound.
    /// The filter is compiled separately (`InnerFilter`), VNI and remote are checked against the
    /// running router by the caller.
    public func problem() -> (key: String, reason: String)? {
        if points.isEmpty { return ("points", "at least one of inner, outer, drop is required") }
        if !Limits.snapLength.contains(snapLength) {
            return ("snaplen", "\(snapLength) is out of range (\(Limits.snapLength.lowerBound)-\(Limits.snapLength.upperBound))")
        }
        if let count, !Limits.count.contains(count) {
            return ("count", "\(count) is out of range (\(Limits.count.lowerBound)-\(Limits.count.upperBound))")
        }
        if let duration, !(Limits.duration.contains(duration)) {
            return ("duration", "\(duration) is out of range (0.001-31536000 seconds)")
        }
        if let rotateBytes, !Limits.rotateBytes.contains(rotateBytes) {
            return ("rotate_bytes", "\(rotateBytes) is out of range (\(Limits.rotateBytes.lowerBound)-\(Limits.rotateBytes.upperBound))")
        }
        if let rotateFiles {
            if !Limits.rotateFiles.contains(rotateFiles) {
                return ("rotate_files", "\(rotateFiles) is out of range (\(Limits.rotateFiles.lowerBound)-\(Limits.rotateFiles.upperBound))")
            }
            if rotateBytes == nil { return ("rotate_files", "needs rotate_bytes (files rotate by size)") }
        }
        if let file, file.isEmpty { return ("file", "the path is empty") }
        if let filter, filter.utf8.count > 4096 { return ("filter", "longer than 4096 bytes") }
        return nil
    }
}
