// What a command the lab ran left behind.
import Foundation

/// What a finished (or killed) command left behind.
package struct CommandResult: Sendable {
    package let commandLine: String
    /// Exit status, or nil when it died of a signal.
    package let status: Int32?
    package let timedOut: Bool
    package let stdout: String
    package let stderr: String

    package var succeeded: Bool { !timedOut && status == 0 }

    package var summary: String {
        let outcome = timedOut ? "timed out" : status.map { "exit \($0)" } ?? "killed by a signal"
        var text = "`\(commandLine)`: \(outcome)"
        let out = stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let err = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        if !out.isEmpty { text += "\n  stdout: \(out.suffix(2000))" }
        if !err.isEmpty { text += "\n  stderr: \(err.suffix(2000))" }
        return text
    }
}
