/// `GET /v1/networks/{vni}/stations`: the stations behind the network's TAP, as the router saw
/// them send (their MACs, and the IPs they claimed by ARP/ND) — what cluster mode publishes as
/// this host's MACs.
public struct StationList: Codable, Sendable, Equatable {
    public var vni: UInt32
    public var stations: [LocalStation]
    /// New MACs not listed because the network's table was full (4,096 stations).
    public var refused: UInt64

    public init(vni: UInt32, stations: [LocalStation], refused: UInt64) {
        self.vni = vni
        self.stations = stations
        self.refused = refused
    }
}

public struct LocalStation: Codable, Sendable, Equatable {
    public var mac: String
    public var ips: [String]
    /// Seconds since a frame from it was last seen (at most a few seconds stale while it sends).
    public var ageSeconds: UInt32
    enum CodingKeys: String, CodingKey { case mac, ips, ageSeconds = "age_seconds" }

    public init(mac: String, ips: [String], ageSeconds: UInt32) {
        self.mac = mac
        self.ips = ips
        self.ageSeconds = ageSeconds
    }
}
