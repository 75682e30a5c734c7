// A process the lab started, and the waiting helpers every lab step uses.
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A process the lab started, with its output going to files (never a pipe that could fill up).
package final class ChildProcess: @unchecked Sendable {
    package let commandLine: String
    package let stdoutPath: String
    package let stderrPath: String
    private let process: Process

    package init(_ arguments: [String], stdoutPath: String, stderrPath: String) throws {
        precondition(!arguments.isEmpty)
        commandLine = arguments.joined(separator: " ")
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
        process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        var err = out
        if stderrPath != stdoutPath {
            _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
            err = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        defer {
            try? out.close()
            if stderrPath != stdoutPath { try? err.close() }
        }
        do {
            // posix_spawn hands the calling thread's signal mask to the child, and test threads
            // (libdispatch workers) block nearly every signal: a router started that way would
            // never see SIGTERM or SIGUSR1 unless it reads them through a signalfd. Start every
            // child the way a shell would, with nothing blocked.
            var nothing = sigset_t()
            var previous = sigset_t()
            sigemptyset(&nothing)
            pthread_sigmask(SIG_SETMASK, &nothing, &previous)
            defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
            try process.run()
        } catch {
            throw LabFailure("cannot start `\(commandLine)`: \(error)")
        }
    }

    package var pid: Int32 { process.processIdentifier }
    package var isRunning: Bool { process.isRunning }

    /// Exit status once exited normally; nil while running or after death by a signal.
    package var exitStatus: Int32? {
        guard !process.isRunning, process.terminationReason == .exit else { return nil }
        return process.terminationStatus
    }

    package var exitDescription: String {
        if process.isRunning { return "still running" }
        return process.terminationReason == .exit
            ? "exit \(process.terminationStatus)" : "killed by signal \(process.terminationStatus)"
    }

    package var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    package var stderr: String {
        stderrPath == stdoutPath ? "" : (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    }

    package func signal(_ number: Int32) {
        if process.isRunning { kill(pid, number) }
    }

    /// Waits until the process exits or the timeout passes; true if it exited.
    @discardableResult
    package func wait(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { return false }
            await nap()
        }
        return true
    }

    /// SIGTERM, a grace period, then SIGKILL; returns once the process is gone (bounded).
    package func terminate(grace: Duration = .seconds(2)) async {
        guard process.isRunning else { return }
        signal(SIGTERM)
        if await wait(timeout: grace) { return }
        signal(SIGKILL)
        await wait(timeout: .seconds(5))
    }

    /// Waits until `text` shows up in stdout, or stderr with `onStderr` (or the process exits,
    /// or the timeout passes).
    package func waitForOutput(_ text: String, timeout: Duration, onStderr: Bool = false) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        func shown() -> Bool { (onStderr ? stderr : stdout).contains(text) }
        while ContinuousClock.now < deadline {
            if shown() { return true }
            if !process.isRunning { return shown() }
            await nap(milliseconds: 50)
        }
        return false
    }

    package func result(timedOut: Bool) -> CommandResult {
        CommandResult(commandLine: commandLine, status: exitStatus, timedOut: timedOut, stdout: stdout, stderr: stderr)
    }
}

/// Sleeps briefly without throwing. Once the task is cancelled (a time limit hit), `Task.sleep`
/// returns at once, so fall back to a real sleep: cleanup still waits for processes to die.
package func nap(milliseconds: Int = 20) async {
    if Task.isCancelled {
        usleep(UInt32(milliseconds) * 1000)
    } else {
        try? await Task.sleep(for: .milliseconds(milliseconds))
    }
}

extension Duration {
    package var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}
