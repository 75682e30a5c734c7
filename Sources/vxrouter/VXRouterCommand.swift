// The executable: argument parsing, wiring, signals — nothing else. One file per command.
import ArgumentParser
import Logging

@main
struct VXRouterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vxrouter",
        abstract: "A userspace VXLAN (RFC 7348) router: TAP devices in, VXLAN over UDP out.",
        subcommands: [
            Run.self, CheckConfig.self, Stats.self, FDB.self, Flood.self, Peers.self, Events.self, Capture.self,
            ClusterCommand.self, Trace.self, Reload.self,
        ])
}

struct LogOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func bootstrap() throws -> Logger {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level \(logLevel) is not one of trace, debug, info, notice, warning, error, critical")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "vxrouter")
    }
}
