// The control thread's side of a learned path MTU (README "PMTU"): reads the kernel's path MTU
// toward a remote VTEP when a worker's send to it was refused as too big, and again every
// `recheckSeconds` for remotes with a learned one, and publishes the result as the remote's frame
// limit in the `RemoteTable` (the workers' only view of it).
//
// Why the control thread: the read is a syscall pair (connect, getsockopt) a worker should not
// spend its loop on, and the control thread is the remote table's one writer already. A learned
// MTU never exceeds the configured underlay MTU (`PathMTU.learned`), and is forgotten — the
// remote back on the configured MTU — at the first recheck after the kernel's cached path MTU
// expires (net.ipv4.route.mtu_expires / net.ipv6.route.mtu_expires, 600 s by default), so within
// `recheckSeconds` of the kernel. If the path is still narrow, the next too-big packet brings the
// router's ICMP, the kernel learns it again, and so does the router: the kernel's own cycle.
import Logging
import VXDatapath
import VXPlatform
import VXWire

final class PathMTUWatch {
    static let recheckSeconds: UInt32 = 10
    private let probe: PathMTUProbe
    private let remotes: RemoteTable
    private let configured: Int
    private let family: IPAddress.Family
    private let logger: Logger
    /// Learned path MTUs by remote (absent: none). Control thread only.
    private var learned: [RemoteIndex: Int] = [:]
    private var lastRecheck: UInt32
    /// Probe failures already logged (one warning per remote, not one per refusal).
    private var warned: Set<RemoteIndex> = []

    init(probe: PathMTUProbe, remotes: RemoteTable, configured: Int, family: IPAddress.Family, logger: Logger, now: UInt32) {
        self.probe = probe
        self.remotes = remotes
        self.configured = configured
        self.family = family
        self.logger = logger
        lastRecheck = now
    }

    /// Called on every pass of the control loop: cheap (one atomic load) when nothing was refused
    /// and no recheck is due.
    func poll(now: UInt32) {
        remotes.takeProbeRequests { read($0) }
        guard now &- lastRecheck >= Self.recheckSeconds else { return }
        lastRecheck = now
        for index in Array(learned.keys) { read(index) }
    }

    private func read(_ index: RemoteIndex) {
        let address = remotes.address(index)
        let kernel: Int
        do { kernel = try probe.pathMTU(to: address) } catch {
            if warned.insert(index).inserted {
                logger.warning("could not read the path MTU", metadata: ["remote": "\(address)", "error": "\(error)"])
            }
            return
        }
        let learnedNow = PathMTU.learned(kernel: kernel, configured: configured, family: family)
        let before = learned[index]
        guard learnedNow != before else { return }
        learned[index] = learnedNow
        remotes.setFrameLimit(learnedNow.map { PathMTU.frameLimit(pathMTU: $0, family: family) }, of: index)
        if let learnedNow {
            logger.info(
                "path MTU learned: frames that do not fit are answered with ICMP",
                metadata: [
                    "remote": "\(address)", "path_mtu": "\(learnedNow)",
                    "inner_mtu": "\(PathMTU.innerMTU(pathMTU: learnedNow, family: family))", "underlay_mtu": "\(configured)",
                ])
        } else {
            logger.info(
                "path MTU forgotten (the kernel's cache expired): back to the underlay MTU",
                metadata: ["remote": "\(address)", "underlay_mtu": "\(configured)"])
        }
    }
}

extension Router {
    /// The watch for this router's underlay, or nil (logged) when its probe socket cannot open:
    /// the router then works as before, against the configured underlay MTU only.
    func openPathMTUWatch(now: UInt32) -> PathMTUWatch? {
        do {
            let probe = try PathMTUProbe(local: config.underlay.local, port: config.underlay.port)
            return PathMTUWatch(
                probe: probe, remotes: remotes, configured: underlayMTU, family: config.underlay.local.family,
                logger: logger, now: now)
        } catch {
            logger.warning("path MTU learning is off: \(error)")
            return nil
        }
    }

    /// What `/v1/remotes` shows as a remote's path MTU: the learned one, or the configured one.
    func pathMTU(of index: RemoteIndex) -> (mtu: Int, learned: Bool) {
        guard let limit = remotes.frameLimit(of: index) else { return (underlayMTU, false) }
        return (limit + VXLANHeader.overhead(for: config.underlay.local.family), true)
    }
}
