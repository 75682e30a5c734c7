// The control endpoint's privilege model against a real router, as an unprivileged user
// (`runuser -u nobody`, curl over the Unix socket) and as root:
//
// 1. Default socket mode (0660 root:root): nobody cannot even open the socket (curl fails to
//    connect: EACCES), so every route, changing or not, is out of reach; the CLI says why.
// 2. The operator opens the socket to everyone (chmod 0666, the documented way to share reads):
//    nobody's reads answer 200, every changing route and the capture stream answer 403 (the
//    SO_PEERCRED check) and change nothing; metrics on their own TCP port are readable by nobody.
// 3. As root everything is allowed; with `control.group: nogroup` (nobody's primary group) nobody
//    may change things too.
// The socket lives in a directory of this test's own (/run/vxt-<pid>-priv-<id>), removed at the end.
import Foundation
import LabSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension EndToEnd {
    @Suite("Privilege")
    struct Privilege {
        /// curl over the Unix socket in `host`, as `user` (nil: root): the HTTP status, or 0 when
        /// curl could not connect.
        func curl(
            _ host: Host, _ lab: Lab, as user: String?, socket: String, _ method: String, _ path: String,
            body: String? = nil
        ) async throws -> Int {
            var arguments = [
                "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3", "--unix-socket", socket,
                "-X", method,
            ]
            if let body { arguments += ["-H", "content-type: application/json", "--data", body] }
            arguments.append("http://vxrouter\(path)")
            if let user { arguments = ["runuser", "-u", user, "--"] + arguments }
            let result = try await lab.run(host.command(arguments), timeout: .seconds(10), check: false)
            return Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }

        /// A router on the first of two switched hosts whose control socket is
        /// `socketDirectory/control.sock` (`control` adds keys to its `control:` mapping, `extra` top-level
        /// lines). Returns that host, its peer and the socket's path.
        func startRouter(
            _ lab: Lab, socketDirectory: String, control: String, extra: String = ""
        ) async throws -> (router: Host, peer: Host, socket: String) {
            let hosts = try await lab.hostsOnSwitch(count: 2)
            let (a, b) = (hosts[0], hosts[1])
            let socket = socketDirectory + "/control.sock"
            let tap = lab.interfaceName("vxp")
            _ = try await lab.startRouter(
                on: a,
                config: """
                    underlay: { local: \(a.underlayAddress) }
                    networks:
                      - { vni: 42, tap: \(tap), address: 198.19.0.1/24, flood: [\(b.underlayAddress)] }
                    control: { listen: "unix:\(socket)"\(control) }
                    \(extra)
                    """,
                taps: [tap])
            return (a, b, socket)
        }

        @Test("nobody cannot change or capture; reads only where the socket allows; root can", .routerBinary, .timeLimit(.minutes(3)))
        func unprivilegedUserIsRefused() async throws {
            try await withLab("priv") { lab in
                let directory = "/run/vxt-\(getpid())-priv-\(lab.id)"
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let (a, b, socket) = try await startRouter(
                    lab, socketDirectory: directory, control: "", extra: #"metrics: { listen: "127.0.0.1:9542" }"#)

                // The socket as promised: root:root 0660 in a 0755 directory the router made.
                let attributes = try FileManager.default.attributesOfItem(atPath: socket)
                #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o660, "\(attributes)")
                #expect((attributes[.ownerAccountID] as? NSNumber)?.intValue == 0)
                #expect((attributes[.groupOwnerAccountID] as? NSNumber)?.intValue == 0)
                let directoryMode = try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions]
                #expect((directoryMode as? NSNumber)?.intValue == 0o755)

                let changes: [(String, String, String?)] = [
                    ("POST", "/v1/networks/42/fdb", #"{"mac": "02:00:00:00:66:66", "remote": "198.18.0.99"}"#),
                    ("POST", "/v1/networks/42/flood", #"{"remote": "198.18.0.66"}"#),
                    ("DELETE", "/v1/networks/42/flood/\(b.underlayAddress)", nil),
                    ("POST", "/v1/networks/42/fdb/flush", nil),
                    ("DELETE", "/v1/networks/42/fdb/02:00:00:00:00:01", nil),
                    ("POST", "/v1/capture", #"{"file": "x.pcap", "count": 1}"#),
                    ("DELETE", "/v1/capture", nil),
                    ("GET", "/v1/capture/stream?points=inner", nil),
                ]

                // 1. Default mode: nobody cannot open the socket at all.
                for (method, path, body) in changes + [("GET", "/v1/stats", nil)] {
                    let status = try await curl(a, lab, as: "nobody", socket: socket, method, path, body: body)
                    #expect(status == 0, "nobody \(method) \(path) reached the router: \(status)")
                }
                let cli = try await lab.run(
                    a.command(["runuser", "-u", "nobody", "--", LabEnvironment.routerBinary, "flood", "add", "--vni", "42",
                        "198.18.0.66", "--endpoint", "unix:\(socket)"]), timeout: .seconds(10), check: false)
                #expect(!cli.succeeded && cli.stderr.contains("permission denied"), "\(cli.summary)")

                // Metrics: anyone, no privilege.
                let metrics = try await lab.run(
                    a.command(["runuser", "-u", "nobody", "--", "curl", "-sf", "http://127.0.0.1:9542/metrics"]),
                    timeout: .seconds(10), check: false)
                #expect(metrics.succeeded && metrics.stdout.contains("vxrouter_"), "\(metrics.summary)")
                let notMetrics = try await lab.run(
                    a.command(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9542/v1/stats"]),
                    timeout: .seconds(10), check: false)
                #expect(notMetrics.stdout == "404", "\(notMetrics.summary)")

                // 2. Socket opened to everyone: reads yes, changes and the capture stream 403.
                #expect(chmod(socket, 0o666) == 0)
                for path in ["/v1/health", "/v1/stats", "/v1/networks/42/fdb", "/v1/networks/42/flood", "/v1/config", "/metrics"] {
                    let status = try await curl(a, lab, as: "nobody", socket: socket, "GET", path)
                    #expect(status == 200, "nobody GET \(path): \(status)")
                }
                for (method, path, body) in changes {
                    let status = try await curl(a, lab, as: "nobody", socket: socket, method, path, body: body)
                    #expect(status == 403, "nobody \(method) \(path): \(status)")
                }
                let flood = try await lab.run(
                    a.command(["curl", "-s", "--unix-socket", socket, "http://vxrouter/v1/networks/42/flood"]),
                    timeout: .seconds(10))
                #expect(!flood.stdout.contains("198.18.0.66"), "nobody's flood entry got in: \(flood.stdout)")

                // 3. Root: everything.
                for (method, path, body) in changes where !path.hasPrefix("/v1/capture") {
                    let status = try await curl(a, lab, as: nil, socket: socket, method, path, body: body)
                    #expect((200..<300).contains(status) || status == 404, "root \(method) \(path): \(status)")
                }
                // The stream starts (200) and runs until curl's time limit.
                let stream = try await lab.run(
                    a.command(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1", "--unix-socket",
                        socket, "http://vxrouter/v1/capture/stream?points=inner"]), timeout: .seconds(10), check: false)
                #expect(stream.stdout == "200", "\(stream.summary)")
            }
        }

        @Test("control.group members may change things", .routerBinary, .timeLimit(.minutes(3)))
        func groupMemberIsAllowed() async throws {
            try await withLab("privg") { lab in
                let directory = "/run/vxt-\(getpid())-privg-\(lab.id)"
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let (a, _, socket) = try await startRouter(lab, socketDirectory: directory, control: ", group: nogroup")
                // nobody's primary group is nogroup: the socket opens and the change is allowed.
                let status = try await curl(
                    a, lab, as: "nobody", socket: socket, "POST", "/v1/networks/42/flood", body: #"{"remote": "198.18.0.66"}"#)
                #expect(status == 201, "member POST flood: \(status)")
            }
        }
    }
}
