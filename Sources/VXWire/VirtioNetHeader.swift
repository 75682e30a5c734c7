/// `struct virtio_net_hdr_v1` (include/uapi/linux/virtio_net.h), the 12 bytes a TAP with
/// IFF_VNET_HDR and TUNSETVNETHDRSZ 12 puts in front of every frame it reads and expects in front
/// of every frame written to it. Little-endian on the wire here (TUN's legacy "native" byte order on
/// a little-endian host; TUNSETVNETLE is never needed on x86-64/arm64).
///
///     0        1        2                 4                 6                 8                10        12
///     | flags  |gso_type|     hdr_len     |    gso_size     |   csum_start    |   csum_offset   |num_buffers|
///
/// - NEEDS_CSUM: the L4 checksum is partial: the field at `csum_start + csum_offset` holds the
///   pseudo-header sum, and the sum over `csum_start...` still has to be folded in.
/// - gso_type ≠ NONE: the frame is a super-frame of up to 64 KB, to be cut into segments whose
///   L4 payloads are `gso_size` bytes (the last may be shorter).
public struct VirtioNetHeader: Equatable, Sendable, BitwiseCopyable {
    public static let size = 12

    public static let flagNeedsChecksum: UInt8 = 1
    public static let flagDataValid: UInt8 = 2

    public static let gsoNone: UInt8 = 0
    public static let gsoTCPv4: UInt8 = 1
    public static let gsoUDP: UInt8 = 3
    public static let gsoTCPv6: UInt8 = 4
    public static let gsoUDPL4: UInt8 = 5
    /// OR-ed into gso_type: the sender set ECN bits (CWR on the first segment only).
    public static let gsoECN: UInt8 = 0x80

    public var flags: UInt8
    public var gsoType: UInt8
    public var headerLength: UInt16
    public var gsoSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16
    public var numBuffers: UInt16

    public init(
        flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
        checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0, numBuffers: UInt16 = 0
    ) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
        self.numBuffers = numBuffers
    }

    /// Reads a header the kernel wrote (12 bytes at `base`).
    @inline(__always)
    public init(decoding base: UnsafeRawPointer) {
        flags = base.load(fromByteOffset: 0, as: UInt8.self)
        gsoType = base.load(fromByteOffset: 1, as: UInt8.self)
        headerLength = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        gsoSize = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        checksumStart = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        checksumOffset = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
        numBuffers = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 10, as: UInt16.self))
    }

    @inline(__always)
    public func encode(to base: UnsafeMutableRawPointer) {
        base.storeBytes(of: flags, toByteOffset: 0, as: UInt8.self)
        base.storeBytes(of: gsoType, toByteOffset: 1, as: UInt8.self)
        base.storeBytes(of: headerLength.littleEndian, toByteOffset: 2, as: UInt16.self)
        base.storeBytes(of: gsoSize.littleEndian, toByteOffset: 4, as: UInt16.self)
        base.storeBytes(of: checksumStart.littleEndian, toByteOffset: 6, as: UInt16.self)
        base.storeBytes(of: checksumOffset.littleEndian, toByteOffset: 8, as: UInt16.self)
        base.storeBytes(of: numBuffers.littleEndian, toByteOffset: 10, as: UInt16.self)
    }

    /// The GSO type without the ECN bit.
    @inline(__always)
    public var gsoKind: UInt8 { gsoType & ~Self.gsoECN }

    @inline(__always)
    public var needsChecksum: Bool { flags & Self.flagNeedsChecksum != 0 }
}

/// One piece of a frame handed to a gathering write (writev, sendmsg): the same layout as the C
/// `struct iovec` (a pointer, then a size), so a buffer of pieces can be passed to the kernel as is.
public struct FramePiece: BitwiseCopyable {
    public var base: UnsafeRawPointer?
    public var length: Int

    @inline(__always)
    public init(base: UnsafeRawPointer?, length: Int) {
        self.base = base
        self.length = length
    }

    /// No bytes.
    public static var empty: FramePiece { FramePiece(base: nil, length: 0) }
}
