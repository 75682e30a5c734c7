import CSendFault
import Glibc
import Testing
@testable import VXDatapath
import VXPlatform
import VXWire

/// A UDP GSO send that fails with EIO (no checksum offload on the way out) is sent again one
/// datagram at a time, and that pool socket stops trying GSO. The kernel here never returns EIO
/// on its own, so CSendFault makes GSO sends fail on this test's thread; the datagrams go over
/// loopback to a socket the test owns.
@Suite("UDP GSO fallback on EIO")
struct GSOFallbackTests {
    static let loopback = IPAddress(v4: 0x7F00_0001)

    /// A UDP socket on 127.0.0.1 with a port of the kernel's choosing.
    final class Receiver {
        let fd: Int32
        let endpoint: Endpoint

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            try #require(fd >= 0)
            self.fd = fd
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
            }
            try #require(bound)
            endpoint = Endpoint(address: GSOFallbackTests.loopback, port: UInt16(bigEndian: address.sin_port))
        }

        deinit { close(fd) }

        /// Every datagram that arrives within a second until `count` have.
        func receive(_ count: Int) -> [[UInt8]] {
            var datagrams: [[UInt8]] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            let deadline = ContinuousClock.now + .seconds(1)
            while datagrams.count < count, ContinuousClock.now < deadline {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n >= 0 { datagrams.append(Array(buffer[0..<n])) } else { usleep(1000) }
            }
            return datagrams
        }
    }

    /// Sends `count` packets of `size` payload bytes to `destination` through `link`, all from
    /// `sourcePort` (so one pool socket, one GSO run); returns what each packet carried.
    func send(
        _ link: UDPLink, count: Int, size: Int, from sourcePort: UInt16, to destination: Endpoint, seed: UInt8
    ) -> (payloads: [[UInt8]], statuses: [SendStatus]) {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: count * (UDPHeader.size + size), alignment: 8)
        defer { buffer.deallocate() }
        var list = PacketList(capacity: count)
        var payloads: [[UInt8]] = []
        for k in 0..<count {
            let packet = buffer + k * (UDPHeader.size + size)
            UDPHeader.encode(sourcePort: sourcePort, destinationPort: destination.port, payloadLength: size, to: packet)
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ k &+ Int(seed)) }
            payload.withUnsafeBytes { (packet + UDPHeader.size).copyMemory(from: $0.baseAddress!, byteCount: size) }
            payloads.append(payload)
            list.append(PacketRef(bytes: packet, length: UDPHeader.size + size, network: 0, destination: destination))
        }
        link.send(&list)
        return (payloads, (0..<count).map { list.statuses[$0] })
    }

    /// The datagrams arrived as sent, in order (a Bool: a failure should not print kilobytes).
    func arrived(_ datagrams: [[UInt8]], as sent: [[UInt8]]) -> Bool { datagrams == sent }

    @Test func anEIOGSOSendFallsBackToOneDatagramPerSend() throws {
        let receiver = try Receiver()
        // Ports spread over a range, skipping any a parallel test holds: at least one binds.
        let pool = try #require(
            UDPSendPool(local: Self.loopback, sourcePorts: 45310...45373, listenPort: 4789, size: 8))
        defer { pool.close() }
        try #require(pool.gsoSupported, "loopback takes UDP_SEGMENT")
        let link = try UDPLink(
            local: Endpoint(address: Self.loopback, port: 0), batchSize: 8, sendCapacity: 64, pool: pool)
        defer { link.close() }
        let port = pool.ports[0]

        // Healthy: five equal datagrams leave as one GSO message.
        let before = vx_test_gso_messages()
        let first = send(link, count: 5, size: 1000, from: port, to: receiver.endpoint, seed: 1)
        #expect(vx_test_gso_messages() - before == 1)
        #expect(first.statuses == Array(repeating: .sent, count: 5))
        #expect(arrived(receiver.receive(5), as: first.payloads))
        #expect(link.gsoFallbacks.load(ordering: .relaxed) == 0)

        // EIO on the GSO message: the same packets go again one by one, nothing lost or counted failed.
        vx_test_fail_gso_sends(1)
        defer { vx_test_fail_gso_sends(0) }
        let second = send(link, count: 5, size: 1000, from: port, to: receiver.endpoint, seed: 2)
        #expect(second.statuses == Array(repeating: .sent, count: 5))
        #expect(arrived(receiver.receive(5), as: second.payloads))
        #expect(link.gsoFallbacks.load(ordering: .relaxed) == 1)

        // That socket no longer tries GSO.
        let third = vx_test_gso_messages()
        let after = send(link, count: 5, size: 1000, from: port, to: receiver.endpoint, seed: 3)
        #expect(vx_test_gso_messages() == third, "no GSO message after the fallback")
        #expect(after.statuses == Array(repeating: .sent, count: 5))
        #expect(arrived(receiver.receive(5), as: after.payloads))
    }
}
