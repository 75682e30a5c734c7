// The suite every end-to-end scenario nests in, and the traits that skip or fail a scenario when
// the lab cannot run (the lab itself is the shared harness in Tests/LabSupport).
import LabSupport
import Testing

/// The lab's host, not Foundation's `Host` (both are imported here).
typealias Host = LabSupport.Host

extension Trait where Self == ConditionTrait {
    /// Root (or CI=true, where a missing root fails instead of skipping).
    static var labHost: Self {
        .enabled(
            if: LabEnvironment.labHostAvailable,
            "needs root for network namespaces (CI=true turns the skip into a failure)")
    }

    /// Root and a vxrouter binary (or CI=true, where either missing fails instead of skipping).
    static var routerBinary: Self {
        .enabled(
            if: LabEnvironment.routerAvailable,
            "needs root and a vxrouter binary (VXROUTER_BIN or .build/release/vxrouter); CI=true fails instead"
        )
    }
}

/// The one serialized suite every end-to-end scenario nests in (extensions in the other files):
/// on two cores, heavy scenarios side by side would be flaky, and the lab is the bottleneck anyway.
@Suite("End to end across network namespaces", .serialized, .labHost)
struct EndToEnd {}
