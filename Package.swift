// swift-tools-version: 6.1
import PackageDescription

// Dependencies point one way: wire ← datapath ← platform/control ← executable.
// VXWire and VXDatapath use the standard library only, so their tests need no kernel.
let package = Package(
    name: "vxrouter",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vxrouter", targets: ["vxrouter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // vxload's latency percentiles.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // The control endpoint's HTTP server (NIOHTTP1 only: no Hummingbird stack to build).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .target(name: "VXWire"),
        .target(name: "VXDatapath", dependencies: ["VXWire"]),
        .target(name: "CVXLinux"),
        .target(name: "VXPlatform", dependencies: ["CVXLinux", "VXDatapath", "VXWire"]),
        .target(
            name: "VXControl",
            dependencies: [
                "VXWire", "VXDatapath", "VXPlatform", "VXCapture",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Packet capture: the writer thread, libpcap files and streams, BPF filters on inner frames.
        .target(name: "VXCapture", dependencies: ["VXDatapath", "VXPlatform", "VXWire", "CPcap"]),
        .executableTarget(
            name: "vxrouter",
            dependencies: [
                "VXControl", "VXWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Microbenchmarks (release mode): swift run -c release vxbench
        .executableTarget(name: "vxbench", dependencies: ["VXDatapath", "VXWire"], path: "Tools/vxbench"),
        // libpcap (apt: libpcap-dev), unwrapped, for every tool that reads or writes captures.
        .systemLibrary(name: "CPcap", path: "Sources/CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        // The load generator: vxload run|send|sink (README "Load generator").
        .executableTarget(
            name: "vxload",
            dependencies: [
                "VXWire", "VXPlatform", "CVXLinux", "CPcap",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Tools/vxload",
            exclude: ["compare-iperf3.sh"]
        ),
        // Fuzz targets (Tools/fuzz.sh; README "Fuzzing"): each executable drives libFuzzer when built
        // with -DVXFUZZ and the fuzzer runtime, and otherwise replays corpus files (a regression run).
        .target(name: "VXFuzzSupport", path: "Tools/fuzz/Support"),
        .executableTarget(
            name: "fuzz-decapsulate", dependencies: ["VXFuzzSupport", "VXDatapath", "VXWire"],
            path: "Tools/fuzz/fuzz-decapsulate"),
        .executableTarget(name: "fuzz-segmenter", dependencies: ["VXFuzzSupport", "VXWire"], path: "Tools/fuzz/fuzz-segmenter"),
        .executableTarget(name: "fuzz-coalescer", dependencies: ["VXFuzzSupport", "VXWire"], path: "Tools/fuzz/fuzz-coalescer"),
        .executableTarget(name: "fuzz-config", dependencies: ["VXFuzzSupport", "VXControl"], path: "Tools/fuzz/fuzz-config"),
        .testTarget(name: "VXWireTests", dependencies: ["VXWire"]),
        // Test-only: counts heap allocations per thread by interposing malloc (see its header).
        .target(name: "CMallocCounter", path: "Tests/CMallocCounter"),
        .testTarget(name: "VXCaptureTests", dependencies: ["VXCapture", "VXDatapath", "VXWire", "CPcap"]),
        .testTarget(name: "VXDatapathTests", dependencies: ["VXDatapath", "VXWire", "CMallocCounter"]),
        // Test-only: makes UDP GSO sends fail with EIO on demand by interposing sendmmsg (see its header).
        .target(name: "CSendFault", path: "Tests/CSendFault"),
        .testTarget(name: "VXPlatformTests", dependencies: ["VXPlatform", "VXDatapath", "VXWire", "CSendFault"]),
        .testTarget(
            name: "VXControlTests",
            dependencies: [
                "VXControl", "VXWire", "VXCapture", "VXDatapath",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        .testTarget(name: "IntegrationTests", dependencies: ["VXWire"]),
        .testTarget(name: "VXLoadTests", dependencies: ["vxload", "VXWire"]),
    ]
)
