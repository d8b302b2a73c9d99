// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for Herald's input parsers. A package of its own because a fuzz target has
// no `main` (libFuzzer supplies it) and so cannot link without `-sanitize=fuzzer`: kept apart,
// `swift build` and `scripts/test` of the main package never see it. Build and run them with
// `scripts/fuzz TARGET SECONDS`.
let package = Package(
    name: "herald-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "herald", path: ".."),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    ],
    targets: [
        .executableTarget(name: "FuzzConfig", dependencies: [.product(name: "Herald", package: "herald")]),
        .executableTarget(
            name: "FuzzConsole",
            dependencies: [
                .product(name: "Herald", package: "herald"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]),
        .executableTarget(name: "FuzzKriti", dependencies: [.product(name: "Herald", package: "herald")]),
    ]
)
