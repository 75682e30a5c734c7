// `POST /v1/trace`'s request, checked field by field into a `TraceInput` (400 naming the field).
//
// A POST, but a read: the trace changes nothing and shows what `GET /v1/networks/{vni}/fdb` and
// `GET /v1/config` show (entries, ages, flood lists, allow_from) plus the flow hash of a frame the
// caller wrote itself — no traffic. So it is open to whoever may read (`Route.answersAsRead`),
// needing neither the control group nor the token, like those GETs.
import Foundation
import VXConfig
import VXControlAPI
import VXRouter
import VXWire

extension RouteRequest {
    /// The largest frame a trace takes: a 64 KB IP packet behind Ethernet and two tags.
    static let maxTraceFrame = 65535 + 14 + 8

    func traceInput() throws -> TraceInput {
        let body = request.body
        guard !body.isEmpty else { throw APIError(.badRequest, "the request body is empty; expected a TraceRequest object") }
        guard case .object(let object)? = try? JSONDecoder().decode(JSONValue.self, from: Data(body)) else {
            throw APIError(.badRequest, "the request body is not a JSON object; expected a TraceRequest object")
        }
        let allowed = ["from", "vni", "remote", "frame", "payload"]
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw APIError(.badRequest, "unknown field \(jsonString(unknown)) (allowed: \(allowed.joined(separator: ", ")))")
        }
        guard let request = try? JSONDecoder().decode(TraceRequest.self, from: Data(body)) else {
            throw APIError(
                .badRequest, "the request body does not match: from, remote, frame and payload are strings, vni an integer")
        }
        let vni = try request.vni.map { value -> VNI in
            guard let vni = VNI(Int(value)) else { throw APIError(.badRequest, "vni \(value) is not a VNI (0-16777215)") }
            return vni
        }
        let frame = try request.frame.map { try Self.hexBytes($0, field: "frame") }
        switch request.from {
        case "tap":
            guard let vni else { throw APIError(.badRequest, "from tap needs vni (the network whose TAP the frame comes from)") }
            let served = ServedVNIs(service.servedVNIs)
            guard served.contains(vni) else { throw APIError(.notFound, served.notServed(vni)) }
            guard request.remote == nil, request.payload == nil else {
                throw APIError(.badRequest, "from tap takes vni and frame only (remote and payload are for from tunnel)")
            }
            guard let frame else { throw APIError(.badRequest, "missing field \"frame\" (the Ethernet frame in hex)") }
            return .tap(vni: vni, frame: frame)
        case "tunnel":
            guard let text = request.remote else {
                throw APIError(.badRequest, "from tunnel needs remote (the sending VTEP's underlay address)")
            }
            guard let remote = IPAddress(text) else {
                throw APIError(.badRequest, "remote \(jsonString(text)) is not an IP address")
            }
            switch (frame, request.payload) {
            case (let frame?, nil):
                guard let vni else {
                    throw APIError(.badRequest, "from tunnel with frame needs vni (for the VXLAN header put in front)")
                }
                var header = [UInt8](repeating: 0, count: VXLANHeader.size)
                header.withUnsafeMutableBytes { VXLANHeader.encode(vni: vni, to: $0.baseAddress!) }
                return .tunnel(remote: remote, payload: header + frame)
            case (nil, let payload?):
                guard vni == nil else { throw APIError(.badRequest, "payload carries its own VNI: give vni only with frame") }
                return .tunnel(remote: remote, payload: try Self.hexBytes(payload, field: "payload"))
            default:
                throw APIError(.badRequest, "from tunnel needs exactly one of frame (with vni) and payload")
            }
        default:
            throw APIError(.badRequest, "from \(jsonString(request.from)) is not tap or tunnel")
        }
    }

    /// Hex digits, with spaces, colons, dashes and line breaks ignored (`xxd -p`, Wireshark's
    /// "copy as hex stream", `tcpdump -xx` without offsets).
    static func hexBytes(_ text: String, field: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var high: UInt8? = nil
        for character in text.utf8 {
            let value: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = character - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = character - UInt8(ascii: "A") + 10
            case UInt8(ascii: " "), UInt8(ascii: ":"), UInt8(ascii: "-"), 0x0A, 0x0D, 0x09: continue
            default: throw APIError(.badRequest, "\(field) is not hex: unexpected \(jsonString(String(UnicodeScalar(character))))")
            }
            if let h = high {
                bytes.append(h << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        guard high == nil else { throw APIError(.badRequest, "\(field) has an odd number of hex digits") }
        guard !bytes.isEmpty else { throw APIError(.badRequest, "\(field) is empty") }
        guard bytes.count <= maxTraceFrame + 8 else {
            throw APIError(.badRequest, "\(field) is \(bytes.count) bytes (at most \(maxTraceFrame + 8))")
        }
        return bytes
    }
}
