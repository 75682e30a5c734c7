import Glibc
import Testing
import VXPlatform
import VXWire

/// What the kernel drops before the router reads it, as the router reports it: a worker socket's
/// drop count (SO_MEMINFO) and an interface's transmit drops (a TAP's full queue).
@Suite("Kernel drops the router reports")
struct KernelDropsTests {
    @Test func aFullReceiveBufferIsCountedAtTheWorkerSocket() throws {
        let link = try UDPLink(
            local: Endpoint(address: IPAddress(v4: 0x7F00_0001), port: 0), batchSize: 8, sendCapacity: 8)
        defer { link.close() }
        #expect(link.kernelDrops() == 0)
        // The smallest receive buffer the kernel allows, then far more than it holds, unread.
        var small: Int32 = 1
        setsockopt(link.receiveFD.rawValue, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(link.receiveFD.rawValue, $0, &length) }
        }
        try #require(named == 0)
        let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(sender >= 0)
        defer { close(sender) }
        let payload = [UInt8](repeating: 0x5A, count: 1000)
        for _ in 0..<200 {
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { to in
                    payload.withUnsafeBytes { sendto(sender, $0.baseAddress, $0.count, 0, to, length) }
                }
            }
        }
        let drops = try #require(link.kernelDrops())
        #expect(drops > 0 && drops < 200, "200 datagrams into a minimal buffer: \(drops) dropped")
    }

    @Test func interfaceTransmitDrops() {
        #expect(Interfaces.transmitDrops("lo") != nil)
        #expect(Interfaces.transmitDrops("vxt-no-such-if") == nil)
        #expect(Interfaces.transmitDrops("../lo") == nil)
    }
}
