// `vxrouter peers`: the remote VTEPs a running router knows, with last-heard time and counters.
import ArgumentParser
import VXControlAPI

struct Peers: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the remote VTEPs a running router knows.")
    @OptionGroup var options: EndpointOptions

    func run() throws {
        let body = try options.call(RemoteList.self, "GET", APIPath.remotes)
        if options.json { return }
        printTable(
            ["REMOTE", "LAST_HEARD", "RX_PACKETS", "RX_BYTES", "TX_PACKETS", "TX_BYTES", "DROPS", "FDB", "FLOOD_VNIS", "PATH_MTU"],
            body.remotes.map { r in
                let drops = r.drops.values.reduce(UInt64(0), &+)
                let heard = r.lastHeardSecondsAgo.map { "\($0)s ago" } ?? "never"
                let vnis = r.floodVnis.map(String.init).joined(separator: ",")
                return [
                    r.address, heard, String(r.rxPackets), String(r.rxBytes), String(r.txPackets), String(r.txBytes),
                    String(drops), String(r.fdbEntries), vnis.isEmpty ? "-" : vnis,
                    // A learned path MTU is marked, so it is not mistaken for the configured one.
                    r.pathMTULearned ? "\(r.pathMTU) (learned)" : String(r.pathMTU),
                ]
            })
    }
}
