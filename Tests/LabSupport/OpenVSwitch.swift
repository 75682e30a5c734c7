// Open vSwitch's userspace datapath (`datapath_type=netdev`, no kernel module) as a lab VTEP, laid
// out as Tools/bench/bench.py does it:
//
// 1. Its own ovsdb-server and ovs-vswitchd inside one lab host, state (database, sockets, pid
//    files, logs) in a directory of the lab's logs. Both run in the foreground as lab children,
//    so the lab's cleanup stops them (SIGTERM, then SIGKILL) whatever happened; being inside the
//    host's namespace, the namespace sweep would catch them too.
// 2. `br-phy` takes over the underlay veth and its address (OVS's userspace tunnel code routes
//    and ARPs for the remote VTEP through its own ports); `br-int` holds the VXLAN port and the
//    overlay address.
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

package final class OpenVSwitch: @unchecked Sendable {
    package let host: Host
    /// Where the database, sockets, pid files and logs live.
    package let stateDirectory: String
    package let databaseServer: ChildProcess
    package let switchDaemon: ChildProcess

    /// Both daemons' pids (for a test that proves they are gone afterwards).
    package var pids: [Int32] { [switchDaemon.pid, databaseServer.pid] }

    static let schema = "/usr/share/openvswitch/vswitch.ovsschema"

    /// Whether Open vSwitch is installed (Debian `openvswitch-switch`).
    package static var installed: Bool {
        ["ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovsdb-tool"].allSatisfy {
            FileManager.default.isExecutableFile(atPath: LabEnvironment.tool($0))
        } && FileManager.default.fileExists(atPath: schema)
    }

    private var databaseSocket: String { "unix:\(stateDirectory)/db.sock" }

    /// `env OVS_*DIR=STATE` so nothing of this instance touches the system's /var/run/openvswitch.
    private static func environment(_ state: String) -> [String] {
        [
            LabEnvironment.tool("env"), "OVS_RUNDIR=\(state)", "OVS_DBDIR=\(state)", "OVS_LOGDIR=\(state)",
            "OVS_SYSCONFDIR=\(state)",
        ]
    }

    /// Creates the database and starts both daemons in `host`; returns once ovs-vswitchd answers.
    package init(on host: Host) async throws {
        guard Self.installed else {
            throw LabFailure("Open vSwitch is not installed (apt-get install openvswitch-switch)")
        }
        let lab = host.lab
        self.host = host
        stateDirectory = lab.logPath("ovs-\(host.name)")
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let state = stateDirectory
        let environment = Self.environment(state)
        try await lab.run(environment + [LabEnvironment.tool("ovsdb-tool"), "create", "\(state)/conf.db", Self.schema])

        func daemon(_ name: String, _ arguments: [String]) throws -> ChildProcess {
            try lab.spawn(
                host.command(
                    environment + [LabEnvironment.tool(name)] + arguments + [
                        "--pidfile=\(state)/\(name).pid", "--unixctl=\(state)/\(name).ctl",
                        "--log-file=\(state)/\(name).log", "--no-chdir",
                    ]), name: name)
        }
        databaseServer = try daemon("ovsdb-server", ["\(state)/conf.db", "--remote=punix:\(state)/db.sock"])
        try await Self.waitForSocket("\(state)/db.sock", of: databaseServer)
        try await lab.run(
            environment + [LabEnvironment.tool("ovs-vsctl"), "--db=unix:\(state)/db.sock", "--no-wait", "init"],
            timeout: .seconds(30))
        switchDaemon = try daemon("ovs-vswitchd", ["unix:\(state)/db.sock"])
        try await Self.waitForSocket("\(state)/ovs-vswitchd.ctl", of: switchDaemon)
    }

    private static func waitForSocket(_ path: String, of daemon: ChildProcess) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !FileManager.default.fileExists(atPath: path) {
            guard daemon.isRunning else {
                throw LabFailure("`\(daemon.commandLine)` exited (\(daemon.exitDescription)):\n\(daemon.stderr.suffix(2000))")
            }
            guard ContinuousClock.now < deadline else {
                throw LabFailure("`\(daemon.commandLine)` made no \(path) within 30 s:\n\(daemon.stderr.suffix(2000))")
            }
            await nap(milliseconds: 50)
        }
    }

    /// `ovs-vsctl ARGS` against this instance (waiting for ovs-vswitchd to apply the change).
    @discardableResult
    package func vsctl(_ arguments: String...) async throws -> CommandResult {
        try await host.lab.run(
            Self.environment(stateDirectory) + [
                LabEnvironment.tool("ovs-vsctl"), "--db=\(databaseSocket)", "--timeout=30",
            ] + arguments, timeout: .seconds(45))
    }

    /// `ovs-appctl -t ovs-vswitchd COMMAND` against this instance.
    @discardableResult
    package func appctl(_ arguments: String...) async throws -> CommandResult {
        try await host.lab.run(
            Self.environment(stateDirectory) + [
                LabEnvironment.tool("ovs-appctl"), "-t", "\(stateDirectory)/ovs-vswitchd.ctl",
            ] + arguments, timeout: .seconds(30))
    }

    /// The bench's layout: `br-phy` owns the host's underlay veth and address, `br-int` carries
    /// `overlayAddress` (MTU `overlayMTU`) and a VXLAN port to `remote` with `key=vni`.
    package func addVXLANBridges(vni: Int, remote: String, port: Int = 4789, overlayAddress: String, overlayMTU: Int)
        async throws
    {
        let underlay = host.underlayDevice
        let local = host.underlayAddress
        let mac = try await host.macAddress(of: underlay)
        let prefix = try await host.ip("-4", "-o", "addr", "show", "dev", underlay).stdout
            .split(separator: " ").first { $0.hasPrefix(local + "/") }.map(String.init) ?? "\(local)/24"
        try await vsctl(
            "add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev", "other_config:hwaddr=\(mac)")
        try await vsctl("add-port", "br-phy", underlay)
        try await host.ip("addr", "flush", "dev", underlay)
        try await host.ip("addr", "add", prefix, "dev", "br-phy")
        try await host.ip("link", "set", "br-phy", "up")
        try await vsctl("add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev")
        try await vsctl(
            "add-port", "br-int", "vx0", "--", "set", "interface", "vx0", "type=vxlan", "options:remote_ip=\(remote)",
            "options:key=\(vni)", "options:dst_port=\(port)")
        try await host.ip("link", "set", "br-int", "mtu", String(overlayMTU), "up")
        try await host.ip("addr", "add", overlayAddress, "dev", "br-int")
    }

    /// Stops both daemons (ovs-vswitchd first); the lab's cleanup would, this says so in a test.
    package func stop() async {
        await switchDaemon.terminate()
        await databaseServer.terminate()
    }
}
