// The `capture:` config section: checked in full at load time (filter compiled by libpcap, VNI
// served), so `check-config` refuses a bad one before anything starts.
import Testing
import VXCapture
import VXDatapath
import VXWire

@testable import VXConfig
@testable import VXRouter

private func config(_ capture: String) -> String {
    """
    underlay:
      local: 10.0.0.1
    networks:
      - vni: 42
        tap: vx42
    capture:
    \(capture)
    """
}

@Suite("Config: capture section")
struct CaptureConfigTests {
    @Test func fullSectionParses() throws {
        let parsed = try ConfigLoader.parse(
            yaml: config(
                """
                  directory: /srv/captures
                  file: /var/tmp/vx.pcap
                  points: [outer, drop]
                  vni: 42
                  remote: 10.0.0.2
                  filter: icmp and host 192.168.42.7
                  snaplen: 256
                  count: 1000
                  duration: 60
                  rotate_bytes: 1048576
                  rotate_files: 5
                """))
        #expect(parsed.captureDirectory == "/srv/captures")
        #expect(
            parsed.capture
                == CaptureSpec(
                    points: [.outer, .drop], vni: VNI(42), remote: IPAddress("10.0.0.2"), filter: "icmp and host 192.168.42.7",
                    snapLength: 256, count: 1000, duration: 60, file: "/var/tmp/vx.pcap", rotateBytes: 1_048_576,
                    rotateFiles: 5))
    }

    @Test func directoryAloneStartsNothing() throws {
        let parsed = try ConfigLoader.parse(yaml: config("  directory: /srv/captures"))
        #expect(parsed.capture == nil)
        #expect(parsed.captureDirectory == "/srv/captures")
        #expect(try ConfigLoader.parse(yaml: config("  {}")).capture == nil)
    }

    @Test func badInputIsRefusedWithItsKey() {
        func expectError(_ section: String, path: String, reason: String) {
            do {
                _ = try ConfigLoader.parse(yaml: config(section))
                Issue.record("\(section) parsed")
            } catch {
                #expect(error.path == path, "\(error)")
                #expect(error.reason.contains(reason), "\(error)")
            }
        }
        expectError("  file: x.pcap\n  filter: icmp and and", path: "capture.filter", reason: "syntax error")
        expectError("  file: x.pcap\n  vni: 7", path: "capture.vni", reason: "not one of the networks")
        expectError("  file: x.pcap\n  points: [sideways]", path: "capture.points[0]", reason: "not a capture point")
        expectError("  file: x.pcap\n  remote: fd00::1", path: "capture.remote", reason: "IPv6 but the underlay is IPv4")
        expectError("  file: x.pcap\n  rotate_files: 3", path: "capture.rotate_files", reason: "needs rotate_bytes")
        expectError("  file: x.pcap\n  snaplen: 10", path: "capture.snaplen", reason: "out of range")
        expectError("  points: [inner]", path: "capture.file", reason: "missing")
        expectError("  file: x.pcap\n  points: []", path: "capture.points", reason: "at least one")
        expectError("  directory: relative", path: "capture.directory", reason: "not an absolute")
    }
}
