// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "tend",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tend", targets: ["tend"]),
        .library(name: "TendSpec", targets: ["TendSpec"]),
        .library(name: "TendCore", targets: ["TendCore"]),
        .library(name: "TendProviders", targets: ["TendProviders"]),
        .library(name: "TendGit", targets: ["TendGit"]),
        .library(name: "TendSystemd", targets: ["TendSystemd"]),
        .library(name: "TendAgent", targets: ["TendAgent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CYAML",
            path: "modules/CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        .systemLibrary(
            name: "CGit2",
            path: "modules/CGit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        .systemLibrary(
            name: "CSystemd",
            path: "modules/CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        .target(
            name: "TendSpec",
            dependencies: [
                "CYAML",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "TendCore",
            dependencies: [
                "TendSpec",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        .target(
            name: "TendProcess",
            dependencies: [
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "TendProviders",
            dependencies: [
                "TendCore",
                "TendProcess",
                "TendSpec",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "TendGit",
            dependencies: [
                "CGit2",
                "TendProcess",
                "TendSpec",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "TendSystemd",
            dependencies: [
                "CSystemd",
                "TendCore",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TendAgent",
            dependencies: [
                "TendCore",
                "TendGit",
                "TendProcess",
                "TendProviders",
                "TendSpec",
                "TendSystemd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .plugin(name: "TendVersionPlugin", capability: .buildTool(), path: "Sources/TendVersionPlugin"),
        .executableTarget(
            name: "tend",
            dependencies: [
                "TendAgent",
                "TendGit",
                "TendSystemd",
                "TendProviders",
                "TendCore",
                "TendSpec",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            plugins: ["TendVersionPlugin"]
        ),
        .executableTarget(
            name: "tend-fuzz",
            dependencies: ["TendCore", "TendProviders", "TendSpec"],
            path: "Tests/Fuzz"
        ),
        .executableTarget(
            name: "tend-fetch-loop",
            dependencies: ["TendGit", .product(name: "Logging", package: "swift-log")],
            path: "bench/FetchLoop"
        ),
        .executableTarget(
            name: "tend-check-loop",
            dependencies: ["TendAgent", "TendCore", "TendProviders", .product(name: "Logging", package: "swift-log")],
            path: "bench/CheckLoop"
        ),
        .executableTarget(
            name: "tend-agent-loop",
            dependencies: ["TendAgent", "TendCore", "TendProviders", .product(name: "Logging", package: "swift-log")],
            path: "bench/AgentLoop"
        ),
        .testTarget(name: "TendSpecTests", dependencies: ["TendSpec"]),
        // The catalog, planner and executor are tested with the standard providers' resources.
        .testTarget(
            name: "TendCoreTests",
            dependencies: ["TendCore", "TendProviders", "TendSpec", .product(name: "Logging", package: "swift-log")],
            exclude: ["Golden"]
        ),
        .testTarget(name: "TendProvidersTests", dependencies: ["TendProviders", "TendCore", "TendProcess", "TendSpec"]),
        .testTarget(name: "TendSystemdTests", dependencies: ["TendSystemd"]),
        .testTarget(name: "TendGitTests", dependencies: ["TendGit", "TendSpec"]),
        .testTarget(
            name: "TendAgentTests",
            dependencies: ["TendAgent", "TendCore", "TendProviders", "TendSpec", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "TendIntegrationTests",
            dependencies: [
                "tend",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            exclude: ["Corpus"]
        ),
    ]
)

// One set of strict settings for every target, as swift-log does.
for target in package.targets where target.type != .system && target.type != .plugin {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .swiftLanguageMode(.v6),
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("InternalImportsByDefault"),
        .enableUpcomingFeature("MemberImportVisibility"),
    ]
}
