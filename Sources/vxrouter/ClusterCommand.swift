// `vxrouter cluster status`: cluster mode as a running router sees it (GET /v1/cluster), or with
// --cluster the overlay as etcd has it (members, per-VNI membership, MACs, contested MACs), read
// from etcd directly, so it works from any host that reaches etcd.
import ArgumentParser
import Foundation
import VXCluster
import VXConfig
import VXControlAPI

struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Cluster mode: inspect the overlay in etcd.",
        subcommands: [ClusterStatusCommand.self])
}

struct ClusterStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Cluster mode as a running router sees it (GET /v1/cluster), or, with --cluster, the overlay in etcd.",
        discussion: """
            Without --cluster: the router's connection to etcd, revision, last sync, lease, members \
            and counters (re-lists, corrections, moves, conflicts). With --cluster URL --cluster-name \
            NAME: the overlay's members, VNIs, MACs and contested MACs, read from etcd directly (works \
            from any host that reaches etcd).
            """)

    @OptionGroup var options: EndpointOptions

    @Option(help: "Read the overlay from etcd instead: http://HOST:PORT[,http://HOST:PORT…] (with --cluster-name).")
    var cluster: String?

    @Option(help: "The overlay's name (with --cluster).")
    var clusterName: String?

    @Option(help: "With https:// --cluster endpoints: the CA (PEM) that signed etcd's certificate.")
    var caFile: String?

    @Option(help: "With https:// --cluster endpoints: a client certificate (PEM), with --key-file.")
    var certFile: String?

    @Option(help: "The client certificate's key (PEM).")
    var keyFile: String?

    @Option(help: "With --cluster, when etcd has authentication on: the etcd user (with --password-file).")
    var username: String?

    @Option(help: "A file holding the etcd user's password.")
    var passwordFile: String?

    func run() throws {
        if let cluster {
            guard let clusterName else { throw ValidationError("--cluster needs --cluster-name NAME") }
            return try showOverlay(endpoints: cluster, name: clusterName)
        }
        if clusterName != nil || username != nil || passwordFile != nil {
            throw ValidationError("--cluster-name, --username and --password-file go with --cluster URL")
        }
        let info = try options.call(ClusterInfo.self, "GET", APIPath.cluster)
        if options.json { return }
        print(Self.text(info))
    }

    static func text(_ info: ClusterInfo) -> String {
        let sync = info.lastSyncSecondsAgo.map { String(format: "%.1fs ago", $0) } ?? "never"
        var lines = [
            "overlay \(info.overlay) as host \(info.hostID) (incarnation \(info.incarnation))",
            "etcd: \(info.connected ? "connected" : "NOT connected") via \(info.endpoint) (of \(info.endpoints.joined(separator: ", ")))",
            "revision \(info.revision), last sync \(sync)",
            "lease \(info.leaseID ?? "none") (ttl \(info.leaseTTLSeconds)s), \(info.leasesGranted) granted",
            "members (\(info.members.count)): \(info.members.joined(separator: ", "))",
            "from the cluster: \(info.floodMembers) flood members, \(info.entries) MAC entries; published \(info.published) records",
            "relists \(info.relists), corrections \(info.corrections), moves \(info.moves), conflicts \(info.conflicts), apply failures \(info.applyFailures)",
        ]
        if !info.excludedMembers.isEmpty {
            lines.append("not programmed (\(info.excludedMembers.count)), \(info.portMismatches) port mismatches seen:")
            for member in info.excludedMembers {
                lines.append("  \(member.host)  \(member.address):\(member.port)  \(member.reason)")
            }
        }
        if let error = info.lastError { lines.append("last error: \(error)") }
        return lines.joined(separator: "\n")
    }

    func showOverlay(endpoints text: String, name: String) throws {
        let endpoints = text.split(separator: ",").map(String.init)
        for endpoint in endpoints {
            if let problem = ClusterConfig.endpointProblem(endpoint) { throw ValidationError("--cluster: \(problem)") }
        }
        if let problem = ClusterConfig.namePartProblem(name, what: "cluster name") {
            throw ValidationError("--cluster-name: \(problem)")
        }
        let section = ClusterConfig(
            endpoints: endpoints, name: name, caFile: caFile, certFile: certFile, keyFile: keyFile, username: username,
            passwordFile: passwordFile)
        if let problem = ClusterConfig.endpointsProblem(endpoints) { throw ValidationError("--cluster: \(problem)") }
        if let (key, reason) = section.tlsProblem() { throw ValidationError("--\(key.replacingOccurrences(of: "_", with: "-")): \(reason)") }
        if let (key, reason) = section.credentialsProblem() { throw ValidationError("--\(key.replacingOccurrences(of: "_", with: "-")): \(reason)") }
        let tls = section.usesTLS ? EtcdTLS(caFile: caFile, certFile: certFile, keyFile: keyFile) : nil
        var credentials: EtcdCredentials?
        if let username, let passwordFile {
            do {
                credentials = EtcdCredentials(username: username, password: try readPassword(path: passwordFile))
            } catch {
                throw ValidationError("--password-file \(passwordFile): \(error.reason)")
            }
        }
        let result = BlockingResult<ClusterOverview>()
        Task {
            let etcd = EtcdClient(endpoints: endpoints, tls: tls, credentials: credentials)
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
        if options.json {
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
