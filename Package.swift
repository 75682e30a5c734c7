// swift-tools-version: 6.1
import PackageDescription

// Dependencies point one way: wire ← datapath ← platform ← config ← router (runtime) ← control
// (HTTP) ← executable, with the API models (VXControlAPI) shared by the server and the CLI.
// VXWire and VXDatapath use the standard library only, so their tests need no kernel; the
// control endpoint's routes are tested against a fake RouterService, so theirs need no root.
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
        // The cluster client's HTTP (etcd's v3 JSON gateway): no hand-written HTTP.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // TLS to etcd (AsyncHTTPClient's own TLS stack; its configuration types are NIOSSL's).
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
    ],
    targets: [
        .target(name: "VXWire"),
        .target(name: "VXDatapath", dependencies: ["VXWire"]),
        .target(name: "CVXLinux"),
        .target(name: "VXPlatform", dependencies: ["CVXLinux", "VXDatapath", "VXWire"]),
        // vxload's own platform pieces (namespaces, packet sockets) on VXPlatform's errno policy,
        // so the router's platform layer carries only what the router uses.
        .target(name: "CVXLoadLinux"),
        .target(name: "VXLoadPlatform", dependencies: ["CVXLoadLinux", "VXPlatform"]),
        // The config model, its YAML reader and the rules every source of config shares.
        .target(
            name: "VXConfig",
            dependencies: ["VXWire", "VXCapture", "VXDatapath", .product(name: "Yams", package: "Yams")]
        ),
        // The control API's contract: Codable request/response models the server and the CLI share.
        .target(name: "VXControlAPI"),
        // The running router: wiring, the control thread, and its typed service (RouterService).
        .target(
            name: "VXRouter",
            dependencies: [
                "VXConfig", "VXControlAPI", "VXWire", "VXDatapath", "VXPlatform", "VXCapture",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The control endpoint: HTTP (SwiftNIO's HTTP/1.1 codec), a route table over the service, auth, streams.
        .target(
            name: "VXControl",
            dependencies: [
                "VXRouter", "VXControlAPI", "VXConfig", "VXCapture", "VXWire", "VXPlatform",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Packet capture: the writer thread, libpcap files and streams, BPF filters on inner frames.
        // Its summary is the API's CaptureInfo (VXControlAPI: Foundation only), defined once.
        .target(name: "VXCapture", dependencies: ["VXControlAPI", "VXDatapath", "VXPlatform", "VXWire", "CPcap"]),
        // Cluster mode: the etcd v3 client (JSON gateway), the key model and the reconciler, the
        // publishing/watching client. It steers the router through a table protocol of its own, so it
        // builds and tests without the runtime; the executable wires it to the RouterService.
        .target(
            name: "VXCluster",
            dependencies: [
                "VXWire",
                "VXControlAPI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "VXClusterTests", dependencies: ["VXCluster", "VXWire"]),
        // The VTEP simulator: N simulated VTEPs as etcd writers only (README "Cluster mode").
        .executableTarget(
            name: "vxcluster-sim",
            dependencies: [
                "VXCluster", "VXWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // --probes: the router's event stream, and the latency percentiles.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Tools/vxcluster-sim"
        ),
        .executableTarget(
            name: "vxrouter",
            dependencies: [
                "VXCluster",
                "VXConfig", "VXControl", "VXControlAPI", "VXRouter", "VXPlatform", "VXWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                // The CLI's client: SwiftNIO's HTTP/1.1 client codec over TCP or a Unix socket.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Microbenchmarks (release mode): swift run -c release vxbench
        .executableTarget(name: "vxbench", dependencies: ["VXDatapath", "VXWire", "VXTestSupport"], path: "Tools/vxbench"),
        // libpcap (apt: libpcap-dev), unwrapped, for every tool that reads or writes captures.
        .systemLibrary(name: "CPcap", path: "Sources/CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        // The load generator: vxload run|send|sink (README "Load generator").
        .executableTarget(
            name: "vxload",
            dependencies: [
                "VXWire", "VXPlatform", "VXLoadPlatform", "CVXLinux", "CPcap",
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
        .executableTarget(name: "fuzz-config", dependencies: ["VXFuzzSupport", "VXConfig"], path: "Tools/fuzz/fuzz-config"),
        .executableTarget(name: "fuzz-framelayout", dependencies: ["VXFuzzSupport", "VXWire"], path: "Tools/fuzz/fuzz-framelayout"),
        .executableTarget(
            name: "fuzz-control",
            dependencies: ["VXFuzzSupport", "VXControl", "VXControlAPI", "VXRouter", "VXConfig", "VXCapture", "VXWire"],
            path: "Tools/fuzz/fuzz-control"),
        .testTarget(name: "VXWireTests", dependencies: ["VXWire", "VXTestSupport"]),
        // Test-only: counts heap allocations per thread by interposing malloc (see its header).
        .target(name: "CMallocCounter", path: "Tests/CMallocCounter"),
        .testTarget(name: "VXCaptureTests", dependencies: ["VXCapture", "VXDatapath", "VXWire", "CPcap"]),
        // Test support (a regular target, so vxbench can use it too, as wireguard-go's tuntest and
        // bindtest serve its tests and benchmarks): fake TAP and underlay, frame builders, and a
        // steady one-network datapath wired as the router wires a worker (WorkerWiring).
        .target(name: "VXTestSupport", dependencies: ["VXDatapath", "VXWire"], path: "Tests/VXTestSupport"),
        .testTarget(name: "VXDatapathTests", dependencies: ["VXDatapath", "VXWire", "VXTestSupport", "CMallocCounter"]),
        // Test-only: makes UDP GSO sends fail with EIO on demand by interposing sendmmsg (see its header).
        .target(name: "CSendFault", path: "Tests/CSendFault"),
        .testTarget(name: "VXPlatformTests", dependencies: ["VXPlatform", "VXDatapath", "VXWire", "CSendFault"]),
        .testTarget(
            name: "VXControlTests",
            dependencies: [
                "VXConfig", "VXControl", "VXControlAPI", "VXRouter", "VXWire", "VXCapture", "VXDatapath", "VXPlatform",
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        // Test-only: the namespace lab (hosts, links, processes, routers) the integration and load
        // tests share.
        .target(name: "LabSupport", path: "Tests/LabSupport"),
        .testTarget(name: "IntegrationTests", dependencies: ["LabSupport", "VXWire"]),
        .testTarget(name: "VXLoadTests", dependencies: ["LabSupport", "vxload", "VXWire"]),
    ]
)
