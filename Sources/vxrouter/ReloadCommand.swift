// `vxrouter reload`: a running router re-reads its config file and applies what changed, as on
// SIGHUP (README "Running it in production"). Prints each change, or the refusal naming the key
// (then nothing changed, and the command exits non-zero).
import ArgumentParser
import VXControlAPI

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a running router re-read its config file and apply the difference without a restart.",
        discussion: """
            Networks added and removed, flood lists, static entries, learning, ageing, max_entries, \
            allow_from, arp_suppression, pmtu_signal and capture settings change live; traffic on what did \
            not change keeps flowing. A change to underlay, workers, offloads, busy_poll, control, metrics, \
            cluster, or a network's tap, mtu, address or mac is refused with the key named, and nothing \
            changes. Same as SIGHUP (systemctl reload vxrouter).
            """)

    @OptionGroup var options: EndpointOptions

    func run() throws {
        let result = try options.call(ReloadResult.self, "POST", APIPath.reload)
        if options.json { return }
        if result.changes.isEmpty {
            print("reloaded: nothing changed")
            return
        }
        printTable(["CHANGE", "VNI", "WHAT"], result.changes.map { change in
            [change.kind.rawValue, change.vni.map(String.init) ?? "-", change.remote ?? change.mac ?? change.key ?? ""]
        })
    }
}
