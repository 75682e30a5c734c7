// `vxrouter check-config`: validates a config file and says what it means, without starting.
import ArgumentParser
import VXConfig

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a config file and print what it means, without starting.")

    @Argument(help: "YAML config file.")
    var path: String

    func run() throws {
        let config = try ConfigLoader.load(path: path)
        try config.validate()
        print("\(path): ok — \(config.networks.count) network(s), local \(config.underlay.local), port \(config.underlay.port)")
        for net in config.networks {
            print("  vni \(net.vni) tap \(net.tap) flood \(net.flood.map(\.description)) static \(net.fdb.count)")
        }
    }
}
