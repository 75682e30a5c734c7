// Captures to replay, read with libpcap (CPcap): every frame held in memory, with its time
// relative to the first, so a replay can loop without touching the file again.
import CPcap
import VXWire

struct Capture: Sendable {
    let path: String
    let frames: [[UInt8]]
    /// Each frame's capture time, ns after the first frame's.
    let offsets: [UInt64]
    /// How long one pass lasts when replayed at the captured pace: the span plus one mean gap.
    let loopPeriod: UInt64

    var largestFrame: Int { frames.map(\.count).max() ?? 0 }

    init(path: String, frames: [[UInt8]], offsets: [UInt64]) {
        self.path = path
        self.frames = frames
        self.offsets = offsets
        let span = offsets.last ?? 0
        loopPeriod = frames.count > 1 ? span + span / UInt64(frames.count - 1) : 1_000_000
    }

    /// Reads `path` (pcap or pcapng, Ethernet frames, at most `limit` frames).
    static func load(path: String, limit: Int = 1_000_000) throws(LoadError) -> Capture {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let handle = pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer)
        else {
            var message = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if message.hasPrefix(path + ": ") { message.removeFirst(path.count + 2) }  // libpcap names the file too
            throw LoadError("--pcap \(path): \(message)")
        }
        defer { pcap_close(handle) }
        let linkType = pcap_datalink(handle)
        guard linkType == DLT_EN10MB else {
            let name = pcap_datalink_val_to_name(linkType).map { String(cString: $0) } ?? "\(linkType)"
            throw LoadError("--pcap \(path): link type \(name), not Ethernet: vxload replays Ethernet frames")
        }
        var frames: [[UInt8]] = []
        var offsets: [UInt64] = []
        var first: UInt64?
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        while true {
            let rc = pcap_next_ex(handle, &header, &data)
            if rc == PCAP_ERROR_BREAK { break }  // end of file
            guard rc == 1, let header, let data else {
                throw LoadError("--pcap \(path): frame \(frames.count + 1): \(String(cString: pcap_geterr(handle)))")
            }
            let captured = Int(header.pointee.caplen), original = Int(header.pointee.len)
            guard captured == original else {
                throw LoadError(
                    "--pcap \(path): frame \(frames.count + 1) was captured cut short (\(captured) of \(original) bytes; "
                        + "capture with a larger snap length)")
            }
            guard captured >= EthernetFrame.headerSize else {
                throw LoadError("--pcap \(path): frame \(frames.count + 1) is \(captured) bytes, shorter than an Ethernet header")
            }
            guard frames.count < limit else { throw LoadError("--pcap \(path): more than \(limit) frames") }
            let time = UInt64(max(0, header.pointee.ts.tv_sec)) * 1_000_000_000 + UInt64(max(0, header.pointee.ts.tv_usec))
            let base = first ?? time
            first = base
            frames.append(Array(UnsafeBufferPointer(start: data, count: captured)))
            // A capture whose clock stepped back keeps its order; the frame goes at once.
            offsets.append(time >= base ? max(time - base, offsets.last ?? 0) : (offsets.last ?? 0))
        }
        guard !frames.isEmpty else { throw LoadError("--pcap \(path): no frames in it") }
        return Capture(path: path, frames: frames, offsets: offsets)
    }
}
