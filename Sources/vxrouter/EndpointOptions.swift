// What every command that talks to a running router shares: where its endpoint is, the token,
// --json, and typed requests — the API's models (VXControlAPI) decoded, never walked by string key.
import ArgumentParser
import Foundation
import VXConfig
import VXControlAPI
import VXWire

struct EndpointOptions: ParsableArguments {
    @Option(help: "The router's control endpoint: unix:PATH, ADDRESS:PORT or [IPV6]:PORT.")
    var endpoint: String = ControlAddress.default.description

    @Option(help: "File holding the bearer token (needed for changes when the router has control.token_file).")
    var tokenFile: String?

    @Flag(help: "Print the API's JSON instead of a table.")
    var json = false

    func client() throws -> ControlClient {
        guard let address = ControlAddress(endpoint) else {
            throw ValidationError("--endpoint \(endpoint) is not ADDRESS:PORT, [IPV6]:PORT or unix:PATH")
        }
        var token: String?
        if let tokenFile {
            do {
                token = try readToken(path: tokenFile)
            } catch {
                throw ValidationError("--token-file \(tokenFile): \(error.reason)")
            }
        }
        return ControlClient(endpoint: address, token: token)
    }

    /// Sends one request and decodes a 2xx answer as `T` (printing its JSON with --json).
    /// Failures print the router's reason to stderr and exit 1 (2 when no router answers).
    @discardableResult
    func call<T: Decodable>(
        _ type: T.Type, _ method: String, _ path: String, body: (some Encodable)? = nil as EmptyRequest?,
        printJSON: Bool = true
    ) throws -> T {
        let response = try send(method, path, body: body)
        if json && printJSON { print(response.text, terminator: response.text.hasSuffix("\n") ? "" : "\n") }
        return try decodeAnswer(T.self, response, "\(method) \(path)")
    }

    /// One request; the response when it is 2xx.
    func send(_ method: String, _ path: String, body: (some Encodable)? = nil as EmptyRequest?) throws -> ControlResponse {
        let client = try client()
        var text: String?
        if let body {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            text = String(decoding: try encoder.encode(body), as: UTF8.self)
        }
        let response: ControlResponse
        do {
            response = try client.request(method, path, json: text)
        } catch {
            if error.unreachable {
                printError("vxrouter: \(error.description) (is `vxrouter run` running with its control endpoint on? try --endpoint)")
            } else {
                printError("vxrouter: \(error.description)")
            }
            throw ExitCode(2)
        }
        guard (200..<300).contains(response.status) else {
            printError("vxrouter: \(method) \(path): \(response.status): \(errorMessage(response))")
            throw ExitCode(1)
        }
        return response
    }
}

/// The router's reason from an error body, else the body as text.
func errorMessage(_ response: ControlResponse) -> String {
    (try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body)))?.error.message ?? response.text
}

func decodeAnswer<T: Decodable>(_ type: T.Type, _ response: ControlResponse, _ what: String) throws -> T {
    do {
        return try JSONDecoder().decode(T.self, from: Data(response.body))
    } catch {
        printError("vxrouter: \(what): the answer is not what this version expects (\(error)): \(response.text.prefix(200))")
        throw ExitCode(1)
    }
}

/// JSON for --json output assembled by the CLI (several answers in one document).
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Columns padded to their widest cell; numbers right-aligned.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String], numeric: Bool) -> String {
        cells.enumerated().map { i, cell in
            let pad = String(repeating: " ", count: widths[i] - cell.count)
            let isNumber = numeric && !cell.isEmpty && cell.allSatisfy { $0.isNumber }
            return isNumber ? pad + cell : (i == cells.count - 1 ? cell : cell + pad)
        }.joined(separator: "  ")
    }
    print(line(header, numeric: false))
    for row in rows { print(line(row, numeric: true)) }
}

/// Every VNI the router serves, for listings without --vni.
func servedVNIs(_ options: EndpointOptions) throws -> [VNI] {
    try options.call(NetworkList.self, "GET", APIPath.networks, printJSON: false).networks.compactMap { VNI(Int($0.vni)) }
}

/// A per-network listing: GET `path(vni)` for `vni`, or for every network the router serves.
/// With --json it prints them (the one body, or `{"networks": [...]}`) and returns nil; otherwise
/// it returns them for a table.
func listPerNetwork<Body: Codable>(
    _ type: Body.Type, vni: VNI?, _ options: EndpointOptions, path: (UInt32) -> String
) throws -> [Body]? {
    let vnis = try vni.map { [$0] } ?? servedVNIs(options)
    let lists = try vnis.map { try options.call(Body.self, "GET", path($0.rawValue), printJSON: false) }
    guard options.json else { return lists }
    if vni == nil { try printJSON(PerNetwork(networks: lists)) } else { try printJSON(lists[0]) }
    return nil
}

/// `{"networks": [...]}`: the --json form of a listing over every network.
struct PerNetwork<Body: Encodable>: Encodable {
    var networks: [Body]
}

// MARK: - Domain argument types (ArgumentParser refuses a bad value with the option's name)

extension VNI: ExpressibleByArgument {
    public init?(argument: String) {
        guard let vni = ServedVNIs.parse(argument) else { return nil }
        self = vni
    }
}

extension Steering: ExpressibleByArgument {}

extension MACAddress: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension IPAddress: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}
