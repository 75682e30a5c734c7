// `vxrouter cluster status`: the overlay as etcd has it (members, per-VNI membership, MACs,
// contested MACs), read from etcd directly, so it works from any host that reaches etcd.
import ArgumentParser
import Foundation
import VXCluster
import VXConfig

struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Cluster mode: inspect the overlay in etcd.",
        subcommands: [ClusterStatusCommand.self])
}

struct ClusterStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Members, VNIs, MACs and conflicts of an overlay, from etcd.")

    @Option(help: "etcd endpoints, http://HOST:PORT[,http://HOST:PORT…].")
    var cluster: String

    @Option(help: "The overlay's name.")
    var clusterName: String

    @Flag(help: "JSON instead of text.")
    var json = false

    func run() throws {
        let endpoints = cluster.split(separator: ",").map(String.init)
        for endpoint in endpoints {
            if let problem = ClusterConfig.endpointProblem(endpoint) { throw ValidationError("--cluster: \(problem)") }
        }
        if let problem = ClusterConfig.namePartProblem(clusterName, what: "cluster name") {
            throw ValidationError("--cluster-name: \(problem)")
        }
        let name = clusterName
        let result = BlockingResult<ClusterOverview>()
        Task {
            let etcd = EtcdClient(endpoints: endpoints)
            do {
                let listing = try await etcd.range(ClusterKeys(overlay: name).prefix)
                result.set(.success(ClusterOverview(overlay: name, listing: listing)))
            } catch {
                result.set(.failure(error))
            }
            await etcd.shutdown()
        }
        let overview: ClusterOverview
        do {
            overview = try result.wait()
        } catch {
            FileHandleOutput.standardError("vxrouter: \(error)")
            throw ExitCode(1)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(overview), as: UTF8.self))
        } else {
            print(overview.text)
        }
    }
}

/// Hands an async result to synchronous code (the command runs outside the async runtime).
final class BlockingResult<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, any Error>?

    func set(_ value: Result<T, any Error>) {
        result = value
        done.signal()
    }

    func wait() throws -> T {
        done.wait()
        return try result!.get()
    }
}

enum FileHandleOutput {
    static func standardError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
