// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "edda-swift",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Edda", targets: ["Edda"]),
        .library(name: "EddaTesting", targets: ["EddaTesting"]),
        .executable(name: "edda-bench", targets: ["EddaBench"]),
        .executable(name: "edda-test-worker", targets: ["EddaTestWorker"]),
        .executable(name: "edda-quickstart", targets: ["Quickstart"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(
            name: "Edda",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(name: "EddaTesting", dependencies: ["Edda"]),
        .executableTarget(
            name: "EddaBench",
            dependencies: [
                "Edda",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "EddaTestWorker",
            dependencies: ["Edda", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .executableTarget(name: "Quickstart", dependencies: ["Edda"], path: "Examples/Quickstart", exclude: ["README.md"]),
        .testTarget(
            name: "EddaTests",
            dependencies: [
                "Edda", "EddaTesting", "EddaTestWorker",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)
