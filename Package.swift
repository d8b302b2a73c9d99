// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "herald",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "herald", targets: ["herald"]),
        .library(name: "Herald", targets: ["Herald"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        // Already in the graph through Hummingbird; named for the HTTP parser's error type and the event loops.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // Already in the graph through async-http-client; named for `chunked`, which groups
        // a claim's jobs and a turn's outcomes into runs of one trigger.
        .package(url: "https://github.com/apple/swift-algorithms.git", from: "1.2.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // curl_easy_setopt and friends are variadic C functions that Swift cannot call;
        // this target wraps each argument type in a fixed-signature function.
        .target(
            name: "CCurlShims",
            dependencies: ["CCurl"]
        ),
        // glibc's mallinfo2 is not exported by Swift's Glibc module.
        .target(name: "CMallocStats"),
        .target(
            name: "Herald",
            dependencies: [
                "CLibPQ",
                "CCurl",
                "CCurlShims",
                "CMallocStats",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Algorithms", package: "swift-algorithms"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "herald",
            dependencies: [
                "Herald",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings,
            // jemalloc replaces glibc malloc for the whole worker (libcurl's and libpq's
            // allocations too). Herald's threads form a pipeline (claimer, delivery,
            // recorder) where memory is freed on another thread than the one that made it,
            // which glibc's per-thread caches serve poorly: on the drain benchmark jemalloc
            // cut Herald's CPU per event by about a tenth (docs/internals.md).
            linkerSettings: [.linkedLibrary("jemalloc")]
        ),
        .testTarget(
            name: "HeraldTests",
            dependencies: ["Herald"],
            // Read through #filePath by the tests, not bundled.
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
    ]
)
