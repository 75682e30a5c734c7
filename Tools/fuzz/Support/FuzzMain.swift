// The one entry point every fuzz target shares. Built with -DVXFUZZ (Tools/fuzz.sh links
// libFuzzer's runtime without its main), it hands the target's check to libFuzzer's driver; in an
// ordinary build it replays files instead: every file argument, and every file in a directory
// argument, goes through the same check once (a regression run over a corpus or a saved crash).
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A target's check for one input: returns 0, and traps (`fuzzCheck`) when a property fails.
public typealias FuzzCheck = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// A property that must hold: on failure, names it and aborts so libFuzzer saves the input.
public func fuzzCheck(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition {
        printError("fuzz property failed at \(file):\(line): \(message())")
        abort()
    }
}

/// A line on standard error (unbuffered, so it is out before an abort).
func printError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
}

/// The input as a buffer (empty for a null pointer, which libFuzzer passes for the empty input).
@inline(__always)
public func fuzzInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> UnsafeBufferPointer<UInt8> {
    guard let start, count > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
    return UnsafeBufferPointer(start: start, count: count)
}

#if VXFUZZ
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: FuzzCheck
    ) -> CInt

    public func fuzzMain(_ check: FuzzCheck) -> Never {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, check))
    }
#else
    public func fuzzMain(_ check: FuzzCheck) -> Never {
        let arguments = CommandLine.arguments.dropFirst().filter { !$0.hasPrefix("-") }
        if arguments.isEmpty {
            printError("usage: \(CommandLine.arguments[0]) FILE|DIR... (replays each input; fuzzing needs Tools/fuzz.sh)")
            exit(2)
        }
        var replayed = 0
        for argument in arguments {
            for path in files(argument) {
                guard let bytes = read(path) else {
                    printError("cannot read \(path)")
                    exit(2)
                }
                _ = bytes.withUnsafeBufferPointer { check($0.baseAddress, $0.count) }
                replayed += 1
            }
        }
        print("replayed \(replayed) inputs: every property held")
        exit(0)
    }

    /// The regular files of `path` (itself, or a directory's entries, sorted), skipping dotfiles.
    func files(_ path: String) -> [String] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [path] }
        guard info.st_mode & S_IFMT == S_IFDIR else { return [path] }
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if !name.hasPrefix(".") { names.append(name) }
        }
        return names.sorted().flatMap { files(path + "/" + $0) }
    }

    func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return ferror(file) == 0 ? bytes : nil
    }
#endif
