// `vxrouter events`: follows a running router's FDB events (Server-Sent Events) until interrupted.
import ArgumentParser
import Foundation
import VXControlAPI

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow a running router's FDB events (learn, move, age_out, fdb_full) until interrupted.")
    @Option(help: "Exit after this many events.") var count: Int?
    @OptionGroup var options: EndpointOptions

    /// `event: lost`: how many events a slow reader missed.
    struct Lost: Decodable { var count: Int }

    func run() throws {
        let client = try options.client()
        var seen = 0
        var pending: [UInt8] = []
        var event = ""
        var data = ""
        do {
            let head = try client.stream("GET", APIPath.events) { bytes in
                pending += bytes
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[..<newline], as: UTF8.self)
                    pending.removeFirst(newline + 1)
                    if line.isEmpty {
                        if !data.isEmpty {
                            show(event: event.isEmpty ? "message" : event, data: data)
                            seen += 1
                            if let count, seen >= count { return false }
                        }
                        event = ""
                        data = ""
                    } else if line.hasPrefix("event:") {
                        event = String(line.dropFirst(6)).trimmingCharacters(in: .whitespaces)
                    } else if line.hasPrefix("data:") {
                        data += String(line.dropFirst(5)).trimmingCharacters(in: .whitespaces)
                    }
                }
                return true
            }
            if head.status != 200 {
                printError("vxrouter: GET \(APIPath.events): \(head.status)")
                throw ExitCode(1)
            }
        } catch let error as ControlClientError {
            printError("vxrouter: \(error.description)")
            throw ExitCode(2)
        }
    }

    func show(event: String, data: String) {
        // Followed live, often through a pipe: every event goes out at once.
        defer { fflush(nil) }
        if options.json {
            print(data)
            return
        }
        if let fdb = try? JSONDecoder().decode(FDBEvent.self, from: Data(data.utf8)) {
            var text = "\(fdb.time)  \(event)  vni=\(fdb.vni)  mac=\(fdb.mac)  remote=\(fdb.remote)"
            if let from = fdb.from { text += "  from=\(from)" }
            if let max = fdb.maxEntries { text += "  max_entries=\(max)" }
            print(text)
        } else if let lost = try? JSONDecoder().decode(Lost.self, from: Data(data.utf8)) {
            print("-  \(event)  count=\(lost.count)")
        } else {
            print("-  \(event)  \(data)")
        }
    }
}
