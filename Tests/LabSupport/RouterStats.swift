// The router's SIGUSR1 stats report, parsed.
import Foundation

/// attributed to a served VNI). Unknown keys are kept; values that aren't integers go to `labels`.
package struct RouterStats: Sendable, CustomStringConvertible {
    package var networks: [Int: [String: Int]] = [:]
    package var unattributed: [String: Int] = [:]
    /// Non-numeric values per VNI, e.g. ["tap": "vx42"].
    package var labels: [Int: [String: String]] = [:]
    package let text: String

    package init(parsing block: String) throws {
        var lines: [Substring] = []
        for line in block.split(separator: "\n") {
            if line.contains("stats end") { break }
            if line.contains("stats vni=") { lines.append(line) }
        }
        text = lines.joined(separator: "\n")
        for line in lines {
            // The logger may prefix a timestamp and level: parse from `stats vni=` on.
            guard let range = line.range(of: "stats vni=") else { continue }
            let tokens = line[range.lowerBound...].split(separator: " ").dropFirst()
            var numbers: [String: Int] = [:]
            var strings: [String: String] = [:]
            var vni: Int?
            var isUnattributed = false
            for token in tokens {
                guard let equals = token.firstIndex(of: "=") else { continue }
                let key = String(token[..<equals])
                let value = String(token[token.index(after: equals)...])
                if key == "vni" {
                    if value == "-" { isUnattributed = true } else { vni = Int(value) }
                } else if let number = Int(value) {
                    numbers[key] = number
                } else {
                    strings[key] = value
                }
            }
            if isUnattributed {
                unattributed.merge(numbers) { $0 + $1 }
            } else if let vni {
                networks[vni, default: [:]].merge(numbers) { $0 + $1 }
                labels[vni, default: [:]].merge(strings) { $1 }
            } else {
                throw LabFailure("stats line without a usable vni: \(line)")
            }
        }
    }

    /// A counter of one VNI; throws if the router didn't report it (a contract break).
    package func counter(_ key: String, vni: Int) throws -> Int {
        guard let network = networks[vni] else { throw LabFailure("no stats line for vni=\(vni) in:\n\(text)") }
        guard let value = network[key] else { throw LabFailure("vni=\(vni) has no \(key) in:\n\(text)") }
        return value
    }

    /// A counter summed over every VNI line and the `vni=-` line (missing counts as 0).
    package func total(_ key: String) -> Int {
        networks.values.reduce(unattributed[key] ?? 0) { $0 + ($1[key] ?? 0) }
    }

    /// Every `drop_*` counter, summed over all lines.
    package var totalDrops: Int {
        let keys = Set(networks.values.flatMap(\.keys) + unattributed.keys).filter { $0.hasPrefix("drop_") }
        return keys.reduce(0) { $0 + total($1) }
    }

    package var description: String { text }
}

/// `key=value` pairs with integer values from a line; other tokens are ignored.
package func parseKeyValues<S: StringProtocol>(_ line: S) -> [String: Int] {
    var values: [String: Int] = [:]
    for token in line.split(separator: " ") {
        let parts = token.split(separator: "=", maxSplits: 1)
        if parts.count == 2, let number = Int(parts[1]) { values[String(parts[0])] = number }
    }
    return values
}
