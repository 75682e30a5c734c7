// The probe of `vxcluster-sim --probes N --router URL`: how long a change in etcd takes to reach
// a real router's tables. The router reports every MAC move it programs on its event stream
// (`event: mac_moved`, README "Cluster mode"); the probe moves one simulated MAC at a time and
// times the put until that event, into an HdrHistogram.
import AsyncHTTPClient
import Foundation
import Histogram
import NIOCore
import Synchronization
import VXCluster
import VXWire

final class MoveWatcher: Sendable {
    /// MAC → when its move was written, until the router reports it.
    private let pending = Mutex<[String: ContinuousClock.Instant]>([:])
    private let seen = Mutex<[String: Duration]>([:])
    private let connected = Atomic<Bool>(false)
    let http = HTTPClient(eventLoopGroupProvider: .singleton)

    var isConnected: Bool { connected.load(ordering: .relaxed) }

    func expect(_ mac: String, at start: ContinuousClock.Instant) { pending.withLock { $0[mac] = start } }

    func latency(of mac: String) -> Duration? { seen.withLock { $0.removeValue(forKey: mac) } }

    /// Reads the router's event stream until cancelled; reconnects when it drops.
    func follow(router: String, token: String?) async {
        while !Task.isCancelled {
            do {
                var request = HTTPClientRequest(url: router + "/v1/events")
                if let token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
                let response = try await http.execute(request, timeout: .hours(1))
                guard response.status == .ok else { throw EtcdError.badResponse("events: HTTP \(response.status.code)") }
                connected.store(true, ordering: .relaxed)
                var buffer: [UInt8] = []
                var event = ""
                for try await chunk in response.body {
                    buffer += chunk.readableBytesView
                    while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = String(decoding: buffer[..<newline], as: UTF8.self)
                        buffer.removeSubrange(...newline)
                        if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
                        if line.hasPrefix("data: "), event == "mac_moved" { noteMove(line.dropFirst(6)) }
                        if line.isEmpty { event = "" }
                    }
                }
            } catch {
                connected.store(false, ordering: .relaxed)
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    private func noteMove(_ json: Substring) {
        struct Moved: Decodable { let mac: String }
        guard let moved = try? JSONDecoder().decode(Moved.self, from: Data(json.utf8)) else { return }
        let now = ContinuousClock.now
        guard let start = pending.withLock({ $0.removeValue(forKey: moved.mac) }) else { return }
        seen.withLock { $0[moved.mac] = now - start }
    }
}

/// Moves `count` MACs one at a time and returns the latencies (µs) from the put to the router's
/// event, plus the probes that timed out.
func probeLatency(world: inout SimWorld, etcd: EtcdClient, watcher: MoveWatcher, count: Int) async throws
    -> (histogram: Histogram<UInt64>, lost: Int)
{
    var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var lost = 0
    for _ in 0..<count {
        let start = ContinuousClock.now
        guard let mac = try await world.moveRandomMAC(etcd: etcd, before: { mac in watcher.expect(mac, at: start) }) else { continue }
        var latency: Duration?
        let deadline = ContinuousClock.now + .seconds(5)
        while latency == nil && ContinuousClock.now < deadline {
            latency = watcher.latency(of: mac)
            if latency == nil { try await Task.sleep(for: .microseconds(200)) }
        }
        if let latency {
            let (seconds, attoseconds) = latency.components
            histogram.record(UInt64(seconds) * 1_000_000 + UInt64(attoseconds / 1_000_000_000_000))
        } else {
            lost += 1
        }
    }
    return (histogram, lost)
}
