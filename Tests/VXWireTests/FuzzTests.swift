import Testing
import VXTestSupport

@testable import VXWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Bytes placed so they end exactly where an inaccessible page begins: a decoder that reads one
/// byte past the length it was given faults instead of quietly reading a neighbour's memory.
final class GuardedBytes {
    let pageSize: Int
    let mapping: UnsafeMutableRawPointer
    /// The first byte of the inaccessible page.
    var end: UnsafeMutableRawPointer { mapping + pageSize }

    init() {
        pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let raw = mmap(nil, 2 * pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        precondition(raw != MAP_FAILED && raw != nil)
        mapping = raw!
        precondition(mprotect(mapping + pageSize, pageSize, PROT_NONE) == 0)
    }

    deinit { munmap(mapping, 2 * pageSize) }

    /// Copies `bytes` against the guard page and calls `body` with them.
    func with<R>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) -> R) -> R {
        precondition(bytes.count <= pageSize)
        let start = end - bytes.count
        bytes.withUnsafeBytes { if $0.count > 0 { start.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        return body(UnsafeRawBufferPointer(start: start, count: bytes.count))
    }

    /// Fills `count` bytes against the guard page from `rng`.
    func withRandom<R>(count: Int, using rng: inout SplitMix64, _ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
        let start = end - count
        for i in 0..<count {
            start.storeBytes(of: UInt8(truncatingIfNeeded: rng.next()), toByteOffset: i, as: UInt8.self)
        }
        return body(UnsafeMutableRawBufferPointer(start: start, count: count))
    }

    static func hash(_ frame: [UInt8]) -> UInt64 {
        GuardedBytes().with(frame) { FlowHash.hash(frame: $0.baseAddress!, length: $0.count) }
    }
}

@Suite("Decoders under random input")
struct FuzzTests {
    /// 100k buffers of 0...200 random bytes through the VXLAN decoder and the flow hash. One in
    /// two gets a likely EtherType (IPv4, IPv6, VLAN, QinQ) so the deeper parsing paths are reached.
    @Test func randomBuffersNeverTrapOrOverread() {
        let guarded = GuardedBytes()
        var rng = SplitMix64(seed: 0x5EED)
        let etherTypes: [UInt16] = [0x0800, 0x86DD, 0x8100, 0x88A8]
        var decoded = 0
        var flagClear = 0
        var truncated = 0
        for _ in 0..<100_000 {
            let length = Int(rng.next() % 201)
            let roll = rng.next()
            guarded.withRandom(count: length, using: &rng) { buffer in
                if length >= 14, roll & 1 == 0 {
                    let type = etherTypes[Int(roll >> 1 & 3)]
                    buffer[12] = UInt8(type >> 8)
                    buffer[13] = UInt8(type & 0xFF)
                    if type == 0x8100 || type == 0x88A8, length >= 18, roll & 8 == 0 {
                        buffer[16] = 0x08
                        buffer[17] = 0x00
                    }
                    if length >= 20, roll & 16 == 0 { buffer[type == 0x8100 || type == 0x88A8 ? 18 : 14] = 0x45 }
                }
                switch VXLANHeader.decode(UnsafeRawBufferPointer(buffer)) {
                case .success(let vni):
                    #expect(vni.rawValue <= VNI.max)
                    decoded += 1
                case .failure(.flagIClear): flagClear += 1
                case .failure(.truncated): truncated += 1
                }
                guard length >= EthernetFrame.headerSize else { return }
                let a = FlowHash.hash(frame: buffer.baseAddress!, length: length)
                #expect(a == FlowHash.hash(frame: buffer.baseAddress!, length: length))
                let state = InnerChecksum.classify(buffer.baseAddress!, length: length)
                #expect(InnerChecksum.partial(buffer.baseAddress!, length: length).isPresent == (state == .unfinished))
            }
        }
        #expect(decoded + flagClear + truncated == 100_000)
        #expect(decoded > 10_000 && flagClear > 10_000 && truncated > 1_000)
    }

    /// Random text through the MAC, IP and prefix parsers: no trap, and whatever parses formats
    /// to text that parses back to the same value.
    @Test func randomTextParsesOrIsRejectedCleanly() {
        var rng = SplitMix64(seed: 42)
        let alphabet = Array("0123456789abcdefABCDEFg:.-/+ %")
        for _ in 0..<50_000 {
            let length = Int(rng.next() % 42)
            let text = String((0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
            if let mac = MACAddress(text) {
                #expect(MACAddress(mac.description) == mac)
            }
            if let ip = IPAddress(text) {
                #expect(IPAddress(ip.description) == ip, "\(text)")
            }
            if let prefix = IPPrefix(text) {
                #expect(IPPrefix(prefix.description) == prefix, "\(text)")
            }
        }
        // Random text is mostly garbage; well-formed random addresses must parse and round-trip.
        for _ in 0..<20_000 {
            let groups = (0..<8).map { _ in String(rng.next() % 4 == 0 ? 0 : rng.next() & 0xFFFF, radix: 16) }
            let text = groups.joined(separator: ":")
            let ip = IPAddress(text)
            #expect(ip != nil, "\(text)")
            if let ip {
                #expect(IPAddress(ip.description) == ip, "\(text) → \(ip)")
                #expect(ip.description.count <= text.count)
                #expect(ip.description == ip.description.lowercased())
            }
            let octets = (0..<4).map { _ in String(rng.next() & 0xFF) }.joined(separator: ".")
            #expect(IPAddress(octets)?.description == octets)
            let mac = (0..<6).map { _ in
                let s = String(rng.next() & 0xFF, radix: 16)
                return s.count == 1 ? "0" + s : s
            }.joined(separator: ":")
            #expect(MACAddress(mac)?.description == mac)
        }
    }
}
