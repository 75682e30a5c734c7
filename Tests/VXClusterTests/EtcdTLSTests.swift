// TLS to etcd: an etcd with self-signed certificates (a CA made here with openssl) that requires
// client certificates. The client with the CA and a client certificate works — a cluster client
// publishes through it — while one without the client certificate, or without the CA, is refused.
import Foundation
import Glibc
import Logging
import Testing
import VXWire
@testable import VXCluster

/// A CA, a server certificate for 127.0.0.1 and a client certificate, in a temporary directory.
struct TestPKI {
    let directory: URL
    var ca: String { directory.appendingPathComponent("ca.pem").path }
    var serverCert: String { directory.appendingPathComponent("server.pem").path }
    var serverKey: String { directory.appendingPathComponent("server.key").path }
    var clientCert: String { directory.appendingPathComponent("client.pem").path }
    var clientKey: String { directory.appendingPathComponent("client.key").path }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vxc-pki-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let d = directory.path
        let script = """
            set -e
            cd \(d)
            key() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null; }
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=vxt-etcd-ca 2>/dev/null
            key server 127.0.0.1
            printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null
            key client vxrouter
            printf 'extendedKeyUsage=clientAuth\\n' > client.ext
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext 2>/dev/null
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw EtcdError.unreachable("openssl could not make the test PKI") }
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// etcd serving its clients over TLS only, requiring a client certificate signed by the CA.
final class TLSEtcd: @unchecked Sendable {
    let clientURL: String
    private let process = Process()
    private let dataDirectory: URL

    init(pki: TestPKI) async throws {
        let clientPort = try EtcdProcess.freePort()
        let peerURL = "http://127.0.0.1:\(try EtcdProcess.freePort())"
        clientURL = "https://127.0.0.1:\(clientPort)"
        dataDirectory = pki.directory.appendingPathComponent("etcd-data")
        process.executableURL = URL(fileURLWithPath: try EtcdProcess.etcdPath())
        process.arguments = [
            "--name", "tls", "--data-dir", dataDirectory.path,
            "--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
            "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL, "--initial-cluster", "tls=\(peerURL)",
            "--cert-file", pki.serverCert, "--key-file", pki.serverKey, "--client-cert-auth",
            "--trusted-ca-file", pki.ca,
        ]
        let log = FileHandle(forWritingAtPath: "/dev/null")
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let client = EtcdClient(
            endpoints: [clientURL], callTimeout: .seconds(1),
            tls: EtcdTLS(caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey))
        defer { Task { await client.shutdown() } }
        for _ in 0..<300 {
            if (try? await client.range("/probe", prefix: false)) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        stop()
        throw EtcdError.unreachable("the TLS test etcd did not start at \(clientURL)")
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

@Suite("etcd over TLS with client certificates", .serialized)
struct EtcdTLSTests {
    @Test(.timeLimit(.minutes(2)))
    func clientCertificatesAreUsedAndRequired() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let etcd = try await TLSEtcd(pki: pki)
        defer { etcd.stop() }

        let full = EtcdTLS(caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey)
        let good = EtcdClient(endpoints: [etcd.clientURL], callTimeout: .seconds(2), tls: full)
        _ = try await good.put("/tls/k", value: Array("v".utf8))
        #expect(try await good.range("/tls/k", prefix: false).keyValues.map(\.value) == [Array("v".utf8)])

        // Without a client certificate etcd refuses the handshake; without the CA the client
        // refuses etcd's certificate. Neither reads anything.
        let noCertificate = EtcdClient(endpoints: [etcd.clientURL], callTimeout: .seconds(2), tls: EtcdTLS(caFile: pki.ca))
        await #expect(throws: EtcdError.self) { _ = try await noCertificate.range("/tls/k", prefix: false) }
        let noCA = EtcdClient(
            endpoints: [etcd.clientURL], callTimeout: .seconds(2),
            tls: EtcdTLS(certFile: pki.clientCert, keyFile: pki.clientKey))
        await #expect(throws: EtcdError.self) { _ = try await noCA.range("/tls/k", prefix: false) }
        for client in [noCertificate, noCA] { await client.shutdown() }

        // A cluster client over TLS: it joins (its host record is there) and watches.
        let vni = VNI(7)!
        var settings = ClusterSettings(
            endpoints: [etcd.clientURL], overlay: "tls", hostID: "a", address: IPAddress("198.18.0.1")!, port: 4789,
            servedVNIs: [vni], leaseTTL: 5)
        settings.tls = full
        settings.publishInterval = .milliseconds(200)
        let tables = FakeTables(stations: [vni: [MACAddress("02:00:00:00:0a:01")!: [IPAddress("198.19.0.1")!]]])
        let client = ClusterClient(settings: settings, tables: tables, logger: Logger(label: "tls"))
        let run = Task { await client.run() }
        defer { run.cancel() }
        #expect(try await eventually {
            let listing = try await good.range(ClusterKeys(overlay: "tls").prefix)
            return listing.keyValues.contains { $0.key.hasSuffix("/mac/02:00:00:00:0a:01/a") }
        })
        // Another host appears (written directly): the client's watch over TLS programs it.
        let record = HostRecord(address: "198.18.0.2", port: 4789, incarnation: "1")
        let keys = ClusterKeys(overlay: "tls")
        _ = try await good.put(keys.host("b"), value: Array(try JSONEncoder().encode(record)))
        _ = try await good.put(keys.flood(vni, "b"), value: Array(try JSONEncoder().encode(FloodRecord(incarnation: "1"))))
        #expect(try await eventually { tables.flood[vni] == [IPAddress("198.18.0.2")!] })
        #expect(await client.status().connected)
        await good.shutdown()
    }
}
