// The rules config, API and CLI share (VXConfig/Rules.swift), on their own.
import Foundation
import Testing
import VXCapture
import VXConfig
import VXDatapath
import VXWire

@Suite struct RulesTests {
    let local = IPAddress("198.18.0.1")!

    @Test func remoteVTEP() {
        #expect(RemoteVTEPProblem.check(IPAddress("198.18.0.2")!, local: local) == nil)
        #expect(RemoteVTEPProblem.check(IPAddress("2001:db8::1")!, local: local) == .family(.v6, underlay: .v4))
        #expect(RemoteVTEPProblem.check(local, local: local) == .isLocal)
        #expect(RemoteVTEPProblem.check(IPAddress("0.0.0.0")!, local: local) == .unspecified)
        #expect(RemoteVTEPProblem.check(IPAddress("239.1.1.1")!, local: local) == .multicast)
    }

    @Test func stationMAC() {
        #expect(StationMACProblem.check(MACAddress("02:00:00:00:00:01")!) == nil)
        #expect(StationMACProblem.check(.broadcast) == .broadcast)
        #expect(StationMACProblem.check(MACAddress("01:00:5e:00:00:01")!) == .multicast)
        #expect(StationMACProblem.check(MACAddress("00:00:00:00:00:00")!) == .zero)
    }

    @Test func servedVNIs() {
        #expect(ServedVNIs.parse("42") == VNI(42))
        #expect(ServedVNIs.parse("16777215") == VNI(16_777_215))
        for bad in ["", "-1", "+1", "16777216", "4 2", "0x10", "999999999"] { #expect(ServedVNIs.parse(bad) == nil, "\(bad)") }
        let served = ServedVNIs([VNI(42)!, VNI(43)!])
        #expect(served.contains(VNI(43)!) && !served.contains(VNI(44)!))
        #expect(served.notServed(44) == "vni 44 is not served by this router (served: 42, 43)")
    }

    @Test func tokenFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vx-token-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try " s3cret \n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try readToken(path: path) == "s3cret")
        try " \n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: TokenFileError.self) { try readToken(path: path) }
        try "two words".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: TokenFileError.self) { try readToken(path: path) }
        #expect(error?.description == "control.token_file \(path): the token must be printable ASCII without spaces")
        #expect(throws: TokenFileError.self) { try readToken(path: path + ".missing") }
    }

    @Test func captureRequest() throws {
        let rule = CaptureRequestRule(
            served: ServedVNIs([VNI(42)!]), underlayFamily: .v4, captureDirectory: "/var/lib/vxrouter/captures")
        let spec = try rule.spec(
            ["points": .strings(["outer", "drop"]), "vni": .string("42"), "count": .integer(5), "file": .string("a.pcap")],
            fileAllowed: true)
        #expect(spec.points == [.outer, .drop] && spec.vni == VNI(42) && spec.count == 5 && spec.file == "a.pcap")
        let refused: [(CaptureParameters, Bool, String)] = [
            (["file": .string("a.pcap")], false, "unknown parameter \"file\""),
            (["vni": .integer(7)], false, "vni 7 is not served"),
            (["count": .number(1.5)], false, "count must be an integer"),
            (["count": .integer(0)], false, "out of range"),
            (["points": .string("inner,sideways")], false, "\"sideways\" is not a capture point"),
            (["remote": .string("2001:db8::1")], false, "IPv6 but the underlay is IPv4"),
            (["file": .string(".hidden")], true, "plain file name"),
            (["filter": .integer(1)], false, "filter must be a string"),
        ]
        for (fields, fileAllowed, words) in refused {
            let error = #expect(throws: CaptureRequestError.self) { _ = try rule.spec(fields, fileAllowed: fileAllowed) }
            #expect(error?.message.contains(words) == true, "\(fields): \(String(describing: error))")
        }
    }
}
