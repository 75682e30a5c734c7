// `vxrouter flood list|add|del`: a running router's flood lists (head-end replication).
import ArgumentParser
import VXControlAPI
import VXWire

struct Flood: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flood", abstract: "List and change a running router's flood lists (head-end replication).",
        subcommands: [List.self, Add.self, Del.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List each network's flood list.")
        @Option(help: "Only this VNI (default: every network).") var vni: VNI?
        @OptionGroup var options: EndpointOptions

        func run() throws {
            guard let lists = try listPerNetwork(FloodList.self, vni: vni, options, path: { APIPath.flood($0) }) else { return }
            printTable(["VNI", "REMOTE"], lists.flatMap { list in list.remotes.map { [String(list.vni), $0] } })
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a remote VTEP to a flood list.")
        @Option(help: "The network.") var vni: VNI
        @Argument(help: "The remote VTEP's underlay address.") var remote: IPAddress
        @OptionGroup var options: EndpointOptions

        func run() throws {
            try options.call(
                FloodList.self, "POST", APIPath.flood(vni.rawValue), body: FloodRequest(remote: remote.description))
            if !options.json { print("vni \(vni): \(remote) added to the flood list") }
        }
    }

    struct Del: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "del", abstract: "Remove a remote VTEP from a flood list.")
        @Option(help: "The network.") var vni: VNI
        @Argument(help: "The remote VTEP's underlay address.") var remote: IPAddress
        @OptionGroup var options: EndpointOptions

        func run() throws {
            try options.call(FloodList.self, "DELETE", APIPath.floodRemote(vni.rawValue, remote.description))
            if !options.json { print("vni \(vni): \(remote) removed from the flood list") }
        }
    }
}
