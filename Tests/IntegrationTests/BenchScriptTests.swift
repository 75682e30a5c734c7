// The benchmark driver stays runnable: its scripts parse and `--help` answers without root.
// Nothing here times anything — benchmark figures never go into tests.
import Foundation
import LabSupport
import Testing

@Suite("Benchmark scripts")
struct BenchScriptTests {
    /// Runs a command from the package root; returns its exit status and combined output.
    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.currentDirectoryURL = LabEnvironment.packageRoot
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("bench.sh passes bash -n")
    func shellSyntax() throws {
        let result = try run(["bash", "-n", "Tools/bench/bench.sh"])
        #expect(result.status == 0, "\(result.output)")
    }

    @Test("bench.py compiles")
    func pythonSyntax() throws {
        let result = try run([
            "python3", "-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())", "Tools/bench/bench.py",
        ])
        #expect(result.status == 0, "\(result.output)")
    }

    @Test("bench.sh --help prints the usage and every option")
    func help() throws {
        let result = try run(["bash", "Tools/bench/bench.sh", "--help"])
        #expect(result.status == 0, "\(result.output)")
        for option in ["--quick", "--repeat", "--only", "--output", "--confine", "--no-latency"] {
            #expect(result.output.contains(option), "no \(option) in:\n\(result.output)")
        }
    }
}
