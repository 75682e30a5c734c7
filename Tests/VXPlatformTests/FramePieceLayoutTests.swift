import Glibc
import Testing
import VXWire

/// `Tap.write(pieces:)` hands a buffer of `FramePiece` to writev as `struct iovec` without
/// copying: the two must have the same layout, field for field. (CVXLinux asserts the C side.)
@Suite("FramePiece is laid out as struct iovec")
struct FramePieceLayoutTests {
    @Test func sameSizeStrideAlignmentAndOffsets() {
        #expect(MemoryLayout<FramePiece>.size == MemoryLayout<iovec>.size)
        #expect(MemoryLayout<FramePiece>.stride == MemoryLayout<iovec>.stride)
        #expect(MemoryLayout<FramePiece>.alignment == MemoryLayout<iovec>.alignment)
        #expect(MemoryLayout<FramePiece>.offset(of: \.base) == MemoryLayout<iovec>.offset(of: \.iov_base))
        #expect(MemoryLayout<FramePiece>.offset(of: \.length) == MemoryLayout<iovec>.offset(of: \.iov_len))
    }

    /// The same bytes read back through the other type.
    @Test func readsBackAsIovec() {
        let bytes: [UInt8] = [1, 2, 3]
        bytes.withUnsafeBytes { raw in
            let pieces = [FramePiece(base: raw.baseAddress, length: 3), FramePiece(base: nil, length: 7)]
            pieces.withUnsafeBytes { memory in
                let vectors = memory.bindMemory(to: iovec.self)
                #expect(vectors.count == 2)
                #expect(UnsafeRawPointer(vectors[0].iov_base) == raw.baseAddress && vectors[0].iov_len == 3)
                #expect(vectors[1].iov_base == nil && vectors[1].iov_len == 7)
            }
        }
    }
}
