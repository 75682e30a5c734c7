import CPcap
import Foundation
import Testing
import VXCapture
import VXDatapath
import VXWire

/// An Ethernet/IPv4 frame carrying `protocol` (1 ICMP, 6 TCP) between 192.168.42.1 and .2.
func innerFrame(protocol proto: UInt8, payload: Int = 20) -> [UInt8] {
    var frame: [UInt8] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]
    let total = 20 + payload
    frame += [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0, 0, 64, proto, 0, 0, 192, 168, 42, 1, 192, 168, 42, 2]
    frame += [UInt8](repeating: 0xAB, count: payload)
    return frame
}

@Suite("Outer frame synthesis")
struct OuterFrameTests {
    let local = Endpoint(address: IPAddress("10.0.0.1")!, port: 4789)
    let remote = Endpoint(address: IPAddress("10.0.0.2")!, port: 4789)

    @Test func sentPacketGetsEthernetAndIPv4InFront() {
        let inner = innerFrame(protocol: 1)
        // As sent: UDP header (source port 50000) + VXLAN (I flag, VNI 42) + frame.
        let udpLength = 8 + 8 + inner.count
        var sent: [UInt8] = [0xC3, 0x50, 0x12, 0xB5, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), 0, 0]
        sent += [0x08, 0, 0, 0, 0, 0, 42, 0] + inner
        let (frame, length) = sent.withUnsafeBytes {
            OuterFrame.build(form: .udp, direction: .toTunnel, local: local, remote: remote, bytes: $0, length: sent.count)
        }
        #expect(length == 14 + 20 + sent.count)
        #expect(frame.count == length)
        #expect(Array(frame[0..<6]) == OuterFrame.remoteMAC)
        #expect(Array(frame[6..<12]) == OuterFrame.localMAC)
        #expect(Array(frame[12..<14]) == [0x08, 0x00])
        let ip = Array(frame[14..<34])
        #expect(ip[0] == 0x45)
        #expect(Int(ip[2]) << 8 | Int(ip[3]) == 20 + udpLength)
        #expect(ip[9] == 17)
        #expect(Array(ip[12..<16]) == [10, 0, 0, 1], "source: this router")
        #expect(Array(ip[16..<20]) == [10, 0, 0, 2], "destination: the remote VTEP")
        #expect(OuterFrame.internetChecksum(ip) == 0, "a valid IPv4 header checksum")
        #expect(Array(frame[34...]) == sent, "the datapath's bytes follow unchanged")
    }

    @Test func receivedPayloadGetsUDPHeaderToo() {
        let inner = innerFrame(protocol: 6)
        let payload: [UInt8] = [0x08, 0, 0, 0, 0, 0x01, 0x00, 0] + inner  // VNI 256
        let sender = Endpoint(address: IPAddress("10.0.0.2")!, port: 40000)
        let (frame, length) = payload.withUnsafeBytes {
            OuterFrame.build(form: .vxlan, direction: .fromTunnel, local: local, remote: sender, bytes: $0, length: payload.count)
        }
        #expect(length == 14 + 20 + 8 + payload.count)
        #expect(Array(frame[0..<6]) == OuterFrame.localMAC, "received: addressed to this router")
        #expect(Array(frame[26..<30]) == [10, 0, 0, 2], "source: the sender")
        let udp = Array(frame[34..<42])
        #expect(Int(udp[0]) << 8 | Int(udp[1]) == 40000)
        #expect(Int(udp[2]) << 8 | Int(udp[3]) == 4789)
        #expect(Int(udp[4]) << 8 | Int(udp[5]) == 8 + payload.count)
        #expect(Array(frame[42...]) == payload)
    }

    @Test func snappedCopyKeepsTheOriginalLength() {
        let inner = innerFrame(protocol: 1, payload: 400)
        let payload: [UInt8] = [0x08, 0, 0, 0, 0, 0, 42, 0] + inner
        let kept = Array(payload.prefix(100))
        let (frame, length) = kept.withUnsafeBytes {
            OuterFrame.build(form: .vxlan, direction: .fromTunnel, local: local, remote: remote, bytes: $0, length: payload.count)
        }
        #expect(frame.count == 14 + 20 + 8 + 100)
        #expect(length == 14 + 20 + 8 + payload.count)
        let ipTotal = Int(frame[16]) << 8 | Int(frame[17])
        #expect(ipTotal == 20 + 8 + payload.count, "headers describe the whole packet, not the snapped copy")
    }

    @Test func ipv6HeadersAndChecksum() {
        let local6 = Endpoint(address: IPAddress("fd00::1")!, port: 4789)
        let remote6 = Endpoint(address: IPAddress("fd00::2")!, port: 4789)
        let payload: [UInt8] = [0x08, 0, 0, 0, 0, 0, 42, 0] + innerFrame(protocol: 1)
        let (frame, _) = payload.withUnsafeBytes {
            OuterFrame.build(form: .vxlan, direction: .fromTunnel, local: local6, remote: remote6, bytes: $0, length: payload.count)
        }
        #expect(Array(frame[12..<14]) == [0x86, 0xDD])
        #expect(frame[14] >> 4 == 6)
        #expect(frame[20] == 17)
        // UDP checksum over the pseudo header verifies to zero.
        let udp = Array(frame[54...])
        var pseudo = Array(frame[22..<54])
        pseudo += [0, 0, UInt8(udp.count >> 8), UInt8(udp.count & 0xFF), 0, 0, 0, 17]
        #expect(OuterFrame.internetChecksum(pseudo + udp) == 0)
    }
}

@Suite("Inner filters (libpcap's compiler)")
struct InnerFilterTests {
    @Test func invalidExpressionIsRefusedWithLibpcapsMessage() {
        do {
            _ = try InnerFilter("icmp and and host")
            Issue.record("an invalid filter compiled")
        } catch {
            #expect(error.description.contains("icmp and and host"), "\(error)")
            #expect(error.description.contains("syntax error"), "\(error)")
        }
        #expect(throws: CaptureError.self) { _ = try InnerFilter("host 999.1.1.1") }
    }

    @Test func selectsByProtocolAndHost() throws {
        let icmp = try InnerFilter("icmp and host 192.168.42.2")
        let tcp = try InnerFilter("tcp")
        let ping = innerFrame(protocol: 1)
        let segment = innerFrame(protocol: 6)
        ping.withUnsafeBytes { #expect(icmp.matches($0, length: ping.count)) }
        segment.withUnsafeBytes { #expect(!icmp.matches($0, length: segment.count)) }
        segment.withUnsafeBytes { #expect(tcp.matches($0, length: segment.count)) }
    }
}

@Suite("Rotation")
struct RotationTests {
    @Test func names() {
        #expect(RotationNaming.name(base: "/tmp/out.pcap", sequence: nil) == "/tmp/out.pcap")
        #expect(RotationNaming.name(base: "/tmp/out.pcap", sequence: 3) == "/tmp/out-000003.pcap")
        #expect(RotationNaming.name(base: "/tmp/a.b/out", sequence: 12) == "/tmp/a.b/out-000012")
        #expect(RotationNaming.name(base: ".hidden", sequence: 1) == ".hidden-000001")
    }

    @Test func expiryKeepsTheNewestN() {
        #expect(RotationNaming.expired(after: 1, keep: 3) == nil)
        #expect(RotationNaming.expired(after: 3, keep: 3) == nil)
        #expect(RotationNaming.expired(after: 4, keep: 3) == 1)
        #expect(RotationNaming.expired(after: 10, keep: 1) == 9)
        #expect(RotationNaming.expired(after: 10, keep: nil) == nil)
    }

    @Test func writerKeepsAtMostTheFilesPromised() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vxcap-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = dir.appendingPathComponent("out.pcap").path
        let writer = try PcapFileWriter(path: base, snapLength: 2048, rotateBytes: 4096, rotateFiles: 3)
        let frame = innerFrame(protocol: 1, payload: 500)
        for i in 0..<100 {
            try writer.write(
                CaptureRecord(
                    time: 1_700_000_000_000_000_000 + Int64(i), frame: frame, length: frame.count, packet: "0-\(i)",
                    point: .inner, direction: .fromTap, vni: VNI(42)))
        }
        writer.close()
        let pcaps = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".pcap") }.sorted()
        #expect(pcaps.count == 3, "\(pcaps)")
        #expect(writer.files.map { ($0 as NSString).lastPathComponent } == pcaps)
        var records = 0
        for name in pcaps {
            let path = dir.appendingPathComponent(name).path
            #expect((try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0) <= 4096)
            var error = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
            let handle = try #require(pcap_open_offline(path, &error), "libpcap reads \(name)")
            var header: UnsafeMutablePointer<pcap_pkthdr>?
            var data: UnsafePointer<UInt8>?
            var inFile = 0
            while pcap_next_ex(handle, &header, &data) == 1 { inFile += 1 }
            pcap_close(handle)
            let index = try String(contentsOfFile: path + ".idx", encoding: .utf8).split(separator: "\n")
            #expect(index.count == inFile + 1, "one index line per record, plus the header")
            records += inFile
        }
        #expect(records > 0 && records < 100)
    }

    @Test func unwritablePathFailsAtOnce() {
        #expect(throws: CaptureError.self) {
            _ = try PcapFileWriter(path: "/nonexistent-dir/x.pcap", snapLength: 2048)
        }
    }
}

@Suite("Capture session (rings → filter → file)")
struct CaptureSessionTests {
    final class Collect: CaptureSink {
        var records: [CaptureRecord] = []
        func write(_ record: CaptureRecord) throws(CaptureError) { records.append(record) }
        func flush() {}
        func close() {}
        var isOpen: Bool { true }
        var keptFiles: [String] { [] }
    }

    @Test func filtersOnTheInnerFrameAndStopsAtTheCount() throws {
        let tap = CaptureTap(workers: 1, networks: [VNI(42)!], slots: 16, slotBytes: 2048)
        let sink = Collect()
        let spec = CaptureSpec(points: [.outer], filter: "icmp", count: 2)
        let session = CaptureSession(
            spec: spec, tap: tap, filter: try InnerFilter("icmp"), sink: sink, local: IPAddress("10.0.0.1")!)
        try session.start()
        let remote = Endpoint(address: IPAddress("10.0.0.2")!, port: 4789)
        for (i, proto) in [UInt8(6), 1, 6, 1, 1].enumerated() {
            let payload: [UInt8] = [0x08, 0, 0, 0, 0, 0, 42, 0] + innerFrame(protocol: proto)
            let header = CaptureRecordHeader(
                generation: session.id, point: .outer, direction: .fromTunnel, form: .vxlan, network: -1,
                localPort: 4789, remote: remote, packet: UInt64(i), length: payload.count)
            payload.withUnsafeBytes { _ = tap.rings[0].push(header, $0.baseAddress!, count: payload.count) }
        }
        for _ in 0..<2000 where !session.isFinished { usleep(1000) }
        session.join()
        let summary = session.summary
        #expect(summary.ended == "count")
        #expect(summary.records == 2)
        #expect(sink.records.map(\.packet) == ["0-1", "0-3"])
        #expect(sink.records.allSatisfy { $0.vni == VNI(42) && $0.frame.count == 14 + 20 + 8 + 8 + 14 + 40 })
        #expect(!tap.isRunning, "the count ends the capture in the datapath too")
    }
}

@Suite("Capture ring")
struct CaptureRingTests {
    @Test func fullRingRefusesAndCountsCopiesOnly() {
        let ring = CaptureRing(slots: 2, dataCapacity: 64)
        let bytes = [UInt8](repeating: 7, count: 100)
        let header = CaptureRecordHeader(point: .inner, direction: .fromTap, form: .frame, length: 100)
        bytes.withUnsafeBytes { raw in
            #expect(ring.push(header, raw.baseAddress!, count: 100))
            #expect(ring.push(header, raw.baseAddress!, count: 100))
            #expect(!ring.push(header, raw.baseAddress!, count: 100), "full: refused, the producer goes on")
        }
        #expect(ring.refused == 1)
        let first = ring.peek()
        #expect(first?.header.captured == 64, "cut at the slot's capacity")
        #expect(first?.header.length == 100, "the original length is kept")
        ring.release()
        bytes.withUnsafeBytes { #expect(ring.push(header, $0.baseAddress!, count: 10)) }
        #expect(ring.refused == 1)
    }
}
