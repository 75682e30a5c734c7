// `vxrouter stats`: a running router's counters, per network, per drop reason, per worker.
import ArgumentParser
import VXControlAPI

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a running router's counters.")
    @OptionGroup var options: EndpointOptions

    func run() throws {
        let body = try options.call(VXControlAPI.Stats.self, "GET", APIPath.stats)
        if options.json { return }
        print("uptime \(body.uptimeSeconds)s")
        printTable(
            ["VNI", "TAP", "TAP_RX", "TAP_TX", "TUNNEL_RX", "TUNNEL_TX", "FLOODED", "DROPS", "FDB", "FLOOD"],
            body.networks.map { net in
                let t = net.traffic
                return [
                    String(net.vni), net.tap, String(t["tap_rx_packets"]), String(t["tap_tx_packets"]),
                    String(t["tunnel_rx_packets"]), String(t["tunnel_tx_packets"]), String(t["flooded_frames"]),
                    String(t.dropsTotal), String(net.fdbEntries), String(net.floodRemotes),
                ]
            })
        var drops: [[String]] = []
        for net in body.networks {
            for (reason, value) in net.traffic.drops.sorted(by: { $0.key < $1.key }) where value > 0 {
                drops.append([String(net.vni), reason, String(value)])
            }
        }
        for (reason, value) in body.unattributed.drops.sorted(by: { $0.key < $1.key }) where value > 0 {
            drops.append(["-", reason, String(value)])
        }
        if !drops.isEmpty {
            print("")
            printTable(["VNI", "DROP_REASON", "PACKETS"], drops)
        }
        print("")
        printTable(
            ["WORKER", "TAP_RX", "TUNNEL_TX", "TUNNEL_RX", "TAP_TX", "DROPS", "KERNEL_SOCKET_DROPS"],
            body.workers.map { w in
                let t = w.traffic
                return [
                    String(w.worker), String(t["tap_rx_packets"]), String(t["tunnel_tx_packets"]),
                    String(t["tunnel_rx_packets"]), String(t["tap_tx_packets"]), String(t.dropsTotal),
                    w.kernelSocketDrops.map(String.init) ?? "-",
                ]
            })
        // Losses before the router: not in its drop counters, but where a loss under CPU
        // starvation shows up.
        let tapDrops = body.networks.compactMap { net in net.kernelTapDrops.flatMap { $0 > 0 ? "vni \(net.vni) \($0)" : nil } }
        if !tapDrops.isEmpty { print("\nkernel dropped at the TAP (queue full): " + tapDrops.joined(separator: ", ")) }
    }
}
