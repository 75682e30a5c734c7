import Foundation
import Glibc
import Testing
@testable import VXPlatform

/// sd_notify readiness against a fake $NOTIFY_SOCKET: a datagram socket this test binds, at a path
/// and under an abstract name, as systemd offers both.
@Suite("systemd readiness (sd_notify)")
struct ServiceNotifyTests {
    /// An AF_UNIX datagram socket bound to `name` (a path, or '@' + an abstract name).
    final class FakeSystemd {
        let fd: Int32
        let name: String

        init(_ name: String) throws {
            self.name = name
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            try #require(fd >= 0)
            var (address, length) = try #require(ServiceNotify.notifyAddress(name))
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 }
            }
            try #require(bound, "bind \(name): \(String(cString: strerror(errno)))")
        }

        deinit {
            close(fd)
            if name.hasPrefix("/") { unlink(name) }
        }

        /// The next message, waiting up to a second.
        func message() -> String? {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 1000) == 1 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
        }
    }

    @Test("READY=1 with a status and the main pid reaches a socket at a path")
    func readyAtPath() throws {
        let path = NSTemporaryDirectory() + "vxt-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let systemd = try FakeSystemd(path)
        try ServiceNotify.send("READY=1\nSTATUS=forwarding", environment: ["NOTIFY_SOCKET": path])
        #expect(systemd.message() == "READY=1\nSTATUS=forwarding")
    }

    @Test("an abstract socket name ('@…') is reached too")
    func readyAtAbstractName() throws {
        let name = "@vxt-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let systemd = try FakeSystemd(name)
        try ServiceNotify.send("STOPPING=1", environment: ["NOTIFY_SOCKET": name])
        #expect(systemd.message() == "STOPPING=1")
    }

    @Test("no NOTIFY_SOCKET: nothing is sent and nothing fails")
    func unsetIsANoOp() throws {
        try ServiceNotify.send("READY=1", environment: [:])
        try ServiceNotify.send("READY=1", environment: ["NOTIFY_SOCKET": ""])
    }

    @Test("a NOTIFY_SOCKET that is neither a path nor an abstract name is an error, not a crash")
    func badTargets() {
        #expect(ServiceNotify.notifyAddress("relative/path") == nil)
        #expect(ServiceNotify.notifyAddress("/" + String(repeating: "x", count: 200)) == nil)
        #expect(throws: SystemError.self) { try ServiceNotify.send("READY=1", environment: ["NOTIFY_SOCKET": "nope"]) }
        // Nobody listening at a path: the send fails with the call's name, the router logs it and goes on.
        #expect(throws: SystemError.self) {
            try ServiceNotify.send("READY=1", environment: ["NOTIFY_SOCKET": "/nonexistent/vxt-notify.sock"])
        }
    }
}
