// `allow_from: known | any | [prefixes]` and the default rule: known only where it cannot break
// learning (no learning, and the network names its peers).
import Testing
import VXWire

@testable import VXConfig

@Suite struct AllowFromConfigTests {
    func network(_ lines: String...) throws -> NetworkConfig {
        let text =
            "underlay:\n  local: 10.0.0.1\nnetworks:\n  - vni: 42\n    tap: vx42\n"
            + lines.map { "    " + $0 + "\n" }.joined()
        return try ConfigLoader.parse(yaml: text).networks[0]
    }

    @Test func defaultIsKnownOnlyWithoutLearningWhenPeersAreNamed() throws {
        #expect(try network("learning: false", "flood: [10.0.0.2]").acceptsOnlyKnownVTEPs)
        #expect(try network("learning: false", "fdb: [{mac: \"02:00:00:00:00:02\", remote: 10.0.0.2}]").acceptsOnlyKnownVTEPs)
        // Learning: an asymmetric flood list is legitimate, so the default stays open.
        #expect(try !network("flood: [10.0.0.2]").acceptsOnlyKnownVTEPs)
        // No peers named: "known" would refuse everyone, so the default stays open.
        #expect(try !network("learning: false").acceptsOnlyKnownVTEPs)
    }

    @Test func explicitValues() throws {
        #expect(try network("allow_from: known").acceptsOnlyKnownVTEPs)
        #expect(try !network("learning: false", "flood: [10.0.0.2]", "allow_from: any").acceptsOnlyKnownVTEPs)
        let prefixes = try network("learning: false", "flood: [10.0.0.2]", "allow_from: [10.0.0.0/8]")
        #expect(!prefixes.acceptsOnlyKnownVTEPs)
        #expect(prefixes.allowFrom.map(\.description) == ["10.0.0.0/8"])
    }

    @Test func aWordThatIsNeitherIsRefusedWithItsKeyAndLine() {
        #expect {
            _ = try network("allow_from: friends")
        } throws: { error in
            let error = error as? ConfigError
            return error?.path == "networks[0].allow_from" && error?.line == 6
                && error?.reason.contains("is not known or any") == true
        }
    }
}
