import VXWire

/// The stations behind one network's TAP, as the workers' sightings (`StationSighting`, queued as
/// `.tap` learn events) report them: each MAC with the IPs it claimed by ARP/ND and when it was
/// last seen. Cluster mode publishes them (EVPN type-2); a station not seen for the network's
/// ageing time is removed, and so withdrawn.
///
/// Control thread only (no atomics: workers never read it). Bounded, since whoever is behind the
/// TAP chooses what it sends: at most `maxStations` MACs (a new one beyond that is refused and
/// counted in `refused`) and `maxAddresses` IPs per MAC (a new IP beyond that replaces the one
/// seen longest ago — a station renumbered keeps its newest addresses).
public struct LocalStations: Sendable {
    public static let maxStations = 4096
    public static let maxAddresses = 8

    public struct Station: Sendable, Equatable {
        public var lastSeen: UInt32
        /// Each IP with the second it was last claimed.
        public var addresses: [IPAddress: UInt32]
    }

    public private(set) var stations: [MACAddress: Station] = [:]
    /// Sightings of new MACs refused because the table was full.
    public private(set) var refused: UInt64 = 0

    public init() {}

    public enum Outcome: Equatable, Sendable {
        /// A MAC not listed before.
        case added
        /// A listed MAC, now with an IP it had not claimed before (or lately).
        case newAddress
        /// Nothing new: only its time was refreshed.
        case refreshed
        case full
    }

    /// `mac` seen at `now`, claiming `ip` (nil: none).
    @discardableResult
    public mutating func sighted(_ mac: MACAddress, ip: IPAddress?, now: UInt32) -> Outcome {
        var outcome = Outcome.refreshed
        var station: Station
        if let known = stations[mac] {
            station = known
        } else {
            guard stations.count < Self.maxStations else {
                refused += 1
                return .full
            }
            station = Station(lastSeen: now, addresses: [:])
            outcome = .added
        }
        station.lastSeen = now
        if let ip {
            if station.addresses[ip] == nil {
                if outcome == .refreshed { outcome = .newAddress }
                if station.addresses.count >= Self.maxAddresses,
                    let oldest = station.addresses.min(by: { ($0.value, $0.key) < ($1.value, $1.key) })?.key
                {
                    station.addresses[oldest] = nil
                }
            }
            station.addresses[ip] = now
        }
        stations[mac] = station
        return outcome
    }

    /// Removes the stations — and the addresses of the stations that stay — not seen for more
    /// than `maxAge` seconds; returns the MACs removed.
    public mutating func age(now: UInt32, maxAge: UInt32) -> [MACAddress] {
        var removed: [MACAddress] = []
        for (mac, station) in stations {
            if now &- station.lastSeen > maxAge {
                removed.append(mac)
                stations[mac] = nil
            } else if station.addresses.values.contains(where: { now &- $0 > maxAge }) {
                stations[mac]?.addresses = station.addresses.filter { now &- $0.value <= maxAge }
            }
        }
        return removed.sorted()
    }

    /// Forgets `mac` (it is known to be behind another VTEP now).
    public mutating func forget(_ mac: MACAddress) {
        stations[mac] = nil
    }

    /// Forgets every station (the network was removed or replaced by a reload).
    public mutating func removeAll() {
        stations = [:]
        refused = 0
    }
}
