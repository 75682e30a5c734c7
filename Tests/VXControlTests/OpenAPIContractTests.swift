// The typed API models (VXControlAPI) against api/openapi.yaml: for each model, an instance built
// from its schema — every property, then only the required ones — must decode, and the decoded
// full instance must encode back to exactly the schema's properties, at every level. A field
// renamed, added or made optional on one side only fails here.
import Foundation
import Testing
import VXControlAPI
import VXDatapath
import Yams

@testable import VXControl

struct OpenAPISpec {
    let root: [String: Any]

    static func load() throws -> OpenAPISpec {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../api/openapi.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        return OpenAPISpec(root: try Yams.load(yaml: text) as? [String: Any] ?? [:])
    }

    /// The node at `path` (keys separated by " > ", since paths and media types hold slashes).
    func node(_ path: String) -> Any? {
        var node: Any? = root
        for key in path.components(separatedBy: " > ") { node = (node as? [String: Any])?[key] }
        return node
    }

    /// `$ref` followed, `allOf` of one taken as that one.
    func resolve(_ schema: Any?) -> [String: Any] {
        guard var object = schema as? [String: Any] else { return [:] }
        if let ref = object["$ref"] as? String {
            object = node(ref.dropFirst(2).split(separator: "/").joined(separator: " > ")) as? [String: Any] ?? [:]
        }
        if let all = object["allOf"] as? [Any], all.count == 1 { return resolve(all[0]) }
        return object
    }

    /// A JSON value the schema describes: every property, or only the required ones.
    func instance(_ schema: Any?, full: Bool) -> Any {
        let schema = resolve(schema)
        if let values = schema["enum"] as? [Any], let first = values.first { return first }
        switch schema["type"] as? String {
        case "integer": return 1
        case "number": return 1.5
        case "boolean": return true
        case "string": return "x"
        case "array": return [instance(schema["items"], full: full)]
        default:
            let properties = schema["properties"] as? [String: Any] ?? [:]
            let required = Set(schema["required"] as? [String] ?? [])
            var object: [String: Any] = [:]
            for (name, property) in properties where full || required.contains(name) {
                object[name] = instance(property, full: full)
            }
            return object
        }
    }

    /// Where `value` (encoded JSON) has keys the schema does not list, or lacks listed ones.
    func mismatches(_ value: Any, _ schema: Any?, at path: String = "") -> [String] {
        let schema = resolve(schema)
        if let array = value as? [Any] { return array.flatMap { mismatches($0, schema["items"], at: path + "[]") } }
        guard let object = value as? [String: Any], let properties = schema["properties"] as? [String: Any] else {
            return []
        }
        var problems: [String] = []
        let listed = Set(properties.keys)
        let present = Set(object.keys)
        for extra in present.subtracting(listed).sorted() { problems.append("\(path).\(extra): not in the spec") }
        for missing in listed.subtracting(present).sorted() { problems.append("\(path).\(missing): not in the model") }
        for (name, child) in object where listed.contains(name) {
            problems += mismatches(child, properties[name], at: "\(path).\(name)")
        }
        return problems
    }
}

/// One model and where the spec describes it.
struct ContractCase: CustomTestStringConvertible, Sendable {
    let name: String
    let schemaPath: String
    let check: @Sendable (Data) throws -> Data
    var testDescription: String { name }

    static func of<T: Codable>(_ type: T.Type, _ schemaPath: String) -> ContractCase {
        ContractCase(name: "\(T.self)", schemaPath: schemaPath) { data in
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            return try encoder.encode(try JSONDecoder().decode(T.self, from: data))
        }
    }
}

private let json = "content > application/json > schema"
private func response(_ path: String, _ method: String, _ status: String = "200") -> String {
    "paths > \(path) > \(method) > responses > \(status) > \(json)"
}
private func requestBody(_ path: String) -> String { "paths > \(path) > post > requestBody > \(json)" }

let contractCases: [ContractCase] = [
    .of(Health.self, response("/v1/health", "get")),
    .of(VersionInfo.self, response("/v1/version", "get")),
    .of(EffectiveConfig.self, "components > schemas > EffectiveConfig"),
    .of(Stats.self, "components > schemas > Stats"),
    .of(Traffic.self, "components > schemas > Traffic"),
    .of(Remote.self, "components > schemas > Remote"),
    .of(RemoteList.self, response("/v1/remotes", "get")),
    .of(NetworkSummary.self, "components > schemas > NetworkSummary"),
    .of(NetworkList.self, response("/v1/networks", "get")),
    .of(FDBEntry.self, "components > schemas > FDBEntry"),
    .of(FDBList.self, response("/v1/networks/{vni}/fdb", "get")),
    .of(StationList.self, response("/v1/networks/{vni}/stations", "get")),
    .of(FloodList.self, "components > schemas > FloodList"),
    .of(ReloadResult.self, "components > schemas > ReloadResult"),
    .of(FlushResult.self, response("/v1/networks/{vni}/fdb/flush", "post")),
    .of(CaptureStatus.self, "components > schemas > CaptureStatus"),
    .of(CaptureInfo.self, "components > schemas > CaptureSummary"),
    .of(ErrorBody.self, "components > schemas > Error"),
    .of(StaticEntryRequest.self, requestBody("/v1/networks/{vni}/fdb")),
    .of(FloodRequest.self, requestBody("/v1/networks/{vni}/flood")),
    .of(CaptureRequest.self, "components > schemas > CaptureRequest"),
    .of(TraceRequest.self, "components > schemas > TraceRequest"),
    .of(TraceResponse.self, "components > schemas > TraceResponse"),
    .of(ClusterInfo.self, response("/v1/cluster", "get")),
    .of(ClusterEventBody.self, "components > schemas > ClusterEvent"),
]

@Suite struct OpenAPIContractTests {
    @Test(arguments: contractCases) func modelMatchesSchema(_ contract: ContractCase) throws {
        let spec = try OpenAPISpec.load()
        let schema = try #require(spec.node(contract.schemaPath), "no schema at \(contract.schemaPath)")
        let full = try JSONSerialization.data(withJSONObject: spec.instance(schema, full: true))
        let encoded = try contract.check(full)
        let problems = spec.mismatches(try JSONSerialization.jsonObject(with: encoded), schema)
        #expect(problems.isEmpty, "\(contract.name): \(problems)")
        // Only the required properties: the model must not need more.
        let minimal = try JSONSerialization.data(withJSONObject: spec.instance(schema, full: false))
        #expect(throws: Never.self, "\(contract.name) needs a field the spec calls optional") { _ = try contract.check(minimal) }
    }

    /// Stats carry every traffic counter and drop reason by name (a map, not a model field): a
    /// counter added to the datapath must be added to the spec too, or clients validating
    /// responses reject /v1/stats.
    @Test func everyCounterIsInTheSpec() throws {
        let spec = try OpenAPISpec.load()
        let traffic = spec.node("components > schemas > Traffic > properties") as? [String: Any] ?? [:]
        let drops = spec.node("components > schemas > Drops > properties") as? [String: Any] ?? [:]
        for counter in TrafficCounter.allCases {
            #expect(traffic[counter.name] != nil, "Traffic in api/openapi.yaml lacks \(counter.name)")
        }
        for reason in DropReason.allCases {
            #expect(drops[reason.name] != nil, "Drops in api/openapi.yaml lacks \(reason.name)")
        }
    }

    @Test func aRenamedFieldIsCaught() throws {
        let spec = try OpenAPISpec.load()
        let schema = spec.node("components > schemas > FDBEntry")
        let encoded: [String: Any] = ["mac": "x", "remote": "y", "kind": "static", "age_seconds": 1, "ips": ["z"]]
        #expect(spec.mismatches(encoded, schema) == [".kind: not in the spec", ".type: not in the model"])
    }

    /// The route table serves exactly the spec's paths and methods.
    @Test func routeTableMatchesThePaths() throws {
        let spec = try OpenAPISpec.load()
        let paths = spec.root["paths"] as? [String: Any] ?? [:]
        let methods = ["get", "post", "delete", "put", "patch"]
        var documented: Set<String> = []
        for (path, item) in paths {
            for method in methods where (item as? [String: Any])?[method] != nil {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        let served = Set(RouteTable.control.routes.map { "\($0.method.rawValue) \($0.pattern)" })
        #expect(served.subtracting(documented).isEmpty, "served, not documented: \(served.subtracting(documented).sorted())")
        #expect(documented.subtracting(served).isEmpty, "documented, not served: \(documented.subtracting(served).sorted())")
    }
}
