// The YAML config loader (ConfigLoader.parse): every input either loads, or throws ConfigError
// with a reason, a line inside the text when it names one — never a crash or a hang.
import VXConfig
import VXFuzzSupport

func loadOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let yaml = String(decoding: fuzzInput(start, count), as: UTF8.self)
    do {
        _ = try ConfigLoader.parse(yaml: yaml)
    } catch {
        // Typed throws: nothing but ConfigError can arrive here.
        fuzzCheck(!error.reason.isEmpty, "a ConfigError without a reason: \(error)")
        // YAML breaks lines at CR, LF, CRLF (and libyaml at NEL, LS, PS too): Character.isNewline
        // counts all of those, so this is an upper bound on the line the error may name.
        let lines = yaml.count { $0.isNewline } + 1
        if let line = error.line { fuzzCheck(line >= 1 && line <= lines + 1, "line \(line) of a \(lines)-line text: \(error)") }
    }
    return 0
}

fuzzMain(loadOne)
