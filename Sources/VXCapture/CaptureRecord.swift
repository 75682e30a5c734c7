// One record as written: a complete Ethernet frame (outer ones with synthesized headers), its
// time and what the side index says about it.
import VXDatapath
import VXWire

public struct CaptureRecord: Sendable, Equatable {
    /// Nanoseconds since 1970 (UTC).
    public var time: Int64
    /// The bytes held (at most the snap length of the datapath's copy, plus synthesized headers).
    public var frame: [UInt8]
    /// The frame's original length.
    public var length: Int
    /// `worker-number`: shared by the inner and outer records of the same packet.
    public var packet: String
    public var point: CapturePoint
    public var direction: CaptureDirection
    public var vni: VNI?
    public var remote: IPAddress?
    public var reason: DropReason?

    public init(
        time: Int64, frame: [UInt8], length: Int, packet: String, point: CapturePoint, direction: CaptureDirection,
        vni: VNI? = nil, remote: IPAddress? = nil, reason: DropReason? = nil
    ) {
        self.time = time
        self.frame = frame
        self.length = length
        self.packet = packet
        self.point = point
        self.direction = direction
        self.vni = vni
        self.remote = remote
        self.reason = reason
    }

    /// The side index's columns (after the frame number), tab-separated, `-` for none.
    public static let indexColumns = ["frame", "packet", "point", "direction", "vni", "remote", "reason", "length"]

    /// What the side index says about this record, without the frame number.
    public var indexFields: [String] {
        [
            packet, point.name, direction.name, vni.map { "\($0)" } ?? "-", remote.map { "\($0)" } ?? "-",
            reason?.name ?? "-", String(length),
        ]
    }
}
