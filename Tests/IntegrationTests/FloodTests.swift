// Scenario 3: three vxrouter hosts on one L2 underlay (a bridge in a fourth namespace), each
// flooding to the other two. A broadcast must reach every other host exactly once: flooded by
// the sender's router by head-end replication, never flooded again by a receiver.
import LabSupport
import Testing

extension EndToEnd {
    @Suite("Three vxrouter hosts, head-end replication")
    struct Flooding {
        @Test(
            "a broadcast from each host reaches each other host exactly once", .routerBinary,
            .timeLimit(.minutes(3)))
        func broadcastReachesEachPeerOnce() async throws {
            try await withLab("flood") { lab in
                let hosts = try await lab.hostsOnSwitch(count: 3)
                var routers: [RouterProcess] = []
                for (i, host) in hosts.enumerated() {
                    let others = hosts.filter { $0 !== host }.map(\.underlayAddress)
                    routers.append(
                        try await lab.startRouter(
                            on: host, tap: lab.interfaceName("vx\(host.name)"), remotes: others,
                            address: "198.19.0.\(i + 1)/24"))
                }
                try await hosts[0].ping("198.19.0.2")
                try await hosts[0].ping("198.19.0.3")
                try await hosts[1].ping("198.19.0.3")

                for sender in hosts {
                    let receivers = hosts.filter { $0 !== sender }
                    let counts = try await lab.broadcast(
                        from: sender, to: "198.19.0.255", receivers: receivers, count: 5)
                    for count in counts {
                        #expect(
                            count.distinct == 5 && count.total == 5,
                            "\(sender.name) → \(count.host): \(count.distinct) of 5 datagrams, \(count.total) copies"
                        )
                    }
                }
                for router in routers { try await router.stop() }
            }
        }
    }
}
