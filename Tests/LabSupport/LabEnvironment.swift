// The lab's surroundings: the package root, the binaries and tools it runs, root or not.
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where the lab finds its binaries and scripts, and whether it may run at all.
package enum LabEnvironment {
    /// The package root, three levels above this file (Tests/LabSupport/LabEnvironment.swift).
    package static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    package static let isRoot = geteuid() == 0
    package static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    /// `VXROUTER_BIN`, else `<package root>/.build/release/vxrouter`.
    package static let routerBinary: String = {
        if let path = ProcessInfo.processInfo.environment["VXROUTER_BIN"], !path.isEmpty { return path }
        return packageRoot.appendingPathComponent(".build/release/vxrouter").path
    }()

    /// `VXLOAD_BIN`, else `.build/release/vxload`, else `.build/debug/vxload`, else the one built
    /// next to the test binary (a `--scratch-path` build).
    package static let vxload: String = {
        if let path = ProcessInfo.processInfo.environment["VXLOAD_BIN"], !path.isEmpty { return path }
        let candidates = [
            packageRoot.appendingPathComponent(".build/release/vxload").path,
            packageRoot.appendingPathComponent(".build/debug/vxload").path,
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("vxload").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }()

    package static var vxloadExists: Bool { FileManager.default.isExecutableFile(atPath: vxload) }

    package static var routerBinaryExists: Bool { FileManager.default.isExecutableFile(atPath: routerBinary) }

    /// Lab hosts need root (namespaces, veths, TAPs). Without root the tests skip, except in CI,
    /// where they run and fail loudly in `requireRoot`.
    package static var labHostAvailable: Bool { isRoot || isCI }

    /// Router scenarios also need the binary; outside CI a missing one skips them.
    package static var routerAvailable: Bool { isCI || (isRoot && routerBinaryExists) }

    package static func requireRoot() throws {
        guard isRoot else {
            throw LabFailure(
                "integration tests need root (network namespaces, veth pairs, TAP devices); "
                    + "CI=true makes this a failure, not a skip"
            )
        }
    }

    package static func requireVXLoad() throws {
        guard vxloadExists else {
            throw LabFailure("no vxload binary at \(vxload): run `swift build -c release --product vxload` or set VXLOAD_BIN")
        }
    }

    package static func requireRouter() throws {
        guard routerBinaryExists else {
            throw LabFailure(
                "no vxrouter binary at \(routerBinary): "
                    + "run `swift build -c release --product vxrouter` or set VXROUTER_BIN"
            )
        }
        warnIfRouterIsStale()
    }

    /// A tool by name, from PATH or the sbin directories a root shell would have.
    package static func tool(_ name: String) -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for directory in directories {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return name
    }

    /// The system python (stdlib only is needed), preferred over version-manager shims.
    package static let python: String = {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : tool("python3")
    }()

    package static let ip = tool("ip")

    /// The lab's routers answer their control API on TCP 127.0.0.1:4790 of their own namespace with
    /// this bearer token. The default endpoint, /run/vxrouter/control.sock, is one path for every
    /// namespace, so routers in several lab hosts cannot all use it; TCP needs a token.
    package static let controlToken = "vxt-lab-control-token"
    package static let controlURL = "http://127.0.0.1:4790"
    /// A file holding `controlToken` (mode 0600), written once per test process.
    package static let controlTokenFile: String = {
        let path = NSTemporaryDirectory() + "vxt-control-token-\(getpid())"
        FileManager.default.createFile(
            atPath: path, contents: Data(controlToken.utf8), attributes: [.posixPermissions: 0o600])
        return path
    }()
    /// What `vxrouter run` needs to listen that way.
    package static var controlArguments: [String] {
        ["--control", "127.0.0.1:4790", "--control-token-file", controlTokenFile]
    }
    /// What a client command (`vxrouter stats`, `capture`, `events` …) needs to reach it.
    package static var clientArguments: [String] {
        ["--endpoint", "127.0.0.1:4790", "--token-file", controlTokenFile]
    }
    /// The config form of the same.
    package static var controlYAML: String {
        "control:\n  listen: 127.0.0.1:4790\n  token_file: \(controlTokenFile)\n"
    }

    package static func script(_ name: String) -> String {
        packageRoot.appendingPathComponent("Tools/lab/\(name)").path
    }

    /// Tests run whatever binary they find: say so when Sources/ changed after it was built.
    private static let staleCheck: Void = {
        let fm = FileManager.default
        guard let built = (try? fm.attributesOfItem(atPath: routerBinary))?[.modificationDate] as? Date,
            let files = fm.enumerator(atPath: packageRoot.appendingPathComponent("Sources").path)
        else { return }
        for case let file as String in files {
            let path = packageRoot.appendingPathComponent("Sources/\(file)").path
            if let changed = (try? fm.attributesOfItem(atPath: path))?[.modificationDate] as? Date, changed > built {
                print(
                    "warning: \(routerBinary) is older than Sources/\(file); "
                        + "rebuild (swift build -c release --product vxrouter) to test the current code"
                )
                return
            }
        }
    }()

    package static func warnIfRouterIsStale() { _ = staleCheck }
}
