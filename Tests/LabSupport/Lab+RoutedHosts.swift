// A routed underlay: two VTEP hosts in different subnets with a router host between them, for the
// path MTU test (a router whose second link is narrower answers too-big DF packets with ICMP
// "fragmentation needed", as Linux routers do).
extension Lab {
    /// Hosts `a` (198.18.1.1/24) and `b` (198.18.2.1/24) routed through `r` (198.18.1.2,
    /// 198.18.2.2; ip_forward=1). The a–r link has MTU 1500; the r–b link `narrowMTU` at both
    /// ends. The underlay is reachable end to end (one ping) before this returns.
    package func routedHosts(narrowMTU: Int) async throws -> (a: Host, router: Host, b: Host) {
        let a = try await addHost("a")
        let r = try await addHost("r")
        let b = try await addHost("b")
        let (aEnd, rWide) = try await link(a, r)
        let (rNarrow, bEnd) = try await link(r, b, mtu: narrowMTU)
        try await a.setUnderlay(device: aEnd, address: "198.18.1.1", prefixLength: 24)
        try await b.setUnderlay(device: bEnd, address: "198.18.2.1", prefixLength: 24)
        try await r.ip("addr", "add", "198.18.1.2/24", "dev", rWide)
        try await r.ip("addr", "add", "198.18.2.2/24", "dev", rNarrow)
        try await r.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        try await a.ip("route", "add", "198.18.2.0/24", "via", "198.18.1.2")
        try await b.ip("route", "add", "198.18.1.0/24", "via", "198.18.2.2")
        try await a.ping(b.underlayAddress, count: 1)
        return (a, r, b)
    }
}
