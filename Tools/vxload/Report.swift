// What a run reports: a line per second (live on a terminal, on request otherwise), and a final
// result as text or as one JSON object. A run that could not complete says so in both: partial
// numbers are never printed as if whole.
import Glibc
import Histogram

struct LatencySummary: Equatable, Sendable {
    /// Microseconds.
    var p50: Double
    var p99: Double
    var p999: Double
    var max: Double
    var min: Double
    var mean: Double
    var samples: UInt64

    init?(_ h: LatencyHistogram) {
        guard h.totalCount > 0 else { return nil }
        p50 = Double(h.valueAtPercentile(50)) / 1000
        p99 = Double(h.valueAtPercentile(99)) / 1000
        p999 = Double(h.valueAtPercentile(99.9)) / 1000
        max = Double(h.max) / 1000
        min = Double(h.min) / 1000
        mean = h.mean / 1000
        samples = h.totalCount
    }

    var json: String {
        "{\"p50\":\(jsonNumber(p50)),\"p99\":\(jsonNumber(p99)),\"p999\":\(jsonNumber(p999)),\"max\":\(jsonNumber(max)),"
            + "\"min\":\(jsonNumber(min)),\"mean\":\(jsonNumber(mean)),\"samples\":\(samples)}"
    }

    var text: String {
        "p50 \(fmt(p50))  p99 \(fmt(p99))  p99.9 \(fmt(p999))  max \(fmt(max)) µs"
    }

    private func fmt(_ v: Double) -> String { formatDecimal(v, places: v < 100 ? 1 : 0) }
}

/// One second of a run.
struct Interval: Sendable {
    var second: Int
    var sent: UInt64?
    var delivered: UInt64?
    /// New holes in the sequences this second (the live loss estimate).
    var lost: UInt64?
    var latency: LatencySummary?

    var json: String {
        var fields = ["\"t\":\(second)"]
        if let sent { fields.append("\"sent\":\(sent)") }
        if let delivered { fields.append("\"delivered\":\(delivered)") }
        if let lost { fields.append("\"lost\":\(lost)") }
        if delivered != nil { fields.append("\"latency_us\":\(latency?.json ?? "null")") }
        return "{" + fields.joined(separator: ",") + "}"
    }
}

struct RunResult: Sendable {
    var mode: String
    var tx: String?
    var rx: String?
    var runID: UInt16?
    var sizes: String?
    var flows: Int?
    var targetRate: Rate?
    var pcap: String?
    /// Seconds from the start to the last send (send, run) or first to last arrival (sink).
    var duration: Double = 0
    var sent: UInt64?
    var sentBytes: UInt64?
    var delivered: UInt64?
    var deliveredBytes: UInt64?
    /// Reordering is not measured for replayed frames (they carry no sequence).
    var reordered: UInt64?
    var duplicates: UInt64?
    var latency: LatencySummary?
    /// Frames the sink's own socket dropped (part of the loss: the sink was too slow).
    var sinkDrops: UInt64?
    var sendRetries: UInt64?
    var intervals: [Interval] = []
    var complete = true
    var errors: [String] = []
    var notes: [String] = []

    var lost: UInt64? {
        guard let sent, let delivered else { return nil }
        return sent > delivered ? sent - delivered : 0
    }

    var lossRatio: Double? {
        guard let sent, let lost, sent > 0 else { return nil }
        return Double(lost) / Double(sent)
    }

    /// Delivered per second when there is a sink, else sent per second.
    var ratePPS: Double? {
        guard duration > 0, let count = delivered ?? sent else { return nil }
        return Double(count) / duration
    }

    var sentPPS: Double? {
        guard duration > 0, let sent else { return nil }
        return Double(sent) / duration
    }

    /// Megabits per second of Ethernet frames (delivered, else sent).
    var mbps: Double? {
        guard duration > 0, let bytes = deliveredBytes ?? sentBytes else { return nil }
        return Double(bytes) * 8 / duration / 1e6
    }

    var succeeded: Bool { complete && errors.isEmpty }

    // MARK: JSON

    var json: String {
        var f: [String] = []
        func add(_ key: String, _ value: String?) { f.append("\"\(key)\":\(value ?? "null")") }
        add("mode", jsonString(mode))
        add("tx", tx.map(jsonString))
        add("rx", rx.map(jsonString))
        add("run_id", runID.map { String($0) })
        add("sizes", sizes.map(jsonString))
        add("flows", flows.map { String($0) })
        switch targetRate {
        case .packetsPerSecond(let r)?: add("target_pps", jsonNumber(r))
        case .unlimited?: add("target_pps", jsonString("max"))
        case nil: add("target_pps", nil)
        }
        add("pcap", pcap.map(jsonString))
        add("duration_s", jsonNumber(duration))
        add("sent", sent.map { String($0) })
        add("sent_bytes", sentBytes.map { String($0) })
        add("delivered", delivered.map { String($0) })
        add("delivered_bytes", deliveredBytes.map { String($0) })
        add("lost", lost.map { String($0) })
        add("loss_ratio", lossRatio.map(jsonNumber))
        add("reordered", reordered.map { String($0) })
        add("duplicates", duplicates.map { String($0) })
        add("sent_pps", sentPPS.map(jsonNumber))
        add("rate_pps", ratePPS.map(jsonNumber))
        add("mbps", mbps.map(jsonNumber))
        add("latency_us", latency?.json)
        add("sink_drops", sinkDrops.map { String($0) })
        add("send_retries", sendRetries.map { String($0) })
        add("intervals", "[" + intervals.map(\.json).joined(separator: ",") + "]")
        add("complete", complete ? "true" : "false")
        add("errors", "[" + errors.map(jsonString).joined(separator: ",") + "]")
        add("notes", "[" + notes.map(jsonString).joined(separator: ",") + "]")
        return "{" + f.joined(separator: ",") + "}"
    }

    // MARK: Text

    var text: String {
        var lines: [String] = []
        var header = "vxload \(mode)"
        if let tx { header += "  tx \(tx)" }
        if let rx { header += "  rx \(rx)" }
        if let runID { header += "  run \(runID)" }
        lines.append(header)
        var shape: [String] = []
        if let pcap { shape.append("replay \(pcap)") }
        if let sizes { shape.append("frames \(sizes) bytes") }
        if let flows { shape.append("\(flows) flow\(flows == 1 ? "" : "s")") }
        if let targetRate { shape.append("rate \(targetRate)") }
        shape.append("\(formatDecimal(duration, places: 2)) s")
        lines.append("  " + shape.joined(separator: ", "))
        if let sent {
            var line = "  sent       \(pad(sent)) packets"
            if let sentBytes { line += "  \(pad(sentBytes)) bytes" }
            if let pps = sentPPS { line += "  \(formatCount(pps)) pps" }
            if delivered == nil, let mbps { line += "  \(formatDecimal(mbps, places: 1)) Mbit/s" }
            lines.append(line)
        }
        if let delivered {
            var line = "  delivered  \(pad(delivered)) packets"
            if let deliveredBytes { line += "  \(pad(deliveredBytes)) bytes" }
            if let pps = ratePPS { line += "  \(formatCount(pps)) pps" }
            if let mbps { line += "  \(formatDecimal(mbps, places: 1)) Mbit/s" }
            lines.append(line)
        }
        if let lost {
            var line = "  lost       \(pad(lost)) (\(formatDecimal((lossRatio ?? 0) * 100, places: 3)) %)"
            if let reordered { line += "  reordered \(reordered)" }
            if let duplicates { line += "  duplicates \(duplicates)" }
            lines.append(line)
        } else if delivered != nil {
            lines.append("  lost       unknown (the sender's count never arrived)")
        }
        if let sinkDrops, sinkDrops > 0 { lines.append("  of the loss, \(sinkDrops) dropped by the sink's own socket (sink too slow)") }
        if let latency { lines.append("  latency    \(latency.text)") }
        for note in notes { lines.append("  note: \(note)") }
        for error in errors { lines.append("  error: \(error)") }
        lines.append(succeeded ? "  complete" : complete ? "  FAILED" : "  INCOMPLETE: these numbers cover only part of the run")
        return lines.joined(separator: "\n")
    }

    private func pad(_ n: UInt64) -> String {
        let s = String(n)
        return String(repeating: " ", count: max(0, 10 - s.count)) + s
    }

    /// The live / per-second line.
    static func progressLine(_ i: Interval, totalSent: UInt64?, totalDelivered: UInt64?) -> String {
        var parts = ["\(String(repeating: " ", count: max(0, 4 - String(i.second).count)))\(i.second)s"]
        if let s = i.sent { parts.append("sent \(formatCount(Double(s))) pps") }
        if let d = i.delivered { parts.append("delivered \(formatCount(Double(d))) pps") }
        if let totalSent, let totalDelivered, totalSent > 0 {
            let missing = totalSent > totalDelivered ? totalSent - totalDelivered : 0
            parts.append("loss \(formatDecimal(Double(missing) * 100 / Double(totalSent), places: 2)) %")
        } else if let lost = i.lost {
            parts.append("lost \(lost)")
        }
        if let l = i.latency {
            parts.append("latency p50 \(formatDecimal(l.p50, places: 1)) p99 \(formatDecimal(l.p99, places: 1)) max \(formatDecimal(l.max, places: 1)) µs")
        }
        return parts.joined(separator: "  ")
    }
}

// MARK: - JSON pieces

func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

func jsonNumber(_ v: Double) -> String {
    guard v.isFinite else { return "null" }
    if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
    // Rates and ratios need no more than six significant digits; Swift's shortest round-trip
    // form of the rounded value is valid JSON (1.5e-05 included).
    var scale = 1.0
    while abs(v) * scale < 1e5 && scale < 1e12 { scale *= 10 }
    return "\((v * scale).rounded() / scale)"
}

// MARK: - Output

/// Standard error, for progress; standard output, for the result.
enum Console {
    static let stderrIsTerminal = isatty(2) == 1

    static func error(_ text: String) { write(2, text + "\n") }
    static func out(_ text: String) { write(1, text + "\n") }

    /// Rewrites the live line on a terminal.
    static func live(_ text: String) { write(2, "\r" + text + "\u{1B}[K") }
    static func endLive() { write(2, "\r\u{1B}[K") }

    private static func write(_ fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }
}
