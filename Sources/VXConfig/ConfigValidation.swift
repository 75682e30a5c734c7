// The semantic checks every config goes through, from a file or from command-line flags:
// ranges, address families, duplicates, names; messages point at the key's line when known.
import VXCapture
import VXDatapath
import VXWire

extension RouterConfig {
    /// Semantic checks shared by the YAML path and the command-line (ad-hoc) path.
    public func validate() throws(ConfigError) {
        try validate(lines: [:])
    }

    /// `lines` maps key paths to YAML lines; a path not in it takes the line of its nearest parent.
    func validate(lines: [String: Int]) throws(ConfigError) {
        func fail(_ path: String, _ reason: String) -> ConfigError {
            var key = Substring(path)
            while lines[String(key)] == nil, let cut = key.lastIndex(where: { $0 == "." || $0 == "[" }) {
                key = key[..<cut]
            }
            return ConfigError(path: path, line: lines[String(key)], reason: reason)
        }
        let local = underlay.local
        let family = local.family
        if local.isUnspecified {
            throw fail("underlay.local", "\(local) is the unspecified address; give the address packets are sent from")
        }
        if local.isMulticast {
            throw fail("underlay.local", "\(local) is a multicast address; give a unicast address of this host")
        }
        if !ConfigLimits.port.contains(Int(underlay.port)) {
            throw fail("underlay.port", outOfRange("\(underlay.port)", ConfigLimits.port))
        }
        let ports = underlay.sourcePorts
        if !ConfigLimits.port.contains(Int(ports.lowerBound)) {
            throw fail(
                "underlay.source_ports", outOfRange("\(ports.lowerBound)-\(ports.upperBound)", ConfigLimits.port))
        }
        if let mtu = underlay.mtu, !ConfigLimits.underlayMTU(for: family).contains(mtu) {
            throw fail(
                "underlay.mtu",
                outOfRange(
                    "\(mtu)", ConfigLimits.underlayMTU(for: family), note: " for an \(familyName(family)) underlay"))
        }
        if let problem = OuterChecksum.problem(family: family, sending: underlay.udpChecksum) {
            throw fail("underlay.udp_checksum", problem)
        }
        if let workers, !ConfigLimits.workers.contains(workers) {
            throw fail("workers", outOfRange("\(workers)", ConfigLimits.workers))
        }
        if networks.isEmpty { throw fail("networks", "at least one network is required") }
        if let cluster, let (key, reason) = cluster.problem() { throw fail("cluster.\(key)", reason) }
        if control.enabled, !control.listen.isUnix, control.tokenFile == nil {
            let reach =
                control.listen.isLocalOnly
                ? "is TCP on loopback, which every local user can connect to (loopback is not a security boundary)"
                : "is reachable beyond this host"
            throw fail(
                "control.listen",
                "\(control.listen) \(reach); set control.token_file (run: --control-token-file) so changes and captures need a token "
                    + "(or listen on a unix: socket, where the caller's credentials are checked)")
        }
        if let problem = GroupNameRule.problem(control.group) { throw fail("control.group", problem) }
        if let listen = metrics.listen {
            if listen.isUnix { throw fail("metrics.listen", "the metrics listener is TCP: ADDRESS:PORT") }
            if case .tcp(let address, _) = listen, address.isMulticast {
                throw fail("metrics.listen", "\(address) is a multicast address")
            }
            if control.enabled, listen == control.listen {
                throw fail("metrics.listen", "\(listen) is control.listen too; give metrics a port of its own")
            }
        }
        if case .tcp(let address, _) = control.listen, address.isMulticast {
            throw fail("control.listen", "\(address) is a multicast address")
        }

        /// A remote VTEP (flood list or static entry): the rule the API applies too, worded for the config.
        func checkRemote(_ remote: IPAddress, _ path: String) throws(ConfigError) {
            switch RemoteVTEPProblem.check(remote, local: local) {
            case nil: return
            case .family(let family, let underlay):
                throw fail(path, "\(remote) is \(familyName(family)) but underlay.local is \(familyName(underlay))")
            case .isLocal: throw fail(path, "\(remote) is underlay.local itself")
            case .unspecified: throw fail(path, "\(remote) is the unspecified address")
            case .multicast:
                throw fail(path, "\(remote) is a multicast address; list each remote VTEP's unicast address")
            }
        }

        var vnis: [VNI: Int] = [:]
        var taps: [String: Int] = [:]
        for (i, net) in networks.enumerated() {
            let p = "networks[\(i)]"
            if let first = vnis[net.vni] {
                throw fail("\(p).vni", "\(net.vni) is already used by networks[\(first)]")
            }
            vnis[net.vni] = i
            if let reason = tapNameProblem(net.tap) { throw fail("\(p).tap", reason) }
            if let first = taps[net.tap] {
                throw fail("\(p).tap", "\"\(net.tap)\" is already used by networks[\(first)]")
            }
            taps[net.tap] = i
            if let mtu = net.mtu, !ConfigLimits.networkMTU.contains(mtu) {
                throw fail("\(p).mtu", outOfRange("\(mtu)", ConfigLimits.networkMTU))
            }
            if let address = net.address {
                if address.address.isUnspecified { throw fail("\(p).address", "\(address) is the unspecified address") }
                if address.address.isMulticast { throw fail("\(p).address", "\(address) is a multicast address") }
            }
            if !ConfigLimits.ageing.contains(net.ageing) {
                throw fail("\(p).ageing", outOfRange("\(net.ageing)", ConfigLimits.ageing))
            }
            if !ConfigLimits.maxEntries.contains(net.maxEntries) {
                throw fail("\(p).max_entries", outOfRange("\(net.maxEntries)", ConfigLimits.maxEntries))
            }

            var flood: [IPAddress: Int] = [:]
            for (j, remote) in net.flood.enumerated() {
                try checkRemote(remote, "\(p).flood[\(j)]")
                if let first = flood[remote] {
                    throw fail("\(p).flood[\(j)]", "\(remote) is already listed as flood[\(first)]")
                }
                flood[remote] = j
            }

            if net.fdb.count > net.maxEntries {
                throw fail("\(p).fdb", "\(net.fdb.count) static entries exceed max_entries (\(net.maxEntries))")
            }
            var macs: [MACAddress: Int] = [:]
            var ips: [IPAddress: (Int, Int)] = [:]
            for (j, entry) in net.fdb.enumerated() {
                let e = "\(p).fdb[\(j)]"
                let mac = entry.mac
                switch StationMACProblem.check(mac) {
                case nil: break
                case .broadcast:
                    throw fail("\(e).mac", "\(mac) is the broadcast address; a static entry needs a unicast MAC")
                case .multicast:
                    throw fail("\(e).mac", "\(mac) is a multicast MAC; a static entry needs a unicast MAC")
                case .zero: throw fail("\(e).mac", "\(mac) is the all-zero MAC")
                }
                if let first = macs[mac] { throw fail("\(e).mac", "\(mac) already has a static entry, fdb[\(first)]") }
                macs[mac] = j
                try checkRemote(entry.remote, "\(e).remote")
                for (k, ip) in entry.ips.enumerated() {
                    if let reason = neighbourAddressProblem(ip) { throw fail("\(e).ips[\(k)]", reason) }
                    if let (first, firstIP) = ips[ip] {
                        throw fail("\(e).ips[\(k)]", "\(ip) is already listed as fdb[\(first)].ips[\(firstIP)]")
                    }
                    ips[ip] = (j, k)
                }
            }
            let ipCount = net.fdb.reduce(0) { $0 + $1.ips.count }
            if ipCount > net.maxEntries {
                throw fail("\(p).fdb", "\(ipCount) fdb ips exceed max_entries (\(net.maxEntries))")
            }
            if let mac = net.mac, let reason = interfaceMACProblem(mac) { throw fail("\(p).mac", reason) }

            for (j, prefix) in net.allowFrom.enumerated() where prefix.address.family != family {
                throw fail(
                    "\(p).allow_from[\(j)]",
                    "\(prefix) is \(familyName(prefix.address.family)) but underlay.local is \(familyName(family))")
            }
        }
    }
}

/// Why `mac` cannot be a TAP's address (`mac`, `--mac`), or nil.
public func interfaceMACProblem(_ mac: MACAddress) -> String? {
    if mac.isZero { return "\(mac) is the all-zero MAC" }
    if mac == .broadcast { return "\(mac) is the broadcast address; an interface needs a unicast MAC" }
    if mac.isMulticast { return "\(mac) is a multicast MAC; an interface needs a unicast MAC" }
    return nil
}

/// Why Linux would refuse `name` as an interface name (`dev_valid_name`, kept to a portable
/// character set), or nil.
func tapNameProblem(_ name: String) -> String? {
    let bytes = name.utf8
    if bytes.isEmpty { return "the TAP name is empty" }
    let shown = ConfigReader.quoted(name)
    if !ConfigLimits.tapNameLength.contains(bytes.count) {
        return "\(shown) is \(bytes.count) bytes long; interface names are 1-15 bytes"
    }
    let allowed = bytes.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
            true
        default: false
        }
    }
    if !allowed { return "\(shown) may only contain letters, digits, '_', '.' and '-'" }
    if name == "." || name == ".." { return "\(shown) is not a valid interface name" }
    return nil
}
