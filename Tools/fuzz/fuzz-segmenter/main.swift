// GSO segmenter (VXWire/Segmentation.swift). Input: a 12-byte virtio-net header, then a super-frame.
// Whatever GSOSegmenter accepts must be cut into segments whose payloads, in order, are exactly the
// super-frame's payload, each no longer than gso_size, with a valid IPv4 header checksum, an IP
// length that matches the segment, and a TCP/UDP checksum that verifies.
#if canImport(Glibc)
    import Glibc
#endif
import VXFuzzSupport
import VXWire

nonisolated(unsafe) let output = UnsafeMutableRawPointer.allocate(byteCount: 1 << 17, alignment: 16)

func segmentOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = fuzzInput(start, count)
    guard input.count >= VirtioNetHeader.size else { return 0 }
    let base = UnsafeRawPointer(input.baseAddress!)
    let header = VirtioNetHeader(decoding: base)
    let frame = base + VirtioNetHeader.size
    let length = input.count - VirtioNetHeader.size
    guard var segmenter = GSOSegmenter(header: header, frame: frame, length: length) else { return 0 }
    let h = segmenter.headerLength
    fuzzCheck(h < length && segmenter.l3 < segmenter.l4 && segmenter.l4 < h, "header offsets inside the frame")
    fuzzCheck(segmenter.maxSegmentLength <= 1 << 17, "segment fits the output buffer")
    var payloadOffset = h
    var segments = 0
    while true {
        let n = segmenter.next(into: output)
        if n == 0 { break }
        segments += 1
        fuzzCheck(n > h && n <= segmenter.maxSegmentLength, "segment length \(n) within (\(h), \(segmenter.maxSegmentLength)]")
        let payload = n - h
        fuzzCheck(payload <= segmenter.gsoSize, "payload \(payload) over gso_size \(segmenter.gsoSize)")
        fuzzCheck(payloadOffset + payload <= length, "segment payload beyond the super-frame")
        fuzzCheck(
            memcmp(output + h, frame + payloadOffset, payload) == 0,
            "segment \(segments - 1) payload differs from the super-frame's bytes at \(payloadOffset)")
        payloadOffset += payload
        verify(output, length: n, segmenter)
    }
    fuzzCheck(segments == segmenter.segmentCount, "\(segments) segments, promised \(segmenter.segmentCount)")
    fuzzCheck(payloadOffset == length, "segments' payloads cover \(payloadOffset - h) of \(length - h) bytes")
    return 0
}

/// Every header of one segment as a receiver checks it.
func verify(_ segment: UnsafeMutableRawPointer, length: Int, _ s: GSOSegmenter) {
    let l4Length = length - s.l4
    if s.isIPv6 {
        fuzzCheck(be16(segment, s.l3 + 4) == l4Length, "IPv6 payload length \(be16(segment, s.l3 + 4)) != \(l4Length)")
    } else {
        fuzzCheck(be16(segment, s.l3 + 2) == length - s.l3, "IPv4 total length \(be16(segment, s.l3 + 2)) != \(length - s.l3)")
        fuzzCheck(InternetChecksum.ipv4HeaderValid(segment + s.l3, headerLength: s.l4 - s.l3), "IPv4 header checksum")
    }
    if !s.isTCP {
        fuzzCheck(be16(segment, s.l4 + 4) == l4Length, "UDP length \(be16(segment, s.l4 + 4)) != \(l4Length)")
    }
    let pseudo = InternetChecksum.pseudoHeaderSum(
        addresses: segment + s.l3 + (s.isIPv6 ? 8 : 12), addressSize: s.isIPv6 ? 16 : 4, protocol: s.isTCP ? 6 : 17,
        length: l4Length)
    fuzzCheck(
        InternetChecksum.fold(InternetChecksum.sum(segment + s.l4, count: l4Length, initial: pseudo)) == 0xFFFF,
        "\(s.isTCP ? "TCP" : "UDP") checksum does not verify")
}

func be16(_ p: UnsafeRawPointer, _ offset: Int) -> Int { Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))) }

fuzzMain(segmentOne)
