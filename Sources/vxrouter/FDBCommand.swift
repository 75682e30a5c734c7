// `vxrouter fdb list|add|del|flush|stations`: a running router's forwarding database, and the
// stations behind its TAPs (the local side of it, which cluster mode publishes).
import ArgumentParser
import VXControlAPI
import VXWire

struct FDB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fdb", abstract: "List and change a running router's forwarding database.",
        subcommands: [List.self, Add.self, Del.self, Flush.self, Stations.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List FDB entries (learned and static).")
        @Option(help: "Only this VNI (default: every network).") var vni: VNI?
        @OptionGroup var options: EndpointOptions

        func run() throws {
            guard let lists = try listPerNetwork(FDBList.self, vni: vni, options, path: { APIPath.fdb($0) }) else { return }
            var rows: [[String]] = []
            for list in lists {
                for entry in list.entries {
                    let age = entry.ageSeconds.map { "\($0)s" } ?? "-"
                    let ips = entry.ips?.joined(separator: ",") ?? "-"
                    rows.append([String(list.vni), entry.mac, entry.type.rawValue, entry.remote, age, ips])
                }
            }
            printTable(["VNI", "MAC", "TYPE", "REMOTE", "AGE", "IPS"], rows)
        }
    }

    struct Stations: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the stations behind the TAPs: MACs seen sending, IPs they claimed by ARP/ND.")
        @Option(help: "Only this VNI (default: every network).") var vni: VNI?
        @OptionGroup var options: EndpointOptions

        func run() throws {
            guard let lists = try listPerNetwork(StationList.self, vni: vni, options, path: { APIPath.stations($0) })
            else { return }
            var rows: [[String]] = []
            for list in lists {
                for station in list.stations {
                    let ips = station.ips.isEmpty ? "-" : station.ips.joined(separator: ",")
                    rows.append([String(list.vni), station.mac, "\(station.ageSeconds)s", ips])
                }
            }
            printTable(["VNI", "MAC", "AGE", "IPS"], rows)
            for list in lists where list.refused > 0 {
                print("vni \(list.vni): \(list.refused) new stations not listed: the table was full")
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add (or replace) a static entry: MAC lives behind REMOTE.")
        @Option(help: "The network.") var vni: VNI
        @Argument(help: "The station's MAC address, aa:bb:cc:dd:ee:ff.") var mac: MACAddress
        @Argument(help: "The remote VTEP's underlay address.") var remote: IPAddress
        @Option(
            name: .customLong("ip"),
            help: "An inner address behind the MAC, answered locally by ARP/ND suppression (repeatable).")
        var ips: [IPAddress] = []
        @OptionGroup var options: EndpointOptions

        func run() throws {
            let request = StaticEntryRequest(
                mac: mac.description, remote: remote.description, ips: ips.isEmpty ? nil : ips.map(\.description))
            try options.call(FDBEntry.self, "POST", APIPath.fdb(vni.rawValue), body: request)
            let behind = ips.isEmpty ? "" : " ips \(ips.map(\.description).joined(separator: ","))"
            if !options.json { print("vni \(vni): \(mac) → \(remote)\(behind) (static)") }
        }
    }

    struct Del: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "del", abstract: "Delete an entry (static or learned).")
        @Option(help: "The network.") var vni: VNI
        @Argument(help: "The MAC address.") var mac: MACAddress
        @OptionGroup var options: EndpointOptions

        func run() throws {
            try options.call(FDBEntry.self, "DELETE", APIPath.fdbEntry(vni.rawValue, mac.description))
            if !options.json { print("vni \(vni): \(mac) deleted") }
        }
    }

    struct Flush: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove every learned entry (static ones stay).")
        @Option(help: "The network (default: every network).") var vni: VNI?
        @OptionGroup var options: EndpointOptions

        func run() throws {
            for vni in try vni.map({ [$0] }) ?? servedVNIs(options) {
                let result = try options.call(FlushResult.self, "POST", APIPath.flush(vni.rawValue))
                if !options.json { print("vni \(vni): \(result.removed) learned entries removed") }
            }
        }
    }
}
