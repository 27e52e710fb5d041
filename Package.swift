// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "edda-swift",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Edda", targets: ["Edda"]),
        .library(name: "EddaSQLite", targets: ["EddaSQLite"]),
        .library(name: "EddaTesting", targets: ["EddaTesting"]),
        .library(name: "EddaConformance", targets: ["EddaConformance"]),
        .library(name: "EddaHTTP", targets: ["EddaHTTP"]),
        .library(name: "EddaPostgres", targets: ["EddaPostgres"]),
        .library(name: "EddaMySQL", targets: ["EddaMySQL"]),
        .library(name: "EddaDiagram", targets: ["EddaDiagram"]),
        .library(name: "EddaViewer", targets: ["EddaViewer"]),
        .library(name: "EddaVisualizer", targets: ["EddaVisualizer"]),
        .executable(name: "edda", targets: ["EddaCLI"]),
        .executable(name: "edda-bench", targets: ["EddaBench"]),
        .executable(name: "edda-test-worker", targets: ["EddaTestWorker"]),
        .executable(name: "edda-quickstart", targets: ["Quickstart"]),
        .executable(name: "order-service", targets: ["OrderService"]),
    ],
    traits: [
        .trait(
            name: "OpenTelemetry",
            description: "Builds the order-service example with swift-otel, to export its traces and metrics over OTLP (--otel). "
                + "Off by default: swift-otel and its gRPC stack are fetched and built only when it is on."),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.3.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/swiftlang/swift-syntax", "600.0.1"..<"700.0.0"),
    ],
    targets: [
        .target(
            name: "Edda",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "EddaSQLite",
            dependencies: [
                "Edda",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .target(name: "EddaTesting", dependencies: ["Edda", "EddaSQLite"]),
        .target(name: "EddaConformance", dependencies: ["Edda", "EddaTesting"]),
        .target(
            name: "EddaHTTP",
            dependencies: [
                "Edda",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "EddaPostgres",
            dependencies: [
                "Edda",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "EddaMySQL",
            dependencies: [
                "Edda",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "EddaDiagram"),
        .target(
            name: "EddaViewer",
            dependencies: [
                "Edda", "EddaDiagram",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "EddaVisualizer",
            dependencies: [
                "EddaDiagram",
                .product(name: "SwiftSyntax", package: "swift-syntax"),
                .product(name: "SwiftParser", package: "swift-syntax"),
            ]
        ),
        .executableTarget(
            name: "EddaCLI",
            dependencies: [
                "Edda", "EddaSQLite", "EddaPostgres", "EddaMySQL", "EddaDiagram", "EddaViewer", "EddaVisualizer", "EddaHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "EddaBench",
            dependencies: [
                "Edda", "EddaSQLite", "EddaPostgres", "EddaMySQL",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ]
        ),
        .executableTarget(
            name: "EddaTestWorker",
            dependencies: [
                "Edda", "EddaSQLite", "EddaPostgres", "EddaMySQL",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(name: "Quickstart", dependencies: ["Edda", "EddaSQLite"], path: "Examples/Quickstart", exclude: ["README.md"]),
        .executableTarget(
            name: "OrderService",
            dependencies: [
                "Edda", "EddaSQLite", "EddaHTTP", "EddaPostgres", "EddaMySQL", "EddaViewer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "OTel", package: "swift-otel", condition: .when(traits: ["OpenTelemetry"])),
            ],
            path: "Examples/OrderService", exclude: ["README.md"]
        ),
        .target(
            name: "TestSupport",
            dependencies: [
                "Edda", "EddaSQLite", "EddaTesting", "EddaPostgres", "EddaMySQL",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "EddaHTTPTests",
            dependencies: [
                "Edda", "EddaSQLite", "EddaHTTP", "EddaTesting", "OrderService", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ]
        ),
        .testTarget(
            name: "EddaVisualizerTests",
            dependencies: ["EddaDiagram", "EddaVisualizer"]
        ),
        .testTarget(
            name: "EddaViewerTests",
            dependencies: [
                "Edda", "EddaSQLite", "EddaTesting", "EddaDiagram", "EddaViewer", "EddaVisualizer", "EddaCLI", "EddaPostgres", "EddaMySQL", "TestSupport",
                "Quickstart",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "EddaTests",
            dependencies: [
                "Edda", "EddaSQLite", "EddaTesting", "EddaConformance", "EddaTestWorker", "TestSupport", "EddaPostgres", "EddaMySQL",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ]
        ),
    ]
)
