// Capture files, written by libpcap (pcap_dump on a pcap_open_dead handle, nanosecond
// timestamps), with rotation by size and a bounded number of files, and beside each pcap file a
// side index, `<file>.idx`: one tab-separated line per record (frame number as tshark counts it,
// packet number, point, direction, VNI, remote VTEP, drop reason, length). Classic pcap has no
// per-record comments and libpcap writes no pcapng, so the index is where drop reasons and the
// packet numbers that match inner and outer records of the same packet are kept.
import CPcap
import Foundation

/// File names of a rotating capture: `out.pcap` alone without rotation; with rotation
/// `out-000001.pcap`, `out-000002.pcap`, … (the number before the extension, so the files still
/// open as pcap everywhere).
public enum RotationNaming {
    public static func name(base: String, sequence: Int?) -> String {
        guard let sequence else { return base }
        let number = String(sequence)
        let padded = String(repeating: "0", count: max(0, 6 - number.count)) + number
        let slash = base.lastIndex(of: "/")
        let fileName = slash.map { base[base.index(after: $0)...] } ?? base[...]
        if let dot = fileName.lastIndex(of: "."), dot != fileName.startIndex {
            return String(base[..<dot]) + "-" + padded + String(base[dot...])
        }
        return base + "-" + padded
    }

    public static func indexName(_ file: String) -> String { file + ".idx" }

    /// The sequence numbers to delete after file `sequence` was opened, keeping `keep` files.
    public static func expired(after sequence: Int, keep: Int?) -> Int? {
        guard let keep, sequence - keep >= 1 else { return nil }
        return sequence - keep
    }
}

public final class PcapFileWriter {
    public let base: String
    public let rotateBytes: Int?
    public let rotateFiles: Int?
    private let dead: OpaquePointer
    private var dumper: OpaquePointer?
    private var index: UnsafeMutablePointer<FILE>?
    /// The current file's number (1 for the first).
    public private(set) var sequence = 0
    private var recordsInFile = 0
    private var bytesInFile = 0
    /// The files written and still kept, oldest first.
    public private(set) var files: [String] = []

    /// Opens the first file, so an unwritable path fails here, before any capture starts.
    /// `snapLength` is the file header's (the largest frame a record may hold).
    public init(path: String, snapLength: Int, rotateBytes: Int? = nil, rotateFiles: Int? = nil) throws(CaptureError) {
        base = path
        self.rotateBytes = rotateBytes
        self.rotateFiles = rotateFiles
        guard
            let dead = pcap_open_dead_with_tstamp_precision(
                DLT_EN10MB, Int32(snapLength), UInt32(PCAP_TSTAMP_PRECISION_NANO))
        else { throw CaptureError("libpcap: cannot open a handle to write captures") }
        self.dead = dead
        // Every property is set: a failure here runs deinit, which closes `dead`.
        try openNext()
    }

    deinit {
        close()
        pcap_close(dead)
    }

    private func openNext() throws(CaptureError) {
        closeCurrent()
        sequence += 1
        let name = RotationNaming.name(base: base, sequence: rotateBytes == nil ? nil : sequence)
        guard let opened = pcap_dump_open(dead, name) else {
            var message = String(cString: pcap_geterr(dead))
            if message.hasPrefix(name + ": ") { message.removeFirst(name.count + 2) }
            throw CaptureError("cannot write \(name): \(message)")
        }
        dumper = opened
        guard let indexFile = fopen(RotationNaming.indexName(name), "w") else {
            let reason = String(cString: strerror(errno))
            pcap_dump_close(opened)
            dumper = nil
            throw CaptureError("cannot write \(RotationNaming.indexName(name)): \(reason)")
        }
        index = indexFile
        fputs("# vxrouter capture index: " + CaptureRecord.indexColumns.joined(separator: "\t") + "\n", indexFile)
        files.append(name)
        recordsInFile = 0
        bytesInFile = 24
        if let old = RotationNaming.expired(after: sequence, keep: rotateFiles) {
            let oldName = RotationNaming.name(base: base, sequence: old)
            _ = unlink(oldName)
            _ = unlink(RotationNaming.indexName(oldName))
            files.removeAll { $0 == oldName }
        }
    }

    private func closeCurrent() {
        if let dumper { pcap_dump_close(dumper) }
        if let index { fclose(index) }
        dumper = nil
        index = nil
    }

    public func write(_ record: CaptureRecord) throws(CaptureError) {
        let size = 16 + record.frame.count
        if let rotateBytes, recordsInFile > 0, bytesInFile + size > rotateBytes { try openNext() }
        guard let dumper, let index else { throw CaptureError("the capture file is closed") }
        var header = pcap_pkthdr()
        header.ts.tv_sec = Int(record.time / 1_000_000_000)
        header.ts.tv_usec = Int(record.time % 1_000_000_000)  // nanoseconds: the handle's precision
        header.caplen = UInt32(record.frame.count)
        header.len = UInt32(max(record.length, record.frame.count))
        record.frame.withUnsafeBufferPointer { bytes in
            pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), &header, bytes.baseAddress)
        }
        recordsInFile += 1
        bytesInFile += size
        fputs(([String(recordsInFile)] + record.indexFields).joined(separator: "\t") + "\n", index)
    }

    public func flush() {
        if let dumper { pcap_dump_flush(dumper) }
        if let index { fflush(index) }
    }

    public func close() { closeCurrent() }
}

/// A pcap byte stream written by libpcap: the dumper writes into a memory FILE (fmemopen), and
/// each record's bytes are taken out as they are written, for an HTTP response (`curl … |
/// tshark -r -`). No side index travels with it: that is what `vxrouter capture` is for.
public final class PcapByteStream {
    private let dead: OpaquePointer
    private let file: UnsafeMutablePointer<FILE>
    private let dumper: OpaquePointer
    private let buffer: UnsafeMutableRawPointer
    private static let capacity = 1 << 18

    public init(snapLength: Int) throws(CaptureError) {
        guard
            let dead = pcap_open_dead_with_tstamp_precision(
                DLT_EN10MB, Int32(snapLength), UInt32(PCAP_TSTAMP_PRECISION_NANO))
        else { throw CaptureError("libpcap: cannot open a handle to write captures") }
        buffer = .allocate(byteCount: Self.capacity, alignment: 16)
        guard let file = fmemopen(buffer, Self.capacity, "w") else {
            pcap_close(dead)
            buffer.deallocate()
            throw CaptureError("cannot open a memory stream")
        }
        // Unbuffered: every write lands in `buffer` at once, and ftell says how much.
        setvbuf(file, nil, _IONBF, 0)
        guard let dumper = pcap_dump_fopen(dead, file) else {
            fclose(file)
            pcap_close(dead)
            buffer.deallocate()
            throw CaptureError("libpcap: cannot write a pcap stream")
        }
        self.dead = dead
        self.file = file
        self.dumper = dumper
    }

    deinit {
        pcap_dump_close(dumper)  // closes the FILE too
        pcap_close(dead)
        buffer.deallocate()
    }

    /// Bytes written since the last take (the file header first), and rewinds.
    public func take() -> [UInt8] {
        let written = Int(ftell(file))
        guard written > 0 else { return [] }
        let bytes = Array(UnsafeRawBufferPointer(start: buffer, count: written))
        fseek(file, 0, SEEK_SET)
        return bytes
    }

    /// The record's pcap bytes.
    public func encode(_ record: CaptureRecord) -> [UInt8] {
        var header = pcap_pkthdr()
        header.ts.tv_sec = Int(record.time / 1_000_000_000)
        header.ts.tv_usec = Int(record.time % 1_000_000_000)
        header.caplen = UInt32(min(record.frame.count, Self.capacity / 2))
        header.len = UInt32(max(record.length, record.frame.count))
        record.frame.withUnsafeBufferPointer { bytes in
            pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), &header, bytes.baseAddress)
        }
        return take()
    }
}
