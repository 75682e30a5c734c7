import VXWire

/// The arithmetic of a learned path MTU (README "PMTU"). One VXLAN packet carries an inner
/// Ethernet frame behind outer IP + UDP + VXLAN (36 bytes over IPv4, 56 over IPv6), so a path of
/// `mtu` bytes carries inner frames of `mtu − 36/56` bytes and an inner IP MTU of `mtu − 50/70`
/// (one byte less per VLAN tag, which `PacketTooBig` takes off when it answers).
public enum PathMTU {
    /// The largest inner Ethernet frame (header included, no FCS) a path of `mtu` bytes carries.
    public static func frameLimit(pathMTU mtu: Int, family: IPAddress.Family) -> Int {
        mtu - VXLANHeader.overhead(for: family)
    }

    /// The inner IP MTU an untagged frame gets over a path of `mtu` bytes.
    public static func innerMTU(pathMTU mtu: Int, family: IPAddress.Family) -> Int {
        frameLimit(pathMTU: mtu, family: family) - EthernetFrame.headerSize
    }

    /// The smallest path the router works with: one that still carries an inner IPv4 packet of
    /// 68 bytes (RFC 791), as start-up demands of the configured underlay MTU.
    public static func minimum(family: IPAddress.Family) -> Int {
        VXLANHeader.overhead(for: family) + EthernetFrame.headerSize + 68
    }

    /// What the router keeps of the kernel's path MTU toward a remote: nil (nothing learned: the
    /// configured underlay MTU holds) when the kernel's is at or above `configured` — a learned
    /// MTU never grows past the configured one — else the kernel's, raised to `minimum` if a
    /// kernel ever reported less (Linux keeps IPv4 paths at ≥ 552, `min_pmtu`, IPv6 at ≥ 1280).
    public static func learned(kernel: Int, configured: Int, family: IPAddress.Family) -> Int? {
        guard kernel < configured else { return nil }
        return min(max(kernel, minimum(family: family)), configured)
    }
}
