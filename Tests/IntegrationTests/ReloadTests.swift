// Live reload end to end (README "Running it in production"): two vxrouter hosts; a checked TCP
// transfer on VNI 42 runs across every reload while VNI 43 is added (then pinged across), VNI 44
// removed (its TAP gone), a flood entry and a static entry changed. Host a reloads on SIGHUP, host
// b through `vxrouter reload`. Then a config that does not validate and a change that cannot be
// made live are refused by both paths, leaving the running config, tables and TAPs as they were.
import Foundation
import LabSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension EndToEnd {
    @Suite("Live reload between two vxrouter hosts")
    struct Reload {
        @Test("reload adds and removes networks, changes flood and static entries; refusals change nothing",
            .routerBinary, .timeLimit(.minutes(5)))
        func reloadKeepsTrafficFlowing() async throws {
            try await withLab("rld") { lab in
                let (a, b) = try await lab.twoHosts()
                let tap = { (vni: Int, host: Host) in lab.interfaceName("t\(vni)\(host.name)") }
                // The static entry points at a VTEP that does not exist: only the tables see it.
                func config(_ host: Host, peer: Host, octet: Int, vnis: [Int], ghost: String, staticRemote: String, port: Int = 4789)
                    -> String
                {
                    var text = "underlay: { local: \(host.underlayAddress), port: \(port) }\nworkers: 2\nnetworks:\n"
                    for vni in vnis {
                        text += """
                              - vni: \(vni)
                                tap: \(tap(vni, host))
                                address: 198.19.\(vni).\(octet)/24
                                flood: [\(peer.underlayAddress)\(vni == 42 ? ", \(ghost)" : "")]

                            """
                        if vni == 42 {
                            text += "    fdb:\n      - { mac: \"02:00:00:00:42:99\", remote: \(staticRemote) }\n"
                        }
                    }
                    return text + LabEnvironment.controlYAML
                }
                let before = { (host: Host, peer: Host, octet: Int) in
                    config(host, peer: peer, octet: octet, vnis: [42, 44], ghost: "198.18.77.7", staticRemote: "198.18.99.1")
                }
                let after = { (host: Host, peer: Host, octet: Int) in
                    config(host, peer: peer, octet: octet, vnis: [42, 43], ghost: "198.18.77.8", staticRemote: "198.18.99.2")
                }
                let routerA = try await lab.startRouter(on: a, config: before(a, b, 1), taps: [tap(42, a), tap(44, a)])
                let routerB = try await lab.startRouter(on: b, config: before(b, a, 2), taps: [tap(42, b), tap(44, b)])
                // The file each router was started with (Lab.startRouter writes it there).
                let path = { (host: Host) in lab.logPath("vxrouter-\(host.name).yaml") }
                try await a.ping("198.19.42.2")
                try await a.ping("198.19.44.2")

                // A transfer long enough to span the reloads: a's VNI 42 TAP sends at 24 Mbit/s.
                try await a.run("tc", "qdisc", "add", "dev", tap(42, a), "root", "tbf", "rate", "24mbit", "burst", "256kb",
                    "latency", "500ms")
                async let transfer = lab.tcpTransfer(from: a, to: b, address: "198.19.42.2", bytes: 30_000_000, seed: 42)
                await nap(milliseconds: 1500)

                // a: SIGHUP.
                try after(a, b, 1).write(toFile: path(a), atomically: true, encoding: .utf8)
                let logStart = routerA.log.utf8.count
                routerA.child.signal(SIGHUP)
                var reloaded = false
                for _ in 0..<100 where !reloaded {
                    reloaded = String(decoding: routerA.log.utf8.dropFirst(logStart), as: UTF8.self).contains("reloaded")
                    if !reloaded { await nap(milliseconds: 50) }
                }
                #expect(reloaded, "no `reloaded` line after SIGHUP: \(routerA.logTail())")
                // b: `vxrouter reload`, which lists what changed.
                try after(b, a, 2).write(toFile: path(b), atomically: true, encoding: .utf8)
                let answer = try await b.vxrouterJSON(["reload"])
                let kinds = Set(((answer["changes"] as? [[String: Any]]) ?? []).compactMap { change -> String? in
                    guard let kind = change["kind"] as? String else { return nil }
                    return "\(kind) \(change["vni"].map { "\($0)" } ?? "-")"
                })
                #expect(
                    kinds == ["network_added 43", "network_removed 44", "flood_added 42", "flood_removed 42", "static_changed 42"],
                    "\(answer)")

                for (host, router) in [(a, routerA), (b, routerB)] {
                    // VNI 44's TAP goes once every worker let go of it; VNI 43's is there.
                    var gone = false
                    for _ in 0..<50 where !gone {
                        gone = !(try await host.deviceExists(tap(44, host)))
                        if !gone { await nap(milliseconds: 100) }
                    }
                    #expect(gone, "\(tap(44, host)) still exists after the reload: \(router.logTail())")
                    let up = try await host.deviceExists(tap(43, host)) ? try await host.isUp(tap(43, host)) : false
                    #expect(up, "\(tap(43, host)) missing or down after the reload")
                    let flood = try await host.vxrouterJSON(["flood", "list", "--vni", "42"])
                    let remotes = Set(flood["remotes"] as? [String] ?? [])
                    #expect(remotes == [host === a ? b.underlayAddress : a.underlayAddress, "198.18.77.8"], "\(flood)")
                    let fdb = try await host.vxrouter(["fdb", "list", "--vni", "42"])
                    #expect(fdb.stdout.contains("02:00:00:00:42:99") && fdb.stdout.contains("198.18.99.2"), "\(fdb.stdout)")
                }
                try await a.ping("198.19.43.2")
                try await b.ping("198.19.43.1")

                // Refusals, by both paths, while the transfer still runs.
                // The running config (networks, flood lists, static entries) as the router reports it.
                let configBefore = try await a.control("GET", "/v1/config").body
                let floodBefore = try await b.vxrouter(["flood", "list"]).stdout
                let configBeforeB = try await b.control("GET", "/v1/config").body
                // 1. A config that does not validate (a VNI out of range).
                try after(b, a, 2).replacingOccurrences(of: "vni: 43", with: "vni: 99999999")
                    .write(toFile: path(b), atomically: true, encoding: .utf8)
                let invalid = try await b.vxrouter(["reload"], check: false)
                #expect(!invalid.succeeded && invalid.stderr.contains("nothing changed"), "\(invalid.summary)")
                // 2. A change that cannot be made live: the underlay port. By `vxrouter reload` …
                try after(b, a, 2).replacingOccurrences(of: "port: 4789", with: "port: 4790")
                    .write(toFile: path(b), atomically: true, encoding: .utf8)
                let refused = try await b.vxrouter(["reload"], check: false)
                #expect(!refused.succeeded && refused.stderr.contains("underlay.port"), "\(refused.summary)")
                // … and by SIGHUP: the log names the key.
                try config(a, peer: b, octet: 1, vnis: [42, 43], ghost: "198.18.77.8", staticRemote: "198.18.99.2", port: 4790)
                    .write(toFile: path(a), atomically: true, encoding: .utf8)
                let refusalStart = routerA.log.utf8.count
                routerA.child.signal(SIGHUP)
                var logged = false
                for _ in 0..<100 where !logged {
                    logged = String(decoding: routerA.log.utf8.dropFirst(refusalStart), as: UTF8.self)
                        .contains("reload refused: underlay.port")
                    if !logged { await nap(milliseconds: 50) }
                }
                #expect(logged, "no refusal naming underlay.port in the log: \(routerA.logTail())")
                #expect(try await a.control("GET", "/v1/config").body == configBefore)
                #expect(try await b.vxrouter(["flood", "list"]).stdout == floodBefore)
                #expect(try await b.control("GET", "/v1/config").body == configBeforeB)
                for host in [a, b] {
                    let present = try await host.deviceExists(tap(43, host))
                    let absent = try await !host.deviceExists(tap(44, host))
                    #expect(present && absent, "the TAPs changed after a refused reload")
                }
                try await a.ping("198.19.43.2")

                let verdict = try await transfer
                #expect(!verdict.isEmpty)
                let stats = try await routerB.stats()
                #expect(try stats.counter("tunnel_rx_packets", vni: 42) > 20_000, "\(stats)")
                #expect(try stats.counter("tunnel_rx_packets", vni: 43) > 0, "\(stats)")
                try await routerA.stop()
                try await routerB.stop()
            }
        }
    }
}
