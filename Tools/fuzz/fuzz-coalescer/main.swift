// TCP coalescer (VXWire/Coalescing.swift), checked against the GSO segmenter. Input: a list of
// frames, each as [tag byte][length: 2 bytes big-endian][frame]. Every frame must come out in
// exactly one group, in order; a lone frame unchanged; a merged group must be a super-frame the
// segmenter accepts and cuts back into the merged frames' payloads, with checksums that verify.
#if canImport(Glibc)
    import Glibc
#endif
import VXFuzzSupport
import VXWire

let maxFrames = 256
nonisolated(unsafe) let frames = UnsafeMutableRawPointer.allocate(byteCount: 1 << 17, alignment: 16)
nonisolated(unsafe) let originals = UnsafeMutableRawPointer.allocate(byteCount: 1 << 17, alignment: 16)
nonisolated(unsafe) let merged = UnsafeMutableRawPointer.allocate(byteCount: 1 << 18, alignment: 16)
nonisolated(unsafe) let segment = UnsafeMutableRawPointer.allocate(byteCount: 1 << 18, alignment: 16)
nonisolated(unsafe) var coalescer = TCPCoalescer()

func coalesceOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = fuzzInput(start, count)
    guard input.count <= 1 << 17 else { return 0 }
    // Split into frames, each copied to its own place (the coalescer rewrites a group's first frame).
    var offsets: [Int] = []
    var lengths: [Int] = []
    var tags: [Int] = []
    var i = 0
    var used = 0
    while i + 3 <= input.count, offsets.count < maxFrames {
        let tag = Int(input[i] & 1)
        let length = min(Int(input[i + 1]) << 8 | Int(input[i + 2]), input.count - i - 3)
        i += 3
        if length > 0 { (frames + used).copyMemory(from: input.baseAddress! + i, byteCount: length) }
        offsets.append(used)
        lengths.append(length)
        tags.append(tag)
        used += length
        i += length
    }
    originals.copyMemory(from: frames, byteCount: used)

    var next = 0
    func check(_ group: TCPCoalescer.Group) {
        fuzzCheck(group.first == next && group.count >= 1, "group \(group.first)+\(group.count), expected frame \(next) next")
        fuzzCheck(group.first + group.count <= offsets.count, "group past the last frame")
        fuzzCheck(group.pieces.count == group.count + 1, "\(group.pieces.count) pieces for \(group.count) frames")
        fuzzCheck(group.pieces[0].length == VirtioNetHeader.size, "the first piece is not a virtio header")
        fuzzCheck(Set(tags[group.first..<group.first + group.count]).count == 1, "a group spans networks")
        next += group.count
        let header = VirtioNetHeader(decoding: group.pieces[0].base!)
        let head = group.pieces[1]
        fuzzCheck(head.base == UnsafeRawPointer(frames + offsets[group.first]), "the group does not start at its frame")
        guard group.coalesced else {
            fuzzCheck(header == VirtioNetHeader(), "a lone frame with offloads in its header")
            fuzzCheck(
                head.length == lengths[group.first]
                    && memcmp(head.base!, originals + offsets[group.first], head.length) == 0,
                "a lone frame was changed")
            return
        }
        // The super-frame as the TAP would get it, then cut again.
        var length = 0
        for piece in group.pieces.dropFirst() {
            (merged + length).copyMemory(from: piece.base!, byteCount: piece.length)
            length += piece.length
        }
        fuzzCheck(header.needsChecksum, "a merged group without NEEDS_CSUM")
        guard var segmenter = GSOSegmenter(header: header, frame: merged, length: length) else {
            fuzzCheck(false, "the segmenter refuses a merged group of \(group.count) frames")
            return
        }
        fuzzCheck(segmenter.segmentCount == group.count, "\(segmenter.segmentCount) segments from \(group.count) frames")
        let h = segmenter.headerLength
        for k in 0..<group.count {
            let n = segmenter.next(into: segment)
            let index = group.first + k
            let original = originals + offsets[index]
            fuzzCheck(n - h == lengths[index] - h, "segment \(k): \(n - h) payload bytes, the frame had \(lengths[index] - h)")
            fuzzCheck(memcmp(segment + h, original + h, n - h) == 0, "segment \(k)'s payload differs from frame \(index)'s")
            // The headers a receiver compares: addresses and ports, sequence and ACK numbers.
            let l3 = segmenter.l3
            let l4 = segmenter.l4
            let addresses = segmenter.isIPv6 ? (l3 + 8, 32) : (l3 + 12, 8)
            fuzzCheck(memcmp(segment + addresses.0, original + addresses.0, addresses.1) == 0, "segment \(k): addresses")
            fuzzCheck(memcmp(segment + l4, original + l4, 12) == 0, "segment \(k): ports, sequence or ACK number")
            let pseudo = InternetChecksum.pseudoHeaderSum(
                addresses: segment + addresses.0, addressSize: addresses.1 / 2, protocol: 6, length: n - l4)
            fuzzCheck(
                InternetChecksum.fold(InternetChecksum.sum(segment + l4, count: n - l4, initial: pseudo)) == 0xFFFF,
                "segment \(k): TCP checksum")
        }
        fuzzCheck(segmenter.next(into: segment) == 0, "more segments than frames")
    }
    for k in 0..<offsets.count {
        coalescer.add(index: k, tag: tags[k], frame: frames + offsets[k], length: lengths[k], emit: check)
    }
    coalescer.flush(emit: check)
    fuzzCheck(next == offsets.count, "\(offsets.count) frames offered, \(next) emitted")
    return 0
}

fuzzMain(coalesceOne)
