// Filters in tcpdump syntax, compiled by libpcap's own compiler and run by libpcap on the INNER
// Ethernet frame — also for outer captures, where the frame sits behind UDP and VXLAN headers and
// a filter on the outer packet could not see it. "The outer packets that carry ICMP for
// 192.168.42.7" is then `--point outer --filter 'icmp and host 192.168.42.7'`.
//
// Compiled once (pcap_compile on a pcap_open_dead DLT_EN10MB handle) when a capture is asked
// for, so a bad expression is refused before anything starts; run with pcap_offline_filter on
// the capture writer's thread, never in a worker.
import CPcap

public struct CaptureError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public final class InnerFilter: @unchecked Sendable {
    public let expression: String
    private var program = bpf_program()

    /// Compiles `expression`; throws libpcap's own message when it is not a valid filter.
    public init(_ expression: String, snapLength: Int = 65535) throws(CaptureError) {
        self.expression = expression
        guard let dead = pcap_open_dead(DLT_EN10MB, Int32(snapLength)) else {
            throw CaptureError("libpcap: cannot open a handle to compile filters")
        }
        defer { pcap_close(dead) }
        if pcap_compile(dead, &program, expression, 1, PCAP_NETMASK_UNKNOWN) != 0 {
            throw CaptureError("filter \"\(expression)\": \(String(cString: pcap_geterr(dead)))")
        }
    }

    deinit { pcap_freecode(&program) }

    /// Whether the inner frame (the bytes held, of a frame `length` bytes long) matches.
    public func matches(_ frame: UnsafeRawBufferPointer, length: Int) -> Bool {
        guard let base = frame.baseAddress else { return false }
        var header = pcap_pkthdr()
        header.caplen = UInt32(frame.count)
        header.len = UInt32(max(length, frame.count))
        return pcap_offline_filter(&program, &header, base.assumingMemoryBound(to: UInt8.self)) != 0
    }
}
